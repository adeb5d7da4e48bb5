package hcpterraform

import (
	"net/url"
	"testing"
)

func TestAllowedHosts(t *testing.T) {
	h, err := parseHosts([]string{"app.terraform.io", "archivist.terraform.io", "tfe.example.com:8443", "127.0.0.1:9000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"https://app.terraform.io/api/v2/task-results/x/callback", true},
		{"https://APP.terraform.io:443/api/v2/plans/p/json-output", true},
		{"https://archivist.terraform.io/v1/object/abc", true},
		{"https://tfe.example.com:8443/api", true},
		{"http://127.0.0.1:9000/api", true},
		{"https://127.0.0.1:9000/api", true},
		{"http://app.terraform.io/api", false},               // not https
		{"https://app.terraform.io:8443/api", false},         // another port
		{"https://tfe.example.com/api", false},               // another port
		{"https://app.terraform.io.evil.example/api", false}, // another host
		{"https://evil.example/app.terraform.io", false},
		{"https://user@app.terraform.io/api", false}, // credentials in the URL
		{"http://127.0.0.1:9001/api", false},
		{"http://localhost:9000/api", false}, // another name than the one allowed
		{"ftp://app.terraform.io/x", false},
		{"/relative", false},
	} {
		u, _ := url.Parse(tt.url)
		if got := h.allowed(u); got != tt.want {
			t.Errorf("allowed(%s) = %v, want %v", tt.url, got, tt.want)
		}
	}
	for _, bad := range [][]string{{"https://app.terraform.io"}, {"127.0.0.1"}, {"localhost"}, {"app.terraform.io/api"}, {""}} {
		if _, err := parseHosts(bad); err == nil {
			t.Errorf("parseHosts(%q) = nil error", bad)
		}
	}
	if d, err := parseHosts(nil); err != nil || !d.allowed(&url.URL{Scheme: "https", Host: "archivist.terraform.io"}) {
		t.Errorf("the default hosts do not allow archivist.terraform.io: %v", err)
	}
}

func TestSignature(t *testing.T) {
	key, body := []byte("k"), []byte(`{"payload_version":1}`)
	good := Sign(key, body)
	for _, tt := range []struct {
		name, sig string
		key       []byte
		want      bool
	}{
		{"ok/hex", good, key, true},
		{"ok/upper-case-hex", upper(good), key, true},
		{"fail/empty", "", key, false},
		{"fail/truncated", good[:64], key, false},
		{"fail/other-key", Sign([]byte("other"), body), key, false},
		{"fail/no-key-configured", Sign(nil, body), nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := validSignature(tt.key, body, tt.sig); got != tt.want {
				t.Errorf("validSignature(%s) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
