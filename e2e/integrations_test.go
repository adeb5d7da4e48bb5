package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/stepgate/stepgate/internal/plan/planfile/planfiletest"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
	"github.com/stepgate/stepgate/internal/gate"
)

// This file runs the integrations shipped for other CI systems the way
// those systems would: the GitLab CI/CD component (templates/stepgate) and
// the Atlantis server-side workflow (deploy/atlantis/repos.yaml) are read
// from the repository, interpolated, and their script lines run by a
// shell with the environment each system documents, the real stepgate
// binary on PATH, against a real server.

// gitlabInput is one spec:inputs entry of a component.
type gitlabInput struct {
	Description string `yaml:"description"`
	Type        string `yaml:"type"`
	Default     *string
	hasDefault  bool
}

func (in *gitlabInput) UnmarshalYAML(n *yaml.Node) error {
	var raw map[string]yaml.Node
	if err := n.Decode(&raw); err != nil {
		return err
	}
	for k, v := range raw {
		switch k {
		case "description":
			in.Description = v.Value
		case "type":
			in.Type = v.Value
		case "default":
			s := v.Value
			in.Default, in.hasDefault = &s, true
		default:
			// GitLab refuses unknown keys of an input.
			if !slices.Contains([]string{"options", "regex", "rules"}, k) {
				return fmt.Errorf("unknown input key %q", k)
			}
		}
	}
	return nil
}

// gitlabJob is what the test runner uses of a job.
type gitlabJob struct {
	Extends      string            `yaml:"extends"`
	Stage        string            `yaml:"stage"`
	Image        string            `yaml:"image"`
	Variables    map[string]string `yaml:"variables"`
	BeforeScript []string          `yaml:"before_script"`
	Script       []string          `yaml:"script"`
	IDTokens     map[string]struct {
		Aud string `yaml:"aud"`
	} `yaml:"id_tokens"`
	Environment struct {
		Name string `yaml:"name"`
	} `yaml:"environment"`
	Needs []struct {
		Job       string `yaml:"job"`
		Artifacts bool   `yaml:"artifacts"`
	} `yaml:"needs"`
	AllowFailure struct {
		ExitCodes []int `yaml:"exit_codes"`
	} `yaml:"allow_failure"`
}

