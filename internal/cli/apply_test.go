package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/store"
)

// applyFixture is a workdir with a grant that stepgate check got from the
// real server (startTestServer) for billing-dev, allowed at once, with
// both plan digests bound.
type applyFixture struct {
	workdir
	s           *testServer
	tok         string
	id, grantID string
	grant       string // the grant as the server issued it
	marker      string // the commands of these tests create it when they run
}

func newApplyFixture(t *testing.T) applyFixture { return newApplyFixtureWith(t, nil) }

func newApplyFixtureWith(t *testing.T, configure func(o *app.Options, url string)) applyFixture {
	t.Helper()
	s := startTestServer(t, configure)
	f := applyFixture{workdir: workdirWith(t, "dev-tag-change.plan.json"), s: s, tok: s.token(t)}
	f.marker = filepath.Join(f.dir, "ran")
	out := filepath.Join(f.dir, "gh-output")
	r := f.call(map[string]string{"GITHUB_OUTPUT": out}).run(t, "check", "--plan", "plan.json", "--plan-file", "tfplan", "--workspace", "billing-dev")
	wantCode(t, r, ExitOK)
	f.id = githubOutput(t, out)["check_id"]
	f.grantID = storedCheck(t, s, f.id).GrantID
	b, err := os.ReadFile(filepath.Join(f.dir, "stepgate.grant"))
	if err != nil {
		t.Fatal(err)
	}
	f.grant = string(b)
	return f
}

// call is a run of stepgate against the fixture's server with its token.
func (f applyFixture) call(extra map[string]string) call { return f.on(f.s, f.tok, extra) }

// apply runs stepgate apply with flags, then `sh -c script`.
func (f applyFixture) apply(t *testing.T, flags []string, script string) result {
	t.Helper()
	args := append([]string{"apply"}, flags...)
	args = append(args, "--", "sh", "-c", script)
	r := f.call(nil).run(t, args...)
	wantNoToken(t, r, f.tok)
	return r
}

func (f applyFixture) ran() bool {
	_, err := os.Stat(f.marker)
	return err == nil
}

func (f applyFixture) writeGrant(t *testing.T, tok string) string {
	t.Helper()
	return writeFile(t, f.dir, "other.grant", tok)
}

// consumed says whether the server recorded the use of the grant.
func (f applyFixture) consumed(t *testing.T) bool {
	t.Helper()
	return storedCheck(t, f.s, f.id).State == store.StateConsumed
}

// outcome is what the server recorded of a command's end.
type outcome struct {
	ExitCode   int   `json:"exit_code"`
	DurationMS int64 `json:"duration_ms"`
}

// outcomes are the apply.outcome events the server wrote for the check.
func (f applyFixture) outcomes(t *testing.T) []outcome {
	t.Helper()
	events, err := f.s.Store.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []outcome
	for _, e := range events {
		if e.Type != audit.ApplyOutcome || e.Subject != f.id {
			continue
		}
		var o outcome
		if err := json.Unmarshal(e.Data, &o); err != nil {
			t.Fatalf("apply.outcome data %s: %v", e.Data, err)
		}
		out = append(out, o)
	}
	return out
}

