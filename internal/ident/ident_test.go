package ident

import (
	"errors"
	"testing"
)

func TestName(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      bool
	}{
		{in: "bob", want: "bob"},
		{in: "Bob", want: "bob"},
		{in: "  BOB ", want: "bob"},
		{in: "ｂｏｂ", want: "bob"}, // full-width letters
		{in: "Billing-CI", want: "billing-ci"},
		{in: "ÉLODIE", want: "élodie"},
		{in: "e\u0301lodie", want: "élodie"}, // decomposed: NFC
		{in: "", err: true},
		{in: "two words", err: true},
		{in: "tab\there", err: true},
		{in: "rtl\u202eevil", err: true}, // a bidi override is no letter
	} {
		got, err := Name(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Name(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Name(%q) error %v is not ErrInvalid", tt.in, err)
		}
	}
}

func TestSame(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"bob", "bob", true},
		{"Bob", "bob", true},
		{"ｂｏｂ", "BOB", true},
		{"e\u0301lodie", "Élodie", true},
		{"billing ci", "Billing CI", true}, // a name from before names were checked
		{"bob", "bobby", false},
		{"", "", false},
		{"bob", "", false},
	} {
		if got := Same(tt.a, tt.b); got != tt.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestLink(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      bool
	}{
		{in: "github:Bob", want: "github:bob"},
		{in: "GitHub:Bob", want: "github:bob"},
		{in: "gitlab:Alice.Smith", want: "gitlab:alice.smith"},
		{in: "hcp:Alice", want: "hcp:Alice"},                                               // not known to ignore case: exact
		{in: "oidc:https://idp.example.com|AbC", want: "oidc:https://idp.example.com|AbC"}, // a subject is exact
		{in: "bob", err: true},
		{in: ":bob", err: true},
		{in: "github:", err: true},
		{in: "github:two words", err: true},
	} {
		got, err := Link(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Link(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
