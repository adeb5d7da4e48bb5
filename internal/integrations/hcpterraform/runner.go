package hcpterraform

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/store"
)

// Path is the endpoint HCP Terraform sends run task requests to.
const Path = "/v1/integrations/hcp-terraform"

// Limits of HCP Terraform: a task that sends no progress for 10 minutes
// fails, and any task fails after 60 minutes.
const (
	TaskLimit = 60 * time.Minute
	// MaxCheckTTL is how long a run task's check may wait for people: less
	// than TaskLimit, so that its result reaches HCP Terraform in time.
	MaxCheckTTL      = 55 * time.Minute
	DefaultHeartbeat = 5 * time.Minute
	// DefaultWorkspace names the stepgate workspace of a run.
	DefaultWorkspace = "{organization}/{workspace}"
	// maxRequestBytes caps a run task request (a few kilobytes in practice).
	maxRequestBytes = 1 << 20
	// maxWorkers caps the run tasks worked on at once by one server.
	maxWorkers = 512
	// lease is how long a server holds a run task without renewing it:
	// after it, another server (or this one, restarted) takes the task
	// over, well within HCP Terraform's 10 minutes.
	lease = 3 * time.Minute
)

// Config is server.integrations.hcp_terraform, resolved.
type Config struct {
	HMACKey      []byte
	APIHosts     []string
	Workspace    string // template: {organization}, {workspace}, {workspace_id}
	Heartbeat    time.Duration
	MaxPlanBytes int64
	// Attempts and RetryBackoff bound the retries of a callback (defaults
	// 5 and 1s, doubling).
	Attempts     int
	RetryBackoff time.Duration
	// Transport, when set, carries the requests to HCP Terraform (tests).
	Transport http.RoundTripper
}

// Gate is what the run tasks need of the gate.
type Gate interface {
	CreateCheck(ctx context.Context, caller *gate.Caller, r *gate.CreateRequest) (*api.Check, bool, error)
	GetCheck(ctx context.Context, caller *gate.Caller, id string) (*api.Check, error)
	AuditRefusal(ctx context.Context, r gate.Refusal)
}

// Hub wakes a waiting run task when its check changes.
type Hub interface {
	Subscribe(id string) (<-chan struct{}, func())
}

// Store keeps run tasks until they are reported.
type Store interface {
	CreateRunTask(ctx context.Context, t *store.RunTask) error
	GetRunTask(ctx context.Context, id string) (*store.RunTask, error)
	UpdateRunTask(ctx context.Context, t *store.RunTask) error
	FindRunTask(ctx context.Context, runID, stage string) (*store.RunTask, error)
	OpenRunTasks(ctx context.Context, limit int) ([]*store.RunTask, error)
	ClaimRunTask(ctx context.Context, id, owner string, until, now time.Time) (bool, error)
}

// Sealer seals the requests at rest (keys.Master).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Runner receives run tasks and works on them in the background.
type Runner struct {
	cfg         Config
	gate        Gate
	hub         Hub
	st          Store
	sealer      Sealer
	log         *slog.Logger
	now         func() time.Time
	hosts       *hosts
	fetcher     *http.Client
	noRedirects *http.Client
	// owner names this process in the leases it holds.
	owner string

	ready chan struct{} // closed once Run has started
	ctx   context.Context
	wg    sync.WaitGroup
	mu    sync.Mutex
	busy  map[string]bool // task ids worked on in this process
}