// claims are the claims of the server's grant, and the kid it names.
func (f applyFixture) claims(t *testing.T) (*grant.Claims, string) {
	t.Helper()
	parts := strings.Split(f.grant, ".")
	if len(parts) != 3 {
		t.Fatalf("the server's grant is not a compact JWS: %q", f.grant)
	}
	var header struct {
		KID string `json:"kid"`
	}
	var c grant.Claims
	for i, v := range []any{&header, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return &c, header.KID
}

// forge signs claims under kid with a key of the test's, not the server's.
func forge(t *testing.T, kid string, c *grant.Claims) string {
	t.Helper()
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := grant.Sign(kid, other, c)
	if err != nil {
		t.Fatalf("signing a forged grant: %v", err)
	}
	return tok
}

var goodFlags = []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--plan", "plan.json", "--workspace", "billing-dev"}

func TestApplyRunsCommand(t *testing.T) {
	f := newApplyFixture(t)
	c := f.call(nil)
	c.stdin = "from stdin\n"
	t.Setenv(envToken, f.tok) // the command must not see it
	args := append(append([]string{"apply"}, goodFlags...), "--", "sh", "-c",
		`touch ran; cat; echo "check=$STEPGATE_CHECK_ID grant=$STEPGATE_GRANT_ID token=${STEPGATE_TOKEN:-unset}"; echo to-stderr >&2; sleep 0.2; exit 3`)
	r := c.run(t, args...)
	wantCode(t, r, 3)
	if !f.ran() {
		t.Fatal("the command did not run")
	}
	if r.stdout != "from stdin\ncheck="+f.id+" grant="+f.grantID+" token=unset\n" {
		t.Errorf("the command's stdout = %q", r.stdout)
	}
	wantContains(t, "stderr", r.stderr, "to-stderr\n",
		"stepgate: grant "+f.grantID+" of check "+f.id+" (terraform.apply, workspace billing-dev) verified and used; running sh -c",
		"stepgate: sh exited with 3 after ")
	outcomes := f.outcomes(t)
	if len(outcomes) != 1 {
		t.Fatalf("%d outcomes recorded, want 1", len(outcomes))
	}
	if o := outcomes[0]; o.ExitCode != 3 || o.DurationMS < 200 || o.DurationMS > 10_000 {
		t.Errorf("outcome = %+v, want exit code 3, duration ≥ 200 ms", o)
	}
	if !f.consumed(t) {
		t.Error("the grant was not consumed")
	}
}

func TestApplyExitCodes(t *testing.T) {
	f := newApplyFixture(t)
	r := f.apply(t, goodFlags, "exit 0")
	wantCode(t, r, ExitOK)
	if o := f.outcomes(t); len(o) != 1 || o[0].ExitCode != 0 {
		t.Errorf("outcomes = %+v, want one with exit code 0", o)
	}

	// Killed by a signal: 128 + the signal.
	f = newApplyFixture(t)
	r = f.apply(t, goodFlags, "kill -KILL $$")
	wantCode(t, r, 128+9)
	if o := f.outcomes(t); len(o) != 1 || o[0].ExitCode != 137 {
		t.Errorf("outcomes = %+v, want one with exit code 137", o)
	}
}

func TestApplyForwardsSIGTERM(t *testing.T) {
	f := newApplyFixture(t)
	ready := filepath.Join(f.dir, "ready")
	done := make(chan result, 1)
	go func() {
		done <- f.apply(t, goodFlags, `trap "exit 42" TERM; touch ready; sleep 5 >/dev/null 2>&1 & wait`)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// To this test process, which is stepgate here: it must pass it on.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("apply did not end after SIGTERM")
	}
	wantCode(t, r, 42)
	if o := f.outcomes(t); len(o) != 1 || o[0].ExitCode != 42 {
		t.Errorf("outcomes = %+v, want one with exit code 42", o)
	}
}

func TestApplyRefusesGrant(t *testing.T) {
	// An hour ago by the server's clock: its grants (15 min) have expired.
	past := func(o *app.Options, _ string) { o.Now = func() time.Time { return time.Now().Add(-time.Hour) } }
	for _, tt := range []struct {
		name      string
		configure func(o *app.Options, url string)
		setup     func(t *testing.T, f applyFixture) []string // returns the flags
		want      string
	}{
		{"fail/bad-signature", nil, func(t *testing.T, f applyFixture) []string {
			c, kid := f.claims(t)
			return []string{"--grant", f.writeGrant(t, forge(t, kid, c))}
		}, "grant refused (bad signature)"},
		{"fail/tampered", nil, func(t *testing.T, f applyFixture) []string {
			parts := strings.Split(f.grant, ".")
			c, _ := f.claims(t)
			c.Workspace = "billing-prod"
			b, _ := json.Marshal(c)
			parts[1] = b64(b)
			return []string{"--grant", f.writeGrant(t, strings.Join(parts, "."))}
		}, "grant refused (bad signature)"},
		{"fail/expired", past, func(t *testing.T, f applyFixture) []string {
			return goodFlags
		}, "grant refused (expired), sh not run"},
		{"fail/wrong-workspace", nil, func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--workspace", "billing-prod"}
		}, "grant refused (wrong workspace)"},
		{"fail/wrong-audience", nil, func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--audience", "sts.amazonaws.com"}
		}, "grant refused (wrong audience)"},
		{"fail/wrong-issuer", nil, func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--issuer", "https://gate.example.com/"}
		}, "grant refused (wrong issuer)"},
		{"fail/unknown-key", nil, func(t *testing.T, f applyFixture) []string {
			c, _ := f.claims(t)
			return []string{"--grant", f.writeGrant(t, forge(t, "another-kid", c))}
		}, "grant refused (unknown signing key)"},
		{"fail/malformed", nil, func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", f.writeGrant(t, "not a grant at all")}
		}, "grant refused (malformed)"},
		{"fail/empty", nil, func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", f.writeGrant(t, "\n")}
		}, "is empty"},
		{"fail/plan-file-changed", nil, func(t *testing.T, f applyFixture) []string {
			writeFile(t, f.dir, "tfplan", "PK\x03\x04 a different plan")
			return goodFlags
		}, "grant refused (plan changed), sh not run: --plan-file tfplan has sha256 "},
		{"fail/plan-json-changed", nil, func(t *testing.T, f applyFixture) []string {
			writeFile(t, f.dir, "plan.json", `{"format_version":"1.2"}`)
			return goodFlags
		}, "grant refused (plan changed), sh not run: --plan plan.json has sha256 "},
		{"fail/plan-file-not-given", nil, func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant"}
		}, "grant refused (saved plan not given), sh not run: the grant was issued for a saved plan"},
		{"fail/plan-file-not-bound", nil, func(t *testing.T, f applyFixture) []string {
			// A check without --plan-file: the grant binds no saved plan.
			r := f.call(nil).run(t, "check", "--plan", "plan.json", "--workspace", "other-dev", "--grant-out", "unbound.grant")
			wantCode(t, r, ExitOK)
			return []string{"--grant", "unbound.grant", "--plan-file", "tfplan"}
		}, "grant refused (no saved plan bound), sh not run: --plan-file tfplan was given, but the grant binds no saved plan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newApplyFixtureWith(t, tt.configure)
			r := f.apply(t, tt.setup(t, f), "touch ran")
			wantCode(t, r, ExitGrant)
			wantContains(t, "stderr", r.stderr, tt.want)
			if f.ran() {
				t.Error("the command ran under a refused grant")
			}
			if f.consumed(t) {
				t.Error("a refused grant was consumed")
			}
		})
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestApplyReplay(t *testing.T) {
	f := newApplyFixture(t)
	r := f.apply(t, goodFlags, "true")
	wantCode(t, r, ExitOK)
	r = f.apply(t, goodFlags, "touch ran")
	wantCode(t, r, ExitGrant)
	wantContains(t, "stderr", r.stderr, "grant already used, sh not run: server answered 409 conflict")
	if f.ran() {
		t.Error("a replayed grant ran the command")
	}
}