var inputRef = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]`)

// loadComponent reads a component as GitLab does: a spec document, ---,
// then the configuration with $[[ inputs.NAME ]] replaced. Unknown inputs,
// missing required inputs and inputs without a description fail the test.
func loadComponent(t *testing.T, path string, given map[string]string) map[string]gitlabJob {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(raw), "\n---\n")
	if !ok {
		t.Fatalf("%s: no --- between the spec header and the jobs", path)
	}
	var spec struct {
		Spec struct {
			Inputs map[string]gitlabInput `yaml:"inputs"`
		} `yaml:"spec"`
	}
	dec := yaml.NewDecoder(strings.NewReader(head))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		t.Fatalf("%s: spec header: %v", path, err)
	}
	values := map[string]string{}
	for name, in := range spec.Spec.Inputs {
		if strings.TrimSpace(in.Description) == "" {
			t.Errorf("input %s has no description", name)
		}
		if in.hasDefault {
			values[name] = *in.Default
		}
	}
	for k, v := range given {
		if _, ok := spec.Spec.Inputs[k]; !ok {
			t.Fatalf("input %q is not declared in %s", k, path)
		}
		values[k] = v
	}
	for name := range spec.Spec.Inputs {
		if _, ok := values[name]; !ok {
			t.Fatalf("required input %q not given", name)
		}
	}
	used := map[string]bool{}
	body = inputRef.ReplaceAllStringFunc(body, func(m string) string {
		name := inputRef.FindStringSubmatch(m)[1]
		v, ok := values[name]
		if !ok {
			t.Fatalf("%s uses an undeclared input %q", path, name)
		}
		used[name] = true
		return v
	})
	if strings.Contains(body, "$[[") {
		t.Fatalf("%s: an interpolation was left:\n%s", path, body)
	}
	for name := range spec.Spec.Inputs {
		if !used[name] {
			t.Errorf("input %s is declared but never used", name)
		}
	}
	var jobs map[string]gitlabJob
	if err := yaml.Unmarshal([]byte(body), &jobs); err != nil {
		t.Fatalf("%s: jobs after interpolation: %v\n%s", path, err, body)
	}
	// extends: the job's own keys win over its base's.
	for name, j := range jobs {
		if j.Extends == "" {
			continue
		}
		base, ok := jobs[j.Extends]
		if !ok {
			t.Fatalf("job %s extends unknown %s", name, j.Extends)
		}
		if j.Image == "" {
			j.Image = base.Image
		}
		if j.IDTokens == nil {
			j.IDTokens = base.IDTokens
		}
		v := maps.Clone(base.Variables)
		if v == nil {
			v = map[string]string{}
		}
		maps.Copy(v, j.Variables)
		j.Variables = v
		if j.BeforeScript == nil {
			j.BeforeScript = base.BeforeScript
		}
		jobs[name] = j
	}
	return jobs
}

// ciRun is one job or workflow stage run by the simulated CI system.
type ciRun struct {
	code   int
	output string
}

// shellRun runs script with sh (or bash -eo pipefail, as GitLab's runner
// does) in dir with exactly env, bounded by a timeout.
func shellRun(t *testing.T, dir string, env []string, shell []string, script string) ciRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell[0], append(shell[1:], script)...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ciRun{ee.ExitCode(), out.String()}
	case err != nil:
		t.Fatalf("running %q: %v", script, err)
	}
	return ciRun{0, out.String()}
}

// binPath is a PATH with the stepgate the harness built, and dirs, first.
func binPath(dirs ...string) string {
	return strings.Join(append(dirs, filepath.Dir(binary), os.Getenv("PATH")), string(os.PathListSeparator))
}

// chatPost is one message a chat webhook received.
type chatPost struct {
	path string
	body []byte
}

// runGitLabJob runs a job's before_script and script as one shell session
// that stops at the first failing line, with GitLab's predefined variables,
// the job's variables, and its ID token minted by issuer with the job's
// aud and claims. It answers the job's status: passed, warning (failed
// with an exit code allow_failure lists) or failed.
// Variables in extra win over the others (PATH, for a runner without
// stepgate).
func runGitLabJob(t *testing.T, dir string, j gitlabJob, issuer *ciauthtest.Issuer, claims map[string]any, extra ...string) (string, ciRun) {
	t.Helper()
	tok, ok := j.IDTokens["STEPGATE_ID_TOKEN"]
	if !ok {
		t.Fatal("the job declares no id_tokens STEPGATE_ID_TOKEN")
	}
	claims = maps.Clone(claims)
	claims["aud"] = tok.Aud
	env := []string{
		"PATH=" + binPath(), "HOME=" + dir,
		"GITLAB_CI=true", "CI=true", "CI_PROJECT_DIR=" + dir,
		"CI_PROJECT_PATH=" + fmt.Sprint(claims["project_path"]), "CI_COMMIT_REF_NAME=" + fmt.Sprint(claims["ref"]),
		"CI_COMMIT_SHA=" + fmt.Sprint(claims["sha"]), "CI_PIPELINE_ID=" + fmt.Sprint(claims["pipeline_id"]),
		"CI_JOB_ID=" + fmt.Sprint(claims["job_id"]), "GITLAB_USER_LOGIN=" + fmt.Sprint(claims["user_login"]),
		"CI_JOB_URL=https://gitlab.example.com/" + fmt.Sprint(claims["project_path"]) + "/-/jobs/" + fmt.Sprint(claims["job_id"]),
		"STEPGATE_ID_TOKEN=" + issuer.Token(t, claims),
	}
	for k, v := range j.Variables {
		env = append(env, k+"="+v)
	}
	env = append(env, extra...)
	script := "set -eo pipefail\n" + strings.Join(append(slices.Clone(j.BeforeScript), j.Script...), "\n")
	r := shellRun(t, dir, env, []string{"bash", "-c"}, script)
	switch {
	case r.code == 0:
		return "passed", r
	case slices.Contains(j.AllowFailure.ExitCodes, r.code):
		return "warning", r
	}
	return "failed", r
}

// integrationServer starts a server trusting issuer for GitLab tokens of
// acme/infra's protected refs, and copies the production IAM plan and its
// saved plan into dir as plan.json and tfplan.
func integrationServer(t *testing.T, dir string, extraConfig string) *server {
	t.Helper()
	cfg := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfg, []byte(extraConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "--config", cfg)
	return s
}

// approveByBob records bob's passkey approval of check id.
func approveByBob(t *testing.T, s *server, id string) {
	t.Helper()
	svc, st := s.domain()
	approvers(t, st, "bob")
	v, err := svc.Record(context.Background(), id, &gate.Proof{Subject: "bob", Groups: []string{"approvers"}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()})
	if err != nil || v.State != "approved" {
		t.Fatalf("bob's approval of %s: %v, %v; want approved", id, v, err)
	}
}

// TestGitLabComponent runs templates/stepgate/template.yml's jobs as a
// GitLab runner would: the check job asks and passes with a warning while
// people are needed; the apply job of the same pipeline applies once they
// approved, and only once; another pipeline, and a merge request pipeline
// from a fork (ref_protected false), get nothing from that approval.
func TestGitLabComponent(t *testing.T) {
	dir := t.TempDir()
	issuer := ciauthtest.New(t)
	const aud = "https://gate.example.test"
	chat := make(chan chatPost, 16)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		select {
		case chat <- chatPost{r.URL.Path, b}:
		default: // the test looks at the first ones only
		}
	}))
	defer receiver.Close()
	s := integrationServer(t, dir, fmt.Sprintf(`server:
  ci_issuers:
    - url: %s
      audience: %s
      system: gitlab-ci
      rules:
        - claims:
            project_path: acme/infra
            ref_protected: "true"
          workspaces: ["billing-*"]
          name: "gitlab:{user_login}"