// New returns a runner; Run must run for it to work.
func New(cfg Config, g Gate, hub Hub, st Store, sealer Sealer, log *slog.Logger, now func() time.Time) (*Runner, error) {
	if len(cfg.HMACKey) == 0 {
		return nil, errors.New("hcp_terraform: the HMAC key is empty")
	}
	h, err := parseHosts(cfg.APIHosts)
	if err != nil {
		return nil, fmt.Errorf("hcp_terraform.api_hosts: %w", err)
	}
	if cfg.Workspace == "" {
		cfg.Workspace = DefaultWorkspace
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.MaxPlanBytes <= 0 {
		cfg.MaxPlanBytes = 64 << 20
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	r := &Runner{cfg: cfg, gate: g, hub: hub, st: st, sealer: sealer, log: log, now: now, hosts: h,
		owner: newOwner(), ready: make(chan struct{}), busy: map[string]bool{}}
	r.fetcher = &http.Client{Transport: tr, CheckRedirect: r.checkRedirect}
	r.noRedirects = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r, nil
}

func newOwner() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "srv_" + hex.EncodeToString(b)
}

// Run resumes the run tasks left open in the store, works on new ones
// until ctx ends, then waits for them to stop where they are (a restart
// resumes them). Every lease/2 it looks again for open tasks nobody holds:
// those of a server that died, or that arrived while this one was full.
func (r *Runner) Run(ctx context.Context) {
	r.ctx = ctx
	close(r.ready)
	sweep := time.NewTicker(lease / 2)
	defer sweep.Stop()
	for {
		r.resume(ctx)
		select {
		case <-ctx.Done():
			r.wg.Wait()
			return
		case <-sweep.C:
		}
	}
}

// resume starts the open run tasks this process does not work on; each
// is worked on only once its lease is claimed.
func (r *Runner) resume(ctx context.Context) {
	open, err := r.st.OpenRunTasks(ctx, maxWorkers)
	if err != nil {
		if ctx.Err() == nil {
			r.log.ErrorContext(ctx, "reading open run tasks failed; they are resumed later", "err", err)
		}
		return
	}
	n := 0
	for _, t := range open {
		if t.Owner != r.owner && t.LeaseUntil.After(r.now()) {
			continue // another server works on it
		}
		if r.start(t, nil) {
			n++
		}
	}
	if n > 0 {
		r.log.InfoContext(ctx, "resuming run tasks", "count", n)
	}
}

// claim takes or renews t's lease; false when another server holds it, or
// the store cannot say.
func (r *Runner) claim(ctx context.Context, t *store.RunTask) bool {
	now := r.now()
	ok, err := r.st.ClaimRunTask(ctx, t.ID, r.owner, now.Add(lease), now)
	if err != nil {
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "claiming a run task failed", "task", t.ID, "err", err)
		}
		return false
	}
	if ok {
		t.Owner, t.LeaseUntil = r.owner, now.Add(lease)
	}
	return ok
}

// release gives t's lease up, so that the next server to start takes it
// over at once.
func (r *Runner) release(t *store.RunTask) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := r.now()
	if _, err := r.st.ClaimRunTask(ctx, t.ID, r.owner, now.Add(-time.Microsecond), now); err != nil {
		r.log.Warn("releasing a run task failed; it is taken over when its lease runs out", "task", t.ID, "err", err)
	}
}

// start works on t in the background unless this process already does;
// req is its request when at hand, else it is unsealed from t.
func (r *Runner) start(t *store.RunTask, req *Request) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy[t.ID] || len(r.busy) >= maxWorkers || r.ctx.Err() != nil {
		return false
	}
	r.busy[t.ID] = true
	r.wg.Go(func() {
		defer func() {
			r.mu.Lock()
			delete(r.busy, t.ID)
			r.mu.Unlock()
		}()
		r.work(r.ctx, t, req)
	})
	return true
}

// full reports whether this process works on as many run tasks as it may.
func (r *Runner) full() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.busy) >= maxWorkers
}

func aad(id string) []byte { return []byte("stepgate hcp-terraform run task\n" + id) }

// refuse audits a refused request and answers it. An empty actor is an
// unsigned request (anyone's): gate.AuditRefusal audits those per source
// at most once a minute, with the count, so a flood is no flood of audit
// writes.
func (r *Runner) refuse(w http.ResponseWriter, hr *http.Request, actor, subject string, status int, reason string) {
	source := hr.RemoteAddr
	if host, _, err := net.SplitHostPort(hr.RemoteAddr); err == nil {
		source = host
	}
	r.gate.AuditRefusal(hr.Context(), gate.Refusal{
		Action: gate.ActionIntegration, Actor: actor, Subject: subject,
		Method: "POST " + Path, Reason: reason, Status: status, Source: source,
	})
	r.log.WarnContext(hr.Context(), "run task request refused", "status", status, "reason", reason)
	answer(w, status, http.StatusText(status))
}