func TestApplyServerDown(t *testing.T) {
	for _, tt := range []struct {
		name    string
		breakIt func(s *testServer)
		want    string
	}{
		{"fail/server-down", func(s *testServer) { s.hs.Close() }, "verifying grant, sh not run"},
		{"fail/consume-unreachable", func(s *testServer) { s.fail("POST /v1/grants/consume", -1) }, "using grant, sh not run: reaching stepgate server"},
		{"fail/consume-503", func(s *testServer) { s.fail("POST /v1/grants/consume", 503) }, "using grant, sh not run: server answered 503"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newApplyFixture(t)
			tt.breakIt(f.s)
			r := f.apply(t, goodFlags, "touch ran")
			wantCode(t, r, ExitInternal)
			wantContains(t, "stderr", r.stderr, tt.want)
			if f.ran() {
				t.Error("the command ran although the grant could not be used")
			}
		})
	}
}

func TestApplyOutcomeNotReported(t *testing.T) {
	f := newApplyFixture(t)
	f.s.fail("POST /v1/checks/", 500) // the outcome reports
	r := f.apply(t, goodFlags, "touch ran; exit 7")
	wantCode(t, r, 7)
	wantContains(t, "stderr", r.stderr, "stepgate: warning: reporting the outcome of check "+f.id+": server answered 500")
	if !f.ran() {
		t.Error("the command did not run")
	}
}

