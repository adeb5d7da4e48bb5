package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/grant"
)

// payload decodes the claims of a compact JWS as JSON values, the way a
// relying party that is not stepgate reads them.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("grant %q is not a compact JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// vaultBoundClaims is how Vault and OpenBao's JWT auth match a role's
// bound_claims (bound_claims_type "string"; openbao
// internal/builtin/credential/jwt/claims.go validateBoundClaims): every
// bound claim must be present, and one of its values (a list claim's
// elements, or the claim itself) must equal one of the bound values.
func vaultBoundClaims(bound map[string][]string, claims map[string]any) bool {
	for k, want := range bound {
		var have []any
		switch v := claims[k].(type) {
		case nil:
			return false
		case []any:
			have = v
		default:
			have = []any{v}
		}
		if !slices.ContainsFunc(have, func(h any) bool { s, ok := h.(string); return ok && slices.Contains(want, s) }) {
			return false
		}
	}
	return true
}

// The claims docs/secrets.md and docs/cloud-trust.md build trust on: Vault
// and OpenBao (bound_audiences, bound_claims on kind and secrets,
// user_claim jti, exp), AWS (sub from a template, the session tags claim),
// Google Cloud (kind, secrets, workspace) and Azure (an exact sub that
// names the secrets).
func TestGrantClaimsForSecretTrust(t *testing.T) {
	cfg := gate.Config{
		Audience: "vault", GrantTTL: time.Minute, AWSSessionTags: true,
		SubjectTemplate: "kind:{kind}:workspace:{workspace}:secrets:{secrets}",
	}
	s := newSecretStack(t, cfg)
	grantFor := func(t *testing.T, kind, ws string, secrets ...string) map[string]any {
		t.Helper()
		code, ch, b := s.create(t, s.billing, kind, ws, secrets...)
		if code != http.StatusCreated {
			t.Fatalf("POST /v1/checks = %d %s", code, b)
		}
		if ch.State == "pending" {
			s.approve(t, ch.ID)
		}
		return payload(t, s.grantOf(t, s.billing, ch.ID))
	}
	read := grantFor(t, "secret.read", "billing-dev", "DB=billing/db")

	t.Run("vault", func(t *testing.T) {
		// A secret kept in Vault: the check names it, the grant says so,
		// and stepgate releases nothing of it.
		read := grantFor(t, "secret.read", "billing-dev", "vault:billing/db")
		if read["aud"] != "vault" {
			t.Errorf("aud = %v, want vault (bound_audiences)", read["aud"])
		}
		jti, _ := read["jti"].(string)
		if !strings.HasPrefix(jti, "grt_") {
			t.Errorf("jti = %v, want the grant id (user_claim: jti)", read["jti"])
		}
		if exp, iat := read["exp"].(float64), read["iat"].(float64); exp-iat != 60 {
			t.Errorf("exp - iat = %v s, want 60 (grant_ttl; expiration_leeway adds to it)", exp-iat)
		}
		role := map[string][]string{"kind": {"secret.read"}, "secrets": {"vault:billing/db"}, "workspace": {"billing-dev"}}
		if !vaultBoundClaims(role, read) {
			t.Errorf("the role's bound_claims %v do not match the grant %v", role, read)
		}
		for name, other := range map[string]map[string]any{
			"another secret":              grantFor(t, "secret.read", "billing-dev", "vault:billing/api"),
			"the secret kept in stepgate": grantFor(t, "secret.read", "billing-dev", "DB2=billing/db"),
			"another workspace":           grantFor(t, "secret.read", "billing-stage", "vault:billing/db"),
			"no secret named":             grantFor(t, "secret.read", "billing-qa"),
		} {
			if vaultBoundClaims(role, other) {
				t.Errorf("the role's bound_claims match a grant for %s: %v", name, other)
			}
		}
	})

	t.Run("aws", func(t *testing.T) {
		if want := "kind:secret.read:workspace:billing-dev:secrets:billing/db"; read["sub"] != want {
			t.Errorf("sub = %v, want %s", read["sub"], want)
		}
		tags, ok := read[grant.AWSTagsClaim].(map[string]any)
		if !ok {
			t.Fatalf("no %s claim in %v", grant.AWSTagsClaim, read)
		}
		want := map[string]any{
			"principal_tags": map[string]any{
				"stepgate-kind": []any{"secret.read"}, "stepgate-workspace": []any{"billing-dev"},
				"stepgate-secrets": []any{"billing/db"}, "stepgate-aal": []any{"3"},
				"stepgate-check": []any{read["check_id"]},
			},
			"transitive_tag_keys": []any{"stepgate-aal", "stepgate-check", "stepgate-kind", "stepgate-secrets", "stepgate-workspace"},
		}
		if diff := cmp.Diff(want, tags); diff != "" {
			t.Errorf("session tags mismatch (-want +got):\n%s", diff)
		}
		// AWS's limits on session tags: at most 50, keys up to 128
		// characters and values up to 256 of letters, digits, spaces and
		// _ . : / = + - @.
		allowed := regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
		pt := tags["principal_tags"].(map[string]any)
		if len(pt) > 50 {
			t.Errorf("%d session tags, AWS takes at most 50", len(pt))
		}
		for k, v := range pt {
			vals := v.([]any)
			if len(vals) != 1 || len(k) > 128 || !allowed.MatchString(k) || strings.HasPrefix(k, "aws:") {
				t.Errorf("tag %q = %v: want one value and a key AWS accepts", k, v)
				continue
			}
			if s := vals[0].(string); len(s) > 256 || !allowed.MatchString(s) {
				t.Errorf("tag %q = %q: not a value AWS accepts", k, s)
			}
		}
		// A grant of several secrets tags them all, space separated: a
		// trust policy that requires exactly "billing/db" refuses it.
		two := grantFor(t, "secret.read", "billing-prod2", "A=billing/db", "B=billing/api")
		got := two[grant.AWSTagsClaim].(map[string]any)["principal_tags"].(map[string]any)["stepgate-secrets"]
		if diff := cmp.Diff([]any{"billing/db billing/api"}, got); diff != "" {
			t.Errorf("stepgate-secrets of two secrets mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("google-and-azure", func(t *testing.T) {
		// Google's attribute condition reads assertion.kind, .workspace and
		// .secrets (a list: `"billing/db" in assertion.secrets`); Azure
		// matches sub exactly, which names the secrets.
		if read["kind"] != "secret.read" || read["workspace"] != "billing-dev" {
			t.Errorf("kind, workspace = %v, %v", read["kind"], read["workspace"])
		}
		if diff := cmp.Diff([]any{"billing/db"}, read["secrets"]); diff != "" {
			t.Errorf("secrets mismatch (-want +got):\n%s", diff)
		}
	})
}