// answer writes an error as the API does: {"error": {"code", "message"}}.
func answer(w http.ResponseWriter, status int, message string) {
	code := map[int]string{
		http.StatusBadRequest: api.CodeBadRequest, http.StatusUnauthorized: api.CodeUnauthorized,
		http.StatusRequestEntityTooLarge: api.CodeTooLarge, http.StatusServiceUnavailable: api.CodeUnavailable,
	}[status]
	if code == "" {
		code = api.CodeInternal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// Handler serves POST Path.
func (r *Runner) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxRequestBytes))
		if err != nil {
			r.refuse(w, hr, "", "hcp-terraform", http.StatusRequestEntityTooLarge, "run task request unreadable or too large")
			return
		}
		// The signature first: nothing of an unsigned body is read.
		sig := hr.Header.Get(SignatureHeader)
		if !validSignature(r.cfg.HMACKey, body, sig) {
			reason := "bad run task signature"
			if sig == "" {
				reason = "missing run task signature"
			}
			r.refuse(w, hr, "", "hcp-terraform", http.StatusUnauthorized, reason)
			return
		}
		var req Request
		if err := json.Unmarshal(body, &req); err != nil {
			r.refuse(w, hr, "hcp-terraform", "hcp-terraform", http.StatusBadRequest, "run task request is not JSON: "+err.Error())
			return
		}
		if req.verification() {
			w.WriteHeader(http.StatusOK)
			return
		}
		subject := "run:" + truncate(req.RunID, 200)
		switch {
		case req.PayloadVersion != 1:
			r.refuse(w, hr, "hcp-terraform", subject, http.StatusBadRequest, fmt.Sprintf("payload_version %d is not 1", req.PayloadVersion))
			return
		case req.TaskResultID == "" || req.RunID == "" || req.AccessToken == "" || len(req.TaskResultID) > 200 || len(req.RunID) > 200:
			r.refuse(w, hr, "hcp-terraform", subject, http.StatusBadRequest, "task_result_id, run_id and access_token are required")
			return
		}
		if _, ok := r.hosts.allowedURL(req.TaskResultCallbackURL); !ok {
			// No answer can be sent: HCP Terraform fails the task when
			// it times out, which a mandatory task turns into a stop.
			r.refuse(w, hr, "hcp-terraform", subject, http.StatusBadRequest,
				fmt.Sprintf("task_result_callback_url %q is not on an allowed host (server.integrations.hcp_terraform.api_hosts)", truncate(req.TaskResultCallbackURL, 200)))
			return
		}
		select {
		case <-r.ready:
		case <-hr.Context().Done():
			return
		}
		if r.full() {
			// Not recorded: HCP Terraform retries the request later.
			r.log.WarnContext(hr.Context(), "too many run tasks at once; asking HCP Terraform to retry", "task", req.TaskResultID)
			answer(w, http.StatusServiceUnavailable, "too many run tasks at once; try again")
			return
		}
		now := r.now().UTC()
		sealed, err := r.sealer.Seal(body, aad(req.TaskResultID))
		if err != nil {
			r.log.ErrorContext(hr.Context(), "sealing a run task failed", "err", err)
			answer(w, http.StatusInternalServerError, "internal error")
			return
		}
		t := &store.RunTask{ID: req.TaskResultID, RunID: req.RunID, Stage: req.Stage, State: store.RunTaskReceived,
			SealedRequest: sealed, Owner: r.owner, LeaseUntil: now.Add(lease), CreatedAt: now, UpdatedAt: now, Deadline: now.Add(TaskLimit)}
		switch err := r.st.CreateRunTask(hr.Context(), t); {
		case errors.Is(err, store.ErrConflict):
			// HCP Terraform sent it again: it is worked on already
			// (here, or resumed by the server that received it).
			w.WriteHeader(http.StatusOK)
			return
		case err != nil:
			r.log.ErrorContext(hr.Context(), "recording a run task failed", "task", t.ID, "err", err)
			answer(w, http.StatusServiceUnavailable, "the store is unavailable; try again") // HCP Terraform retries
			return
		}
		r.log.InfoContext(hr.Context(), "run task received", "task", t.ID, "run", t.RunID, "stage", t.Stage)
		if !r.start(t, &req) {
			r.log.WarnContext(hr.Context(), "run task recorded but not started now; the next start resumes it", "task", t.ID)
		}
		w.WriteHeader(http.StatusOK)
	})
}

