package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
)

// ---------------------------------------------------------------------------
// STAND-IN SERVER, for faults only. The commands are tested against the
// real server in check_server_test.go (startTestServer). standIn follows
// the documented contract of internal/api just far enough to inject what a
// healthy server does not do: failing (createFails, failWaits), and
// answering a wait at once, with partial news (partialAt). Faults of
// apply are injected in front of the real server (testServer.fail).
// ---------------------------------------------------------------------------

const standInToken = "sgt_test-0123456789abcdef"

// standIn decides by workspace name: *-dev is allowed, *-locked is denied,
// anything else needs a step-up, which the wait endpoint settles (approved,
// rejected or expired) on the settleAfter-th wait request.
type standIn struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	settleAfter int    // wait requests before a pending check is settled; 0: never
	settleAs    string // approved (default), rejected or expired
	failWaits   int    // answer this many wait requests 503 first
	partialAt   int    // on this wait request, record an approval that is not enough
	createFails int    // answer create with this status (0: normally)
	checks      map[string]*api.Check
	byInputs    map[string]string // pending check id by inputs, to resume
	plans       map[string][]byte // the plan body each check was created with
	queries     []url.Values      // of every create
	lengths     []int64           // Content-Length of every create (-1: streamed)
	tokens      []string          // Authorization of every request
	waits       int
	timeouts    []string // timeout parameter of every wait
}

func newStandIn(t *testing.T) *standIn {
	s := &standIn{
		t: t, settleAfter: 3, settleAs: stateApproved,
		checks: map[string]*api.Check{}, byInputs: map[string]string{}, plans: map[string][]byte{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathChecks, s.create)
	mux.HandleFunc("GET "+api.PathChecks+"/{id}", s.get)
	mux.HandleFunc("GET "+api.PathChecks+"/{id}/wait", s.wait)
	s.srv = httptest.NewServer(s.auth(mux))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) URL() string { return s.srv.URL }

func (s *standIn) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.tokens = append(s.tokens, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if r.URL.Path != api.PathJWKS && r.Header.Get("Authorization") != "Bearer "+standInToken {
			apiError(w, http.StatusUnauthorized, api.CodeUnauthorized, "no valid token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Error{Error: api.ErrorBody{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *standIn) create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, api.CodeTooLarge, "plan too large")
		return
	}
	q := r.URL.Query()
	// With --plan-file, the plan and the saved plan come as multipart parts;
	// the stand-in binds the digest of the saved plan it received, as the
	// server does (it does not compare them: see internal/httpapi).
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		parts, err := readParts(r.Header.Get("Content-Type"), body)
		if err != nil || len(parts) != 2 || parts[0][0] != api.PartPlan || parts[1][0] != api.PartPlanFile {
			apiError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("multipart body: %v", err))
			return
		}
		body = []byte(parts[0][1])
		sent := sha256hex([]byte(parts[1][1]))
		if claimed := q.Get(api.ParamPlanFileHash); claimed != "" && claimed != sent {
			apiError(w, http.StatusBadRequest, api.CodeSavedPlan, "plan_file_sha256 is not the sha256 of the saved plan sent")
			return
		}
		q.Set(api.ParamPlanFileHash, sent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	s.lengths = append(s.lengths, r.ContentLength)
	if s.createFails != 0 {
		apiError(w, s.createFails, "internal", "stepgate could not decide")
		return
	}
	kind, ws := q.Get(api.ParamKind), q.Get(api.ParamWorkspace)
	switch {
	case ws == "":
		apiError(w, http.StatusBadRequest, api.CodeBadRequest, "workspace is required")
		return
	case ws == "someone-elses":
		apiError(w, http.StatusForbidden, api.CodeForbidden, "token may not ask for workspace someone-elses")
		return
	case len(body) == 0 && kind != "secret.read":
		apiError(w, http.StatusBadRequest, api.CodeBadRequest, "a "+kind+" needs a plan")
		return
	case len(body) > 0 && !json.Valid(body):
		apiError(w, http.StatusBadRequest, api.CodeBadRequest, "plan: not JSON")
		return
	}
	planSHA := ""
	if len(body) > 0 {
		planSHA = sha256hex(body)
	}
	inputs := strings.Join([]string{kind, ws, q.Get(api.ParamEnvironment), planSHA, q.Get(api.ParamPlanFileHash)}, "\n")
	// Resumed: a pending check, and also an approved one whose grant was
	// not used yet (the pipeline stopped waiting just before the approval;
	// the e2e tests expect the real server to do the same).
	if id, ok := s.byInputs[inputs]; ok && (s.checks[id].State == statePending || s.checks[id].State == stateApproved) {
		v := *s.checks[id]
		v.Resumed = true
		writeJSON(w, http.StatusOK, &v)
		return
	}
	id := fmt.Sprintf("chk_%d", len(s.checks)+1)
	now := time.Now().UTC().Truncate(time.Second)
	c := &api.Check{
		ID: id, Kind: kind, Workspace: ws, Environment: q.Get(api.ParamEnvironment),
		PlanSHA256: planSHA, PlanFileSHA256: q.Get(api.ParamPlanFileHash), Requester: "ci-token",
		Pipeline: map[string]string{}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Approvals: []api.Approval{},
	}
	for k := range q {
		if name, ok := strings.CutPrefix(k, api.ParamPipelinePrefix); ok {
			c.Pipeline[name] = q.Get(k)
		}
	}
	a := &policy.Assessment{
		Summary: policy.Summary{Kind: kind, Workspace: ws, Changes: 1, Total: 1, ByAction: map[string]int{"update": 1}},
		Plan:    policy.PlanInfo{Format: "terraform", FormatVersion: "1.2", SHA256: planSHA},
	}
	switch {
	case strings.HasSuffix(ws, "-dev"):
		a.Decision, a.Findings = policy.Allow, []policy.Finding{}
		c.State = stateAllowed
		s.issue(c)
	case strings.HasSuffix(ws, "-locked"):
		a.Decision = policy.Deny
		a.Findings = []policy.Finding{{Rule: "acme.locked", Decision: policy.Deny, Severity: "critical",
			Addresses: []string{"aws_db_instance.main"}, Reason: "The workspace is locked for the audit."}}
		c.State = stateDenied
	default:
		req := &policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}
		a.Decision, a.Requirements = policy.StepUp, req
		a.Findings = []policy.Finding{{Rule: "sensitive.change", Decision: policy.StepUp, Severity: "critical",
			Addresses: []string{"aws_iam_role_policy.deployer"}, Reason: "1 change to identity and access (aws_iam_role_policy).", Requirements: req}}
		c.State = statePending
		c.ReviewURL = s.srv.URL + "/checks/" + id
		s.byInputs[inputs] = id
	}
	c.Assessment = a
	s.checks[id] = c
	s.plans[id] = body
	writeJSON(w, http.StatusCreated, c)
}

// issue gives a check its grant (the caller of the stand-in is always the
// token that asked, so the grant is always shown).
func (s *standIn) issue(c *api.Check) {
	exp := time.Now().UTC().Add(15 * time.Minute).Truncate(time.Second)
	c.GrantID = "grt_" + strings.TrimPrefix(c.ID, "chk_")
	c.GrantExpiresAt = &exp
	c.Grant = "grant-of-" + c.ID
}

func (s *standIn) lookup(w http.ResponseWriter, r *http.Request) *api.Check {
	c := s.checks[r.PathValue("id")]
	if c == nil {
		apiError(w, http.StatusNotFound, api.CodeNotFound, "no check "+r.PathValue("id"))
	}
	return c
}

func (s *standIn) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.lookup(w, r); c != nil {
		writeJSON(w, http.StatusOK, c)
	}
}

