package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/logtest"
	"github.com/stepgate/stepgate/internal/store"
)

// runEnv is the real server stack trusting a test GitHub issuer whose
// rules give the billing workspaces to a job of acme/infra on main without
// an environment (the plan job), one in production (the apply job), and
// any job of acme/other; a job in staging gets the staging ones only.
type runEnv struct {
	*ciEnv
	apiToken string
}

func newRunEnv(t *testing.T) *runEnv {
	t.Helper()
	logs := &logtest.Buffer{}
	s := newStack(t, stackOpts{log: slog.New(slog.NewTextHandler(logs, nil))})
	is := ciauthtest.New(t)
	v, err := ciauth.New([]ciauth.Issuer{{URL: is.URL, Audience: "stepgate", System: "github-actions", Rules: []ciauth.Rule{
		{Claims: map[string]string{"repository": "acme/infra", "environment": "staging"}, Workspaces: []string{"staging-*"}, Name: "github:{actor}"},
		{Claims: map[string]string{"repository": "acme/infra", "environment": "production"}, Workspaces: []string{"billing-*"}, Name: "github:{actor}"},
		{Claims: map[string]string{"sub": "repo:acme/infra:ref:refs/heads/main"}, Workspaces: []string{"billing-*"}, Name: "github:{actor}"},
		{Claims: map[string]string{"repository": "acme/other"}, Workspaces: []string{"billing-*"}, Name: "github:{actor}"},
	}}}, ciauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.api.SetCIVerifier(v)
	e := &ciEnv{env: &env{srv: s.srv, token: s.token(t)}, st: s.st, svc: s.svc, issuer: is, logs: logs}
	return &runEnv{ciEnv: e, apiToken: newToken(t, s.st, gate.TokenSpec{Name: "billing-ci", Workspaces: []string{"billing-*"}})}
}

// job is the OIDC token of one job of run 9876543210 of acme/infra: the
// plan job has no environment (its sub names the ref), the apply job
// runs in production (its sub names the environment). edit changes the
// claims further.
func (e *runEnv) job(t *testing.T, environment string, edit ...func(map[string]any)) string {
	t.Helper()
	c := e.issuer.GitHubClaims("stepgate", time.Now())
	if environment == "" {
		delete(c, "environment")
		c["sub"] = "repo:acme/infra:ref:refs/heads/main"
	} else {
		c["environment"] = environment
		c["sub"] = "repo:acme/infra:environment:" + environment
	}
	return e.issuer.Token(t, c, edit...)
}

func (e *runEnv) post(t *testing.T, token, query, planFile string) (int, *api.Check) {
	t.Helper()
	resp, b := e.do(t, http.MethodPost, api.PathChecks+"?workspace=billing-prod"+query, token, planBody(t, planFile))
	var c api.Check
	_ = json.Unmarshal(b, &c)
	return resp.StatusCode, &c
}

func (e *runEnv) get(t *testing.T, token, id string) (int, *api.Check) {
	t.Helper()
	resp, b := e.do(t, http.MethodGet, api.PathChecks+"/"+id, token, nil)
	var c api.Check
	_ = json.Unmarshal(b, &c)
	return resp.StatusCode, &c
}

// approved is a check the plan job asked for, approved by alice.
func (e *runEnv) approved(t *testing.T) *api.Check {
	t.Helper()
	code, c := e.post(t, e.job(t, ""), "", "prod-iam.plan.json")
	if code != http.StatusCreated || c.State != string(store.StatePending) {
		t.Fatalf("plan job: %d %s, want a new pending check", code, c.State)
	}
	if _, err := e.st.GetUserByName(context.Background(), "alice"); err != nil {
		if err := e.st.CreateUser(context.Background(), &store.User{ID: "usr_alice", Name: "alice", Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := e.svc.Record(context.Background(), c.ID, &gate.Proof{
		Subject: "alice", Groups: []string{gate.DefaultApproverGroup}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now(),
	})
	if err != nil || v.State != string(store.StateApproved) {
		t.Fatalf("approving %s: %v %+v", c.ID, err, v)
	}
	return c
}

func (e *runEnv) consume(t *testing.T, token, grant string) int {
	t.Helper()
	b, _ := json.Marshal(api.ConsumeRequest{Grant: grant})
	resp, _ := e.do(t, http.MethodPost, api.PathConsume, token, bytes.NewReader(b))
	return resp.StatusCode
}

// TestRunResume: the apply job of a run (another OIDC subject: its
// environment) finds the check its plan job asked for, so people are asked
// once per run, and receives its grant, once.
func TestRunResume(t *testing.T) {
	e := newRunEnv(t)
	plan := e.approved(t)
	apply := e.job(t, "production")

	code, c := e.post(t, apply, "", "prod-iam.plan.json")
	if code != http.StatusOK || c.ID != plan.ID || !c.Resumed {
		t.Fatalf("apply job: %d %s resumed=%v, want the plan job's check %s resumed", code, c.ID, c.Resumed, plan.ID)
	}
	if c.State != string(store.StateApproved) || c.Grant == "" {
		t.Fatalf("apply job: %s grant=%t, want approved with its grant", c.State, c.Grant != "")
	}
	if c.Pipeline["subject"] != "repo:acme/infra:ref:refs/heads/main" || c.Pipeline["run_id"] != "9876543210" {
		t.Errorf("pipeline = %v, want the plan job's verified claims (the grant is bound to them)", c.Pipeline)
	}
	// Waiting on it (GET) gives the same grant: one grant per check.
	if code, g := e.get(t, e.job(t, "production", func(m map[string]any) { m["jti"] = "another" }), c.ID); code != 200 || g.Grant != c.Grant {
		t.Errorf("GET by the apply job: %d, grant the same: %t", code, g.Grant == c.Grant)
	}
	if code := e.consume(t, apply, c.Grant); code != http.StatusOK {
		t.Fatalf("consume = %d", code)
	}
	// Used: not handed out again, to anyone of the run.
	if code := e.consume(t, apply, c.Grant); code != http.StatusConflict {
		t.Errorf("second consume = %d, want 409", code)
	}
	code, again := e.post(t, e.job(t, "production"), "", "prod-iam.plan.json")
	if code != http.StatusCreated || again.ID == plan.ID || again.Grant != "" || again.State != string(store.StatePending) {
		t.Errorf("after use: %d %s %s grant=%t, want a new pending check", code, again.ID, again.State, again.Grant != "")
	}
	if code, g := e.get(t, e.job(t, ""), plan.ID); code != 200 || g.Grant != "" || g.State != string(store.StateConsumed) {
		t.Errorf("GET the used check: %d %s grant=%t, want it consumed without its grant", code, g.State, g.Grant != "")
	}
}

// TestRunResumeAttacks: nothing but the same verified run, asking for the
// same plan of a workspace it may use, resumes another job's check or
// receives its grant.
func TestRunResumeAttacks(t *testing.T) {
	for _, tt := range []struct {
		name  string
		token func(e *runEnv, t *testing.T) string
		query string
		plan  string
		// sameRun: the attacker is a job of the run itself, asking for
		// another plan or target: it does not resume the check, but may
		// read the check its run asked for, grant included (bound to that
		// plan and target, as the plan job's own).
		sameRun bool
	}{
		{"other-run", func(e *runEnv, t *testing.T) string {
			return e.job(t, "production", func(m map[string]any) { m["run_id"] = "1111111111" })
		}, "", "prod-iam.plan.json", false},
		{"other-attempt", func(e *runEnv, t *testing.T) string {
			return e.job(t, "production", func(m map[string]any) { m["run_attempt"] = "3" })
		}, "", "prod-iam.plan.json", false},
		{"other-repository", func(e *runEnv, t *testing.T) string {
			return e.job(t, "production", func(m map[string]any) {
				m["repository"], m["sub"] = "acme/other", "repo:acme/other:environment:production"
			})
		}, "", "prod-iam.plan.json", false},
		{"other-sha", func(e *runEnv, t *testing.T) string {
			return e.job(t, "production", func(m map[string]any) { m["sha"] = "0000000000000000000000000000000000000000" })
		}, "", "prod-iam.plan.json", false},
		{"other-plan", func(e *runEnv, t *testing.T) string { return e.job(t, "production") }, "", "billing-rg-prod.plan.json", true},
		{"other-environment-parameter", func(e *runEnv, t *testing.T) string { return e.job(t, "production") }, "&environment=staging", "prod-iam.plan.json", true},
		{"api-token-saying-the-run", func(e *runEnv, t *testing.T) string { return e.apiToken },
			"&pipeline.system=github-actions&pipeline.repository=acme/infra&pipeline.run_id=9876543210&pipeline.run_attempt=2" +
				"&pipeline.sha=example-sha-0123456789abcdef0123456789abcdef&pipeline.subject=repo:acme/infra:ref:refs/heads/main",
			"prod-iam.plan.json", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunEnv(t)
			plan := e.approved(t)
			tok := tt.token(e, t)
			code, c := e.post(t, tok, tt.query, tt.plan)
			if code != http.StatusCreated || c.ID == plan.ID || c.Resumed {
				t.Fatalf("%d %s resumed=%v, want a new check, not %s", code, c.ID, c.Resumed, plan.ID)
			}
			if c.Grant != "" && c.PlanSHA256 == plan.PlanSHA256 && c.Environment == plan.Environment {
				t.Errorf("new check %s carries a grant for the plan job's plan and target", c.ID)
			}
			if tt.sameRun {
				return
			}
			if code, g := e.get(t, tok, plan.ID); code != 200 || g.Grant != "" {
				t.Errorf("GET the plan job's check: %d grant=%t, want it without its grant", code, g.Grant != "")
			}
		})
	}

	t.Run("workspace-not-allowed", func(t *testing.T) {
		// The apply job in staging is the same run, but its rule gives it
		// the staging workspaces only.
		e := newRunEnv(t)
		plan := e.approved(t)
		tok := e.job(t, "staging")
		if code, c := e.post(t, tok, "", "prod-iam.plan.json"); code != http.StatusForbidden || c.Grant != "" {
			t.Fatalf("POST = %d, want 403", code)
		}
		if code, g := e.get(t, tok, plan.ID); code != http.StatusNotFound || g.Grant != "" {
			t.Errorf("GET = %d, want 404", code)
		}
	})
}
