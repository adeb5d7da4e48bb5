package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
)

// TestActionDefinition: action.yml is a composite action whose one step
// runs action/run.sh with every input passed as INPUT_*, and whose outputs
// are the step's.
func TestActionDefinition(t *testing.T) {
	b, err := os.ReadFile(repo(t, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Inputs  map[string]struct{ Default string } `yaml:"inputs"`
		Outputs map[string]struct{ Value string }   `yaml:"outputs"`
		Runs    struct {
			Using string `yaml:"using"`
			Steps []struct {
				ID, Shell, Run string
				Env            map[string]string
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if a.Runs.Using != "composite" || len(a.Runs.Steps) != 1 || !strings.Contains(a.Runs.Steps[0].Run, "action/run.sh") {
		t.Fatalf("runs = %+v, want one composite step running action/run.sh", a.Runs)
	}
	for _, in := range []string{"mode", "server", "workspace", "plan", "plan-file", "environment", "wait", "audience", "command", "version"} {
		env := "INPUT_" + strings.ToUpper(strings.ReplaceAll(in, "-", "_"))
		if _, ok := a.Inputs[in]; !ok || a.Runs.Steps[0].Env[env] != "${{ inputs."+in+" }}" {
			t.Errorf("input %s: declared %v, passed as %s = %q", in, ok, env, a.Runs.Steps[0].Env[env])
		}
	}
	if a.Inputs["audience"].Default != "stepgate" {
		t.Errorf("audience defaults to %q, want stepgate", a.Inputs["audience"].Default)
	}
	for _, out := range []string{"decision", "check-id", "review-url", "grant-file"} {
		if !strings.HasPrefix(a.Outputs[out].Value, "${{ steps.run.outputs.") {
			t.Errorf("output %s = %q, want a step output", out, a.Outputs[out].Value)
		}
	}
}

// oidcEndpoint is GitHub Actions' token request endpoint for a job
// (ACTIONS_ID_TOKEN_REQUEST_URL): GET with the request token as a bearer
// and &audience=AUD, answering {"value": JWT}.
// Each job has its own request token (ACTIONS_ID_TOKEN_REQUEST_TOKEN),
// and its tokens the claims of that job: jobs maps a request token to
// what its job's claims change (nil: the issuer's GitHub claims of run
// 4242, a job in production).
type oidcEndpoint struct {
	srv       *httptest.Server
	reqToken  string
	mu        sync.Mutex
	audiences []string
	jobs      map[string]func(map[string]any)
}

func newOIDCEndpoint(t *testing.T, is *ciauthtest.Issuer) *oidcEndpoint {
	e := &oidcEndpoint{reqToken: "request-token-not-to-be-printed"}
	e.jobs = map[string]func(map[string]any){e.reqToken: nil}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		edit, ok := e.jobs[strings.TrimPrefix(r.Header.Get("Authorization"), "bearer ")]
		e.mu.Unlock()
		if !ok || !strings.HasPrefix(r.Header.Get("Authorization"), "bearer ") || r.URL.Query().Get("api-version") == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		e.mu.Lock()
		e.audiences = append(e.audiences, aud)
		e.mu.Unlock()
		claims := is.GitHubClaims(aud, time.Now())
		claims["run_id"], claims["sha"] = "4242", "ffac537e6cbbf934b08745a378932722df287a53"
		if edit != nil {
			edit(claims)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"count":1,"value":"` + is.Token(t, claims) + `"}`))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// TestActionModes runs the Action's steps (action/run.sh) in a simulated
// GitHub Actions job: GITHUB_* variables, a local OIDC token endpoint, the
// stepgate under test on PATH and a server trusting the job's tokens.
func TestActionModes(t *testing.T) {
	dir := t.TempDir()
	is := ciauthtest.New(t)
	cfg := filepath.Join(dir, "stepgate.yaml")
	err := os.WriteFile(cfg, []byte(`server:
  ci_issuers:
    - url: `+is.URL+`
      audience: stepgate-ci
      system: github-actions
      rules:
        - claims: {repository: acme/infra}
          workspaces: ["billing-*"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "--config", cfg)
	oidc := newOIDCEndpoint(t, is)
	plan := repo(t, "examples/dev-tag-change.plan.json")
	binDir := filepath.Dir(binary)

	var jobOf func(t *testing.T, reqToken string, inputs map[string]string) (code int, outputs, summary, printed string)
	job := func(t *testing.T, inputs map[string]string) (code int, outputs, summary, printed string) {
		t.Helper()
		return jobOf(t, oidc.reqToken, inputs)
	}
	jobOf = func(t *testing.T, reqToken string, inputs map[string]string) (code int, outputs, summary, printed string) {
		t.Helper()
		work := t.TempDir()
		out, sum := filepath.Join(work, "output"), filepath.Join(work, "summary")
		env := []string{
			"PATH=" + binDir + ":" + os.Getenv("PATH"), "HOME=" + work,
			"GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=acme/infra", "GITHUB_RUN_ID=4242", "GITHUB_RUN_ATTEMPT=1",
			"GITHUB_SHA=ffac537e6cbbf934b08745a378932722df287a53", "GITHUB_REF=refs/heads/main", "GITHUB_WORKFLOW=deploy",
			"GITHUB_ACTOR=alice", "GITHUB_SERVER_URL=https://github.com", "GITHUB_OUTPUT=" + out, "GITHUB_STEP_SUMMARY=" + sum,
			"GITHUB_ACTION_PATH=" + repo(t, "."), "RUNNER_TEMP=" + work,
			"ACTIONS_ID_TOKEN_REQUEST_URL=" + oidc.srv.URL + "/token?api-version=2.0",
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + reqToken,
		}
		for k, v := range inputs {
			env = append(env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))+"="+v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", repo(t, "action/run.sh"))
		cmd.Dir, cmd.Env = work, env
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		o, _ := os.ReadFile(out)
		sm, _ := os.ReadFile(sum)
		return code, string(o), string(sm), buf.String()
	}
	secretsNotPrinted := func(t *testing.T, printed, outputs, summary string, grantFile string) {
		t.Helper()
		for _, where := range []string{printed, outputs, summary} {
			if strings.Contains(where, oidc.reqToken) || strings.Contains(where, "eyJ") {
				t.Errorf("a token or grant was printed:\n%s", where)
			}
		}
		if grantFile != "" {
			g, err := os.ReadFile(grantFile)
			if err != nil || len(g) == 0 {
				t.Fatalf("grant file %s: %v", grantFile, err)
			}
		}
	}

	t.Run("eval", func(t *testing.T) {
		code, outputs, summary, printed := job(t, map[string]string{"mode": "eval", "plan": plan, "workspace": "billing-dev"})
		if code != 0 || !strings.Contains(outputs, "decision=allow\n") || !strings.Contains(summary, "stepgate eval") {
			t.Fatalf("exit %d, outputs %q, summary %q\n%s", code, outputs, summary, printed)
		}
	})
	t.Run("check", func(t *testing.T) {
		code, outputs, summary, printed := job(t, map[string]string{"mode": "check", "server": s.url, "plan": plan, "workspace": "billing-dev", "audience": "stepgate-ci", "wait": "0"})
		if code != 0 || !strings.Contains(outputs, "decision=allow\n") || !checkID.MatchString(outputs) || !strings.Contains(outputs, "grant-file=") || !strings.Contains(summary, "stepgate check") {
			t.Fatalf("exit %d, outputs %q, summary %q\n%s", code, outputs, summary, printed)
		}
		secretsNotPrinted(t, printed, outputs, summary, "")
	})
	t.Run("apply", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "applied")
		code, outputs, summary, printed := job(t, map[string]string{"mode": "apply", "server": s.url, "plan": plan, "workspace": "billing-dev", "audience": "stepgate-ci", "wait": "0", "command": "touch " + marker})
		if code != 0 || !strings.Contains(outputs, "decision=applied\n") || !strings.Contains(summary, "stepgate apply") || !fileExists(marker) {
			t.Fatalf("exit %d, outputs %q, summary %q, command ran: %v\n%s", code, outputs, summary, fileExists(marker), printed)
		}
		secretsNotPrinted(t, printed, outputs, summary, "")
	})
	t.Run("two-jobs-ask-once", func(t *testing.T) {
		// The documented workflow: the plan job (no environment: its
		// subject names the ref) asks and does not wait; the apply job of
		// the same run, in production (another subject), with the same
		// plan and saved plan from the plan job's artifact, finds that
		// check, and applies once people approved it. People are asked once.
		oidc.mu.Lock()
		oidc.jobs["plan-job-request-token"] = func(m map[string]any) {
			delete(m, "environment")
			m["sub"] = "repo:acme/infra:ref:refs/heads/main"
		}
		oidc.jobs["apply-job-request-token"] = nil // production
		oidc.jobs["other-run-request-token"] = func(m map[string]any) { m["run_id"] = "4243" }
		oidc.mu.Unlock()
		prod := repo(t, "examples/prod-iam.plan.json")
		marker := filepath.Join(t.TempDir(), "applied")
		inputs := func(mode string) map[string]string {
			return map[string]string{"mode": mode, "server": s.url, "plan": prod, "workspace": "billing-prod", "audience": "stepgate-ci", "wait": "0", "command": "touch " + marker}
		}
		code, planOut, _, printed := jobOf(t, "plan-job-request-token", inputs("check"))
		id := checkID.FindString(planOut)
		if code != 3 || !strings.Contains(planOut, "decision=pending\n") || id == "" {
			t.Fatalf("plan job: exit %d, outputs %q; want pending\n%s", code, planOut, printed)
		}
		approveByBob(t, s, id)

		// A job of another run of the workflow: not its approval.
		code, otherOut, _, printed := jobOf(t, "other-run-request-token", inputs("apply"))
		if code != 3 || fileExists(marker) || strings.Contains(otherOut, id) {
			t.Fatalf("apply job of another run: exit %d, outputs %q, applied %v; want pending and nothing run\n%s", code, otherOut, fileExists(marker), printed)
		}

		code, applyOut, summary, printed := jobOf(t, "apply-job-request-token", inputs("apply"))
		if code != 0 || !strings.Contains(applyOut, "decision=applied\n") || !fileExists(marker) {
			t.Fatalf("apply job: exit %d, outputs %q, applied %v\n%s", code, applyOut, fileExists(marker), printed)
		}
		if got := checkID.FindString(applyOut); got != id {
			t.Errorf("apply job's check = %q, want the plan job's %s", got, id)
		}
		secretsNotPrinted(t, printed, applyOut, summary, "")

		// The grant was used: the same apply job again asks people anew.
		os.Remove(marker)
		code, againOut, _, printed := jobOf(t, "apply-job-request-token", inputs("apply"))
		if code != 3 || fileExists(marker) || strings.Contains(againOut, id) {
			t.Errorf("apply job again: exit %d, outputs %q, applied %v; want a new pending check and nothing run\n%s", code, againOut, fileExists(marker), printed)
		}

		// One check asked people for run 4242's plan (the last job's new
		// one aside), approved once.
		_, st := s.domain()
		evs, err := st.ListAudit(context.Background(), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		created := map[string]int{}
		for _, e := range evs {
			var d struct {
				Workspace string            `json:"workspace"`
				Pipeline  map[string]string `json:"pipeline"` // verified
			}
			if e.Type == audit.CheckCreated && json.Unmarshal(e.Data, &d) == nil && d.Pipeline["run_id"] == "4242" && d.Workspace == "billing-prod" {
				created[e.Subject]++
			}
		}
		if created[id] != 1 || len(created) != 2 {
			t.Errorf("checks created for run 4242 in billing-prod: %v, want %s and the one asked after its grant was used", created, id)
		}
	})
	t.Run("fail/token-for-another-audience", func(t *testing.T) {
		code, outputs, _, printed := job(t, map[string]string{"mode": "check", "server": s.url, "plan": plan, "workspace": "billing-dev", "audience": "someone-else", "wait": "0"})
		if code != 1 || !strings.Contains(outputs, "decision=error\n") || strings.Contains(outputs, "grant-file=") {
			t.Errorf("exit %d, outputs %q; want 1 and no grant\n%s", code, outputs, printed)
		}
	})
	t.Run("fail/bad-mode", func(t *testing.T) {
		if code, _, _, printed := job(t, map[string]string{"mode": "destroy"}); code != 2 || !strings.Contains(printed, "none of eval, check, apply") {
			t.Errorf("exit %d, want 2\n%s", code, printed)
		}
	})
	oidc.mu.Lock()
	defer oidc.mu.Unlock()
	if !slices.Contains(oidc.audiences, "stepgate-ci") || !slices.Contains(oidc.audiences, "someone-else") {
		t.Errorf("OIDC tokens asked for audiences %q, want each job's audience input", oidc.audiences)
	}
}

// TestActionInstallsAVerifiedRelease: with no stepgate on PATH, the Action
// downloads the release named by the version input, as .goreleaser.yaml
// names its archive and checksums, and refuses an archive whose checksum
// does not match.
func TestActionInstallsAVerifiedRelease(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	archive := buildArchive(t)
	name := "stepgate_1.2.3_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	sum := sha256.Sum256(archive)
	for _, tt := range []struct {
		name     string
		checksum string
		want     int
	}{
		{"ok/verified", hex.EncodeToString(sum[:]), 0},
		{"fail/checksum-mismatch", strings.Repeat("0", 64), 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v1.2.3/" + name:
					_, _ = w.Write(archive)
				case "/v1.2.3/stepgate_1.2.3_checksums.txt":
					_, _ = w.Write([]byte(tt.checksum + "  " + name + "\n" + strings.Repeat("1", 64) + "  stepgate_1.2.3_windows_amd64.tar.gz\n"))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			work := t.TempDir()
			ca := filepath.Join(work, "ca.pem")
			if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(work, "output")
			cmd := exec.Command("bash", repo(t, "action/run.sh"))
			cmd.Dir = work
			cmd.Env = []string{
				"PATH=/usr/bin:/bin", "HOME=" + work, "CURL_CA_BUNDLE=" + ca, "STEPGATE_RELEASE_URL=" + srv.URL,
				"GITHUB_OUTPUT=" + out, "GITHUB_PATH=" + filepath.Join(work, "path"),
				"INPUT_MODE=eval", "INPUT_VERSION=v1.2.3", "INPUT_PLAN=" + repo(t, "examples/dev-tag-change.plan.json"), "INPUT_WORKSPACE=billing-dev",
			}
			printed, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Fatalf("exit %d, want %d\n%s", code, tt.want, printed)
			}
			o, _ := os.ReadFile(out)
			if tt.want == 0 && !strings.Contains(string(o), "decision=allow") {
				t.Errorf("outputs %q: the installed stepgate did not run", o)
			}
			if tt.want != 0 && (!strings.Contains(string(printed), "checksums") || len(o) != 0) {
				t.Errorf("a mismatching archive: outputs %q\n%s", o, printed)
			}
		})
	}
}

// buildArchive packs the stepgate under test as a release archive.
func buildArchive(t *testing.T) []byte {
	t.Helper()
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		body []byte
		mode int64
	}{{"LICENSE", []byte("license"), 0o644}, {"stepgate", bin, 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
