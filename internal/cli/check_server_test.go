package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/clocktest"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// These tests run `stepgate check` and `stepgate apply` against the real
// server (startTestServer: app.NewServer over SQLite). The stand-in of
// check_test.go remains only to inject what a healthy server does not do:
// failures, outages, answers that come at once.

// lockedRule denies every change in a workspace named *-locked.
var lockedRule = policy.Module{Filename: "acme.rego", Source: `package stepgate.rules.acme

findings contains f if {
	endswith(input.operation.workspace, "-locked")
	f := {"rule": "acme.locked", "decision": "deny", "severity": "critical", "addresses": [], "reason": "The workspace is locked for the audit."}
}
`}

// withLockedRule loads lockedRule into the server's policy.
func withLockedRule(o *app.Options, _ string) { o.Modules = []policy.Module{lockedRule} }

// wantNoToken fails when a run printed the API token.
func wantNoToken(t *testing.T, r result, token string) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Errorf("stepgate printed the API token:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
}

// githubOutput reads $GITHUB_OUTPUT's name=value lines.
func githubOutput(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "="); ok {
			out[k] = v
		}
	}
	return out
}

// storedCheck reads a check as the server recorded it.
func storedCheck(t *testing.T, s *testServer, id string) *store.Check {
	t.Helper()
	c, err := s.Store.GetCheck(context.Background(), id)
	if err != nil {
		t.Fatalf("reading check %q: %v", id, err)
	}
	return c
}

// countChecks counts the checks the server holds, in every state.
func countChecks(t *testing.T, s *testServer) int {
	t.Helper()
	n := 0
	for _, state := range []store.CheckState{store.StateAllowed, store.StatePending, store.StateApproved, store.StateRejected, store.StateDenied, store.StateExpired, store.StateConsumed} {
		cs, err := s.Store.ListChecks(context.Background(), state, 100)
		if err != nil {
			t.Fatal(err)
		}
		n += len(cs)
	}
	return n
}