// work takes t from where it is to reported. It returns early when ctx
// ends: what is done is in the store, and a restart resumes the rest.
func (r *Runner) work(ctx context.Context, t *store.RunTask, req *Request) {
	if !r.claim(ctx, t) {
		return
	}
	defer func() {
		if ctx.Err() != nil && t.State.Open() {
			r.release(t)
		}
	}()
	if req == nil {
		b, err := r.sealer.Open(t.SealedRequest, aad(t.ID))
		if err == nil {
			req = new(Request)
			err = json.Unmarshal(b, req)
		}
		if err != nil {
			// Without its token no callback can be sent: HCP Terraform
			// fails the task on its own.
			r.log.ErrorContext(ctx, "opening a run task failed; it is dropped", "task", t.ID, "err", err)
			r.finish(ctx, t, store.RunTaskDone, StatusFailed, "request could not be opened")
			return
		}
	}
	var v *api.Check
	if t.State == store.RunTaskReceived {
		var ok bool
		if v, ok = r.assess(ctx, t, req); !ok {
			return
		}
	}
	if t.State == store.RunTaskWaiting {
		if v = r.wait(ctx, t, req); v == nil {
			return
		}
	}
	if t.State == store.RunTaskReporting {
		r.report(ctx, t, req, v)
	}
}

// caller is who a run's checks are asked by: a verified CI identity, whose
// claims are what HCP Terraform signed (see Request.Pipeline).
func caller(req *Request) *gate.Caller {
	return &gate.Caller{TokenID: "hcp:" + req.RunID, Name: "hcp-terraform", Pipeline: req.Pipeline(), Claims: req.VerifiedClaims()}
}

// workspace expands the workspace template for req.
func (r *Runner) workspace(req *Request) string {
	return strings.NewReplacer("{organization}", req.OrganizationName, "{workspace}", req.WorkspaceName,
		"{workspace_id}", req.WorkspaceID).Replace(r.cfg.Workspace)
}

// decide records t's result; it is then reported.
func (r *Runner) decide(ctx context.Context, t *store.RunTask, status, message string) bool {
	return r.finish(ctx, t, store.RunTaskReporting, status, message)
}

func (r *Runner) finish(ctx context.Context, t *store.RunTask, state store.RunTaskState, status, message string) bool {
	t.State, t.Result, t.Message, t.UpdatedAt = state, status, truncate(message, 500), r.now().UTC()
	if err := r.st.UpdateRunTask(context.WithoutCancel(ctx), t); err != nil {
		r.log.ErrorContext(ctx, "recording a run task's state failed", "task", t.ID, "state", state, "err", err)
		return false
	}
	return true
}

// refusal audits a run task refused after it was accepted.
func (r *Runner) refusal(ctx context.Context, req *Request, reason string) {
	r.gate.AuditRefusal(context.WithoutCancel(ctx), gate.Refusal{
		Action: gate.ActionIntegration, Actor: "hcp-terraform", Subject: "run:" + req.RunID,
		Method: req.Stage, Reason: reason,
	})
}

