package ciauth_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
)

func rules() []ciauth.Rule {
	return []ciauth.Rule{
		{
			Claims:     map[string]string{"repository": "acme/*", "ref": "refs/heads/main", "environment": "production", "job_workflow_ref": "acme/infra/.github/workflows/apply.yml@*"},
			Workspaces: []string{"billing-prod"},
			Name:       "github:{actor}",
		},
		{
			Claims:     map[string]string{"repository": "acme/infra"},
			Workspaces: []string{"billing-dev", "billing-prod"},
			Name:       "other:{repository}",
		},
		{
			Claims:     map[string]string{"repository": "other/*"},
			Workspaces: []string{"web-*"},
		},
	}
}

func TestVerify(t *testing.T) {
	is := ciauthtest.New(t)
	other := ciauthtest.New(t) // a valid issuer nobody trusts
	now := time.Now()
	v, err := ciauth.New([]ciauth.Issuer{{URL: is.URL, Audience: "stepgate", System: "github-actions", Rules: rules()}}, ciauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := is.GitHubClaims("stepgate", now)
	ctx := context.Background()

	t.Run("ok", func(t *testing.T) {
		id, err := v.Verify(ctx, is.Token(t, base))
		if err != nil {
			t.Fatal(err)
		}
		if id.Name != "github:alice" || id.Subject != "repo:acme/infra:environment:production" || id.Issuer != is.URL {
			t.Errorf("identity = %+v", id)
		}
		if !slices.Equal(id.Workspaces, []string{"billing-prod", "billing-dev"}) {
			t.Errorf("workspaces = %v, want the union of matching rules", id.Workspaces)
		}
		if id.Claims["run_id"] != "9876543210" || id.Claims["job_workflow_ref"] != "acme/infra/.github/workflows/apply.yml@refs/heads/main" || id.Claims["iat"] == "" {
			t.Errorf("claims = %v", id.Claims)
		}
		p := id.Pipeline()
		if p["system"] != "github-actions" || p["actor"] != "alice" || p["repository"] != "acme/infra" || p["run_attempt"] != "2" || p["environment"] != "production" {
			t.Errorf("pipeline = %v", p)
		}
	})
	t.Run("ok/aud-array", func(t *testing.T) {
		if _, err := v.Verify(ctx, is.Token(t, base, func(c map[string]any) { c["aud"] = []string{"x", "stepgate"} })); err != nil {
			t.Fatal(err)
		}
	})
	for _, tt := range []struct {
		name  string
		token string
		want  error
	}{
		{"unknown-issuer", other.Token(t, other.GitHubClaims("stepgate", now)), ciauth.ErrUnknownIssuer},
		{"forged-iss", other.Token(t, base), ciauth.ErrInvalid}, // claims iss of the trusted issuer, signed by another key
		{"wrong-audience", is.Token(t, base, func(c map[string]any) { c["aud"] = "https://github.com/acme" }), ciauth.ErrAudience},
		{"expired", is.Token(t, base, func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Hour).Unix(), now.Add(-10*time.Minute).Unix()
		}), ciauth.ErrExpired},
		{"not-yet-valid", is.Token(t, base, func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() }), ciauth.ErrExpired},
		{"issued-in-future", is.Token(t, base, func(c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() }), ciauth.ErrExpired},
		{"no-exp", is.Token(t, base, func(c map[string]any) { delete(c, "exp") }), ciauth.ErrExpired},
		{"no-rule", is.Token(t, base, func(c map[string]any) { c["repository"] = "evil/infra"; c["repository_owner"] = "evil" }), ciauth.ErrNoRule},
		{"no-rule/missing-claim", is.Token(t, base, func(c map[string]any) { delete(c, "repository") }), ciauth.ErrNoRule},
		{"no-rule/prefix-is-not-owner", is.Token(t, base, func(c map[string]any) { c["repository"] = "acme-evil/infra" }), ciauth.ErrNoRule},
		{"malformed", "a.b.c", ciauth.ErrMalformed},
		{"alg-none", "eyJhbGciOiJub25lIn0." + payloadOf(t, is.Token(t, base)) + ".", ciauth.ErrInvalid},
	} {
		t.Run("fail/"+tt.name, func(t *testing.T) {
			id, err := v.Verify(ctx, tt.token)
			if !errors.Is(err, tt.want) || !errors.Is(err, ciauth.ErrRefused) || id != nil {
				t.Fatalf("Verify = %v, %v; want %v", id, err, tt.want)
			}
			t.Log(err)
		})
	}
}

func payloadOf(t *testing.T, tok string) string {
	t.Helper()
	for i, c := range tok {
		if c == '.' {
			rest := tok[i+1:]
			for j, d := range rest {
				if d == '.' {
					return rest[:j]
				}
			}
		}
	}
	t.Fatal("no payload")
	return ""
}

