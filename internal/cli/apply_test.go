package cli

import (
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

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/grant"
)

const testKID = "test-key-1"

// signer signs grants for the stand-in server with a key it publishes.
type signer struct {
	priv ed25519.PrivateKey
}

func newSigner(t *testing.T, s *standIn) *signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: testKID, Algorithm: string(jose.EdDSA), Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	g := &signer{priv: priv}
	s.mu.Lock()
	s.jwks = jwks
	s.sign = func(c *api.Check) string { return g.sign(t, g.priv, s.claims(c)) }
	s.mu.Unlock()
	return g
}

// claims are the grant claims the stand-in signs for a check, as the real
// server does (internal/gate).
func (s *standIn) claims(c *api.Check) *grant.Claims {
	now := time.Now()
	decision := grant.DecisionAllow
	if c.State == stateApproved {
		decision = grant.DecisionStepUp
	}
	return &grant.Claims{
		Issuer: s.URL(), Subject: c.ID, Audience: jwt.Audience{"stepgate"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(*c.GrantExpiresAt),
		ID: c.GrantID, PlanSHA256: c.PlanSHA256, PlanFileSHA256: c.PlanFileSHA256,
		Workspace: c.Workspace, Environment: c.Environment, Kind: c.Kind, Pipeline: c.Pipeline,
		Requester: c.Requester, Decision: decision,
	}
}

func (g *signer) sign(t *testing.T, key ed25519.PrivateKey, c *grant.Claims) string {
	t.Helper()
	tok, err := grant.Sign(testKID, key, c)
	if err != nil {
		t.Fatalf("signing a test grant: %v", err)
	}
	return tok
}

// applyFixture is a workdir with a grant that stepgate check wrote for
// billing-dev (allowed at once), with both plan digests bound.
type applyFixture struct {
	workdir
	s      *standIn
	g      *signer
	marker string // the commands of these tests create it when they run
}

func newApplyFixture(t *testing.T) applyFixture {
	t.Helper()
	s := newStandIn(t)
	f := applyFixture{workdir: newWorkdir(t), s: s, g: newSigner(t, s)}
	f.marker = filepath.Join(f.dir, "ran")
	r := f.call(s, nil).run(t, "check", "--plan", "plan.json", "--plan-file", "tfplan", "--workspace", "billing-dev")
	wantCode(t, r, ExitOK)
	return f
}

// apply runs stepgate apply with flags, then `sh -c script`.
func (f applyFixture) apply(t *testing.T, flags []string, script string) result {
	t.Helper()
	args := append([]string{"apply"}, flags...)
	args = append(args, "--", "sh", "-c", script)
	return f.call(f.s, nil).run(t, args...)
}

func (f applyFixture) ran() bool {
	_, err := os.Stat(f.marker)
	return err == nil
}

func (f applyFixture) writeGrant(t *testing.T, tok string) string {
	t.Helper()
	return writeFile(t, f.dir, "other.grant", tok)
}

var goodFlags = []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--plan", "plan.json", "--workspace", "billing-dev"}

func TestApplyRunsCommand(t *testing.T) {
	f := newApplyFixture(t)
	c := f.call(f.s, nil)
	c.stdin = "from stdin\n"
	t.Setenv(envToken, standInToken) // the command must not see it
	args := append(append([]string{"apply"}, goodFlags...), "--", "sh", "-c",
		`touch ran; cat; echo "check=$STEPGATE_CHECK_ID grant=$STEPGATE_GRANT_ID token=${STEPGATE_TOKEN:-unset}"; echo to-stderr >&2; sleep 0.2; exit 3`)
	r := c.run(t, args...)
	wantCode(t, r, 3)
	if !f.ran() {
		t.Fatal("the command did not run")
	}
	if r.stdout != "from stdin\ncheck=chk_1 grant=grt_1 token=unset\n" {
		t.Errorf("the command's stdout = %q", r.stdout)
	}
	wantContains(t, "stderr", r.stderr, "to-stderr\n",
		"stepgate: grant grt_1 of check chk_1 (terraform.apply, workspace billing-dev) verified and used; running sh -c",
		"stepgate: sh exited with 3 after ")
	if len(f.s.outcomes) != 1 {
		t.Fatalf("%d outcomes reported, want 1", len(f.s.outcomes))
	}
	o := f.s.outcomes[0]
	if o.GrantID != "grt_1" || o.ExitCode != 3 || o.DurationMS < 200 || o.DurationMS > 10_000 {
		t.Errorf("outcome = %+v, want grant grt_1, exit code 3, duration ≥ 200 ms", o)
	}
	if !f.s.consumed["chk_1"] {
		t.Error("the grant was not consumed")
	}
}

func TestApplyExitCodes(t *testing.T) {
	f := newApplyFixture(t)
	r := f.apply(t, goodFlags, "exit 0")
	wantCode(t, r, ExitOK)
	if f.s.outcomes[0].ExitCode != 0 {
		t.Errorf("outcome = %+v", f.s.outcomes[0])
	}

	// Killed by a signal: 128 + the signal.
	f = newApplyFixture(t)
	r = f.apply(t, goodFlags, "kill -KILL $$")
	wantCode(t, r, 128+9)
	if f.s.outcomes[0].ExitCode != 137 {
		t.Errorf("outcome = %+v, want exit code 137", f.s.outcomes[0])
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
	if len(f.s.outcomes) != 1 || f.s.outcomes[0].ExitCode != 42 {
		t.Errorf("outcomes = %+v, want one with exit code 42", f.s.outcomes)
	}
}

func TestApplyRefusesGrant(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, f applyFixture) []string // returns the flags
		want  string
	}{
		{"fail/bad-signature", func(t *testing.T, f applyFixture) []string {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			c := f.s.claims(f.s.checks["chk_1"])
			return []string{"--grant", f.writeGrant(t, f.g.sign(t, other, c))}
		}, "grant refused (bad signature)"},
		{"fail/tampered", func(t *testing.T, f applyFixture) []string {
			parts := strings.Split(f.s.checks["chk_1"].Grant, ".")
			c := f.s.claims(f.s.checks["chk_1"])
			c.Workspace = "billing-prod"
			b, _ := json.Marshal(c)
			parts[1] = b64(b)
			return []string{"--grant", f.writeGrant(t, strings.Join(parts, "."))}
		}, "grant refused (bad signature)"},
		{"fail/expired", func(t *testing.T, f applyFixture) []string {
			c := f.s.claims(f.s.checks["chk_1"])
			c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Hour)), jwt.NewNumericDate(time.Now().Add(-time.Minute))
			return []string{"--grant", f.writeGrant(t, f.g.sign(t, f.g.priv, c))}
		}, "grant refused (expired), sh not run"},
		{"fail/wrong-workspace", func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--workspace", "billing-prod"}
		}, "grant refused (wrong workspace)"},
		{"fail/wrong-audience", func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--audience", "sts.amazonaws.com"}
		}, "grant refused (wrong audience)"},
		{"fail/wrong-issuer", func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant", "--plan-file", "tfplan", "--issuer", "https://gate.example.com/"}
		}, "grant refused (wrong issuer)"},
		{"fail/unknown-key", func(t *testing.T, f applyFixture) []string {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			tok, err := grant.Sign("another-kid", other, f.s.claims(f.s.checks["chk_1"]))
			if err != nil {
				t.Fatal(err)
			}
			return []string{"--grant", f.writeGrant(t, tok)}
		}, "grant refused (unknown signing key)"},
		{"fail/malformed", func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", f.writeGrant(t, "not a grant at all")}
		}, "grant refused (malformed)"},
		{"fail/empty", func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", f.writeGrant(t, "\n")}
		}, "is empty"},
		{"fail/plan-file-changed", func(t *testing.T, f applyFixture) []string {
			writeFile(t, f.dir, "tfplan", "PK\x03\x04 a different plan")
			return goodFlags
		}, "grant refused (plan changed), sh not run: --plan-file tfplan has sha256 "},
		{"fail/plan-json-changed", func(t *testing.T, f applyFixture) []string {
			writeFile(t, f.dir, "plan.json", `{"format_version":"1.2"}`)
			return goodFlags
		}, "grant refused (plan changed), sh not run: --plan plan.json has sha256 "},
		{"fail/plan-file-not-given", func(t *testing.T, f applyFixture) []string {
			return []string{"--grant", "stepgate.grant"}
		}, "grant refused (saved plan not given), sh not run: the grant was issued for a saved plan"},
		{"fail/plan-file-not-bound", func(t *testing.T, f applyFixture) []string {
			// A check without --plan-file: the grant binds no saved plan.
			r := f.call(f.s, nil).run(t, "check", "--plan", "plan.json", "--workspace", "other-dev", "--grant-out", "unbound.grant")
			wantCode(t, r, ExitOK)
			return []string{"--grant", "unbound.grant", "--plan-file", "tfplan"}
		}, "grant refused (no saved plan bound), sh not run: --plan-file tfplan was given, but the grant binds no saved plan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newApplyFixture(t)
			r := f.apply(t, tt.setup(t, f), "touch ran")
			wantCode(t, r, ExitGrant)
			wantContains(t, "stderr", r.stderr, tt.want)
			if f.ran() {
				t.Error("the command ran under a refused grant")
			}
			if f.s.consumed["chk_1"] {
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
		breakIt func(s *standIn)
		want    string
	}{
		{"fail/server-down", func(s *standIn) { s.srv.Close() }, "verifying grant, sh not run"},
		{"fail/consume-unreachable", func(s *standIn) { s.consumeFails = -1 }, "using grant, sh not run: reaching stepgate server"},
		{"fail/consume-503", func(s *standIn) { s.consumeFails = 503 }, "using grant, sh not run: server answered 503"},
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
	f.s.outcomeFails = 500
	r := f.apply(t, goodFlags, "touch ran; exit 7")
	wantCode(t, r, 7)
	wantContains(t, "stderr", r.stderr, "stepgate: warning: reporting the outcome of check chk_1: server answered 500")
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
			r := f.call(f.s, nil).run(t, tt.args...)
			wantCode(t, r, ExitUsage)
			wantContains(t, "stderr", r.stderr, tt.want)
		})
	}
	r := f.call(f.s, map[string]string{envToken: ""}).run(t, "apply", "--grant", "stepgate.grant", "--plan-file", "tfplan", "--", "touch", "ran")
	wantCode(t, r, ExitUsage)
	wantContains(t, "stderr", r.stderr, "no API token: set $STEPGATE_TOKEN")
	if f.s.consumed["chk_1"] || f.ran() {
		t.Fatal("bad input used the grant up")
	}
	// The grant still works, without -- too: the command's own flags are
	// not apply's.
	writeFile(t, f.dir, "deploy.sh", "#!/bin/sh\ntouch ran\necho \"$@\"\n")
	os.Chmod(filepath.Join(f.dir, "deploy.sh"), 0o755)
	r = f.call(f.s, nil).run(t, "apply", "--grant", "stepgate.grant", "--plan-file", "tfplan", "./deploy.sh", "-auto-approve", "--grant", "x")
	wantCode(t, r, ExitOK)
	if r.stdout != "-auto-approve --grant x\n" || !f.ran() {
		t.Errorf("the command got %q, want its own flags", r.stdout)
	}
	wantContains(t, "stderr", r.stderr, "stepgate: grant grt_1 of check chk_1")
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
			s := newStandIn(t)
			newSigner(t, s)
			w := newWorkdir(t)
			r := w.call(s, nil).run(t, "check", "--plan", "plan.json", "--workspace", "billing-dev")
			wantCode(t, r, ExitOK)
			args := append(append([]string{"apply", "--grant", "stepgate.grant"}, tt.flags...), "--", "true")
			r = w.call(s, nil).run(t, args...)
			wantCode(t, r, tt.code)
			wantContains(t, "stderr", r.stderr, tt.want)
			if consumed := s.consumed["chk_1"]; consumed != (tt.code == ExitOK) {
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
