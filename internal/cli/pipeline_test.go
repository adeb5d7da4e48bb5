package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPipelineIdentity(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{"ok/github-actions", map[string]string{
			"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/infra", "GITHUB_REF": "refs/pull/7/merge",
			"GITHUB_SHA": "0123abcd", "GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKFLOW": "terraform",
			"GITHUB_ACTOR": "octocat", "GITHUB_SERVER_URL": "https://github.example.com/",
		}, map[string]string{
			"system": "github-actions", "repository": "acme/infra", "ref": "refs/pull/7/merge", "sha": "0123abcd",
			"run_id": "99", "run_attempt": "1", "workflow": "terraform", "actor": "octocat",
			"run_url": "https://github.example.com/acme/infra/actions/runs/99",
		}},
		{"ok/github-no-server-url", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/infra", "GITHUB_RUN_ID": "99"},
			map[string]string{"system": "github-actions", "repository": "acme/infra", "run_id": "99"}},
		{"ok/gitlab-ci", map[string]string{
			"GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/platform/infra", "CI_COMMIT_REF_NAME": "main",
			"CI_COMMIT_SHA": "feedbeef", "CI_PIPELINE_ID": "1234", "CI_JOB_URL": "https://gitlab.example.com/acme/platform/infra/-/jobs/5678",
			"GITLAB_USER_LOGIN": "alice",
		}, map[string]string{
			"system": "gitlab-ci", "repository": "acme/platform/infra", "ref": "main", "sha": "feedbeef",
			"run_id": "1234", "actor": "alice", "run_url": "https://gitlab.example.com/acme/platform/infra/-/jobs/5678",
		}},
		{"ok/atlantis", map[string]string{
			"ATLANTIS_TERRAFORM_VERSION": "1.9.8", "PULL_NUM": "42", "BASE_REPO_OWNER": "acme", "BASE_REPO_NAME": "infra",
			"HEAD_BRANCH_NAME": "more-iam", "HEAD_COMMIT": "c0ffee", "PROJECT_NAME": "billing-prod", "USER_NAME": "carol",
			"PULL_AUTHOR": "dave", "PULL_URL": "https://github.com/acme/infra/pull/42", "WORKSPACE": "default",
		}, map[string]string{
			"system": "atlantis", "repository": "acme/infra", "ref": "more-iam", "sha": "c0ffee", "pull_request": "42",
			"workflow": "billing-prod", "actor": "carol", "pull_author": "dave", "run_url": "https://github.com/acme/infra/pull/42",
		}},
		{"ok/atlantis-needs-a-pull", map[string]string{"ATLANTIS_TERRAFORM_VERSION": "1.9.8", "USER_NAME": "carol"}, map[string]string{}},
		{"ok/elsewhere", map[string]string{"CI": "true", "HOME": "/root"}, map[string]string{}},
		{"ok/too-long-left-out", map[string]string{"GITLAB_CI": "true", "CI_COMMIT_REF_NAME": strings.Repeat("x", 2000), "CI_PIPELINE_ID": "1"},
			map[string]string{"system": "gitlab-ci", "run_id": "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := pipelineIdentity(func(k string) string { return tt.env[k] })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pipelineIdentity() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
