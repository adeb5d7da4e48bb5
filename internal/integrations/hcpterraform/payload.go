package hcpterraform

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
)

// Stages of a run at which HCP Terraform calls a run task.
const (
	StagePrePlan  = "pre_plan"
	StagePostPlan = "post_plan"
	StagePreApply = "pre_apply"
	// StageTest is the stage of the verification request HCP Terraform
	// sends when a run task is created or edited.
	StageTest = "test"
)

// verificationToken is the access_token of HCP Terraform's verification
// request: never a valid token.
const verificationToken = "test-token"

// SignatureHeader carries the HMAC-SHA512 of the raw body, in hex.
const SignatureHeader = "X-TFC-Task-Signature"

// Request is the body of a run task request, with the field names of
// HashiCorp's documentation (and go-tfe's RunTaskRequest).
type Request struct {
	PayloadVersion             int    `json:"payload_version"`
	Stage                      string `json:"stage"`
	AccessToken                string `json:"access_token"`
	Capabilities               caps   `json:"capabilities"`
	Capabilitites              caps   `json:"capabilitites"` // sic, as go-tfe spells it
	IsSpeculative              bool   `json:"is_speculative"`
	OrganizationName           string `json:"organization_name"`
	PlanJSONAPIURL             string `json:"plan_json_api_url"`
	RunAppURL                  string `json:"run_app_url"`
	RunCreatedAt               string `json:"run_created_at"`
	RunCreatedBy               string `json:"run_created_by"`
	RunID                      string `json:"run_id"`
	RunMessage                 string `json:"run_message"`
	TaskResultCallbackURL      string `json:"task_result_callback_url"`
	TaskResultEnforcementLevel string `json:"task_result_enforcement_level"`
	TaskResultID               string `json:"task_result_id"`
	VCSBranch                  string `json:"vcs_branch"`
	VCSCommitURL               string `json:"vcs_commit_url"`
	VCSPullRequestURL          string `json:"vcs_pull_request_url"`
	VCSRepoURL                 string `json:"vcs_repo_url"`
	WorkspaceAppURL            string `json:"workspace_app_url"`
	WorkspaceID                string `json:"workspace_id"`
	WorkspaceName              string `json:"workspace_name"`
}

type caps struct {
	Outcomes bool `json:"outcomes"`
}

// verification reports whether r is HCP Terraform's verification request,
// answered 200 and otherwise ignored.
func (r *Request) verification() bool {
	return r.AccessToken == verificationToken || r.Stage == StageTest
}

// outcomes reports whether HCP Terraform accepts detailed outcomes.
func (r *Request) outcomes() bool { return r.Capabilities.Outcomes || r.Capabilitites.Outcomes }

// Pipeline is the identity of the run, as HCP Terraform states it in the
// signed request. It is verified in the way a CI token's claims are: the
// HMAC key proves HCP Terraform (or whoever holds the key) sent it, and
// the configuration a run executes cannot change these fields. Its system
// is hcp-terraform and its actor the run's creator, so that the requester
// is the person linked to hcp:USERNAME.
func (r *Request) Pipeline() map[string]string {
	p := map[string]string{"system": "hcp-terraform"}
	for k, v := range map[string]string{
		"actor":        r.RunCreatedBy,
		"organization": r.OrganizationName,
		"workspace":    r.WorkspaceName,
		"workspace_id": r.WorkspaceID,
		"run_id":       r.RunID,
		"run_url":      r.RunAppURL,
		"stage":        r.Stage,
		"commit_url":   r.VCSCommitURL,
		"pr_url":       r.VCSPullRequestURL,
		"repository":   r.VCSRepoURL,
	} {
		if v = strings.TrimSpace(v); v != "" {
			p[k] = truncate(v, 1024)
		}
	}
	if b := strings.TrimSpace(r.VCSBranch); b != "" {
		p["ref"] = truncate("refs/heads/"+b, 1024)
	}
	if r.IsSpeculative {
		p["speculative"] = "true"
	}
	return p
}

// VerifiedClaims are the run's identity in the shape of a CI token's
// claims (package ciclaims), for the policy's input.pipeline: the branch
// as a full ref, the commit, the author as actor, and a run for a pull
// request said as such (its code may come from a fork).
func (r *Request) VerifiedClaims() map[string]string {
	c := map[string]string{
		"iss":          "https://" + hostOf(r.TaskResultCallbackURL),
		"sub":          "organization:" + r.OrganizationName + ":workspace:" + r.WorkspaceName,
		"repository":   r.VCSRepoURL,
		"actor":        r.RunCreatedBy,
		"run_id":       r.RunID,
		"organization": r.OrganizationName,
		"workspace":    r.WorkspaceName,
		"workspace_id": r.WorkspaceID,
	}
	if b := strings.TrimSpace(r.VCSBranch); b != "" {
		c["ref"], c["ref_type"] = "refs/heads/"+b, "branch"
	}
	if i := strings.LastIndex(r.VCSCommitURL, "/"); i >= 0 && commitSHA.MatchString(r.VCSCommitURL[i+1:]) {
		c["sha"] = r.VCSCommitURL[i+1:]
	}
	if r.VCSPullRequestURL != "" {
		c["event_name"] = "pull_request"
	}
	if r.IsSpeculative {
		c["speculative"] = "true"
	}
	for k, v := range c {
		if v == "" {
			delete(c, k)
		} else {
			c[k] = truncate(v, 1024)
		}
	}
	return c
}

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

func hostOf(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Host
}

// Unverified is what the run says of itself in free text, written by
// whoever queued it (its message): recorded apart, as unverified claims.
func (r *Request) Unverified() map[string]string {
	if m := strings.TrimSpace(r.RunMessage); m != "" {
		return map[string]string{"message": truncate(m, 1000)}
	}
	return nil
}

// validSignature reports, in constant time, whether sig is the hex
// HMAC-SHA512 of body under key.
func validSignature(key, body []byte, sig string) bool {
	given, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil || len(given) != sha512.Size || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha512.New, key)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), given)
}

// Sign returns the X-TFC-Task-Signature of body under key (tests, and
// whoever sends run task requests by hand).
func Sign(key, body []byte) string {
	mac := hmac.New(sha512.New, key)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
