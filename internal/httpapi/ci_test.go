package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/logtest"
	"github.com/stepgate/stepgate/internal/store"
)

type ciEnv struct {
	*env
	st     store.Store
	svc    *gate.Service
	issuer *ciauthtest.Issuer
	logs   *logtest.Buffer
}

// newCIEnv is the real server stack (SQLite store, keys, default policy)
// trusting a test CI issuer.
func newCIEnv(t *testing.T) *ciEnv {
	t.Helper()
	logs := &logtest.Buffer{}
	s := newStack(t, stackOpts{log: slog.New(slog.NewTextHandler(logs, nil))})
	is := ciauthtest.New(t)
	v, err := ciauth.New([]ciauth.Issuer{{URL: is.URL, Audience: "stepgate", System: "github-actions", Rules: []ciauth.Rule{
		{
			Claims:     map[string]string{"repository": "acme/infra", "ref": "refs/heads/main", "environment": "production", "job_workflow_ref": "acme/infra/.github/workflows/apply.yml@*"},
			Workspaces: []string{"billing-*"},
			Name:       "github:{actor}",
		},
		{
			Claims:     map[string]string{"repository": "acme/payments"},
			Workspaces: []string{"billing-prod"},
			Name:       "github:{actor}",
		},
	}}}, ciauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.api.SetCIVerifier(v)
	return &ciEnv{env: &env{srv: s.srv, token: s.token(t)}, st: s.st, svc: s.svc, issuer: is, logs: logs}
}

func decodeCheck(t *testing.T, b []byte) *api.Check {
	t.Helper()
	var c api.Check
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("not a check: %s", b)
	}
	return &c
}