notifications:
  webhooks:
    - url: %s/slack/T0/B0/SECRET
      format: slack
      events: [check.pending]
    - url: %s/teams/webhookb2/SECRET
      format: teams
      events: [check.pending]
`, issuer.URL, aud, receiver.URL, receiver.URL))
	copyFile(t, repo(t, "examples/prod-iam.plan.json"), filepath.Join(dir, "plan.json"))
	planfiletest.WriteFor(t, filepath.Join(dir, "plan.json"), filepath.Join(dir, "tfplan"))

	jobs := loadComponent(t, repo(t, "templates/stepgate/template.yml"), map[string]string{
		"server": s.url, "workspace": "billing-prod", "audience": aud, "wait": "3s",
		"plan_job": "tofu-plan", "command": "touch applied.marker",
	})
	check, apply := jobs["stepgate-check"], jobs["stepgate-apply"]
	if check.Script == nil || apply.Script == nil {
		t.Fatalf("the component has no stepgate-check or stepgate-apply job: %v", slices.Collect(maps.Keys(jobs)))
	}
	if apply.Environment.Name != "production" || apply.Stage != "deploy" || check.Stage != "test" {
		t.Errorf("apply job: environment %q stage %q, check stage %q; want production, deploy, test", apply.Environment.Name, apply.Stage, check.Stage)
	}
	if len(apply.Needs) != 2 || apply.Needs[1].Job != "stepgate-check" {
		t.Errorf("apply job needs %+v, want the check job too (needs runs a job beside its stage's predecessors otherwise)", apply.Needs)
	}
	for _, j := range []gitlabJob{check, apply} {
		if len(j.Needs) == 0 || j.Needs[0].Job != "tofu-plan" || !j.Needs[0].Artifacts {
			t.Errorf("needs %+v, want the plan job's artifacts", j.Needs)
		}
		if j.IDTokens["STEPGATE_ID_TOKEN"].Aud != aud {
			t.Errorf("id_tokens aud %q, want the audience input %q", j.IDTokens["STEPGATE_ID_TOKEN"].Aud, aud)
		}
	}
	marker := filepath.Join(dir, "applied.marker")
	main := issuer.GitLabClaims(aud, time.Now())

	// A merge request pipeline from a fork: not a protected ref, the fork's
	// project. Refused outright, in both jobs.
	fork := maps.Clone(main)
	fork["ref_protected"], fork["pipeline_source"], fork["project_path"], fork["pipeline_id"] = "false", "merge_request_event", "mallory/infra", "777"
	fork["sub"] = "project_path:mallory/infra:ref_type:branch:ref:main"
	if status, r := runGitLabJob(t, dir, check, issuer, fork); status != "failed" || r.code != 1 {
		t.Errorf("check job of a fork's merge request: %s (exit %d), want failed with 1\n%s", status, r.code, r.output)
	}
	if status, r := runGitLabJob(t, dir, apply, issuer, fork); status != "failed" || fileExists(marker) {
		t.Errorf("apply job of a fork's merge request: %s, applied %v; want failed and nothing run\n%s", status, fileExists(marker), r.output)
	}

	// The check job: pending is a warning, with the review link.
	status, r := runGitLabJob(t, dir, check, issuer, main)
	if status != "warning" || r.code != 3 {
		t.Fatalf("check job: %s (exit %d), want warning with exit 3\n%s", status, r.code, r.output)
	}
	id := checkID.FindString(r.output)
	if id == "" || !strings.Contains(r.output, s.url+"/checks/"+id) {
		t.Fatalf("check job printed no review link:\n%s", r.output)
	}
	if fileExists(filepath.Join(dir, ".stepgate-check.grant")) {
		t.Error("the check job left a grant file behind")
	}
	// Approvers hear of it in Slack and Teams, with the verified pipeline.
	for range 2 {
		select {
		case p := <-chat:
			var msg struct {
				Text        string `json:"text"`
				Type        string `json:"type"`
				Attachments []struct {
					ContentType string `json:"contentType"`
				} `json:"attachments"`
			}
			if err := json.Unmarshal(p.body, &msg); err != nil {
				t.Fatalf("%s: %v", p.path, err)
			}
			var shape bool
			if strings.HasPrefix(p.path, "/slack/") {
				shape = strings.Contains(msg.Text, "<"+s.url+"/checks/"+id+"|Review "+id+">")
			} else {
				shape = msg.Type == "message" && len(msg.Attachments) == 1 && msg.Attachments[0].ContentType == "application/vnd.microsoft.card.adaptive"
			}
			if !shape || !strings.Contains(string(p.body), "gitlab-ci · acme/infra · main · run 1234") || !strings.Contains(string(p.body), "gitlab:alice") {
				t.Errorf("%s got %s, want the check with its verified pipeline and requester", p.path, p.body)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no notification of the pending check reached Slack and Teams")
		}
	}

	// The apply job before anyone approved: it waits its 3s, then fails.
	applyClaims := maps.Clone(main)
	applyClaims["job_id"], applyClaims["environment"] = "5679", "production"
	if status, r := runGitLabJob(t, dir, apply, issuer, applyClaims); status != "failed" || r.code != 3 || fileExists(marker) {
		t.Fatalf("apply job before approval: %s (exit %d), applied %v; want failed with 3 and nothing run\n%s", status, r.code, fileExists(marker), r.output)
	}

	approveByBob(t, s, id)

	// Another pipeline of the same branch and plan: not its approval.
	other := maps.Clone(applyClaims)
	other["pipeline_id"], other["job_id"] = "1299", "6000"
	if status, r := runGitLabJob(t, dir, apply, issuer, other); status != "failed" || fileExists(marker) {
		t.Errorf("apply job of another pipeline: %s, applied %v; want failed and nothing run\n%s", status, fileExists(marker), r.output)
	}

	// The apply job of the pipeline that asked: applies.
	status, r = runGitLabJob(t, dir, apply, issuer, applyClaims)
	if status != "passed" || !fileExists(marker) {
		t.Fatalf("apply job after approval: %s (exit %d), applied %v; want passed and applied\n%s", status, r.code, fileExists(marker), r.output)
	}
	if strings.Contains(r.output, "eyJ") {
		t.Errorf("the job log shows a token or grant:\n%s", r.output)
	}

	// Retried: the grant was used; the approval does not apply twice.
	os.Remove(marker)
	if status, r := runGitLabJob(t, dir, apply, issuer, applyClaims); status != "failed" || fileExists(marker) {
		t.Errorf("apply job retried: %s, applied %v; want failed and nothing run\n%s", status, fileExists(marker), r.output)
	}
}

// atlantisStep is one step of an Atlantis workflow stage: a built-in
// command (init, plan, apply...), a run command, or an env step.
type atlantisStep struct {
	builtin string
	run     string
	envName string
	envCmd  string
	envVal  string
}

func (s *atlantisStep) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.builtin = n.Value
		return nil
	}
	var m map[string]yaml.Node
	if err := n.Decode(&m); err != nil {
		return err
	}
	if len(m) != 1 {
		return fmt.Errorf("a step has one key, got %d", len(m))
	}
	for k, v := range m {
		switch k {
		case "run":
			if v.Kind == yaml.ScalarNode {
				s.run = v.Value
				return nil
			}
			var full struct {
				Command string `yaml:"command"`
			}
			if err := v.Decode(&full); err != nil {
				return err
			}
			s.run = full.Command
		case "env":
			var e struct {
				Name    string `yaml:"name"`
				Command string `yaml:"command"`
				Value   string `yaml:"value"`
			}
			if err := v.Decode(&e); err != nil {
				return err
			}
			if e.Name == "" || (e.Command == "") == (e.Value == "") {
				return errors.New("env needs a name and exactly one of command and value")
			}
			s.envName, s.envCmd, s.envVal = e.Name, e.Command, e.Value
		case "init", "plan", "apply", "import", "state_rm":
			s.builtin = k // with extra_args
		default:
			return fmt.Errorf("unknown step %q", k)
		}
	}
	return nil
}

type atlantisRepoConfig struct {
	Repos []struct {
		ID                   string   `yaml:"id"`
		Workflow             string   `yaml:"workflow"`
		AllowedOverrides     []string `yaml:"allowed_overrides"`
		AllowCustomWorkflows bool     `yaml:"allow_custom_workflows"`
		ApplyRequirements    []string `yaml:"apply_requirements"`
	} `yaml:"repos"`
	Workflows map[string]map[string]struct {
		Steps []atlantisStep `yaml:"steps"`
	} `yaml:"workflows"`
}

// runAtlantisStage runs a stage's steps in order as Atlantis does: run
// and env commands through sh -c with Atlantis's variables, env steps
// adding to the following steps, built-ins through builtin; the first
// failing step stops the stage.
func runAtlantisStage(t *testing.T, dir string, steps []atlantisStep, env []string, builtin func(string) error) ciRun {
	t.Helper()
	env = slices.Clone(env)
	var out strings.Builder
	for _, st := range steps {
		switch {
		case st.builtin != "":
			if err := builtin(st.builtin); err != nil {
				return ciRun{1, out.String() + err.Error()}
			}
		case st.envName != "":
			v := st.envVal
			if st.envCmd != "" {
				r := shellRun(t, dir, env, []string{"sh", "-c"}, st.envCmd)
				out.WriteString(r.output)
				if r.code != 0 {
					return ciRun{r.code, out.String()}
				}
				v = strings.TrimSuffix(r.output, "\n") // as Atlantis does
				out.Reset()
			}
			env = append(env, st.envName+"="+v)
		default:
			r := shellRun(t, dir, env, []string{"sh", "-c"}, st.run)
			out.WriteString(r.output)
			if r.code != 0 {
				return ciRun{r.code, out.String()}
			}
		}
	}
	return ciRun{0, out.String()}
}

// fakeTerraform writes a terraform on PATH that stands in for the real one
// where the plan's providers cannot run: show -json prints the JSON kept
// next to the saved plan, apply records what it applied.
func fakeTerraform(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fakebin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
case "$1" in
show) for last; do :; done; cat "$last.source.json" ;;
apply) for last; do :; done; echo "applied $(sha256sum "$last" | cut -c1-12)" >> "$APPLIED_LOG" ;;
*) echo "fake terraform: $*" >&2; exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "terraform"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestAtlantisWorkflow runs deploy/atlantis/repos.yaml's workflow as
// Atlantis would, with the Atlantis server's own API token: the plan
// stage asks and succeeds while people are needed; the apply stage
// applies only the plan they approved, once.
func TestAtlantisWorkflow(t *testing.T) {
	dir := t.TempDir()
	s := integrationServer(t, dir, "")
	token := s.token("atlantis-acme", "billing-*")

	raw, err := os.ReadFile(repo(t, "deploy/atlantis/repos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg atlantisRepoConfig
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("repos.yaml: %v", err)
	}
	if len(cfg.Repos) == 0 || cfg.Repos[0].AllowCustomWorkflows || len(cfg.Repos[0].AllowedOverrides) != 0 {
		t.Errorf("repos.yaml lets repositories choose or define their workflow: %+v", cfg.Repos)
	}
	wf, ok := cfg.Workflows[cfg.Repos[0].Workflow]
	if !ok || wf["plan"].Steps == nil || wf["apply"].Steps == nil {
		t.Fatalf("repos.yaml has no plan and apply stages for workflow %q", cfg.Repos[0].Workflow)
	}

	project := filepath.Join(dir, "repo", "billing")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	planfile, showfile := filepath.Join(project, "default.tfplan"), filepath.Join(project, "default.tfplan.json")
	applied := filepath.Join(dir, "applied.log")
	// The plan Terraform would make: the production IAM change; another
	// one stands for a plan made again after the approval.
	planNow := repo(t, "examples/prod-iam.plan.json")
	builtin := func(name string) error {
		switch name {
		case "init":
			return nil
		case "plan": // terraform plan -out $PLANFILE
			copyFile(t, planNow, planfile+".source.json")
			planfiletest.WriteFor(t, planNow, planfile)
			return nil
		}
		return fmt.Errorf("built-in %s is not expected in this workflow", name)
	}
	env := []string{
		"PATH=" + binPath(fakeTerraform(t, dir)), "HOME=" + dir, "APPLIED_LOG=" + applied,
		"STEPGATE_SERVER=" + s.url, "STEPGATE_TOKEN=" + token,
		"WORKSPACE=default", "ATLANTIS_TERRAFORM_VERSION=1.9.8", "DIR=" + project,
		"PLANFILE=" + planfile, "SHOWFILE=" + showfile,
		"BASE_REPO_NAME=infra", "BASE_REPO_OWNER=acme", "HEAD_REPO_NAME=infra", "HEAD_REPO_OWNER=acme",
		"HEAD_BRANCH_NAME=more-iam", "HEAD_COMMIT=c0ffee", "BASE_BRANCH_NAME=main",
		"PROJECT_NAME=billing-prod", "PULL_NUM=42", "PULL_URL=https://github.com/acme/infra/pull/42",
		"PULL_AUTHOR=carol", "REPO_REL_DIR=billing", "USER_NAME=carol", "COMMENT_ARGS=",
	}
	appliedLines := func() int {
		b, _ := os.ReadFile(applied)
		return strings.Count(string(b), "\n")
	}

	// atlantis plan: asks, prints the review link, does not fail.
	r := runAtlantisStage(t, project, wf["plan"].Steps, env, builtin)
	if r.code != 0 {
		t.Fatalf("plan stage while people are needed: exit %d, want 0\n%s", r.code, r.output)
	}
	id := checkID.FindString(r.output)
	if id == "" || !strings.Contains(r.output, s.url+"/checks/"+id) {
		t.Fatalf("plan stage printed no review link:\n%s", r.output)
	}
	if left, _ := filepath.Glob(filepath.Join(project, "*grant*")); len(left) != 0 {
		t.Errorf("the plan stage left grant files: %v", left)
	}

	// atlantis apply before anyone approved: nothing applied.
	if r := runAtlantisStage(t, project, wf["apply"].Steps, env, builtin); r.code == 0 || appliedLines() != 0 {
		t.Fatalf("apply stage before approval: exit %d, applied %d; want a failure and nothing applied\n%s", r.code, appliedLines(), r.output)
	}

	approveByBob(t, s, id)
	_, st := s.domain()
	c, err := st.GetCheck(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Requester != "atlantis-acme" || c.PipelineUnverified["system"] != "atlantis" || c.PipelineUnverified["pull_request"] != "42" || c.PipelineUnverified["actor"] != "carol" {
		t.Errorf("check %s: requester %q, pipeline claims %v; want the Atlantis token and the pull request's claims", id, c.Requester, c.PipelineUnverified)
	}

	// Planned again after the approval, with a different result (the
	// approval in Atlantis's own apply requirements would still stand):
	// the approval is not for this plan.
	planNow = repo(t, "examples/billing-rg-prod.plan.json")
	if r := runAtlantisStage(t, project, wf["plan"].Steps, env, builtin); r.code != 0 {
		t.Fatalf("plan stage again: exit %d\n%s", r.code, r.output)
	}
	if r := runAtlantisStage(t, project, wf["apply"].Steps, env, builtin); r.code == 0 || appliedLines() != 0 {
		t.Fatalf("apply stage of a plan made after the approval: exit %d, applied %d; want a failure and nothing applied\n%s", r.code, appliedLines(), r.output)
	}

	// The approved plan again: applied, once.
	planNow = repo(t, "examples/prod-iam.plan.json")
	if r := runAtlantisStage(t, project, wf["plan"].Steps, env, builtin); r.code != 0 {
		t.Fatalf("plan stage with the approved plan: exit %d\n%s", r.code, r.output)
	}
	r = runAtlantisStage(t, project, wf["apply"].Steps, env, builtin)
	if r.code != 0 || appliedLines() != 1 {
		t.Fatalf("apply stage after approval: exit %d, applied %d; want 0 and one apply\n%s", r.code, appliedLines(), r.output)
	}
	if r := runAtlantisStage(t, project, wf["apply"].Steps, env, builtin); r.code == 0 || appliedLines() != 1 {
		t.Errorf("apply stage again: exit %d, applied %d; want a failure and still one apply\n%s", r.code, appliedLines(), r.output)
	}
}

// TestGitLabComponentInstallsVerifiedRelease: with the version input, the
// jobs download that release and run it only when its archive matches the
// release's checksums file; a tampered archive runs nothing.
func TestGitLabComponentInstallsVerifiedRelease(t *testing.T) {
	dir := t.TempDir()
	issuer := ciauthtest.New(t)
	const aud = "stepgate"
	s := integrationServer(t, dir, fmt.Sprintf(`server:
  ci_issuers:
    - url: %s
      audience: %s
      rules:
        - claims: {project_path: acme/infra, ref_protected: "true"}
          workspaces: ["billing-*"]