// assess creates the check of a post_plan task, or compares a pre_apply
// task's plan with the one approved at post_plan. It returns false when
// ctx ended or the state could not be recorded.
func (r *Runner) assess(ctx context.Context, t *store.RunTask, req *Request) (*api.Check, bool) {
	switch req.Stage {
	case StagePostPlan, StagePreApply:
	default:
		r.refusal(ctx, req, fmt.Sprintf("stage %q: stepgate gates the post_plan and pre_apply stages", req.Stage))
		return nil, r.decide(ctx, t, StatusFailed, "stepgate gates the post_plan and pre_apply stages, not "+req.Stage)
	}
	if _, ok := r.hosts.allowedURL(req.PlanJSONAPIURL); !ok {
		r.refusal(ctx, req, fmt.Sprintf("plan_json_api_url %q is not on an allowed host", truncate(req.PlanJSONAPIURL, 200)))
		return nil, r.decide(ctx, t, StatusFailed, "the plan URL is not on an allowed host")
	}
	body, digest, err := r.fetchPlan(ctx, req)
	if ctx.Err() != nil {
		return nil, false
	}
	if err != nil {
		r.log.WarnContext(ctx, "reading a run's plan failed", "task", t.ID, "run", req.RunID, "err", err)
		if errors.Is(err, errPlanTooLarge) {
			r.refusal(ctx, req, err.Error())
		}
		return nil, r.decide(ctx, t, StatusFailed, "stepgate could not read the plan: "+err.Error())
	}
	t.PlanSHA256 = digest
	if req.Stage == StagePreApply {
		return r.preApply(ctx, t, req, digest)
	}
	ttl := min(MaxCheckTTL, t.Deadline.Sub(r.now())-5*time.Minute)
	if ttl <= 0 {
		return nil, r.decide(ctx, t, StatusFailed, "too late: HCP Terraform stops waiting for this task")
	}
	v, _, err := r.gate.CreateCheck(ctx, caller(req), &gate.CreateRequest{
		Kind: "terraform.apply", Workspace: r.workspace(req), Plan: bytes.NewReader(body), MaxTTL: ttl,
		Pipeline: req.Unverified(),
	})
	if ctx.Err() != nil {
		return nil, false
	}
	if err != nil {
		r.log.WarnContext(ctx, "creating a run's check failed", "task", t.ID, "run", req.RunID, "err", err)
		msg := "stepgate could not assess the plan"
		if errors.Is(err, gate.ErrBadRequest) || errors.Is(err, gate.ErrForbidden) {
			msg += ": " + err.Error()
		}
		return nil, r.decide(ctx, t, StatusFailed, msg)
	}
	t.CheckID = v.ID
	switch v.State {
	case string(store.StateAllowed), string(store.StateApproved):
		return v, r.decide(ctx, t, StatusPassed, "allowed by policy")
	case string(store.StatePending):
		return v, r.finish(ctx, t, store.RunTaskWaiting, "", "")
	default:
		return v, r.decide(ctx, t, StatusFailed, "check "+v.State)
	}
}

// preApply passes a pre_apply task only when the same run passed post_plan
// with a check allowed or approved for exactly this plan.
func (r *Runner) preApply(ctx context.Context, t *store.RunTask, req *Request, digest string) (*api.Check, bool) {
	prev, err := r.st.FindRunTask(ctx, req.RunID, StagePostPlan)
	if errors.Is(err, store.ErrNotFound) {
		r.refusal(ctx, req, "pre_apply of a run stepgate did not see at post_plan")
		return nil, r.decide(ctx, t, StatusFailed, "no post_plan check for this run: add stepgate to the post-plan stage")
	}
	if err != nil {
		return nil, ctx.Err() == nil && r.decide(ctx, t, StatusFailed, "stepgate could not read the post_plan task")
	}
	if prev.Result != StatusPassed || prev.CheckID == "" {
		r.refusal(ctx, req, "pre_apply of a run whose post_plan did not pass")
		return nil, r.decide(ctx, t, StatusFailed, "this run's post_plan check did not pass")
	}
	if prev.PlanSHA256 != digest {
		r.refusal(ctx, req, fmt.Sprintf("plan changed between post_plan (%s) and pre_apply (%s)", prev.PlanSHA256, digest))
		return nil, r.decide(ctx, t, StatusFailed, "the plan is not the one approved at post_plan")
	}
	t.CheckID = prev.CheckID
	v, err := r.gate.GetCheck(ctx, caller(req), prev.CheckID)
	if ctx.Err() != nil {
		return nil, false
	}
	if err != nil {
		return nil, r.decide(ctx, t, StatusFailed, "stepgate could not read the post_plan check")
	}
	if v.PlanSHA256 != digest || (v.State != string(store.StateAllowed) && v.State != string(store.StateApproved)) {
		r.refusal(ctx, req, "pre_apply: the post_plan check is "+v.State+" for plan "+v.PlanSHA256)
		return v, r.decide(ctx, t, StatusFailed, "the post_plan check is "+v.State)
	}
	return v, r.decide(ctx, t, StatusPassed, "the plan approved at post_plan")
}

