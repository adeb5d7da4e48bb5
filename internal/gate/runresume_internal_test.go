package gate

import (
	"testing"

	"github.com/stepgate/stepgate/internal/store"
)

// TestRunResumeKey: only a verified CI identity whose claims name a run
// gets a run-level resume key, and never for secrets or a break-glass.
func TestRunResumeKey(t *testing.T) {
	claims := map[string]string{
		"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/infra:ref:refs/heads/main",
		"repository": "acme/infra", "run_id": "42", "run_attempt": "1", "sha": "abc",
	}
	ci := &Caller{TokenID: "oidc:plan", Name: "github:alice", Subject: claims["sub"], Claims: claims,
		Pipeline: map[string]string{"system": "github-actions", "repository": "acme/infra", "run_id": "42", "sha": "abc"}}
	req := func() *CreateRequest { return &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod"} }
	plan := "0000000000000000000000000000000000000000000000000000000000000001"
	if runResumeKey(ci, req(), plan) == "" {
		t.Fatal("a verified CI identity of a run has no run key")
	}
	for _, tt := range []struct {
		name   string
		caller *Caller
		req    *CreateRequest
	}{
		// An API token saying its run (pipeline.*): no verified claims.
		{"api-token", &Caller{TokenID: "tok_1", Name: "billing-ci", Pipeline: nil}, req()},
		// HCP Terraform's run task: verified by HMAC, but no OIDC subject;
		// its checks are its run's already (TokenID hcp:<run>).
		{"hcp-terraform", &Caller{TokenID: "hcp:run-1", Name: "hcp-terraform", Claims: map[string]string{"run_id": "run-1"}, Pipeline: map[string]string{"system": "hcp-terraform"}}, req()},
		{"no-run-claims", &Caller{TokenID: "oidc:x", Subject: "x", Claims: map[string]string{"iss": "https://ci.example.com", "sub": "x"}}, req()},
		{"secrets", ci, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod", Secrets: []store.CheckSecret{{Name: "db", Env: "DB"}}}},
		{"break-glass", ci, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod", BreakGlass: &BreakGlassRequest{Reason: "outage"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if k := runResumeKey(tt.caller, tt.req, plan); k != "" {
				t.Errorf("run key %q, want none: the check stays the token's own", k)
			}
		})
	}

	// sameRun: the apply job (another subject) of the run, allowed the
	// workspace, and only then.
	k := runResumeKey(ci, req(), plan)
	c := &store.Check{Kind: "terraform.apply", Workspace: "billing-prod", PlanSHA256: plan, ResumeKey: k}
	apply := *ci
	apply.TokenID, apply.Subject = "oidc:apply", "repo:acme/infra:environment:production"
	if !sameRun(&apply, c) {
		t.Error("the apply job of the run is not the same run")
	}
	narrow := apply
	narrow.Workspaces = []string{"staging-*"}
	if sameRun(&narrow, c) {
		t.Error("a job not allowed the workspace is given the grant")
	}
	own := *c
	own.ResumeKey = resumeKey(ci.TokenID, req(), plan)
	if sameRun(&apply, &own) {
		t.Error("a check with a token's own key is given to another job")
	}
}

// TestSameRunOtherWorkflow: a job of the same run in another workflow (a
// reusable one a policy may trust, or not) or on another kind of runner
// does not receive the grant the policy gave the job that asked.
func TestSameRunOtherWorkflow(t *testing.T) {
	claims := map[string]string{
		"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/infra:environment:production",
		"repository": "acme/infra", "run_id": "42", "run_attempt": "1", "sha": "abc",
		"job_workflow_ref": "acme/platform/.github/workflows/apply.yml@refs/heads/main", "runner_environment": "github-hosted",
	}
	trusted := &Caller{TokenID: "oidc:trusted", Name: "github", Subject: claims["sub"], Claims: claims,
		Pipeline: map[string]string{"system": "github-actions"}}
	req := &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod"}
	plan := "0000000000000000000000000000000000000000000000000000000000000001"
	c := &store.Check{Kind: "terraform.apply", Workspace: "billing-prod", PlanSHA256: plan, ResumeKey: runResumeKey(trusted, req, plan)}
	for k, v := range map[string]string{
		"job_workflow_ref":   "acme/infra/.github/workflows/deploy.yml@refs/heads/main",
		"runner_environment": "self-hosted",
	} {
		other := map[string]string{}
		for kk, vv := range claims {
			other[kk] = vv
		}
		other[k], other["sub"] = v, "repo:acme/infra:ref:refs/heads/main"
		sibling := &Caller{TokenID: "oidc:sibling", Name: "github", Subject: other["sub"], Claims: other,
			Pipeline: map[string]string{"system": "github-actions"}}
		if sameRun(sibling, c) {
			t.Errorf("a job of the run with another %s receives the grant", k)
		}
	}
}