func TestServerCheckAllowed(t *testing.T) {
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "dev-tag-change.plan.json")
	out := filepath.Join(w.dir, "gh-output")
	summary := filepath.Join(w.dir, "gh-summary")
	gh := map[string]string{
		"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/infra", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2",
		"GITHUB_SERVER_URL": "https://github.com", "GITHUB_SHA": "abc123", "GITHUB_REF": "refs/heads/main",
		"GITHUB_WORKFLOW": "deploy", "GITHUB_ACTOR": "octocat",
		"GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": summary,
	}
	r := w.on(s, tok, gh).run(t, "check", "--plan", "plan.json", "--plan-file", "tfplan", "--workspace", "billing-dev", "--environment", "dev")
	wantCode(t, r, ExitOK)
	wantNoToken(t, r, tok)
	id := githubOutput(t, out)["check_id"]
	c := storedCheck(t, s, id)
	wantContains(t, "stdout", r.stdout, "ALLOW", "Check:      "+id+" (allowed)", "Grant:      stepgate.grant ("+c.GrantID+", valid until ")

	grantPath := filepath.Join(w.dir, "stepgate.grant")
	fi, err := os.Stat(grantPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("grant file mode = %v, want 0600", fi.Mode().Perm())
	}
	// The grant is the server's, for this check, bound to the plan sent.
	b, _ := os.ReadFile(grantPath)
	ks, err := s.Gate.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := grant.Verify(context.Background(), string(b), ks, grant.Expect{Issuer: s.Gate.Issuer(), Audience: s.Gate.Audience(), Workspace: "billing-dev", Now: time.Now()})
	if err != nil {
		t.Fatalf("the grant file does not verify with the server's keys: %v", err)
	}
	if claims.Subject != id || claims.ID != c.GrantID || claims.PlanSHA256 != sha256hex(w.planBytes) || claims.PlanFileSHA256 != fileSHA(t, w.planFile) {
		t.Errorf("grant claims sub %q jti %q plan %q plan file %q, want %q %q and the sha256 of plan.json and tfplan", claims.Subject, claims.ID, claims.PlanSHA256, claims.PlanFileSHA256, id, c.GrantID)
	}

	// The server saw the plan and the saved plan byte for byte (their
	// digests are the files'), streamed (no length known in advance:
	// nothing buffered it).
	if c.PlanSHA256 != sha256hex(w.planBytes) || c.PlanFileSHA256 != fileSHA(t, w.planFile) {
		t.Errorf("the server recorded sha256 %s and %s, want those of plan.json and tfplan", c.PlanSHA256, c.PlanFileSHA256)
	}
	creates := s.requests("POST", api.PathChecks)
	if len(creates) != 1 || creates[0].length != -1 {
		t.Fatalf("creates = %+v, want one streamed body (Content-Length -1)", creates)
	}
	q := creates[0].query
	if got, want := q.Get(api.ParamPlanFileHash), fileSHA(t, w.planFile); got != want {
		t.Errorf("plan_file_sha256 = %q, want %q", got, want)
	}
	if q.Get(api.ParamKind) != "terraform.apply" || q.Get(api.ParamWorkspace) != "billing-dev" || q.Get(api.ParamEnvironment) != "dev" {
		t.Errorf("query = %v", q)
	}
	// What the CI environment says goes as claims, never as identity.
	wantPipeline := map[string]string{
		"system": "github-actions", "repository": "acme/infra", "ref": "refs/heads/main", "sha": "abc123",
		"run_id": "42", "run_attempt": "2", "workflow": "deploy", "actor": "octocat",
		"run_url": "https://github.com/acme/infra/actions/runs/42",
	}
	if diff := cmp.Diff(wantPipeline, c.PipelineUnverified); diff != "" {
		t.Errorf("pipeline claims recorded (-want +got):\n%s", diff)
	}
	if len(c.Pipeline) != 0 {
		t.Errorf("an API token's claims became verified pipeline identity: %v", c.Pipeline)
	}

	b, _ = os.ReadFile(out)
	wantContains(t, "$GITHUB_OUTPUT", string(b), "check_id="+id+"\n", "state=allowed\n", "grant_path="+grantPath+"\n")
	b, _ = os.ReadFile(summary)
	wantContains(t, "$GITHUB_STEP_SUMMARY", string(b), "**stepgate check** `"+id+"`: ✅ **allowed**", "### ✅ stepgate: allow", "**Grant:** written to `stepgate.grant`")
}

