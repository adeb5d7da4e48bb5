package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
)

const redirect = "http://localhost:1/oidc/callback"

func newRP(t *testing.T) (*oidc.RP, *oidctest.Provider) {
	t.Helper()
	p := oidctest.Start(t, redirect)
	rp, err := oidc.New(context.Background(), oidc.Config{
		Issuer: p.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret, RedirectURL: redirect,
		GroupsClaim: "groups", GroupMap: map[string][]string{"platform-admins": {"approvers"}, "sre": {"sre", "approvers"}},
		ACR: map[int]string{2: "urn:stepgate:mfa", 3: "phr"},
	}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return rp, p
}

// authorize follows the provider's redirects until the callback and
// returns its query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var cb *url.URL
	c := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), redirect) {
			cb = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	res, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cb == nil {
		t.Fatalf("no callback; last status %d at %s", res.StatusCode, res.Request.URL)
	}
	return cb.Query()
}

func finish(t *testing.T, rp *oidc.RP, f *oidc.Flow, q url.Values) (*oidc.Identity, error) {
	t.Helper()
	return rp.Finish(context.Background(), f, q.Get("state"), q.Get("code"), q.Get("error"), q.Get("error_description"))
}

func TestSignIn(t *testing.T) {
	rp, p := newRP(t)
	p.SetNext(oidctest.Login{Groups: []string{"sre", "other"}})
	u, f := rp.BeginSignIn()
	if !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "nonce=") {
		t.Fatalf("auth URL lacks PKCE or nonce: %s", u)
	}
	q := authorize(t, u)
	id, err := finish(t, rp, f, q)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "id2" || id.Issuer != p.URL || strings.Join(id.Groups, ",") != "approvers,sre" {
		t.Fatalf("identity %+v", id)
	}
	if got := oidc.AccountName(id); got != "test-user2" {
		t.Fatalf("account name %q", got)
	}
	// The same callback again: the nonce was used.
	if _, err := finish(t, rp, f, q); err == nil {
		t.Fatal("replayed callback accepted")
	}
	// A state of another flow.
	_, f2 := rp.BeginSignIn()
	if _, err := finish(t, rp, f2, q); !errors.Is(err, oidc.ErrState) {
		t.Fatalf("foreign state: %v", err)
	}
}

func TestStepUp(t *testing.T) {
	rp, p := newRP(t)
	cases := []struct {
		name  string
		login oidctest.Login
		want  error
	}{
		{"strong acr", oidctest.Login{ACR: "phr", AMR: []string{"pwd"}}, nil},
		{"strong amr", oidctest.Login{AMR: []string{"hwk", "mfa", "user"}}, nil},
		{"weak acr ignored acr_values", oidctest.Login{ACR: "urn:stepgate:mfa", AMR: []string{"pwd", "otp"}}, oidc.ErrLevel},
		{"no acr", oidctest.Login{AMR: []string{"pwd"}}, oidc.ErrLevel},
		{"old auth_time", oidctest.Login{ACR: "phr", AuthTime: time.Now().Add(-time.Hour)}, oidc.ErrStale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.SetNext(tc.login)
			u, f := rp.BeginStepUp(3, 5*time.Minute, "chk_1")
			q := authorize(t, u)
			req := p.LastRequest()
			if req["prompt"][0] != "login" || req["max_age"][0] != "300" || req["acr_values"][0] != "phr" {
				t.Fatalf("authorization request %v", req)
			}
			id, err := finish(t, rp, f, q)
			if err != nil {
				t.Fatal(err)
			}
			if err := rp.StepUp(f, id); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("StepUp: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLevel(t *testing.T) {
	rp, _ := newRP(t)
	for _, tc := range []struct {
		acr  string
		amr  []string
		want int
	}{
		{"", nil, 1}, {"", []string{"pwd"}, 1}, {"", []string{"otp"}, 2}, {"", []string{"mfa"}, 2},
		{"", []string{"hwk", "mfa"}, 3}, {"", []string{"swk", "mfa"}, 3}, {"", []string{"hwk"}, 1},
		{"urn:stepgate:mfa", nil, 2}, {"phr", nil, 3}, {"urn:unknown", []string{"pwd"}, 1},
	} {
		if got := rp.Level(tc.acr, tc.amr); got != tc.want {
			t.Errorf("Level(%q, %v) = %d, want %d", tc.acr, tc.amr, got, tc.want)
		}
	}
}

func TestAccountName(t *testing.T) {
	for _, tc := range []struct {
		id   oidc.Identity
		want string
	}{
		{oidc.Identity{Username: "Alice.Smith@Example.com"}, "alice.smith"},
		{oidc.Identity{Email: "Bob+x@example.com"}, "bob-x"},
		{oidc.Identity{Subject: "__123"}, "123"},
		{oidc.Identity{Username: "Élodie Ça"}, "lodie-a"},
	} {
		if got := oidc.AccountName(&tc.id); got != tc.want {
			t.Errorf("AccountName(%+v) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestAuthOrigin: the origin of the authorization endpoint is where
// BeginSignIn sends the browser.
func TestAuthOrigin(t *testing.T) {
	rp, p := newRP(t)
	u, _ := rp.BeginSignIn()
	if got := rp.AuthOrigin(); got != p.URL || !strings.HasPrefix(u, got+"/") {
		t.Fatalf("AuthOrigin() = %q, want %q, the origin of %s", got, p.URL, u)
	}
}
