package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Who asked is derived only from what was authenticated. These attack the
// requester through the API, as a pipeline holding an API token would.

// createProdIAM asks for the production IAM example with token tok and the
// extra query; the check needs one approval by someone else.
func createProdIAM(t *testing.T, e *peopleEnv, tok, query string) *api.Check {
	t.Helper()
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-prod"+query, tok, planBody(t, "prod-iam.plan.json"))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating check: status %d: %s", resp.StatusCode, b)
	}
	c := decodeCheck(t, b)
	if c.State != string(store.StatePending) || c.Assessment.Requirements == nil || c.Assessment.Requirements.Approvals < 1 {
		t.Fatalf("check %s is %s, want pending with an approval required", c.ID, c.State)
	}
	return c
}

func newToken(t *testing.T, st store.Store, spec gate.TokenSpec) string {
	t.Helper()
	tok, _, err := gate.CreateToken(context.Background(), st, spec, "test", time.Now())
	if err != nil {
		t.Fatalf("CreateToken(%+v) = %v", spec, err)
	}
	return tok
}

// approveAsAlice approves check c with a fresh strong OpenID Connect
// login of the provider's test-user2, who is alice.
func approveAsAlice(t *testing.T, e *peopleEnv, c *api.Check) answer {
	t.Helper()
	tok := e.idToken(t, oidctest.CLIClientID, strong)
	return e.call(t, "POST", "/v1/people/checks/"+c.ID+"/approve", tok, api.AnswerRequest{PlanSHA256: c.PlanSHA256})
}

