package hcpterraform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/integrations/hcpterraform"
	"github.com/stepgate/stepgate/internal/integrations/hcpterraform/hcptest"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

var hmacKey = []byte("run-task-hmac-key")

type env struct {
	t      *testing.T
	st     store.Store
	svc    *gate.Service
	hub    *gate.Hub
	master *keys.Master
	hcp    *hcptest.Server
	cfg    hcpterraform.Config
	url    string // stepgate's run task endpoint
	stop   func()
}

func newEnv(t *testing.T, tune func(*hcpterraform.Config)) *env {
	t.Helper()
	return newEnvPolicy(t, tune, nil)
}

// newEnvPolicy is newEnv with the policy's configuration tuned.
func newEnvPolicy(t *testing.T, tune func(*hcpterraform.Config), pol func(*policy.Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, err := keys.NewMaster(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(master, time.Now)
	if _, err := ring.Ensure(ctx, st); err != nil {
		t.Fatal(err)
	}
	pc := policy.DefaultConfig()
	if pol != nil {
		pol(&pc)
	}
	engine, err := policy.New(ctx, pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := gate.New(st, engine, ring, gate.Config{PublicURL: "https://stepgate.example.com"}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	for _, n := range []string{"alice", "bob", "carol"} {
		if err := st.CreateUser(ctx, &store.User{ID: "usr_" + n, Name: n, Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, st: st, svc: svc, hub: gate.NewHub(), master: master, hcp: hcptest.New(t)}
	e.cfg = hcpterraform.Config{HMACKey: hmacKey, APIHosts: []string{e.hcp.Host()}, Workspace: "{workspace}",
		Heartbeat: 100 * time.Millisecond, Attempts: 3, RetryBackoff: 10 * time.Millisecond}
	if tune != nil {
		tune(&e.cfg)
	}
	e.start(t)
	return e
}

// start runs a runner (a server) over the environment's store.
func (e *env) start(t *testing.T) { e.startAt(t, time.Now) }

// startAt is start with the runner's clock.
func (e *env) startAt(t *testing.T, now func() time.Time) {
	t.Helper()
	r, err := hcpterraform.New(e.cfg, e.svc, e.hub, e.st, e.master, slog.New(slog.NewTextHandler(io.Discard, nil)), now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	wg.Go(func() { _ = e.hub.Run(ctx, e.st) })
	srv := httptest.NewServer(r.Handler())
	e.url = srv.URL
	e.stop = func() { srv.Close(); cancel(); wg.Wait() }
	t.Cleanup(e.stop)
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends a body signed with sig (computed when "sign").
func (e *env) post(t *testing.T, body []byte, sig string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "TFC/1.0 (+https://app.terraform.io; TFC)")
	if sig == "sign" {
		sig = hcpterraform.Sign(hmacKey, body)
	}
	if sig != "" {
		req.Header.Set(hcpterraform.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *env) send(t *testing.T, p map[string]any) int {
	t.Helper()
	b, _ := json.Marshal(p)
	return e.post(t, b, "sign")
}

func (e *env) refusals(t *testing.T) []string {
	t.Helper()
	events, err := e.st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		if ev.Type == audit.IntegrationRefused {
			var d struct{ Reason string }
			_ = json.Unmarshal(ev.Data, &d)
			out = append(out, d.Reason)
		}
	}
	return out
}

func (e *env) approve(t *testing.T, checkID string, people ...string) {
	t.Helper()
	for _, p := range people {
		v, err := e.svc.Record(context.Background(), checkID, &gate.Proof{Subject: p, Groups: []string{gate.DefaultApproverGroup}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()})
		if err != nil {
			t.Fatalf("approving as %s: %v", p, err)
		}
		if v.State == "approved" {
			return
		}
	}
	t.Fatalf("check %s not approved by %v", checkID, people)
}

// done waits until stepgate is done with a run task: it polls the store,
// which has no notification of run tasks, for at most 20 seconds.
func (e *env) done(t *testing.T, id string) *store.RunTask {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rt, err := e.st.GetRunTask(context.Background(), id)
		if err == nil && rt.State == store.RunTaskDone {
			return rt
		}
		if time.Now().After(deadline) {
			t.Fatalf("run task %s not done: %+v, %v", id, rt, err)
		}
		select {
		case <-e.hcp.Results():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func checkID(t *testing.T, c hcptest.Callback) string {
	t.Helper()
	u := c.Result.Data.Attributes.URL
	i := strings.LastIndex(u, "/checks/")
	if i < 0 {
		t.Fatalf("callback URL %q is not a review URL", u)
	}
	return u[i+len("/checks/"):]
}

func TestSignatureFirst(t *testing.T) {
	e := newEnv(t, nil)
	e.hcp.SetPlan("plan-dev", example(t, "dev-tag-change.plan.json"))
	body, _ := json.Marshal(e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev"))
	for _, tt := range []struct {
		name, sig string
		want      int
	}{
		{"fail/missing", "", http.StatusUnauthorized},
		{"fail/not-hex", "zz", http.StatusUnauthorized},
		{"fail/other-key", hcpterraform.Sign([]byte("other"), body), http.StatusUnauthorized},
		{"fail/other-body", hcpterraform.Sign(hmacKey, append(body, ' ')), http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.post(t, body, tt.sig); got != tt.want {
				t.Errorf("POST with signature %q = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
	// Unsigned, they are anyone's: the first is audited at once, the
	// others of this source are counted into the next a minute later.
	if got := len(e.refusals(t)); got != 1 {
		t.Errorf("%d refusals audited, want 1", got)
	}
	if _, err := e.st.GetRunTask(context.Background(), "taskrs-1"); err == nil {
		t.Error("a run task with a bad signature was recorded")
	}
	// The verification request: 200, nothing done.
	ping := e.hcp.Request("taskrs-0", "run-0", "test", "billing-dev", "plan-dev")
	ping["access_token"] = "test-token"
	if got := e.send(t, ping); got != http.StatusOK {
		t.Errorf("verification request = %d, want 200", got)
	}
	if _, err := e.st.GetRunTask(context.Background(), "taskrs-0"); err == nil {
		t.Error("the verification request was recorded as a run task")
	}
}

func TestPostPlanAllowedPasses(t *testing.T) {
	e := newEnv(t, nil)
	e.hcp.SetPlan("plan-dev", example(t, "dev-tag-change.plan.json"))
	if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev")); got != http.StatusOK {
		t.Fatalf("run task request = %d, want 200", got)
	}
	c, running := e.hcp.Final(t)
	if c.Task != "taskrs-1" || c.Result.Data.Attributes.Status != "passed" || running != 0 {
		t.Errorf("callback = %s %+v after %d running, want passed at once", c.Task, c.Result.Data.Attributes, running)
	}
	rt := e.done(t, "taskrs-1")
	if rt.CheckID == "" {
		t.Fatalf("run task after its result = %+v", rt)
	}
	ck, err := e.st.GetCheck(context.Background(), rt.CheckID)
	if err != nil {
		t.Fatal(err)
	}
	if ck.PipelineUnverified["message"] != "Triggered via UI" || ck.Pipeline["message"] != "" {
		t.Errorf("the run's message is %q verified, %q unverified; want it unverified only", ck.Pipeline["message"], ck.PipelineUnverified["message"])
	}
	if ck.Pipeline["system"] != "hcp-terraform" || ck.Pipeline["run_id"] != "run-1" || ck.Workspace != "billing-dev" || ck.PlanSHA256 != rt.PlanSHA256 {
		t.Errorf("check = workspace %q, pipeline %v, plan %s (task's %s)", ck.Workspace, ck.Pipeline, ck.PlanSHA256, rt.PlanSHA256)
	}
	// HCP Terraform sending the same request again changes nothing.
	if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev")); got != http.StatusOK {
		t.Errorf("the same request again = %d, want 200", got)
	}
}

func TestPendingHeartbeatsThenApprovedThenPreApply(t *testing.T) {
	e := newEnv(t, nil)
	prod := example(t, "prod-iam.plan.json")
	e.hcp.SetPlan("plan-prod", prod)
	if err := e.st.InTx(context.Background(), func(tx store.Tx) error {
		u, err := tx.GetUserByName(context.Background(), "carol")
		if err != nil {
			return err
		}
		u.Links = []string{"hcp:Dave"}
		return tx.UpdateUser(context.Background(), u)
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-prod", "plan-prod")); got != http.StatusOK {
		t.Fatalf("run task request = %d, want 200", got)
	}
	first := e.hcp.Next(t)
	if a := first.Result.Data.Attributes; a.Status != "running" || !strings.HasPrefix(a.URL, "https://stepgate.example.com/checks/") {
		t.Fatalf("first callback = %+v, want running with the review URL", a)
	}
	if rel := first.Result.Data.Relationships; rel == nil || len(rel.Outcomes.Data) == 0 || rel.Outcomes.Data[0].Attributes.Tags["Severity"] == nil {
		t.Errorf("running callback has no outcomes with a Severity tag: %+v", rel)
	}
	id := checkID(t, first)
	// Heartbeats while people decide.
	if c := e.hcp.Next(t); c.Result.Data.Attributes.Status != "running" {
		t.Fatalf("second callback = %q, want running (heartbeat)", c.Result.Data.Attributes.Status)
	}
	ck, _ := e.st.GetCheck(context.Background(), id)
	if ck.Requester != "carol" {
		t.Errorf("requester = %q, want carol (linked to hcp:Dave, the run's run_created_by)", ck.Requester)
	}
	if d := ck.ExpiresAt.Sub(ck.CreatedAt); d > hcpterraform.MaxCheckTTL {
		t.Errorf("run task check waits %v, more than %v", d, hcpterraform.MaxCheckTTL)
	}
	e.approve(t, id, "alice", "bob")
	final, _ := e.hcp.Final(t)
	if final.Result.Data.Attributes.Status != "passed" {
		t.Fatalf("after approval: %+v, want passed", final.Result.Data.Attributes)
	}
	// pre_apply of the same run with the same plan passes.
	if got := e.send(t, e.hcp.Request("taskrs-2", "run-1", "pre_apply", "billing-prod", "plan-prod")); got != http.StatusOK {
		t.Fatal(got)
	}
	if c, _ := e.hcp.Final(t); c.Task != "taskrs-2" || c.Result.Data.Attributes.Status != "passed" {
		t.Errorf("pre_apply with the approved plan = %s %+v, want passed", c.Task, c.Result.Data.Attributes)
	}
	// The plan changed between post_plan and pre_apply: failed, audited.
	e.hcp.SetPlan("plan-prod", append(bytes.TrimSpace(prod), '\n', ' '))
	if got := e.send(t, e.hcp.Request("taskrs-3", "run-1", "pre_apply", "billing-prod", "plan-prod")); got != http.StatusOK {
		t.Fatal(got)
	}
	if c, _ := e.hcp.Final(t); c.Task != "taskrs-3" || c.Result.Data.Attributes.Status != "failed" {
		t.Errorf("pre_apply with another plan = %s %+v, want failed", c.Task, c.Result.Data.Attributes)
	}
	if r := e.refusals(t); len(r) != 1 || !strings.Contains(r[0], "plan changed") {
		t.Errorf("refusals = %q, want the changed plan", r)
	}
}

func TestFailClosed(t *testing.T) {
	tests := []struct {
		name    string
		tune    func(*hcpterraform.Config)
		prepare func(e *env, req map[string]any)
		refusal string // in the audited refusal, if any
	}{
		{
			name:    "fail/unknown-run-at-pre-apply",
			prepare: func(e *env, req map[string]any) { req["stage"] = "pre_apply" },
			refusal: "did not see at post_plan",
		},
		{
			name:    "fail/plan-fetch-fails",
			prepare: func(e *env, req map[string]any) { e.hcp.FailPlans(http.StatusInternalServerError) },
		},
		{
			name:    "fail/oversize-plan",
			tune:    func(c *hcpterraform.Config) { c.MaxPlanBytes = 100 },
			refusal: "larger than the limit",
		},
		{
			name: "fail/redirect-to-a-foreign-host",
			prepare: func(e *env, req map[string]any) {
				foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					e.t.Errorf("the plan was fetched from a host not allowed (Authorization %q)", r.Header.Get("Authorization"))
				}))
				e.t.Cleanup(foreign.Close)
				e.hcp.RedirectPlans(foreign.URL + "/plan.json")
			},
		},
		{
			name: "fail/plan-url-on-a-foreign-host",
			prepare: func(e *env, req map[string]any) {
				req["plan_json_api_url"] = "https://evil.example.com/api/v2/plans/plan-dev/json-output"
			},
			refusal: "not on an allowed host",
		},
		{
			name:    "fail/pre-plan-stage",
			prepare: func(e *env, req map[string]any) { req["stage"] = "pre_plan" },
			refusal: "post_plan and pre_apply",
		},
		{
			name: "ok/redirect-to-an-allowed-host",
			prepare: func(e *env, req map[string]any) {
				e.hcp.RedirectPlans(e.hcp.URL() + "/archivist/plan-dev")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.tune)
			e.t = t
			e.hcp.SetPlan("plan-dev", example(t, "dev-tag-change.plan.json"))
			req := e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev")
			if tt.prepare != nil {
				tt.prepare(e, req)
			}
			if got := e.send(t, req); got != http.StatusOK {
				t.Fatalf("run task request = %d, want 200", got)
			}
			c, _ := e.hcp.Final(t)
			want := "failed"
			if strings.HasPrefix(tt.name, "ok/") {
				want = "passed"
			}
			if c.Result.Data.Attributes.Status != want {
				t.Errorf("result = %+v, want %s", c.Result.Data.Attributes, want)
			}
			r := e.refusals(t)
			if tt.refusal != "" && (len(r) != 1 || !strings.Contains(r[0], tt.refusal)) {
				t.Errorf("refusals = %q, want one about %q", r, tt.refusal)
			}
		})
	}
}

func TestCallbackHostNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	hit := false
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	defer foreign.Close()
	for _, cb := range []string{
		foreign.URL + "/api/v2/task-results/x/callback",
		"http://app.terraform.io/api/v2/task-results/x/callback", // not https
		"https://app.terraform.io.evil.example.com/api/v2/task-results/x/callback",
	} {
		req := e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev")
		req["task_result_callback_url"] = cb
		if got := e.send(t, req); got != http.StatusBadRequest {
			t.Errorf("callback URL %s: %d, want 400", cb, got)
		}
	}
	foreign.Close()
	if hit {
		t.Error("stepgate called a host not allowed")
	}
	if r := e.refusals(t); len(r) != 3 {
		t.Errorf("refusals = %q, want 3", r)
	}
	if _, err := e.st.GetRunTask(context.Background(), "taskrs-1"); err == nil {
		t.Error("a run task with a foreign callback was recorded")
	}
}

func TestCallbackAnswers(t *testing.T) {
	for _, tt := range []struct {
		name         string
		codes        []int
		wantAttempts int
		wantAccepted bool
	}{
		{"ok/5xx-then-200", []int{502, 503}, 3, true},
		{"fail/422-is-not-retried", []int{422}, 1, false},
		{"fail/5xx-bounded", []int{500, 500, 500, 500}, 3, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.hcp.SetPlan("plan-dev", example(t, "dev-tag-change.plan.json"))
			e.hcp.AnswerCallbacks(tt.codes...)
			if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev")); got != http.StatusOK {
				t.Fatal(got)
			}
			// The task is done when stepgate stops trying.
			rt := e.done(t, "taskrs-1")
			attempts := e.hcp.Attempts()
			if attempts != tt.wantAttempts {
				t.Errorf("%d callback attempts, want %d", attempts, tt.wantAttempts)
			}
			if accepted := !strings.Contains(rt.Message, "not accepted"); accepted != tt.wantAccepted {
				t.Errorf("run task message %q: accepted %v, want %v", rt.Message, accepted, tt.wantAccepted)
			}
		})
	}
}

func TestRestartResumesPendingRunTask(t *testing.T) {
	e := newEnv(t, func(c *hcpterraform.Config) { c.Heartbeat = time.Hour })
	e.hcp.SetPlan("plan-prod", example(t, "prod-iam.plan.json"))
	if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-prod", "plan-prod")); got != http.StatusOK {
		t.Fatal(got)
	}
	first := e.hcp.Next(t)
	if first.Result.Data.Attributes.Status != "running" {
		t.Fatalf("first callback = %+v", first.Result.Data.Attributes)
	}
	id := checkID(t, first)
	e.stop() // the server stops while people decide
	rt, err := e.st.GetRunTask(context.Background(), "taskrs-1")
	if err != nil || rt.State != store.RunTaskWaiting {
		t.Fatalf("after the stop: %+v, %v; want waiting", rt, err)
	}
	if bytes.Contains(rt.SealedRequest, []byte(hcptest.Token)) {
		t.Error("the access token is stored in clear")
	}
	e.approve(t, id, "alice", "bob")
	e.start(t) // the restart
	var final hcptest.Callback
	for final = e.hcp.Next(t); final.Result.Data.Attributes.Status == "running"; final = e.hcp.Next(t) {
	}
	if final.Task != "taskrs-1" || final.Result.Data.Attributes.Status != "passed" {
		t.Errorf("after the restart: %s %+v, want passed", final.Task, final.Result.Data.Attributes)
	}
}

// TestShutdownCancelsRetries: a callback waiting to be retried does not
// hold the server when it stops; the result stays to be sent by the next
// start.
func TestShutdownCancelsRetries(t *testing.T) {
	e := newEnv(t, func(c *hcpterraform.Config) { c.RetryBackoff = time.Hour })
	e.hcp.SetPlan("plan-dev", example(t, "dev-tag-change.plan.json"))
	e.hcp.AnswerCallbacks(503)
	if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-dev", "plan-dev")); got != http.StatusOK {
		t.Fatal(got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.hcp.Attempts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no callback attempt")
		}
		select {
		case <-e.hcp.Results():
		case <-time.After(10 * time.Millisecond):
		}
	}
	start := time.Now()
	e.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping with a callback to retry took %v", took)
	}
	rt, err := e.st.GetRunTask(context.Background(), "taskrs-1")
	if err != nil || rt.State != store.RunTaskReporting || rt.Result != "passed" {
		t.Fatalf("after the stop: %+v, %v; want the passed result still to report", rt, err)
	}
	e.cfg.RetryBackoff = 10 * time.Millisecond
	e.start(t)
	if c, _ := e.hcp.Final(t); c.Task != "taskrs-1" || c.Status() != "passed" {
		t.Errorf("after the restart: %s %s, want passed", c.Task, c.Status())
	}
}

// TestAnotherServerTakesOverALapsedLease: a server that stops renewing its
// lease (it died) leaves its run tasks to another, which finishes them;
// until then, a second server leaves them alone.
func TestAnotherServerTakesOverALapsedLease(t *testing.T) {
	e := newEnv(t, nil)
	e.hcp.SetPlan("plan-prod", example(t, "prod-iam.plan.json"))
	if got := e.send(t, e.hcp.Request("taskrs-1", "run-1", "post_plan", "billing-prod", "plan-prod")); got != http.StatusOK {
		t.Fatal(got)
	}
	first := e.hcp.Next(t)
	before, err := e.st.GetRunTask(context.Background(), "taskrs-1")
	if err != nil || before.Owner == "" {
		t.Fatalf("run task = %+v, %v; want an owner", before, err)
	}
	stopFirst := e.stop
	// A second server now: the lease runs, it leaves the task alone.
	e.start(t)
	if rt, _ := e.st.GetRunTask(context.Background(), "taskrs-1"); rt.Owner != before.Owner {
		t.Fatalf("a second server took over a task whose lease runs (owner %s, was %s)", rt.Owner, before.Owner)
	}
	// A third one whose clock is past the lease: the first one is as good
	// as dead, the third takes the task over.
	e.startAt(t, func() time.Time { return time.Now().Add(4 * time.Minute) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		rt, _ := e.st.GetRunTask(context.Background(), "taskrs-1")
		if rt.Owner != before.Owner {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody took over the run task after its lease ran out")
		}
		select {
		case <-e.hcp.Results():
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopFirst()
	e.approve(t, checkID(t, first), "alice", "bob")
	if c, _ := e.hcp.Final(t); c.Task != "taskrs-1" || c.Status() != "passed" {
		t.Errorf("after the take-over and the approval: %s %s, want passed", c.Task, c.Status())
	}
}

// TestPolicyReadsTheRunAsVerified: the run's branch, as HCP Terraform signed
// it, is the verified pipeline the policy reads: with release_refs and
// require_verified, a run of main waits for people, a run of another branch
// is denied.
func TestPolicyReadsTheRunAsVerified(t *testing.T) {
	e := newEnvPolicy(t, nil, func(c *policy.Config) {
		c.Pipeline = policy.PipelineConfig{ReleaseRefs: []string{"refs/heads/main"}, RequireVerified: true}
	})
	e.hcp.SetPlan("plan-prod", example(t, "prod-iam.plan.json"))
	for i, tt := range []struct{ branch, want string }{
		{"main", "running"},
		{"feature/x", "failed"},
	} {
		req := e.hcp.Request(fmt.Sprintf("taskrs-%d", i), fmt.Sprintf("run-%d", i), "post_plan", "billing-prod", "plan-prod")
		req["vcs_branch"] = tt.branch
		if got := e.send(t, req); got != http.StatusOK {
			t.Fatal(got)
		}
		task := req["task_result_id"].(string)
		c := e.hcp.Next(t)
		for c.Task != task { // the heartbeats of the earlier run
			c = e.hcp.Next(t)
		}
		if c.Status() != tt.want {
			t.Errorf("a run of %s: %s (%s), want %s", tt.branch, c.Status(), c.Result.Data.Attributes.Message, tt.want)
		}
	}
}

// TestUnsignedFloodDoesNotFloodTheAuditLog: anyone who can reach the run
// task endpoint can send unsigned requests. Their refusals are anonymous
// and audited per source at most once a minute (gate.AuditRefusal), not
// one audit write per request.
func TestUnsignedFloodDoesNotFloodTheAuditLog(t *testing.T) {
	e := newEnv(t, nil)
	body := []byte(`{"payload_version":1}`)
	for i := range 50 {
		sig := ""
		if i%2 == 1 {
			sig = "zz"
		}
		if got := e.post(t, body, sig); got != http.StatusUnauthorized {
			t.Fatalf("unsigned POST = %d, want 401", got)
		}
	}
	if got := len(e.refusals(t)); got != 1 {
		t.Errorf("%d refusals audited for 50 unsigned requests from one source, want 1 (then counted into the next a minute later)", got)
	}
}