func TestCIToken(t *testing.T) {
	e := newCIEnv(t)
	now := time.Now()
	base := e.issuer.GitHubClaims("stepgate", now)
	untrusted := ciauthtest.New(t)

	t.Run("ok", func(t *testing.T) {
		// The query's pipeline fields are the runner's say-so: the verified
		// claims replace them.
		resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev&pipeline.actor=mallory&pipeline.repository=evil/infra&pipeline.system=jenkins",
			e.issuer.Token(t, base), planBody(t, "dev-tag-change.plan.json"))
		if resp.StatusCode != 201 {
			t.Fatalf("status = %d: %s", resp.StatusCode, b)
		}
		c := decodeCheck(t, b)
		p := c.Pipeline
		if p["system"] != "github-actions" || p["actor"] != "alice" || p["repository"] != "acme/infra" || p["run_id"] != "9876543210" ||
			p["job_workflow_ref"] != "acme/infra/.github/workflows/apply.yml@refs/heads/main" || p["subject"] != "repo:acme/infra:environment:production" || p["issuer"] != e.issuer.URL {
			t.Errorf("pipeline = %v, want the verified claims", p)
		}
		if c.Requester != "github:alice" {
			t.Errorf("requester = %q, want github:alice (the rule's name, no linked user)", c.Requester)
		}
		if c.State != "allowed" || c.Grant == "" {
			t.Errorf("check = %s %q, want allowed with its grant", c.State, c.Grant)
		}
		// A new token of the same run (another jti, as each CLI command
		// fetches) sees the grant of its check.
		resp, b = e.do(t, "GET", "/v1/checks/"+c.ID, e.issuer.Token(t, base, func(m map[string]any) { m["jti"] = "another" }), nil)
		if resp.StatusCode != 200 || decodeCheck(t, b).Grant == "" {
			t.Errorf("same run, new token: %d %s", resp.StatusCode, b)
		}
		// Another run of the same workflow does not.
		resp, b = e.do(t, "GET", "/v1/checks/"+c.ID, e.issuer.Token(t, base, func(m map[string]any) { m["run_id"] = "1" }), nil)
		if resp.StatusCode != 200 || decodeCheck(t, b).Grant != "" {
			t.Errorf("another run: %d %s, want the check without its grant", resp.StatusCode, b)
		}
	})

	t.Run("api-tokens-still-work", func(t *testing.T) {
		resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev&pipeline.actor=bob", e.token, planBody(t, "dev-tag-change.plan.json"))
		// What an API token's request says of its pipeline is kept, as an
		// unverified claim.
		if c := decodeCheck(t, b); resp.StatusCode != 201 || c.PipelineUnverified["actor"] != "bob" || c.Pipeline != nil {
			t.Fatalf("status = %d: %s", resp.StatusCode, b)
		}
	})

	for _, tt := range []struct {
		name, token, logged string
	}{
		{"unknown-issuer", untrusted.Token(t, untrusted.GitHubClaims("stepgate", now)), "issuer is not trusted"},
		{"forged", untrusted.Token(t, base), "invalid token"},
		{"wrong-audience", e.issuer.Token(t, base, func(m map[string]any) { m["aud"] = "https://github.com/acme" }), "wrong audience"},
		{"expired", e.issuer.Token(t, base, func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Hour).Unix(), now.Add(-30*time.Minute).Unix()
		}), "expired"},
		{"no-rule", e.issuer.Token(t, base, func(m map[string]any) { m["ref"] = "refs/heads/feature" }), "no rule matches"},
	} {
		t.Run("fail/"+tt.name, func(t *testing.T) {
			resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev", tt.token, planBody(t, "dev-tag-change.plan.json"))
			if resp.StatusCode != 401 || errCode(t, b) != api.CodeUnauthorized {
				t.Fatalf("status = %d: %s, want 401", resp.StatusCode, b)
			}
			if strings.Contains(string(b), tt.logged) {
				t.Errorf("the client is told why (%s): %s", tt.logged, b)
			}
			if !strings.Contains(e.logs.String(), tt.logged) {
				t.Errorf("the log does not say %q:\n%s", tt.logged, e.logs.String())
			}
		})
	}

	t.Run("fail/other-workspace", func(t *testing.T) {
		tok := e.issuer.Token(t, base, func(m map[string]any) { m["repository"] = "acme/payments" })
		resp, b := e.do(t, "POST", "/v1/checks?workspace=web-prod", tok, planBody(t, "prod-iam.plan.json"))
		if resp.StatusCode != 403 || errCode(t, b) != api.CodeForbidden {
			t.Fatalf("status = %d: %s, want 403", resp.StatusCode, b)
		}
		resp, b = e.do(t, "POST", "/v1/checks?workspace=billing-prod", tok, planBody(t, "prod-iam.plan.json"))
		if resp.StatusCode != 201 {
			t.Fatalf("its own workspace: status = %d: %s", resp.StatusCode, b)
		}
	})
}

func TestCITokenLinkedActorIsRequester(t *testing.T) {
	e := newCIEnv(t)
	ctx := context.Background()
	if err := e.st.CreateUser(ctx, &store.User{ID: "usr_alice", Name: "alice", Groups: []string{"approvers"}, Links: []string{"github:alice"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tok := e.issuer.Token(t, e.issuer.GitHubClaims("stepgate", time.Now()))
	// The query claims bob ran it; the token says alice did.
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-prod&pipeline.system=github-actions&pipeline.actor=bob", tok, planBody(t, "prod-iam.plan.json"))
	if resp.StatusCode != 201 {
		t.Fatalf("status = %d: %s", resp.StatusCode, b)
	}
	c := decodeCheck(t, b)
	if c.Requester != "alice" || c.Pipeline["actor"] != "alice" {
		t.Fatalf("requester = %q, pipeline = %v; want alice, linked to github:alice", c.Requester, c.Pipeline)
	}
	if c.State != "pending" {
		t.Fatalf("state = %s, want pending", c.State)
	}
	_, err := e.svc.Record(ctx, c.ID, &gate.Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: time.Now()})
	if !errors.Is(err, gate.ErrSelfApproval) {
		t.Errorf("alice approving her own pipeline's change: %v, want ErrSelfApproval", err)
	}
}
