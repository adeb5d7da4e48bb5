package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/loopback"
)

// maxPipelineValue is the longest pipeline field the server accepts.
const maxPipelineValue = 1024

// pipelineIdentity is what the CI system says of the running pipeline, sent
// with a check so that people reviewing it can see which run asks, and
// carried in the grant. The keys are the same whatever the system: system,
// repository, ref, sha, run_id, run_attempt, workflow, actor, run_url (and,
// for Atlantis, pull_request and pull_author).
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
	case getenv("ATLANTIS_TERRAFORM_VERSION") != "" && getenv("PULL_NUM") != "":
		// An Atlantis custom workflow step (docs/integrations/atlantis.md).
		set("system", "atlantis")
		if owner, name := getenv("BASE_REPO_OWNER"), getenv("BASE_REPO_NAME"); owner != "" && name != "" {
			set("repository", owner+"/"+name)
		}
		set("ref", getenv("HEAD_BRANCH_NAME"))
		set("sha", getenv("HEAD_COMMIT"))
		set("pull_request", getenv("PULL_NUM"))
		set("workflow", getenv("PROJECT_NAME"))
		set("actor", getenv("USER_NAME"))
		set("pull_author", getenv("PULL_AUTHOR"))
		set("run_url", getenv("PULL_URL"))
	}
	return id
}

// defaultIDTokenAudience is the audience asked of GitHub Actions, and the
// one a server's ci_issuers usually expect.
const defaultIDTokenAudience = "stepgate"

// GitHub Actions' OIDC token request, given to jobs with
// permissions: id-token: write.
const (
	envGitHubIDTokenURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envGitHubIDTokenToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// idTokenClient asks GitHub for the token; a variable for tests.
var idTokenClient = &http.Client{Timeout: 30 * time.Second}

// ciIDToken is the CI system's OIDC token for the job: $STEPGATE_ID_TOKEN
// (GitLab's id_tokens, or any CI that hands a token over), else one asked
// of GitHub Actions for aud. Empty when there is none. The token is a
// credential: no error message carries it.
func ciIDToken(getenv func(string) string, aud string) (string, error) {
	if t := strings.TrimSpace(getenv(envIDToken)); t != "" {
		return t, nil
	}
	reqURL, reqToken := strings.TrimSpace(getenv(envGitHubIDTokenURL)), strings.TrimSpace(getenv(envGitHubIDTokenToken))
	if reqURL == "" || reqToken == "" {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return gitHubIDToken(ctx, idTokenClient, reqURL, reqToken, aud)
}

// gitHubIDToken follows GitHub's contract: GET the request URL with
// &audience=AUD, Authorization: bearer REQUEST_TOKEN; the answer is
// {"value": "<jwt>"}.
func gitHubIDToken(ctx context.Context, hc *http.Client, reqURL, reqToken, aud string) (string, error) {
	u, err := url.Parse(reqURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("$%s is not a URL", envGitHubIDTokenURL)
	}
	if !loopback.SecureOrLocal(u) {
		// The request token is a credential: never over plain HTTP.
		return "", fmt.Errorf("$%s must be an https URL", envGitHubIDTokenURL)
	}
	q := u.Query()
	q.Set("audience", aud)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("asking GitHub Actions for an OIDC token: %w", err)
	}
	req.Header.Set("Authorization", "bearer "+reqToken)
	req.Header.Set("Accept", "application/json; api-version=2.0")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking GitHub Actions for an OIDC token: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("asking GitHub Actions for an OIDC token: %s (does the job have permissions: id-token: write?)", resp.Status)
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return "", errors.New("asking GitHub Actions for an OIDC token: the answer is not JSON")
	}
	if t := strings.TrimSpace(out.Value); t != "" {
		return t, nil
	}
	return "", errors.New("asking GitHub Actions for an OIDC token: the answer has no value")
}

// redactURLError drops the URL (and its query) from a request error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