func TestRequesterIsNotWhatThePipelineSays(t *testing.T) {
	e := newPeopleEnv(t, true)
	// alice holds a pipeline token of her own (no owner: a pipeline
	// identity named alice-ci) and bob is linked to github:bob.
	e.putUser(t, &store.User{Name: "bob", Groups: []string{"approvers"}, Links: []string{"github:bob"}})
	tok := newToken(t, e.st, gate.TokenSpec{Name: "alice-ci", Workspaces: []string{"billing-*"}})

	c := createProdIAM(t, e, tok, "&pipeline.system=github&pipeline.actor=bob&pipeline.repository=acme/infra")
	if c.Requester != "alice-ci" {
		t.Errorf("requester = %q, want the token's name alice-ci: pipeline.actor is a claim, not an identity", c.Requester)
	}
	if len(c.Pipeline) != 0 {
		t.Errorf("pipeline = %v, want none: an API token has no verified pipeline claims", c.Pipeline)
	}
	if c.PipelineUnverified["actor"] != "bob" || c.PipelineUnverified["repository"] != "acme/infra" {
		t.Errorf("pipeline_unverified = %v, want what the request said", c.PipelineUnverified)
	}
	stored, err := e.st.GetCheck(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Requester != "alice-ci" || stored.Pipeline != nil || stored.PipelineUnverified["actor"] != "bob" {
		t.Errorf("stored check: requester %q, pipeline %v, unverified %v", stored.Requester, stored.Pipeline, stored.PipelineUnverified)
	}
	events, err := e.st.ListAudit(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var created string
	for _, ev := range events {
		if ev.Subject == c.ID && ev.Type == "check.created" {
			created = string(ev.Data)
		}
	}
	if !strings.Contains(created, `"pipeline_unverified":{`) || !strings.Contains(created, `"actor":"bob"`) {
		t.Errorf("check.created audit data = %s, want the claims under pipeline_unverified", created)
	}
}

func TestOwnedTokenRequesterCannotApprove(t *testing.T) {
	e := newPeopleEnv(t, true)
	tok := newToken(t, e.st, gate.TokenSpec{Name: "alice-laptop", Workspaces: []string{"billing-*"}, Owner: "alice"})
	c := createProdIAM(t, e, tok, "")
	if c.Requester != "alice" {
		t.Fatalf("requester = %q, want alice, who owns the token", c.Requester)
	}
	a := approveAsAlice(t, e, c)
	if a.status != http.StatusForbidden {
		t.Errorf("alice approving her own check: status %d (%s), want 403", a.status, a.body)
	}
	if got := e.state(t, c.ID); got != store.StatePending {
		t.Errorf("state = %s, want pending", got)
	}
}

func TestTokenOwnerMustExist(t *testing.T) {
	e := newPeopleEnv(t, false)
	_, _, err := gate.CreateToken(context.Background(), e.st, gate.TokenSpec{Name: "x", Owner: "nobody"}, "test", time.Now())
	if err == nil {
		t.Fatal("CreateToken with an unknown owner = nil, want an error")
	}
}

func TestNamesAreComparedCanonically(t *testing.T) {
	e := newPeopleEnv(t, true)
	// A pipeline token named Alice, not owned, from before names were
	// checked: alice may not approve what it asks, since "Alice" and
	// "alice" name one identity.
	tok, rec, err := gate.CreateToken(context.Background(), e.st, gate.TokenSpec{Name: "legacy", Workspaces: []string{"billing-*"}}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec.Name = "Alice"
	if err := e.st.UpdateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	c := createProdIAM(t, e, tok, "")
	a := approveAsAlice(t, e, c)
	if a.status != http.StatusForbidden {
		t.Errorf("alice approving the check of token Alice: status %d (%s), want 403", a.status, a.body)
	}
	// A token whose name is a person's, without that person as owner:
	// refused, as it would pass for them.
	if _, _, err := gate.CreateToken(context.Background(), e.st, gate.TokenSpec{Name: "ALICE"}, "test", time.Now()); err == nil {
		t.Error("CreateToken(ALICE) with a person alice = nil, want a collision error")
	}
}

// A plan that changes one address twice could show a reviewer the harmless
// change and apply the other: it is bad input.
func TestDuplicateAddressIsRefused(t *testing.T) {
	e := newEnv(t, 1<<20)
	plan := `{"format_version": "1.2", "resource_changes": [
		{"address": "aws_iam_role_policy.p", "type": "aws_iam_role_policy", "change": {"actions": ["update"], "before": {"policy": "a"}, "after": {"policy": "b"}}},
		{"address": "aws_iam_role_policy.p", "type": "aws_iam_role_policy", "change": {"actions": ["delete"], "before": {"policy": "a"}, "after": null}}]}`
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev", e.token, strings.NewReader(plan))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "aws_iam_role_policy.p is changed twice") {
		t.Errorf("status %d: %s; want 400 naming the address", resp.StatusCode, b)
	}
}

// Refusals through the people API are audited: a wrong plan digest, a
// step-up too weak, the requester approving, a person not linked; and a
// grant used without a valid token.
func TestPeopleRefusalsAreAudited(t *testing.T) {
	e := newPeopleEnv(t, true)
	aal3 := policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}
	count := func(typ, subject string) int {
		events, err := e.st.ListAudit(context.Background(), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ev := range events {
			if ev.Type == typ && ev.Subject == subject {
				n++
			}
		}
		return n
	}
	for _, tt := range []struct {
		name      string
		requester string
		login     oidctest.Login
		sha       func(c *store.Check) string
		status    int
	}{
		{"fail/other-plan-digest", "bob", strong, func(*store.Check) string { return strings.Repeat("0", 64) }, http.StatusConflict},
		{"fail/step-up-too-weak", "bob", weak2, nil, http.StatusUnauthorized},
		{"fail/requester", "alice", strong, nil, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := e.putCheck(t, tt.requester, aal3)
			sha := c.PlanSHA256
			if tt.sha != nil {
				sha = tt.sha(c)
			}
			before := count("approval.refused", c.ID)
			res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/approve", e.idToken(t, oidctest.CLIClientID, tt.login), api.AnswerRequest{PlanSHA256: sha})
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
			if got := count("approval.refused", c.ID); got != before+1 {
				t.Errorf("%d approval.refused events about %s, want %d", got, c.ID, before+1)
			}
		})
	}
	t.Run("fail/consume-without-token", func(t *testing.T) {
		before := count("grant.refused", "")
		res := e.call(t, "POST", "/v1/grants/consume", "", map[string]string{"grant": "x.y.z"})
		if res.status != http.StatusUnauthorized {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
		if got := count("grant.refused", ""); got != before+1 {
			t.Errorf("%d grant.refused events, want %d", got, before+1)
		}
	})
}
