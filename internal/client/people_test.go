package client

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseChallenge(t *testing.T) {
	for _, tt := range []struct {
		name   string
		values []string
		want   *Challenge
	}{
		{"ok/rfc9470-level", []string{`Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR"`},
			&Challenge{Error: "insufficient_user_authentication", Description: "A different authentication level is required", ACRValues: []string{"myACR"}, MaxAge: -1}},
		{"ok/rfc9470-max-age-quoted", []string{`Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5"`},
			&Challenge{Error: "insufficient_user_authentication", Description: "More recent authentication is required", MaxAge: 5}},
		{"ok/token-values-and-case", []string{`bearer ERROR=insufficient_user_authentication,max_age=300 , acr_values="phr urn:x:mfa", resource_metadata="https://gate.example.com/.well-known/oauth-protected-resource"`},
			&Challenge{Error: "insufficient_user_authentication", ACRValues: []string{"phr", "urn:x:mfa"}, MaxAge: 300, ResourceMetadata: "https://gate.example.com/.well-known/oauth-protected-resource"}},
		{"ok/escaped-quote", []string{`Bearer error="invalid_token", error_description="the \"token\" expired"`},
			&Challenge{Error: "invalid_token", Description: `the "token" expired`, MaxAge: -1}},
		{"ok/second-header", []string{`Basic realm="x"`, `Bearer realm="stepgate"`}, &Challenge{MaxAge: -1}},
		{"fail/not-bearer", []string{`Basic realm="x"`}, nil},
		{"fail/unterminated", []string{`Bearer error="invalid_token`}, nil},
		{"fail/bad-max-age", []string{`Bearer error="insufficient_user_authentication", max_age="soon"`}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseChallenge(tt.values)
			if ok != (tt.want != nil) {
				t.Fatalf("ParseChallenge(%q) ok = %v, want %v", tt.values, ok, tt.want != nil)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseChallenge(%q) mismatch (-want +got):\n%s", tt.values, diff)
			}
		})
	}
}