func TestServerCheckApprovedAfterWaiting(t *testing.T) {
	pace := fastPace()
	pace.Slice = time.Second // the first slice runs out pending (the client asks in whole seconds)
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "prod-iam.plan.json")
	out := filepath.Join(w.dir, "gh-output")
	summary := filepath.Join(w.dir, "gh-summary")
	vars := map[string]string{"GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": summary}
	r := w.on(s, tok, vars).paced(pace).run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod", "--grant-out", "out/g.jws")
	// The directory of --grant-out must exist.
	wantCode(t, r, ExitUsage)
	wantContains(t, "stderr", r.stderr, "--grant-out")
	if n := len(s.requests("POST", api.PathChecks)); n != 0 {
		t.Errorf("the server was asked (%d times) although the grant could not be written", n)
	}

	// alice approves once the pipeline waits a second time.
	approved := s.decideOnWait(t, 2, gate.Proof{Subject: "alice", Approved: true})
	r = w.on(s, tok, vars).paced(pace).run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod", "--grant-out", "g.jws")
	<-approved
	wantCode(t, r, ExitOK)
	wantNoToken(t, r, tok)
	id := githubOutput(t, out)["check_id"]
	c := storedCheck(t, s, id)
	review := s.URL + "/checks/" + id
	wantContains(t, "stdout", r.stdout,
		"STEP-UP REQUIRED  aal 3 (passkey with user verification) · 1 approval by someone other than the requester",
		"identity.escalation", "Review:     "+review, "Approved:   alice (aal 3)", "Grant:      g.jws ("+c.GrantID)
	// Not a terminal: plain progress lines, no carriage returns.
	wantContains(t, "stderr", r.stderr, "waiting for approval · ", " elapsed · ", " left · "+review, "✓ approved by alice (aal 3, hwk user)")
	if strings.Contains(r.stderr, "\r") {
		t.Errorf("progress on a non-terminal carries \\r: %q", r.stderr)
	}
	waits := s.requests("GET", api.PathChecks+"/"+id+"/wait")
	if len(waits) != 2 {
		t.Errorf("%d wait requests, want 2 (one ran out, the approval ended the other)", len(waits))
	}
	for _, wr := range waits {
		if to := wr.query.Get(api.ParamTimeout); to != pace.Slice.String() {
			t.Errorf("wait timeout = %q, want %v slices", to, pace.Slice)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(w.dir, "g.jws")); len(b) == 0 || !strings.HasPrefix(string(b), "ey") {
		t.Errorf("grant = %q, want the server's JWS", b)
	}
	b, _ := os.ReadFile(out)
	wantContains(t, "$GITHUB_OUTPUT", string(b), "check_id="+id+"\n", "state=approved\n", "grant_path="+filepath.Join(w.dir, "g.jws")+"\n", "review_url="+review+"\n")
	b, _ = os.ReadFile(summary)
	wantContains(t, "$GITHUB_STEP_SUMMARY", string(b), "✅ **approved** · [review]("+review+")", "✓ approved by alice",
		"**Needs:** aal 3", "`identity.escalation`")
}

func TestServerCheckTimesOutThenResumes(t *testing.T) {
	pace := fastPace()
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "prod-iam.plan.json")
	out := filepath.Join(w.dir, "gh-output")
	c := w.on(s, tok, map[string]string{"GITHUB_OUTPUT": out}).paced(pace)
	args := []string{"check", "--plan", "plan.json", "--plan-file", "tfplan", "--workspace", "billing-prod", "--wait", "50ms"}
	r := c.run(t, args...)
	wantCode(t, r, ExitStepUp)
	id := githubOutput(t, out)["check_id"]
	wantContains(t, "stderr", r.stderr, "check "+id+" is still pending after 0s", "run the same stepgate check again to resume", s.URL+"/checks/"+id)
	if _, err := os.Stat(filepath.Join(w.dir, "stepgate.grant")); !os.IsNotExist(err) {
		t.Errorf("a grant file exists after exit 3: %v", err)
	}
	b, _ := os.ReadFile(out)
	wantContains(t, "$GITHUB_OUTPUT", string(b), "check_id="+id+"\n", "state=pending\n", "grant_path=\n")

	// --wait 0 does not wait at all.
	waits := len(s.requests("GET", api.PathChecks+"/"))
	r = c.run(t, append(args, "--wait", "0")...)
	wantCode(t, r, ExitStepUp)
	if n := len(s.requests("GET", api.PathChecks+"/")); n != waits {
		t.Errorf("--wait 0 sent %d wait requests", n-waits)
	}

	// Asking again with the same inputs resumes the same check, which is
	// then approved.
	approved := s.decideOnWait(t, 1, gate.Proof{Subject: "alice", Approved: true})
	r = c.run(t, append(args, "--wait", "1m")...)
	<-approved
	wantCode(t, r, ExitOK)
	wantContains(t, "stdout", r.stdout, "Check:      "+id+" (pending), resumed: first asked ")
	if got := githubOutput(t, out)["check_id"]; got != id {
		t.Errorf("the resumed run reports check %q, want %q", got, id)
	}
	if n := countChecks(t, s); n != 1 {
		t.Errorf("the server holds %d checks, want the one resumed", n)
	}
}

