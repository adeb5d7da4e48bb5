package loopback

import (
	"net/url"
	"testing"
)

func TestHost(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"LOCALHOST", true}, {"gate.localhost", true}, {"localhost.", true},
		{"127.0.0.1", true}, {"127.1.2.3", true}, {"::1", true}, {"[::1]", true},
		{"example.com", false}, {"localhost.example.com", false}, {"10.0.0.1", false}, {"0.0.0.0", false}, {"", false},
	} {
		if got := Host(tt.host); got != tt.want {
			t.Errorf("Host(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestSecureOrLocal(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"https://token.actions.githubusercontent.com", true},
		{"http://127.0.0.1:8080/x", true},
		{"http://localhost:1", true},
		{"http://example.com", false},
		{"ftp://localhost", false},
		{"https://", false},
		{"/relative", false},
	} {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := SecureOrLocal(u); got != tt.want {
			t.Errorf("SecureOrLocal(%s) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
