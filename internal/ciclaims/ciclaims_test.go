package ciclaims

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	yes, no := true, false
	github := map[string]string{
		"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/infra:ref:refs/heads/main",
		"repository": "acme/infra", "ref": "refs/heads/main", "ref_type": "branch", "ref_protected": "true",
		"event_name": "push", "environment": "production", "workflow": "deploy",
		"job_workflow_ref": "acme/infra/.github/workflows/deploy.yml@refs/heads/main",
		"actor":            "alice", "run_id": "42", "run_attempt": "1", "sha": "abc", "runner_environment": "github-hosted",
	}
	gitlab := map[string]string{
		"iss": "https://gitlab.com", "sub": "project_path:acme/infra:ref_type:branch:ref:main",
		"project_path": "acme/infra", "namespace_path": "acme", "ref": "main", "ref_type": "branch",
		"ref_protected": "false", "pipeline_source": "merge_request_event", "pipeline_id": "7",
		"user_login": "bob", "sha": "def", "ci_config_ref_uri": "gitlab.com/acme/infra//.gitlab-ci.yml@refs/heads/main",
		"environment": "production",
	}
	for _, tt := range []struct {
		name   string
		system string
		claims map[string]string
		want   Pipeline
	}{
		{"ok/github", GitHubActions, github, Pipeline{
			System: GitHubActions, Issuer: github["iss"], Subject: github["sub"], Repository: "acme/infra",
			Ref: "refs/heads/main", RefType: "branch", RefProtected: &yes, EventName: "push", Environment: "production",
			Workflow: "deploy", JobWorkflowRef: github["job_workflow_ref"], Actor: "alice", RunID: "42", RunAttempt: "1",
			SHA: "abc", RunnerEnvironment: "github-hosted", Claims: github,
		}},
		{"ok/gitlab", GitLabCI, gitlab, Pipeline{
			System: GitLabCI, Issuer: gitlab["iss"], Subject: gitlab["sub"], Repository: "acme/infra",
			Ref: "refs/heads/main", RefType: "branch", RefProtected: &no, EventName: "merge_request_event", PullRequest: true,
			Environment: "production", Workflow: gitlab["ci_config_ref_uri"], JobWorkflowRef: gitlab["ci_config_ref_uri"],
			Actor: "bob", RunID: "7", SHA: "def", ProjectPath: "acme/infra", NamespacePath: "acme",
			PipelineSource: "merge_request_event", Claims: gitlab,
		}},
		{"ok/gitlab-guessed-tag", "", map[string]string{"project_path": "a/b", "ref": "v1", "ref_type": "tag"}, Pipeline{
			System: GitLabCI, Repository: "a/b", ProjectPath: "a/b", Ref: "refs/tags/v1", RefType: "tag",
			Claims: map[string]string{"project_path": "a/b", "ref": "v1", "ref_type": "tag"},
		}},
		{"ok/github-pull-request-ref", GitHubActions, map[string]string{"ref": "refs/pull/3/merge", "event_name": "pull_request_target"}, Pipeline{
			System: GitHubActions, Ref: "refs/pull/3/merge", EventName: "pull_request_target", PullRequest: true,
			Claims: map[string]string{"ref": "refs/pull/3/merge", "event_name": "pull_request_target"},
		}},
		{"ok/protection-not-said", "", map[string]string{"ref_protected": "maybe"}, Pipeline{
			Claims: map[string]string{"ref_protected": "maybe"},
		}},
		{"ok/nil-claims", "custom", nil, Pipeline{System: "custom", Claims: map[string]string{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Normalize(tt.system, tt.claims)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Normalize mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunKey(t *testing.T) {
	github := map[string]string{
		"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/infra:ref:refs/heads/main",
		"repository": "acme/infra", "run_id": "42", "run_attempt": "1", "sha": "abc", "job_workflow_ref": "acme/infra/.github/workflows/deploy.yml@refs/heads/main",
	}
	with := func(k, v string) map[string]string {
		c := map[string]string{}
		for kk, vv := range github {
			c[kk] = vv
		}
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	base := Normalize(GitHubActions, github).RunKey()
	if base == "" {
		t.Fatal("no run key for a complete GitHub token")
	}
	for _, tt := range []struct {
		name   string
		system string
		claims map[string]string
		same   bool
	}{
		{"other-subject", GitHubActions, with("sub", "repo:acme/infra:environment:production"), true},
		{"other-environment", GitHubActions, with("environment", "production"), true},
		{"other-issuer", GitHubActions, with("iss", "https://ghes.example.com/_services/token"), false},
		{"other-repository", GitHubActions, with("repository", "acme/other"), false},
		{"other-run", GitHubActions, with("run_id", "43"), false},
		{"other-attempt", GitHubActions, with("run_attempt", "2"), false},
		{"other-sha", GitHubActions, with("sha", "abd"), false},
		{"other-system", "example.com", github, false},
		// A job of the run in another (reusable) workflow, or on another
		// kind of runner, is what a policy may tell apart
		// (input.pipeline.job_workflow_ref, runner_environment): it does
		// not receive the grant the policy gave the other job.
		{"other-workflow", GitHubActions, with("job_workflow_ref", "acme/platform/.github/workflows/apply.yml@refs/heads/main"), false},
		{"other-runner", GitHubActions, with("runner_environment", "self-hosted"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.system, tt.claims).RunKey(); (got == base) != tt.same {
				t.Errorf("same run key = %t, want %t", got == base, tt.same)
			}
		})
	}
	for _, k := range []string{"iss", "repository", "run_id", "sha"} {
		if got := Normalize(GitHubActions, with(k, "")).RunKey(); got != "" {
			t.Errorf("without %s: run key %q, want none", k, got)
		}
	}
	gitlab := map[string]string{"iss": "https://gitlab.com", "sub": "project_path:acme/infra:ref_type:branch:ref:main",
		"project_path": "acme/infra", "pipeline_id": "7", "job_id": "1", "sha": "abc"}
	other := map[string]string{"iss": "https://gitlab.com", "sub": "project_path:acme/infra:ref_type:branch:ref:main",
		"project_path": "acme/infra", "pipeline_id": "7", "job_id": "2", "sha": "abc"}
	if a, b := Normalize(GitLabCI, gitlab).RunKey(), Normalize(GitLabCI, other).RunKey(); a == "" || a != b {
		t.Errorf("two jobs of one GitLab pipeline: run keys %q and %q, want one", a, b)
	}
}