func TestApplyBadInput(t *testing.T) {
	f := newApplyFixture(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/no-grant-flag", []string{"apply", "--", "true"}, "--grant is required"},
		{"fail/no-command", []string{"apply", "--grant", "stepgate.grant"}, "no command to run"},
		{"fail/missing-grant-file", []string{"apply", "--grant", "nope.grant", "--", "true"}, "nope.grant: no such file"},
		{"fail/missing-plan-file", []string{"apply", "--grant", "stepgate.grant", "--plan-file", "nope", "--", "true"}, "--plan-file"},
		{"fail/command-not-found", []string{"apply", "--grant", "stepgate.grant", "--plan-file", "tfplan", "--", "no-such-command-stepgate"}, "the grant was not used"},
		{"fail/relative-command-not-found", []string{"apply", "--grant", "stepgate.grant", "--plan-file", "tfplan", "--", "./deploy.sh"}, "the grant was not used"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := f.call(nil).run(t, tt.args...)
			wantCode(t, r, ExitUsage)
			wantContains(t, "stderr", r.stderr, tt.want)
		})
	}
	r := f.call(map[string]string{envToken: ""}).run(t, "apply", "--grant", "stepgate.grant", "--plan-file", "tfplan", "--", "touch", "ran")
	wantCode(t, r, ExitUsage)
	wantContains(t, "stderr", r.stderr, "no API token: set $STEPGATE_TOKEN")
	if f.consumed(t) || f.ran() {
		t.Fatal("bad input used the grant up")
	}
	// The grant still works, without -- too: the command's own flags are
	// not apply's.
	writeFile(t, f.dir, "deploy.sh", "#!/bin/sh\ntouch ran\necho \"$@\"\n")
	os.Chmod(filepath.Join(f.dir, "deploy.sh"), 0o755)
	r = f.call(nil).run(t, "apply", "--grant", "stepgate.grant", "--plan-file", "tfplan", "./deploy.sh", "-auto-approve", "--grant", "x")
	wantCode(t, r, ExitOK)
	if r.stdout != "-auto-approve --grant x\n" || !f.ran() {
		t.Errorf("the command got %q, want its own flags", r.stdout)
	}
	wantContains(t, "stderr", r.stderr, "stepgate: grant "+f.grantID+" of check "+f.id)
}

// An apply grant is bound to the plan that was approved: without that plan
// on the command line, nothing ties the command to it, so nothing runs.
func TestApplyRefusesUnboundPlanGrant(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags []string
		code  int
		want  string
	}{
		{"fail/no-plan-given", nil, ExitGrant, "grant refused (plan not given), true not run: a terraform.apply grant is bound to a plan (sha256 "},
		{"fail/only-workspace", []string{"--workspace", "billing-dev"}, ExitGrant, "grant refused (plan not given)"},
		{"ok/plan-json-given", []string{"--plan", "plan.json"}, ExitOK, "verified and used; running true"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startTestServer(t, nil)
			tok := s.token(t)
			w := workdirWith(t, "dev-tag-change.plan.json")
			out := filepath.Join(w.dir, "gh-output")
			r := w.on(s, tok, map[string]string{"GITHUB_OUTPUT": out}).run(t, "check", "--plan", "plan.json", "--workspace", "billing-dev")
			wantCode(t, r, ExitOK)
			id := githubOutput(t, out)["check_id"]
			args := append(append([]string{"apply", "--grant", "stepgate.grant"}, tt.flags...), "--", "true")
			r = w.on(s, tok, nil).run(t, args...)
			wantCode(t, r, tt.code)
			wantContains(t, "stderr", r.stderr, tt.want)
			if consumed := storedCheck(t, s, id).State == store.StateConsumed; consumed != (tt.code == ExitOK) {
				t.Errorf("grant consumed = %v, want %v", consumed, tt.code == ExitOK)
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", envToken + "=secret", envCheckID + "=forged", "HOME=/root"}, &grant.Claims{Subject: "chk_9", ID: "grt_9"})
	want := []string{"PATH=/bin", "HOME=/root", envCheckID + "=chk_9", envGrantID + "=grt_9"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("childEnv() = %q, want %q", got, want)
	}
}