// wait answers at once instead of holding the request: the CLI must cope
// with a server that does (it paces itself).
func (s *standIn) wait(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeouts = append(s.timeouts, r.URL.Query().Get(api.ParamTimeout))
	if d, err := time.ParseDuration(r.URL.Query().Get(api.ParamTimeout)); err != nil || d <= 0 || d > time.Minute {
		apiError(w, http.StatusBadRequest, api.CodeBadRequest, "timeout: want a duration up to 60s")
		return
	}
	if s.failWaits > 0 {
		s.failWaits--
		apiError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the store cannot be reached")
		return
	}
	c := s.lookup(w, r)
	if c == nil {
		return
	}
	s.waits++
	if c.State == statePending && s.partialAt == s.waits {
		now := time.Now().UTC().Truncate(time.Second)
		c.Approvals = append(c.Approvals, api.Approval{Subject: "bob@example.com", Approved: true, AMR: []string{"otp"}, AAL: 2, AuthTime: now, CreatedAt: now})
	}
	if c.State == statePending && s.settleAfter > 0 && s.waits >= s.settleAfter {
		s.settle(c)
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *standIn) settle(c *api.Check) {
	now := time.Now().UTC().Truncate(time.Second)
	switch s.settleAs {
	case stateRejected:
		c.State = stateRejected
		c.Approvals = append(c.Approvals, api.Approval{Subject: "bob@example.com", Approved: false, Reason: "not during the freeze", AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: now, CreatedAt: now})
	case stateExpired:
		c.State = stateExpired
	default:
		c.State = stateApproved
		c.Approvals = append(c.Approvals, api.Approval{Subject: "alice@example.com", Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: now, CreatedAt: now})
		s.issue(c)
	}
	c.ReviewURL = "" // the server shows it only while pending
}

// ---------------------------------------------------------------------------
// Running the command line against it.
// ---------------------------------------------------------------------------

// call is one in-process run of stepgate with its own environment.
type call struct {
	vars  map[string]string
	dir   string
	stdin string
	tty   bool
	pace  *WaitPace // nil: the real pace
}

// paced is c with the wait paced by p.
func (c call) paced(p *WaitPace) call {
	c.pace = p
	return c
}

func (c call) run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdin:      strings.NewReader(c.stdin),
		Stdout:     &out,
		Stderr:     &errOut,
		Getenv:     func(k string) string { return c.vars[k] },
		Dir:        c.dir,
		IsTerminal: func(io.Writer) bool { return c.tty },
		Pace:       c.pace,
	}
	code := Run(context.Background(), args, env)
	r := result{code, out.String(), errOut.String()}
	if strings.Contains(r.stdout+r.stderr, standInToken) {
		t.Errorf("stepgate %s printed the API token:\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// fastPace is a pace that makes the wait loop quick for a test.
func fastPace() *WaitPace {
	p := DefaultWaitPace
	p.MinPoll, p.Progress, p.Tick, p.Retry = time.Millisecond, time.Millisecond, 5*time.Millisecond, time.Millisecond
	return &p
}

// workdir is a directory with a plan JSON and a saved plan in it.
type workdir struct {
	dir, plan, planFile string
	planBytes           []byte
}

func newWorkdir(t *testing.T) workdir {
	t.Helper()
	raw, err := os.ReadFile("../../examples/prod-iam.plan.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := workdir{dir: dir, planBytes: raw}
	w.plan = writeFile(t, dir, "plan.json", string(raw))
	w.planFile = writeFile(t, dir, "tfplan", "PK\x03\x04 a saved plan, or something that starts like one")
	return w
}

func (w workdir) call(s *standIn, extra map[string]string) call {
	vars := map[string]string{envServer: s.URL(), envToken: standInToken}
	for k, v := range extra {
		vars[k] = v
	}
	return call{vars: vars, dir: w.dir}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256hex(b)
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

// ---------------------------------------------------------------------------
// stepgate check
// ---------------------------------------------------------------------------

func TestCheckProgressOnTerminal(t *testing.T) {
	pace := fastPace()
	s := newStandIn(t)
	w := newWorkdir(t)
	pace.MinPoll = 30 * time.Millisecond // long enough for a few redraws
	c := w.call(s, nil).paced(pace)
	c.tty = true
	r := c.run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod", "--wait", "10m")
	wantCode(t, r, ExitOK)
	wantContains(t, "stderr", r.stderr, "\r\x1b[Kwaiting for approval · 0s elapsed · 10m00s left · "+s.URL()+"/checks/chk_1")
	if strings.Count(r.stderr, "\n") != 1 { // the approval line only
		t.Errorf("progress on a terminal printed lines of its own:\n%q", r.stderr)
	}
	if !strings.HasSuffix(r.stderr, "\r\x1b[K") {
		t.Errorf("the progress line was not cleared at the end: %q", r.stderr)
	}
}

// TestCheckNoPauseAfterNews: after an answer that brought an approval the
// CLI asks again at once, so the last approval's grant arrives without the
// pause that keeps a server answering at once from becoming a busy loop.
func TestCheckNoPauseAfterNews(t *testing.T) {
	pace := fastPace()
	pace.MinPoll = time.Minute
	s := newStandIn(t)
	s.partialAt, s.settleAfter = 1, 2
	w := newWorkdir(t)
	start := time.Now()
	r := w.call(s, nil).paced(pace).run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod")
	wantCode(t, r, ExitOK)
	wantContains(t, "stderr", r.stderr, "✓ approved by bob@example.com (aal 2, otp)\n", "✓ approved by alice@example.com (aal 3, hwk user)\n")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("check took %v: it paused after an answer with news", d)
	}
}

func TestCheckWaitSurvivesOutage(t *testing.T) {
	pace := fastPace()
	s := newStandIn(t)
	s.failWaits = 2
	w := newWorkdir(t)
	r := w.call(s, nil).paced(pace).run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod")
	wantCode(t, r, ExitOK)
	wantContains(t, "stderr", r.stderr, "server answered 503 unavailable: the store cannot be reached; asking again in ")

	// An outage that outlasts --wait is an error, not a pending check.
	s = newStandIn(t)
	s.failWaits = 1 << 30
	r = w.call(s, nil).paced(pace).run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod", "--wait", "50ms")
	wantCode(t, r, ExitInternal)
	wantContains(t, "stderr", r.stderr, "waiting for check chk_1: server answered 503")
}

func TestCheckBadInput(t *testing.T) {
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "dev-tag-change.plan.json")
	writeFile(t, w.dir, "not-json.json", "this is not a plan")
	empty := writeFile(t, w.dir, "empty-token", "\n")
	base := []string{"check", "--plan", "plan.json", "--workspace", "billing-dev"}
	for _, tt := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"fail/no-workspace", nil, []string{"check", "--plan", "plan.json"}, "--workspace is required"},
		{"fail/no-plan", nil, []string{"check", "--workspace", "billing-dev"}, "--plan is required"},
		{"fail/missing-plan", nil, []string{"check", "--plan", "nope.json", "--workspace", "billing-dev"}, "nope.json: no such file"},
		{"fail/plan-is-dir", nil, []string{"check", "--plan", ".", "--workspace", "billing-dev"}, "not a regular file"},
		{"fail/saved-plan-as-plan", nil, []string{"check", "--plan", "tfplan", "--workspace", "billing-dev"}, "terraform show -json tfplan > plan.json"},
		{"fail/missing-plan-file", nil, append(base, "--plan-file", "nope"), "--plan-file"},
		{"fail/bad-output", nil, append(base, "-o", "markdown"), `--output "markdown"`},
		{"fail/bad-kind", nil, append(base, "--kind", "terraform.yolo"), `kind "terraform.yolo"`},
		{"fail/negative-wait", nil, append(base, "--wait", "-1s"), "--wait must not be negative"},
		{"fail/bad-wait", nil, append(base, "--wait", "soon"), "invalid argument"},
		{"fail/no-server", map[string]string{envServer: ""}, base, "no server: set $STEPGATE_SERVER or --server"},
		{"fail/bad-server", map[string]string{envServer: "gate.example.com"}, base, "want an http:// or https:// URL"},
		{"fail/no-token", map[string]string{envToken: ""}, base, "no API token: set $STEPGATE_TOKEN"},
		{"fail/missing-token-file", map[string]string{envToken: ""}, append(base, "--token-file", "nope"), "reading token file"},
		{"fail/empty-token-file", map[string]string{envToken: ""}, append(base, "--token-file", empty), "is empty"},
		{"fail/server-400", nil, []string{"check", "--plan", "not-json.json", "--workspace", "billing-dev"}, "creating check: server answered 400 bad_request: plan: plan is not valid JSON"},
		{"fail/token-flag", nil, append(base, "--token", "x"), "unknown flag: --token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := w.on(s, tok, tt.vars)
			r := c.run(t, tt.args...)
			wantCode(t, r, ExitUsage)
			wantContains(t, "stderr", r.stderr, tt.want)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on bad input", r.stdout)
			}
		})
	}
}