// TestServerCheckApprovedWhileAway: the approval comes after --wait ran
// out; the next run gets the grant of the same check at once.
func TestServerCheckApprovedWhileAway(t *testing.T) {
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "prod-iam.plan.json")
	out := filepath.Join(w.dir, "gh-output")
	args := []string{"check", "--plan", "plan.json", "--workspace", "billing-prod", "--wait", "0"}
	wantCode(t, w.on(s, tok, map[string]string{"GITHUB_OUTPUT": out}).paced(fastPace()).run(t, args...), ExitStepUp)
	id := githubOutput(t, out)["check_id"]
	s.decide(t, id, gate.Proof{Subject: "alice", Approved: true})
	r := w.on(s, tok, nil).paced(fastPace()).run(t, args...)
	wantCode(t, r, ExitOK)
	wantContains(t, "stdout", r.stdout, "Check:      "+id+" (approved), resumed", "Approved:   alice (aal 3)", "Grant:      stepgate.grant ("+storedCheck(t, s, id).GrantID)
}

func TestServerCheckRefused(t *testing.T) {
	for _, tt := range []struct {
		name, workspace string
		decide          func(t *testing.T, s *testServer, clk *clocktest.Clock, id string)
		stdout, stderr  []string
	}{
		{"fail/denied", "billing-locked", nil, []string{"DENY", "acme.locked", "The workspace is locked for the audit."}, []string{"was denied by policy"}},
		{"fail/rejected", "billing-prod", func(t *testing.T, s *testServer, _ *clocktest.Clock, id string) {
			s.decide(t, id, gate.Proof{Subject: "bob", Approved: false, Reason: "not during the freeze"})
		}, []string{"✗ rejected by bob (aal 3, hwk user): not during the freeze"}, []string{"was rejected"}},
		{"fail/expired", "billing-prod", func(t *testing.T, s *testServer, clk *clocktest.Clock, id string) {
			clk.Add(2 * time.Hour) // past the check's time to live
			if n, err := s.Gate.ExpireDue(context.Background()); n != 1 || err != nil {
				t.Errorf("ExpireDue = %d, %v; want the check expired", n, err)
			}
		}, nil, []string{" expired at ", "before it was approved"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.New(time.Now())
			s := startTestServer(t, func(o *app.Options, u string) {
				withLockedRule(o, u)
				o.Now = clk.Now
			})
			tok := s.token(t)
			w := workdirWith(t, "prod-iam.plan.json")
			stale := writeFile(t, w.dir, "stepgate.grant", "an older grant")
			done := make(chan struct{})
			if tt.decide != nil {
				go func() {
					defer close(done)
					select {
					case id := <-s.waits:
						tt.decide(t, s, clk, id)
					case <-time.After(30 * time.Second):
						t.Error("the pipeline never waited")
					}
				}()
			} else {
				close(done)
			}
			r := w.on(s, tok, nil).paced(fastPace()).run(t, "check", "--plan", "plan.json", "--workspace", tt.workspace)
			<-done
			wantCode(t, r, ExitDeny)
			wantContains(t, "stdout", r.stdout, tt.stdout...)
			wantContains(t, "stderr", r.stderr, tt.stderr...)
			if _, err := os.Stat(stale); !os.IsNotExist(err) {
				t.Errorf("the older grant is still there after a refusal: %v", err)
			}
		})
	}
}

