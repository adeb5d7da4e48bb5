package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/plan/planfile"
	"github.com/stepgate/stepgate/internal/store"
)

// stsAudience is the audience AWS STS expects of a web identity token.
const stsAudience = "sts.amazonaws.com"

// oidcEnv is the real API with a ring of the given algorithm and the
// server's audience set to what a cloud's relying party expects.
type oidcEnv struct {
	*env
	st     store.Store
	master *keys.Master
	n      int
}

func newOIDCEnv(t *testing.T, alg, audience string) *oidcEnv {
	t.Helper()
	// json-only binding: these tests are about the grant's claims, and name
	// a saved plan by its digest alone (see savedplan_test.go for binding).
	s := newStack(t, stackOpts{ring: []keys.Option{keys.WithAlgorithm(alg)}, cfg: gate.Config{Audience: audience, SavedPlanBinding: planfile.BindingJSONOnly}})
	return &oidcEnv{env: &env{srv: s.srv, token: s.token(t)}, st: s.st, master: s.master}
}

// grant runs a check the default policy allows and returns its grant.
// Each call names another saved plan file, so it is a new check (the same
// inputs would resume the first).
func (e *oidcEnv) grant(t *testing.T) (string, api.Check) {
	t.Helper()
	e.n++
	planFile := strings.Repeat(string(rune('a'+e.n)), 64)
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev&plan_file_sha256="+planFile, e.token, planBody(t, "dev-tag-change.plan.json"))
	var c api.Check
	if resp.StatusCode != 201 || json.Unmarshal(b, &c) != nil || c.Grant == "" {
		t.Fatalf("create check = %d %s, want 201 with a grant", resp.StatusCode, b)
	}
	return c.Grant, c
}

// grantClaims is what a relying party reads of a grant.
type grantClaims struct {
	Workspace      string `json:"workspace"`
	AAL            int    `json:"aal"`
	Decision       string `json:"decision"`
	PlanSHA256     string `json:"plan_sha256"`
	PlanFileSHA256 string `json:"plan_file_sha256"`
}

// verifyLikeACloud verifies a grant as a relying party (AWS STS, Google
// STS, Azure AD) does: discovery from the issuer, keys from its jwks_uri,
// audience = the client id.
func verifyLikeACloud(t *testing.T, issuer, rawGrant string, c api.Check) *oidc.IDToken {
	t.Helper()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("oidc.NewProvider(%s) = %v", issuer, err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: stsAudience}).Verify(ctx, rawGrant)
	if err != nil {
		t.Fatalf("Verify(grant) = %v", err)
	}
	if idt.Issuer != issuer || !slices.Contains(idt.Audience, stsAudience) || idt.Subject != c.ID {
		t.Errorf("IDToken iss %s aud %v sub %s, want %s %s %s", idt.Issuer, idt.Audience, idt.Subject, issuer, stsAudience, c.ID)
	}
	var gc grantClaims
	if err := idt.Claims(&gc); err != nil {
		t.Fatalf("IDToken.Claims() = %v", err)
	}
	want := grantClaims{Workspace: "billing-dev", Decision: "allow", PlanSHA256: c.PlanSHA256, PlanFileSHA256: c.PlanFileSHA256}
	// aal is 0 (absent): the default policy allows this plan with no
	// approval, so no one stepped up.
	if gc != want || len(gc.PlanSHA256) != 64 || len(gc.PlanFileSHA256) != 64 {
		t.Errorf("grant claims = %+v, want %+v", gc, want)
	}
	return idt
}

func discoveryAlgs(t *testing.T, issuer string) []string {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Algs
}

func TestGrantVerifiedByGoOIDC(t *testing.T) {
	for _, alg := range []string{keys.AlgRS256, keys.AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			e := newOIDCEnv(t, alg, stsAudience)
			issuer := e.srv.URL
			if got := discoveryAlgs(t, issuer); !slices.Equal(got, []string{alg}) {
				t.Errorf("id_token_signing_alg_values_supported = %v, want [%s]", got, alg)
			}
			raw, c := e.grant(t)
			verifyLikeACloud(t, issuer, raw, c)

			ctx := context.Background()
			provider, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				t.Fatal(err)
			}
			// Another audience (another role's provider) refuses it.
			if _, err := provider.Verifier(&oidc.Config{ClientID: "api://AzureADTokenExchange"}).Verify(ctx, raw); err == nil {
				t.Error("Verify() with another client id = nil error")
			}
			// A grant altered in transit is refused.
			parts := strings.Split(raw, ".")
			forged := parts[0] + "." + strings.TrimRight(parts[1], "A") + "A." + parts[2]
			if forged != raw {
				if _, err := provider.Verifier(&oidc.Config{ClientID: stsAudience}).Verify(ctx, forged); err == nil {
					t.Error("Verify(altered grant) = nil error")
				}
			}
			// A relying party that only accepts the other algorithm refuses it.
			other := keys.AlgEdDSA
			if alg == keys.AlgEdDSA {
				other = keys.AlgRS256
			}
			if _, err := provider.Verifier(&oidc.Config{ClientID: stsAudience, SupportedSigningAlgs: []string{other}}).Verify(ctx, raw); err == nil {
				t.Errorf("Verify() accepting only %s = nil error", other)
			}
		})
	}
}

// TestRotationEdDSAToRS256 switches an issuer from EdDSA to RS256: the JWKS
// and discovery list both while the old key's grants live, and a relying
// party verifies grants of both keys.
func TestRotationEdDSAToRS256(t *testing.T) {
	e := newOIDCEnv(t, keys.AlgEdDSA, stsAudience)
	issuer := e.srv.URL
	oldGrant, oldCheck := e.grant(t)

	ctx := context.Background()
	rotated, err := keys.NewRing(e.master, time.Now, keys.WithAlgorithm(keys.AlgRS256)).Rotate(ctx, e.st, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Algorithm != keys.AlgRS256 {
		t.Fatalf("rotated key algorithm = %s", rotated.Algorithm)
	}
	if got := discoveryAlgs(t, issuer); !slices.Equal(got, []string{"RS256", "EdDSA"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v, want [RS256 EdDSA]", got)
	}
	newGrant, newCheck := e.grant(t)
	if hdr := strings.Split(newGrant, ".")[0]; hdr == strings.Split(oldGrant, ".")[0] {
		t.Fatal("the grant after rotation has the same header")
	}
	verifyLikeACloud(t, issuer, oldGrant, oldCheck)
	verifyLikeACloud(t, issuer, newGrant, newCheck)
}