func TestCheckServerFailures(t *testing.T) {
	w := newWorkdir(t)
	down := newStandIn(t)
	down.srv.Close()
	for _, tt := range []struct {
		name  string
		setup func(s *standIn) *standIn
		vars  map[string]string
		ws    string
		want  string
	}{
		{"fail/unreachable", func(*standIn) *standIn { return down }, nil, "billing-dev", "creating check: reaching stepgate server: "},
		{"fail/500", func(s *standIn) *standIn { s.createFails = 500; return s }, nil, "billing-dev", "server answered 500 internal: stepgate could not decide"},
		{"fail/503", func(s *standIn) *standIn { s.createFails = 503; return s }, nil, "billing-dev", "server answered 503"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.setup(newStandIn(t))
			r := w.call(s, tt.vars).run(t, "check", "--plan", "plan.json", "--workspace", tt.ws)
			wantCode(t, r, ExitInternal)
			wantContains(t, "stderr", r.stderr, tt.want)
			if _, err := os.Stat(filepath.Join(w.dir, "stepgate.grant")); !os.IsNotExist(err) {
				t.Errorf("a grant file exists: %v", err)
			}
		})
	}
}

func TestShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 130 * time.Second: "2m10s", 27*time.Minute + 50*time.Second: "27m50s",
		time.Hour + 5*time.Minute: "1h05m00s", -time.Second: "0s", 1499 * time.Millisecond: "1s",
	} {
		if got := short(d); got != want {
			t.Errorf("short(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestGitHubOutputMultiline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	if err := appendGitHubOutput(path, [][2]string{{"a", "1"}, {"b", "x\ninjected=yes"}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	if lines[0] != "a=1" || !strings.HasPrefix(lines[1], "b<<ghadelimiter_") || lines[2] != "x" || lines[3] != "injected=yes" || lines[4] != strings.TrimPrefix(lines[1], "b<<") {
		t.Errorf("$GITHUB_OUTPUT = %q", b)
	}
}

// readParts splits a multipart body into its parts' names and contents.
func readParts(contentType string, body []byte) ([][2]string, error) {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, err
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out [][2]string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{p.FormName(), string(b)})
	}
}