func TestServerCheckJSON(t *testing.T) {
	s := startTestServer(t, withLockedRule)
	tok := s.token(t)
	w := workdirWith(t, "prod-iam.plan.json")
	approved := s.decideOnWait(t, 1, gate.Proof{Subject: "alice", Approved: true})
	r := w.on(s, tok, nil).paced(fastPace()).run(t, "check", "--plan", "plan.json", "--workspace", "billing-prod", "-o", "json")
	<-approved
	wantCode(t, r, ExitOK)
	var got api.Check
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not one api.Check: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Errorf("stdout has more than one JSON value:\n%s", r.stdout)
	}
	c := storedCheck(t, s, got.ID)
	review := s.URL + "/checks/" + got.ID
	if got.State != stateApproved || got.GrantID == "" || got.GrantID != c.GrantID || got.Assessment == nil || got.ReviewURL != review {
		t.Errorf("result = %+v", got)
	}
	grantFile, _ := os.ReadFile(filepath.Join(w.dir, "stepgate.grant"))
	if got.Grant != "" || len(grantFile) == 0 || strings.Contains(r.stdout, string(grantFile)) {
		t.Errorf("--output json printed the grant itself:\n%s", r.stdout)
	}
	// People reading the log still learn where to approve, on stderr.
	wantContains(t, "stderr", r.stderr, "Needs:      aal 3", "Review:     "+review)

	// A denial in JSON still says why on stderr, and prints the check.
	r = w.on(s, tok, nil).paced(fastPace()).run(t, "check", "--plan", "plan.json", "--workspace", "billing-locked", "-o", "json")
	wantCode(t, r, ExitDeny)
	wantContains(t, "stderr", r.stderr, "Denied:     acme.locked: The workspace is locked for the audit.")
	wantContains(t, "stdout", r.stdout, `"state": "denied"`)
}

func TestServerCheckInputs(t *testing.T) {
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "dev-tag-change.plan.json")
	tokenFile := writeFile(t, w.dir, "token", tok+"\n")
	out := filepath.Join(w.dir, "gh-output")
	idOf := func() string { return githubOutput(t, out)["check_id"] }

	// secret.read sends no plan (and the default policy holds it for a
	// step-up: --wait 0 leaves it pending).
	r := w.on(s, tok, map[string]string{"GITHUB_OUTPUT": out}).run(t, "check", "--kind", "secret.read", "--workspace", "vault-dev", "--wait", "0")
	wantCode(t, r, ExitStepUp)
	if c := storedCheck(t, s, idOf()); c.PlanSHA256 != "" || c.Kind != "secret.read" {
		t.Errorf("secret.read recorded kind %q with a plan (sha256 %q)", c.Kind, c.PlanSHA256)
	}
	// The plan from standard input, the token from a file.
	c := call{vars: map[string]string{envServer: s.URL + "/", "GITHUB_OUTPUT": out}, dir: w.dir, stdin: string(w.planBytes)}
	r = c.run(t, "check", "--plan", "-", "--workspace", "billing-dev", "--token-file", tokenFile)
	wantCode(t, r, ExitOK)
	wantNoToken(t, r, tok)
	if got := storedCheck(t, s, idOf()).PlanSHA256; got != sha256hex(w.planBytes) {
		t.Errorf("the plan from standard input did not reach the server (sha256 %s)", got)
	}
	// $STEPGATE_TOKEN_FILE.
	c = call{vars: map[string]string{envServer: s.URL, envTokenFile: tokenFile}, dir: w.dir}
	r = c.run(t, "check", "--plan", "plan.json", "--workspace", "billing-dev")
	wantCode(t, r, ExitOK)
	creates := s.requests("POST", api.PathChecks)
	if last := creates[len(creates)-1].authorization; last != "Bearer "+tok {
		t.Errorf("Authorization = %q, want the token from the file", last)
	}

	// A plan the server cannot read is bad input.
	writeFile(t, w.dir, "not-json.json", "this is not a plan")
	r = w.on(s, tok, nil).run(t, "check", "--plan", "not-json.json", "--workspace", "billing-dev")
	wantCode(t, r, ExitUsage)
	wantContains(t, "stderr", r.stderr, "creating check: server answered 400 bad_request: ")
}