// A discovery that failed is tried again by the next token of the same
// issuer, which then verifies.
func TestDiscoveryFailureIsRetried(t *testing.T) {
	is := ciauthtest.New(t)
	v, err := ciauth.New([]ciauth.Issuer{{URL: is.URL, Audience: "stepgate", Rules: rules()}}, ciauth.Options{DiscoveryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	is.FailDiscovery(1)
	tok := is.Token(t, is.GitHubClaims("stepgate", time.Now()))
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ciauth.ErrUnavailable) {
		t.Fatalf("first token while discovery fails: err = %v, want ErrUnavailable", err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("the same token once the issuer answers: %v, want verified", err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if n := is.Discoveries(); n != 2 {
		t.Errorf("%d discoveries, want 2 (the failed one, then one kept)", n)
	}
}

// Tokens that arrive while the issuer's discovery runs wait for that one
// discovery; a caller that gives up returns at once without ending it for
// the others, and no lock is held while the network call runs.
func TestDiscoveryIsSharedAndCancellable(t *testing.T) {
	is := ciauthtest.New(t)
	v, err := ciauth.New([]ciauth.Issuer{{URL: is.URL, Audience: "stepgate", Rules: rules()}}, ciauth.Options{DiscoveryTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	release := is.HoldDiscovery()
	defer release()
	tok := is.Token(t, is.GitHubClaims("stepgate", time.Now()))

	// One caller gives up while discovery hangs: it returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, tok)
		gaveUp <- err
	}()
	const n = 8
	results := make(chan error, n)
	for range n {
		go func() {
			_, err := v.Verify(context.Background(), tok)
			results <- err
		}()
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, ciauth.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up: err = %v, want ErrUnavailable and context.Canceled", err)
	}
	release()
	for range n {
		if err := <-results; err != nil {
			t.Errorf("a waiting caller: %v, want verified", err)
		}
	}
	if d := is.Discoveries(); d != 1 {
		t.Errorf("%d discoveries for %d concurrent tokens, want 1", d, n+1)
	}
}

func TestConfigRefused(t *testing.T) {
	ok := ciauth.Rule{Claims: map[string]string{"repository": "acme/infra"}, Workspaces: []string{"x"}}
	for name, is := range map[string]ciauth.Issuer{
		"http":          {URL: "http://token.example.com", Audience: "a", Rules: []ciauth.Rule{ok}},
		"no-audience":   {URL: "https://token.example.com", Rules: []ciauth.Rule{ok}},
		"no-rules":      {URL: "https://token.example.com", Audience: "a"},
		"star-only":     {URL: "https://token.example.com", Audience: "a", Rules: []ciauth.Rule{{Claims: map[string]string{"repository": "**"}, Workspaces: []string{"x"}}}},
		"no-claims":     {URL: "https://token.example.com", Audience: "a", Rules: []ciauth.Rule{{Workspaces: []string{"x"}}}},
		"no-workspaces": {URL: "https://token.example.com", Audience: "a", Rules: []ciauth.Rule{{Claims: ok.Claims}}},
		"bad-workspace": {URL: "https://token.example.com", Audience: "a", Rules: []ciauth.Rule{{Claims: ok.Claims, Workspaces: []string{"["}}}},
	} {
		if _, err := ciauth.New([]ciauth.Issuer{is}, ciauth.Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ciauth.New([]ciauth.Issuer{{URL: ciauth.GitHubIssuer, Audience: "stepgate", Rules: []ciauth.Rule{ok}}}, ciauth.Options{}); err != nil {
		t.Error(err)
	}
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"acme/*", "acme/infra", true},
		{"acme/*", "acme-evil/infra", false},
		{"acme/infra/.github/workflows/apply.yml@*", "acme/infra/.github/workflows/apply.yml@refs/heads/main", true},
		{"acme/infra/.github/workflows/apply.yml@*", "acme/infra/.github/workflows/apply.yml", false},
		{"refs/heads/main", "refs/heads/main2", false},
		{"refs/heads/release-?", "refs/heads/release-1", true},
		{"*", "", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"", "", true},
		{"", "x", false},
	} {
		if got := ciauth.Glob(tt.p, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for s, want := range map[string]bool{"eyJ.eyJ.sig": true, "sgt_abc_def": false, "a.b": false, "a..c": false, "a b.c.d": false} {
		if got := ciauth.LooksLikeJWT(s); got != want {
			t.Errorf("LooksLikeJWT(%q) = %v", s, got)
		}
	}
}

// A verified GitHub token's claims, normalised.
func TestIdentityNormalized(t *testing.T) {
	id := &ciauth.Identity{System: "github-actions", Claims: map[string]string{
		"repository": "acme/infra", "ref": "refs/pull/4/merge", "ref_protected": "false", "event_name": "pull_request", "run_id": "7", "sha": "abc",
	}}
	p := id.Normalized()
	if p.Repository != "acme/infra" || p.RunID != "7" || p.SHA != "abc" || !p.PullRequest || p.RefProtected == nil || *p.RefProtected {
		t.Errorf("Normalized() = %+v", p)
	}
}
