package cli

import (
	"strings"
)

// maxPipelineValue is the longest pipeline field the server accepts.
const maxPipelineValue = 1024

// pipelineIdentity is what the CI system says of the running pipeline, sent
// with a check so that people reviewing it can see which run asks, and
// carried in the grant. The keys are the same whatever the system: system,
// repository, ref, sha, run_id, run_attempt, workflow, actor, run_url.
// Outside a known CI system it is empty.
//
// These values are what the runner's environment claims, not proof of it;
// they inform reviewers, the API token authenticates the pipeline.
func pipelineIdentity(getenv func(string) string) map[string]string {
	id := map[string]string{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" && len(v) <= maxPipelineValue {
			id[k] = v
		}
	}
	switch {
	case getenv("GITHUB_ACTIONS") == "true" || getenv("GITHUB_RUN_ID") != "":
		set("system", "github-actions")
		repo, runID := getenv("GITHUB_REPOSITORY"), getenv("GITHUB_RUN_ID")
		set("repository", repo)
		set("ref", getenv("GITHUB_REF"))
		set("sha", getenv("GITHUB_SHA"))
		set("run_id", runID)
		set("run_attempt", getenv("GITHUB_RUN_ATTEMPT"))
		set("workflow", getenv("GITHUB_WORKFLOW"))
		set("actor", getenv("GITHUB_ACTOR"))
		if server := strings.TrimRight(getenv("GITHUB_SERVER_URL"), "/"); server != "" && repo != "" && runID != "" {
			set("run_url", server+"/"+repo+"/actions/runs/"+runID)
		}
	case getenv("GITLAB_CI") == "true" || getenv("CI_PIPELINE_ID") != "":
		set("system", "gitlab-ci")
		set("repository", getenv("CI_PROJECT_PATH"))
		set("ref", getenv("CI_COMMIT_REF_NAME"))
		set("sha", getenv("CI_COMMIT_SHA"))
		set("run_id", getenv("CI_PIPELINE_ID"))
		set("actor", getenv("GITLAB_USER_LOGIN"))
		set("run_url", getenv("CI_JOB_URL"))
	}
	return id
}
