package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/store"
)

// peopleServer is the real server (internal/httpapi over internal/gate,
// SQLite) with the people API on, and a real OpenID Provider (oidctest)
// with the command line's native client registered.
type peopleServer struct {
	url      string
	st       store.Store
	p        *oidctest.Provider
	ciToken  string
	loginDir string
}

func newPeopleServer(t *testing.T) *peopleServer {
	t.Helper()
	ctx := context.Background()
	var p *oidctest.Provider
	srv := startTestServer(t, func(o *app.Options, url string) {
		p = oidctest.StartWithCLI(t, url+"/oidc/callback")
		secret := filepath.Join(t.TempDir(), "client-secret")
		if err := os.WriteFile(secret, []byte(oidctest.ClientSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		o.Server.OIDC = &config.OIDC{
			Name: "Example SSO", Issuer: p.URL, ClientID: oidctest.ClientID, ClientSecretFile: secret,
			CLIClientID: oidctest.CLIClientID, ACR: map[int]string{2: "urn:stepgate:mfa", 3: "phr"},
		}
	})
	st := srv.Store
	tok, _, err := gate.CreateToken(ctx, st, gate.TokenSpec{Name: "billing-ci"}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, &store.User{ID: "usr_alice", Name: "alice", Groups: []string{"approvers"}, Links: []string{"oidc:id2"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return &peopleServer{url: srv.URL, st: st, p: p, ciToken: tok, loginDir: t.TempDir()}
}

// pendingCheck asks for a check the default policy holds for people:
// an IAM change in production (aal 3, one approval, max_age 300).
func (s *peopleServer) pendingCheck(t *testing.T) api.Check {
	t.Helper()
	plan, err := os.ReadFile(filepath.Join("..", "..", "examples", "prod-iam.plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.url+"/v1/checks?workspace=billing-prod&pipeline.repository=acme/infra", bytes.NewReader(plan))
	req.Header.Set("Authorization", "Bearer "+s.ciToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var c api.Check
	if err := json.NewDecoder(res.Body).Decode(&c); err != nil || c.State != statePending {
		t.Fatalf("creating a pending check: %d %v %+v", res.StatusCode, err, c)
	}
	return c
}

func (s *peopleServer) state(t *testing.T, id string) store.CheckState {
	t.Helper()
	c, err := s.st.GetCheck(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// browser stands in for the person's browser: it follows the
// authorization URL (the provider's login page approves at once, as the
// login SetNext names) to the loopback redirect of stepgate login. The
// n-th call logs in as logins[n] (the last one again after the end).
type browser struct {
	p      *oidctest.Provider
	logins []oidctest.Login
	mu     sync.Mutex
	calls  int
	urls   []string
}

func (b *browser) open(ctx context.Context, u string) error {
	b.mu.Lock()
	l := b.logins[min(b.calls, len(b.logins)-1)]
	b.calls++
	b.urls = append(b.urls, u)
	b.mu.Unlock()
	b.p.SetNext(l)
	jar, _ := cookiejar.New(nil)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := (&http.Client{Jar: jar}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "You are signed in") {
		return &browserError{res.StatusCode, res.Request.URL.String()}
	}
	return nil
}

func (b *browser) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

type browserError struct {
	status int
	at     string
}

func (e *browserError) Error() string { return "browser ended at " + e.at }

// personRun is one in-process run of stepgate by a person.
type personRun struct {
	s     *peopleServer
	b     *browser
	stdin io.Reader
	tty   bool
}

// ttyIn is standard input on a terminal: a reader that is also a writer.
type ttyIn struct{ io.Reader }

func (ttyIn) Write(p []byte) (int, error) { return len(p), nil }

func (r personRun) run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	stdin := r.stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	env := Env{
		Stdin: stdin, Stdout: &out, Stderr: &errOut, Dir: t.TempDir(),
		Getenv: func(k string) string {
			return map[string]string{envServer: r.s.url, envLoginDir: r.s.loginDir}[k]
		},
		IsTerminal:  func(io.Writer) bool { return r.tty },
		OpenBrowser: r.b.open,
		Now:         time.Now,
	}
	code := Run(context.Background(), args, env)
	res := result{code, out.String(), errOut.String()}
	// No ID token (a JWT starts with eyJ) is ever printed.
	if strings.Contains(res.stdout+res.stderr, "eyJ") {
		t.Errorf("stepgate %s printed a token:\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.stdout, res.stderr)
	}
	return res
}

var (
	weakLogin   = oidctest.Login{ACR: "urn:stepgate:mfa", AMR: []string{"pwd", "otp"}}
	strongLogin = oidctest.Login{ACR: "phr", AMR: []string{"hwk", "user", "mfa"}}
)

// TestApproveFollowsStepUpChallenge: the person's first sign-in is too
// weak for the check; the server's RFC 9470 challenge is followed by a
// sign-in again with prompt=login, acr_values and max_age, and the
// approval is recorded.
func TestApproveFollowsStepUpChallenge(t *testing.T) {
	s := newPeopleServer(t)
	c := s.pendingCheck(t)
	b := &browser{p: s.p, logins: []oidctest.Login{weakLogin, strongLogin}}
	r := personRun{s: s, b: b}.run(t, "approve", c.ID, "--yes")
	if r.code != ExitOK {
		t.Fatalf("approve exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if got := s.state(t, c.ID); got != store.StateApproved {
		t.Fatalf("check state = %s, want approved", got)
	}
	if b.count() != 2 {
		t.Fatalf("browser opened %d times, want 2 (a sign-in, then a step-up)", b.count())
	}
	reqs := s.p.Requests()
	first, last := reqs[0], s.p.LastRequest()
	if first["prompt"] != nil || first["acr_values"] != nil || first["max_age"] != nil {
		t.Errorf("the first sign-in asked for a step-up: %v", first)
	}
	for k, want := range map[string]string{"prompt": "login", "acr_values": "phr", "max_age": "300", "client_id": oidctest.CLIClientID, "code_challenge_method": "S256"} {
		if got := last[k]; len(got) != 1 || got[0] != want {
			t.Errorf("step-up authorization request %s = %v, want %q", k, got, want)
		}
	}
	if ru := last["redirect_uri"]; len(ru) != 1 || !strings.HasPrefix(ru[0], "http://127.0.0.1:") || !strings.HasSuffix(ru[0], "/callback") {
		t.Errorf("redirect_uri = %v, want a loopback one", ru)
	}
	if last["nonce"] == nil || last["state"] == nil {
		t.Errorf("no nonce or state: %v", last)
	}
	for _, want := range []string{"the server asks for a stronger or more recent sign-in", "prompt=login, acr_values phr, max_age 300 s"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, want := range []string{"STEP-UP REQUIRED", "aws_iam_role_policy.deployer", "sha256 " + c.PlanSHA256, "Requester:  billing-ci", "✓ Approved check " + c.ID, "grant is issued"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	aps, err := s.st.ListApprovals(context.Background(), c.ID)
	if err != nil || len(aps) != 1 || aps[0].Subject != "alice" || aps[0].AAL != 3 {
		t.Fatalf("approvals %+v %v", aps, err)
	}

	// The sign-in is cached, only for its owner, and used again without a
	// browser.
	files, _ := filepath.Glob(filepath.Join(s.loginDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("cached sign-ins: %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	r = personRun{s: s, b: b}.run(t, "review", "list")
	if r.code != ExitOK || !strings.Contains(r.stdout, "No check is waiting for you.") || b.count() != 2 {
		t.Errorf("review list: exit %d, browser %d\n%s%s", r.code, b.count(), r.stdout, r.stderr)
	}
}

// TestApproveSecondChallengeFails: a provider that does not reach the
// level asked for: the second challenge ends the command with exit 3.
func TestApproveSecondChallengeFails(t *testing.T) {
	s := newPeopleServer(t)
	c := s.pendingCheck(t)
	b := &browser{p: s.p, logins: []oidctest.Login{weakLogin}}
	r := personRun{s: s, b: b}.run(t, "approve", c.ID, "--yes")
	if r.code != ExitStepUp {
		t.Fatalf("approve exit %d, want %d\nstdout: %s\nstderr: %s", r.code, ExitStepUp, r.stdout, r.stderr)
	}
	if b.count() != 2 {
		t.Errorf("browser opened %d times, want 2: the step-up is tried once", b.count())
	}
	if !strings.Contains(r.stderr, "still asks for a stronger or more recent sign-in") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if got := s.state(t, c.ID); got != store.StatePending {
		t.Fatalf("check state = %s, want pending", got)
	}
}

func TestApproveConfirmation(t *testing.T) {
	s := newPeopleServer(t)
	c := s.pendingCheck(t)
	for _, tt := range []struct {
		name  string
		run   personRun
		code  int
		state store.CheckState
	}{
		{"fail/no-terminal-without-yes", personRun{tty: false}, ExitUsage, store.StatePending},
		{"fail/answered-no", personRun{tty: true, stdin: ttyIn{strings.NewReader("y\n")}}, ExitInternal, store.StatePending},
		{"ok/answered-yes", personRun{tty: true, stdin: ttyIn{strings.NewReader("yes\n")}}, ExitOK, store.StateApproved},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.run.s = s
			tt.run.b = &browser{p: s.p, logins: []oidctest.Login{strongLogin}}
			r := tt.run.run(t, "approve", c.ID)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if got := s.state(t, c.ID); got != tt.state {
				t.Fatalf("check state = %s, want %s", got, tt.state)
			}
		})
	}
}

func TestReviewAndReject(t *testing.T) {
	s := newPeopleServer(t)
	c := s.pendingCheck(t)
	b := &browser{p: s.p, logins: []oidctest.Login{weakLogin}}
	run := personRun{s: s, b: b}

	r := run.run(t, "login")
	if r.code != ExitOK || !strings.Contains(r.stdout, "Signed in to "+s.url+" as alice") {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run.run(t, "review", "list")
	if r.code != ExitOK || !strings.Contains(r.stdout, c.ID) || !strings.Contains(r.stdout, "billing-ci") {
		t.Fatalf("review list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run.run(t, "review", "show", c.ID, "-o", "json")
	var shown api.Check
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &shown) != nil || shown.PlanSHA256 != c.PlanSHA256 || shown.Grant != "" {
		t.Fatalf("review show: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := run.run(t, "review", "show", "chk_nope"); r.code != ExitUsage {
		t.Errorf("show an unknown check: exit %d, want %d", r.code, ExitUsage)
	}
	if r := run.run(t, "reject", c.ID); r.code != ExitUsage {
		t.Errorf("reject without --reason: exit %d", r.code)
	}
	if r := run.run(t, "reject", c.ID, "--reason", "no", "--plan-sha256", strings.Repeat("0", 64)); r.code != ExitDeny || s.state(t, c.ID) != store.StatePending {
		t.Errorf("reject another plan: exit %d\n%s", r.code, r.stderr)
	}
	// Saying no needs no step-up: the weak sign-in is enough.
	r = run.run(t, "reject", c.ID, "--reason", "not during the freeze")
	if r.code != ExitOK || s.state(t, c.ID) != store.StateRejected {
		t.Fatalf("reject: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b.count() != 1 {
		t.Errorf("browser opened %d times, want once (login)", b.count())
	}
	// The check is over: approving it is refused.
	if r := run.run(t, "approve", c.ID, "--yes"); r.code != ExitDeny {
		t.Errorf("approve a rejected check: exit %d\n%s", r.code, r.stderr)
	}
	if r := run.run(t, "logout"); r.code != ExitOK || !strings.Contains(r.stdout, "Signed out") {
		t.Errorf("logout: %d %s", r.code, r.stdout)
	}
	if files, _ := filepath.Glob(filepath.Join(s.loginDir, "*.json")); len(files) != 0 {
		t.Errorf("sign-in still cached after logout: %v", files)
	}
}