// wait sends a running result with the review link every heartbeat until
// the check is decided, then records the result. It returns nil when ctx
// ended or the state could not be recorded.
func (r *Runner) wait(ctx context.Context, t *store.RunTask, req *Request) *api.Check {
	woken, done := r.hub.Subscribe(t.CheckID)
	defer done()
	recheck := time.NewTicker(min(r.cfg.Heartbeat, 5*time.Second))
	defer recheck.Stop()
	var lastBeat time.Time
	failures := 0
	for {
		v, err := r.gate.GetCheck(ctx, caller(req), t.CheckID)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			r.log.WarnContext(ctx, "reading a run task's check failed", "task", t.ID, "check", t.CheckID, "err", err)
			if failures >= 5 {
				if !r.decide(ctx, t, StatusFailed, "stepgate could not read the check") {
					return nil
				}
				return &api.Check{ID: t.CheckID}
			}
		case v.State == string(store.StateApproved) || v.State == string(store.StateConsumed):
			if !r.decide(ctx, t, StatusPassed, "approved") {
				return nil
			}
			return v
		case v.State != string(store.StatePending):
			if !r.decide(ctx, t, StatusFailed, "check "+v.State) {
				return nil
			}
			return v
		case !r.now().Before(t.Deadline.Add(-time.Minute)):
			if !r.decide(ctx, t, StatusFailed, "nobody decided in time") {
				return nil
			}
			return v
		default:
			failures = 0
			if now := r.now(); lastBeat.IsZero() || now.Sub(lastBeat) >= r.cfg.Heartbeat {
				lastBeat = now
				msg := "waiting for approval: " + needs(v)
				err := r.send(ctx, req, result(StatusRunning, msg, v.ReviewURL, v, req.outcomes()))
				if errors.Is(err, errPermanent) {
					r.log.ErrorContext(ctx, "HCP Terraform refused a run task's progress; giving up on it", "task", t.ID, "err", err)
					r.finish(ctx, t, store.RunTaskDone, StatusFailed, "progress refused: "+err.Error())
					return nil
				} else if err != nil && ctx.Err() == nil {
					r.log.WarnContext(ctx, "sending a run task's progress failed", "task", t.ID, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-woken:
		case <-recheck.C:
		}
		if r.now().After(t.LeaseUntil.Add(-lease/2)) && !r.claim(ctx, t) {
			if ctx.Err() == nil {
				r.log.WarnContext(ctx, "another server took a run task over", "task", t.ID)
			}
			return nil
		}
	}
}

// needs says what a pending check needs, in words.
func needs(v *api.Check) string {
	if v.Assessment == nil || v.Assessment.Requirements == nil {
		return "people must approve"
	}
	q := v.Assessment.Requirements
	return fmt.Sprintf("%d approval(s) at AAL%d", max(q.Approvals, 1), q.AAL)
}

// report sends t's result; the task is done once HCP Terraform took it,
// refused it, or stopped waiting for it.
func (r *Runner) report(ctx context.Context, t *store.RunTask, req *Request, v *api.Check) {
	if !r.now().Before(t.Deadline) {
		r.finish(ctx, t, store.RunTaskDone, t.Result, t.Message+" (not sent: past HCP Terraform's deadline)")
		return
	}
	url := ""
	if v != nil {
		url = v.ReviewURL
	}
	if v == nil && t.CheckID != "" {
		v, _ = r.gate.GetCheck(ctx, caller(req), t.CheckID)
		if v != nil {
			url = v.ReviewURL
		}
	}
	err := r.send(ctx, req, result(t.Result, t.Message, url, v, req.outcomes()))
	if ctx.Err() != nil {
		return // resumed at the next start
	}
	if err != nil {
		r.log.ErrorContext(ctx, "reporting a run task's result failed; HCP Terraform fails it when it times out", "task", t.ID, "result", t.Result, "err", err)
		r.finish(ctx, t, store.RunTaskDone, t.Result, t.Message+" (not accepted: "+err.Error()+")")
		return
	}
	r.log.InfoContext(ctx, "run task reported", "task", t.ID, "run", t.RunID, "stage", t.Stage, "result", t.Result)
	r.finish(ctx, t, store.RunTaskDone, t.Result, t.Message)
}