func TestServerCheckRefusesCaller(t *testing.T) {
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "dev-tag-change.plan.json")
	for _, tt := range []struct {
		name, token, ws, want string
	}{
		{"fail/401", "sgt_wrong", "billing-dev", "server answered 401 unauthorized: "},
		{"fail/403", tok, "someone-elses", "server answered 403 forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := w.on(s, tt.token, nil).run(t, "check", "--plan", "plan.json", "--workspace", tt.ws)
			wantCode(t, r, ExitInternal)
			wantContains(t, "stderr", r.stderr, tt.want)
			if _, err := os.Stat(filepath.Join(w.dir, "stepgate.grant")); !os.IsNotExist(err) {
				t.Errorf("a grant file exists: %v", err)
			}
		})
	}
	if n := countChecks(t, s); n != 0 {
		t.Errorf("refused callers left %d checks", n)
	}
}

// TestServerApply: a grant the server issued runs the command once; the
// server records its use and the outcome; a replay is refused.
func TestServerApply(t *testing.T) {
	s := startTestServer(t, nil)
	tok := s.token(t)
	w := workdirWith(t, "dev-tag-change.plan.json")
	out := filepath.Join(w.dir, "gh-output")
	wantCode(t, w.on(s, tok, map[string]string{"GITHUB_OUTPUT": out}).run(t, "check", "--plan", "plan.json", "--plan-file", "tfplan", "--workspace", "billing-dev"), ExitOK)
	id := githubOutput(t, out)["check_id"]
	grantID := storedCheck(t, s, id).GrantID
	flags := []string{"apply", "--grant", "stepgate.grant", "--plan", "plan.json", "--plan-file", "tfplan", "--workspace", "billing-dev", "--", "sh", "-c"}

	c := w.on(s, tok, nil)
	c.stdin = "from stdin\n"
	r := c.run(t, append(flags, `touch ran; cat; echo "check=$STEPGATE_CHECK_ID grant=$STEPGATE_GRANT_ID token=${STEPGATE_TOKEN:-unset}"; exit 3`)...)
	wantCode(t, r, 3)
	wantNoToken(t, r, tok)
	if r.stdout != "from stdin\ncheck="+id+" grant="+grantID+" token=unset\n" {
		t.Errorf("the command's stdout = %q", r.stdout)
	}
	wantContains(t, "stderr", r.stderr, "stepgate: grant "+grantID+" of check "+id+" (terraform.apply, workspace billing-dev) verified and used; running sh -c",
		"stepgate: sh exited with 3 after ")
	if st := storedCheck(t, s, id).State; st != store.StateConsumed {
		t.Errorf("check state after apply = %q, want consumed", st)
	}
	if n := len(s.requests("POST", api.PathChecks+"/"+id+"/outcome")); n != 1 {
		t.Errorf("%d outcomes reported, want 1", n)
	}

	// A replay is refused by the server before anything runs.
	os.Remove(filepath.Join(w.dir, "ran"))
	r = w.on(s, tok, nil).run(t, append(flags, "touch ran")...)
	wantCode(t, r, ExitGrant)
	wantContains(t, "stderr", r.stderr, "grant already used, sh not run: server answered 409 conflict")
	if _, err := os.Stat(filepath.Join(w.dir, "ran")); err == nil {
		t.Error("a replayed grant ran the command")
	}

	// A grant for another plan is refused on this side, and not used.
	wantCode(t, w.on(s, tok, map[string]string{"GITHUB_OUTPUT": out}).run(t, "check", "--plan", "plan.json", "--workspace", "other-dev", "--grant-out", "other.grant"), ExitOK)
	other := githubOutput(t, out)["check_id"]
	writeFile(t, w.dir, "plan.json", string(bytes.ReplaceAll(w.planBytes, []byte(`"dev"`), []byte(`"qa"`))))
	r = w.on(s, tok, nil).run(t, "apply", "--grant", "other.grant", "--plan", "plan.json", "--workspace", "other-dev", "--", "touch", "ran")
	wantCode(t, r, ExitGrant)
	wantContains(t, "stderr", r.stderr, "grant refused (plan changed)")
	if st := storedCheck(t, s, other).State; st != store.StateAllowed {
		t.Errorf("a refused grant's check is %q, want still allowed (unused)", st)
	}
}
