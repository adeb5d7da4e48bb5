// Package ciauthtest serves a CI token issuer for tests: a discovery
// document and a JWKS over HTTP, and RS256 tokens with GitHub Actions'
// claim set.
package ciauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is a running test issuer.
type Issuer struct {
	URL    string
	key    *rsa.PrivateKey
	signer jose.Signer
	srv    *httptest.Server

	mu          sync.Mutex
	discoveries int           // discovery documents served or refused
	failNext    int           // discoveries still to answer 503
	hold        chan struct{} // while set, discoveries wait for it to close
}

// FailDiscovery makes the next n requests for the discovery document
// answer 503.
func (is *Issuer) FailDiscovery(n int) {
	is.mu.Lock()
	is.failNext = n
	is.mu.Unlock()
}

// HoldDiscovery makes requests for the discovery document wait until the
// returned release is called.
func (is *Issuer) HoldDiscovery() (release func()) {
	ch := make(chan struct{})
	is.mu.Lock()
	is.hold = ch
	is.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// Discoveries counts the requests for the discovery document.
func (is *Issuer) Discoveries() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.discoveries
}

// New starts an issuer; it stops when the test ends.
func New(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{key: key}
	mux := http.NewServeMux()
	is.srv = httptest.NewServer(mux)
	is.URL = is.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		is.discoveries++
		fail := is.failNext > 0
		if fail {
			is.failNext--
		}
		hold := is.hold
		is.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		if fail {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.URL + "/.well-known/jwks",
			"subject_types_supported":               []string{"public", "pairwise"},
			"response_types_supported":              []string{"id_token"},
			"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "repository_id", "repository_owner", "repository_owner_id", "run_id", "run_number", "run_attempt", "actor", "actor_id", "workflow", "head_ref", "base_ref", "event_name", "ref_type", "environment", "job_workflow_ref"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"scopes_supported":                      []string{"openid"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test-key", Algorithm: "RS256", Use: "sig"}}})
	})
	is.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test-key"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.srv.Close)
	return is
}

// GitHubClaims are the claims GitHub Actions puts in a job's token (see
// "About security hardening with OpenID Connect"), for a deployment of
// acme/infra's main branch to production by alice.
func (is *Issuer) GitHubClaims(aud string, now time.Time) map[string]any {
	return map[string]any{
		"jti":                   "example-id",
		"sub":                   "repo:acme/infra:environment:production",
		"environment":           "production",
		"aud":                   aud,
		"ref":                   "refs/heads/main",
		"sha":                   "example-sha-0123456789abcdef0123456789abcdef",
		"repository":            "acme/infra",
		"repository_owner":      "acme",
		"actor_id":              "12",
		"repository_visibility": "private",
		"repository_id":         "74",
		"repository_owner_id":   "65",
		"run_id":                "9876543210",
		"run_number":            "10",
		"run_attempt":           "2",
		"runner_environment":    "github-hosted",
		"actor":                 "alice",
		"workflow":              "apply",
		"head_ref":              "",
		"base_ref":              "",
		"event_name":            "push",
		"ref_type":              "branch",
		"ref_protected":         "true",
		"workflow_ref":          "acme/infra/.github/workflows/apply.yml@refs/heads/main",
		"workflow_sha":          "example-sha-0123456789abcdef0123456789abcdef",
		"job_workflow_ref":      "acme/infra/.github/workflows/apply.yml@refs/heads/main",
		"job_workflow_sha":      "example-sha-0123456789abcdef0123456789abcdef",
		"iss":                   is.URL,
		"nbf":                   now.Add(-5 * time.Second).Unix(),
		"exp":                   now.Add(5 * time.Minute).Unix(),
		"iat":                   now.Unix(),
	}
}

// Token signs claims. Each call to change edits a copy of base first.
func (is *Issuer) Token(t testing.TB, base map[string]any, change ...func(map[string]any)) string {
	t.Helper()
	c := maps.Clone(base)
	for _, f := range change {
		f(c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := is.signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// GitLabClaims are the claims GitLab puts in a job's ID token (see "OpenID
// Connect (OIDC) Authentication Using ID Tokens"), for pipeline 1234 of
// acme/infra's protected main branch, run by alice.
func (is *Issuer) GitLabClaims(aud string, now time.Time) map[string]any {
	return map[string]any{
		"namespace_id":       "72",
		"namespace_path":     "acme",
		"project_id":         "20",
		"project_path":       "acme/infra",
		"user_id":            "5",
		"user_login":         "alice",
		"user_email":         "alice@example.com",
		"user_access_level":  "maintainer",
		"pipeline_id":        "1234",
		"pipeline_source":    "push",
		"job_id":             "5678",
		"ref":                "main",
		"ref_type":           "branch",
		"ref_path":           "refs/heads/main",
		"ref_protected":      "true",
		"runner_id":          "1",
		"runner_environment": "gitlab-hosted",
		"sha":                "feedbeef0123456789abcdef0123456789abcdef",
		"project_visibility": "private",
		"ci_config_ref_uri":  "gitlab.example.com/acme/infra//.gitlab-ci.yml@refs/heads/main",
		"ci_config_sha":      "feedbeef0123456789abcdef0123456789abcdef",
		"jti":                "example-gitlab-id",
		"iss":                is.URL,
		"sub":                "project_path:acme/infra:ref_type:branch:ref:main",
		"aud":                aud,
		"nbf":                now.Add(-5 * time.Second).Unix(),
		"exp":                now.Add(5 * time.Minute).Unix(),
		"iat":                now.Unix(),
	}
}
