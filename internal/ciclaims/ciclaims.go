package ciclaims

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
)

// Systems stepgate knows the claims of.
const (
	GitHubActions = "github-actions"
	GitLabCI      = "gitlab-ci"
)

// Pipeline is a CI run's identity in one shape across CI systems. A field
// the claims do not give is empty (RefProtected: nil, "not said").
type Pipeline struct {
	// System is the CI system (github-actions, gitlab-ci, or the issuer's
	// host name).
	System  string `json:"system"`
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// Repository is owner/name on GitHub, the project path on GitLab.
	Repository string `json:"repository"`
	// Ref is the full Git ref the run is for: refs/heads/main,
	// refs/tags/v1.2.0, refs/pull/7/merge. GitLab's short ref is made
	// full from its ref_type.
	Ref string `json:"ref"`
	// RefType is branch or tag (empty when unknown).
	RefType string `json:"ref_type"`
	// RefProtected is what the CI system says of the ref's protection;
	// nil when the claims do not say.
	RefProtected *bool `json:"ref_protected"`
	// EventName is what started the run: GitHub's event_name (push,
	// pull_request, workflow_dispatch...), GitLab's pipeline_source (push,
	// merge_request_event, web, schedule...).
	EventName string `json:"event_name"`
	// PullRequest is true for a run for a pull or merge request (whose code
	// may come from a fork): GitHub pull_request* events or a refs/pull/
	// ref, GitLab merge_request_event and external_pull_request_event.
	PullRequest bool   `json:"pull_request"`
	Environment string `json:"environment"`
	// Workflow is the workflow's name on GitHub; on GitLab, the CI
	// configuration (ci_config_ref_uri).
	Workflow string `json:"workflow"`
	// JobWorkflowRef is the workflow file and ref the job ran (GitHub's
	// job_workflow_ref; GitLab's ci_config_ref_uri).
	JobWorkflowRef string `json:"job_workflow_ref"`
	// Actor is who triggered the run (GitHub actor, GitLab user_login).
	Actor string `json:"actor"`
	// RunID is the run (GitHub run_id, GitLab pipeline_id).
	RunID      string `json:"run_id"`
	RunAttempt string `json:"run_attempt"`
	SHA        string `json:"sha"`
	// GitLab's own names, kept as well.
	ProjectPath    string `json:"project_path"`
	NamespacePath  string `json:"namespace_path"`
	PipelineSource string `json:"pipeline_source"`
	// RunnerEnvironment is github-hosted, self-hosted (GitHub),
	// gitlab-hosted or self-hosted (GitLab).
	RunnerEnvironment string `json:"runner_environment"`
	// Claims are the claims as the token carried them (scalars, as
	// strings).
	Claims map[string]string `json:"claims"`
}

// Normalize reads the claims of a CI system into a Pipeline. system is
// the CI system the issuer was configured as (empty: guessed from the
// claims: project_path is GitLab's, job_workflow_ref GitHub's). Only
// verified claims must be passed where the result decides anything.
func Normalize(system string, claims map[string]string) Pipeline {
	c := func(k string) string { return claims[k] }
	if system == "" {
		system = guess(claims)
	}
	p := Pipeline{
		System:            system,
		Issuer:            c("iss"),
		Subject:           c("sub"),
		Repository:        c("repository"),
		Ref:               c("ref"),
		RefType:           c("ref_type"),
		RefProtected:      boolClaim(c("ref_protected")),
		EventName:         c("event_name"),
		Environment:       c("environment"),
		Workflow:          c("workflow"),
		JobWorkflowRef:    c("job_workflow_ref"),
		Actor:             c("actor"),
		RunID:             c("run_id"),
		RunAttempt:        c("run_attempt"),
		SHA:               c("sha"),
		ProjectPath:       c("project_path"),
		NamespacePath:     c("namespace_path"),
		PipelineSource:    c("pipeline_source"),
		RunnerEnvironment: c("runner_environment"),
		Claims:            maps.Clone(claims),
	}
	if p.Claims == nil {
		p.Claims = map[string]string{}
	}
	if system == GitLabCI {
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&p.Repository, p.ProjectPath)
		set(&p.RunID, c("pipeline_id"))
		set(&p.Actor, c("user_login"))
		set(&p.EventName, p.PipelineSource)
		set(&p.Workflow, c("ci_config_ref_uri"))
		set(&p.JobWorkflowRef, c("ci_config_ref_uri"))
		p.Ref = gitlabRef(c("ref_path"), p.Ref, p.RefType)
	}
	p.PullRequest = pullRequest(p)
	return p
}

// gitlabRef makes GitLab's short ref full: ref_path when the token has it
// (refs/heads/main), else from ref_type.
func gitlabRef(refPath, ref, refType string) string {
	switch {
	case refPath != "":
		return refPath
	case ref == "" || strings.HasPrefix(ref, "refs/"):
		return ref
	case refType == "branch":
		return "refs/heads/" + ref
	case refType == "tag":
		return "refs/tags/" + ref
	}
	return ref
}

func pullRequest(p Pipeline) bool {
	if strings.HasPrefix(p.Ref, "refs/pull/") || strings.HasPrefix(p.Ref, "refs/merge-requests/") {
		return true
	}
	switch p.EventName {
	case "pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment",
		"merge_request_event", "external_pull_request_event":
		return true
	}
	return false
}

func guess(claims map[string]string) string {
	switch {
	case claims["project_path"] != "" || claims["pipeline_source"] != "":
		return GitLabCI
	case claims["job_workflow_ref"] != "" || claims["event_name"] != "":
		return GitHubActions
	}
	return ""
}

// boolClaim reads "true" or "false"; anything else is nil (not said).
func boolClaim(s string) *bool {
	switch strings.ToLower(s) {
	case "true":
		t := true
		return &t
	case "false":
		f := false
		return &f
	}
	return nil
}

// RunKey identifies the run the claims belong to, whichever job of it
// holds the token: system, issuer, repository, run (GitHub run_id, GitLab
// pipeline_id), attempt (GitHub run_attempt; GitLab has none) and commit,
// by a digest, with the job's workflow (job_workflow_ref; GitLab's
// ci_config_ref_uri) and runner environment: a policy may tell jobs apart
// by them (a trusted reusable workflow, github-hosted runners), so a job
// differing in them does not receive the grant the policy gave another.
// It is empty when the claims do not name an issuer, a repository, a run
// and a commit: such a token has no run to share. The subject, the
// environment and the job are left out on purpose: the plan and apply
// jobs of one run differ in them. Only verified claims may be passed.
func (p Pipeline) RunKey() string {
	if p.Issuer == "" || p.Repository == "" || p.RunID == "" || p.SHA == "" {
		return ""
	}
	h := sha256.New()
	for _, s := range []string{p.System, p.Issuer, p.Repository, p.RunID, p.RunAttempt, p.SHA, p.JobWorkflowRef, p.RunnerEnvironment} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}