`, issuer.URL, aud))
	copyFile(t, repo(t, "examples/dev-tag-change.plan.json"), filepath.Join(dir, "plan.json"))
	planfiletest.WriteFor(t, filepath.Join(dir, "plan.json"), filepath.Join(dir, "tfplan"))

	// A release as GoReleaser publishes it: an archive per platform and
	// a checksums file.
	const version = "1.2.3"
	archive := fmt.Sprintf("stepgate_%s_linux_%s.tar.gz", version, runtime.GOARCH)
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "stepgate", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(tgz.Bytes())
	var sums atomic.Value
	sums.Store(hex.EncodeToString(sum[:]) + "  " + archive + "\n")
	rel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v" + version + "/" + archive:
			_, _ = w.Write(tgz.Bytes())
		case fmt.Sprintf("/v%s/stepgate_%s_checksums.txt", version, version):
			_, _ = io.WriteString(w, sums.Load().(string))
		default:
			http.NotFound(w, r)
		}
	}))
	defer rel.Close()

	jobs := loadComponent(t, repo(t, "templates/stepgate/template.yml"), map[string]string{
		"server": s.url, "workspace": "billing-dev", "audience": aud, "version": "v" + version, "releases_url": rel.URL,
		"environment": "dev",
	})
	// The runner's image has no stepgate: only what was downloaded runs.
	noStepgate := "PATH=/usr/local/bin:/usr/bin:/bin"
	status, r := runGitLabJob(t, dir, jobs["stepgate-check"], issuer, issuer.GitLabClaims(aud, time.Now()), noStepgate)
	if status != "passed" || !strings.Contains(r.output, archive+": OK") || !strings.Contains(r.output, "allowed") {
		t.Fatalf("check job with a verified release: %s (exit %d), want passed and allowed\n%s", status, r.code, r.output)
	}

	sums.Store(strings.Repeat("0", 64) + "  " + archive + "\n")
	status, r = runGitLabJob(t, dir, jobs["stepgate-check"], issuer, issuer.GitLabClaims(aud, time.Now()), noStepgate)
	if status != "failed" || !strings.Contains(r.output, "checksum") || checkID.MatchString(r.output) {
		t.Errorf("check job with a release not matching its checksums: %s (exit %d), want failed before stepgate ran\n%s", status, r.code, r.output)
	}
}
