package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/client"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

func createRequest(bp *benchPlan, n int64) client.CheckRequest {
	return client.CheckRequest{
		Kind: "terraform.apply", Workspace: benchWorkspace, Environment: benchEnvironment,
		Pipeline: map[string]string{"repository": "acme/payments-infra", "ref": "refs/heads/main", "run_id": strconv.FormatInt(n, 10)},
		Plan:     bytes.NewReader(bp.body(n)),
	}
}

// checkPlan assesses the throughput plan directly: it must be allowed, or
// the measurement would not be what it says.
func checkPlan(ctx context.Context, s *stack, bp *benchPlan) (PlanInfo, error) {
	body := bp.body(1)
	p, err := plan.Read(bytes.NewReader(body), plan.Options{})
	if err != nil {
		return PlanInfo{}, fmt.Errorf("the benchmark plan does not read: %w", err)
	}
	a, err := s.engine.Assess(ctx, policy.Operation{Kind: "terraform.apply", Workspace: benchWorkspace, Environment: benchEnvironment}, p)
	if err != nil {
		return PlanInfo{}, fmt.Errorf("assessing the benchmark plan: %w", err)
	}
	if a.Decision != policy.Allow || len(p.Changes) != bp.changes {
		return PlanInfo{}, fmt.Errorf("the benchmark plan is %s with %d changes (findings %v); want allow with %d", a.Decision, len(p.Changes), ruleIDs(a), bp.changes)
	}
	return PlanInfo{Changes: len(p.Changes), Types: distinctTypes(p), Bytes: len(body), Workspace: benchWorkspace, Environment: benchEnvironment, Decision: string(a.Decision)}, nil
}

// describePolicy counts the type patterns of the default policy.
func describePolicy(planTypes int) PolicyInfo {
	def := policy.DefaultConfig()
	pi := PolicyInfo{PlanTypes: planTypes}
	lists := [][]string{def.StatefulTypes}
	for _, ps := range def.SensitiveTypes {
		lists = append(lists, ps)
	}
	for _, ps := range lists {
		for _, p := range ps {
			pi.TypePatterns++
			if strings.ContainsAny(p, "*?[") {
				pi.GlobPatterns++
			}
		}
	}
	return pi
}

// measureFsync times writing 4 KiB and fsyncing it in dir: what a commit
// waits for.
func measureFsync(dir string, n int) (Latency, error) {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return Latency{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	ds := make([]time.Duration, 0, n)
	for range n {
		if _, err := f.Write(buf); err != nil {
			return Latency{}, err
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			return Latency{}, err
		}
		ds = append(ds, time.Since(t))
	}
	return latencies(ds), nil
}

func ruleIDs(a *policy.Assessment) []string {
	var ids []string
	for _, f := range a.Findings {
		ids = append(ids, f.Rule)
	}
	return ids
}

type sample struct {
	n     int64
	d     time.Duration
	id    string
	grant string
}

type phase struct {
	samples  []sample
	errors   int64
	messages []string
	elapsed  time.Duration
}

// runCreates runs clients until d has passed: each sends its next request
// only when the previous one was answered.
func runCreates(ctx context.Context, clients []*client.Client, bp *benchPlan, seq *atomic.Int64, d time.Duration) *phase {
	ph := &phase{}
	var mu sync.Mutex
	fail := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		ph.errors++
		if len(ph.messages) < 5 {
			ph.messages = append(ph.messages, msg)
		}
	}
	start := time.Now()
	deadline := start.Add(d)
	per := make([][]sample, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := seq.Add(1)
				req := createRequest(bp, n)
				t := time.Now()
				v, err := c.CreateCheck(ctx, req)
				took := time.Since(t)
				switch {
				case err != nil:
					fail(err.Error())
				case v.State != string(store.StateAllowed) || v.Grant == "" || v.Resumed:
					fail(fmt.Sprintf("request %d: answer %s (grant %t, resumed %t), want a new allowed check with a grant", n, v.State, v.Grant != "", v.Resumed))
				default:
					per[i] = append(per[i], sample{n: n, d: took, id: v.ID, grant: v.Grant})
				}
			}
		}()
	}
	wg.Wait()
	ph.elapsed = time.Since(start)
	for _, s := range per {
		ph.samples = append(ph.samples, s...)
	}
	return ph
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func measureCreate(ctx context.Context, o *options, s *stack, token string, bp *benchPlan, say func(string, ...any)) (CreateResult, error) {
	r := CreateResult{Concurrency: o.concurrency, Seconds: o.duration.Seconds(), WarmupSeconds: o.warmup.Seconds()}
	clients := make([]*client.Client, o.concurrency)
	for i := range clients {
		c, err := client.New(s.url, token, client.WithUserAgent("stepgate-bench"))
		if err != nil {
			return r, err
		}
		clients[i] = c
	}
	var seq atomic.Int64
	if o.warmup > 0 {
		w := runCreates(ctx, clients, bp, &seq, o.warmup)
		r.WarmupChecks = len(w.samples)
		r.Errors += w.errors
		r.ErrorSamples = append(r.ErrorSamples, w.messages...)
	}
	head, err := auditHead(ctx, s.st)
	if err != nil {
		return r, err
	}
	stopProfile, err := startProfiles(o)
	if err != nil {
		return r, err
	}
	if s.timed != nil {
		s.timed.record(true)
	}
	cpu0 := cpuTime()
	ph := runCreates(ctx, clients, bp, &seq, o.duration)
	cpu := cpuTime() - cpu0
	if s.timed != nil {
		r.Transaction = latencies(s.timed.record(false))
	}
	if err := stopProfile(); err != nil {
		return r, err
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.Errors += ph.errors
	r.ErrorSamples = append(r.ErrorSamples, ph.messages...)
	r.Checks = len(ph.samples)
	r.Seconds = ph.elapsed.Seconds()
	r.ChecksPerSec = float64(r.Checks) / ph.elapsed.Seconds()
	ds := make([]time.Duration, len(ph.samples))
	for i, x := range ph.samples {
		ds[i] = x.d
	}
	r.Latency = latencies(ds)
	if r.Checks > 0 {
		r.CPUPerCheckMS = ms(cpu) / float64(r.Checks)
	}
	r.CPUCoresBusy = cpu.Seconds() / ph.elapsed.Seconds()

	after, err := auditHead(ctx, s.st)
	if err != nil {
		return r, err
	}
	r.AuditEventsWritten = after - head
	if r.Errors > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d requests failed while creating checks; first: %v", r.Errors, r.ErrorSamples))
	}
	if want := int64(3 * r.Checks); r.AuditEventsWritten != want {
		r.problems = append(r.problems, fmt.Sprintf("%d audit events written for %d checks, want %d (created, allowed, grant issued)", r.AuditEventsWritten, r.Checks, want))
	}
	if n, err := verifyAudit(ctx, s.st); err != nil {
		r.problems = append(r.problems, "audit chain after creating checks: "+err.Error())
	} else {
		r.AuditChainEvents, r.AuditChainIntact = n, true
	}

	// Every grant: signed by the server's key, for its check, its workspace
	// and exactly the plan that was sent.
	say("verifying %d grants and the audit chain", len(ph.samples))
	ks, err := s.svc.Keys(ctx)
	if err != nil {
		return r, err
	}
	bad := 0
	for _, x := range ph.samples {
		c, err := grant.Verify(ctx, x.grant, ks, grant.Expect{Issuer: s.svc.Issuer(), Audience: s.svc.Audience(), Workspace: benchWorkspace, Now: time.Now(), Leeway: 30 * time.Second})
		if err == nil {
			sum := sha256.Sum256(bp.body(x.n))
			switch {
			case c.Subject != x.id:
				err = fmt.Errorf("grant of %s names check %s", x.id, c.Subject)
			case c.PlanSHA256 != hex.EncodeToString(sum[:]):
				err = fmt.Errorf("grant of %s has plan_sha256 %s, not the plan's", x.id, c.PlanSHA256)
			case c.Decision != string(policy.Allow):
				err = fmt.Errorf("grant of %s has decision %s", x.id, c.Decision)
			}
		}
		if err != nil {
			if bad++; bad <= 3 {
				r.problems = append(r.problems, "grant: "+err.Error())
			}
			continue
		}
		r.GrantsVerified++
	}
	if bad > 3 {
		r.problems = append(r.problems, fmt.Sprintf("%d grants in all did not verify", bad))
	}
	return r, nil
}

// auditHead returns the sequence number of the last audit event.
func auditHead(ctx context.Context, st store.Store) (int64, error) {
	var last int64
	for {
		es, err := st.ListAudit(ctx, last, 5000)
		if err != nil {
			return 0, err
		}
		if len(es) == 0 {
			return last, nil
		}
		last = es[len(es)-1].Seq
	}
}

// verifyAudit checks the whole chain, as `stepgate audit verify` does, and
// returns how many events it holds.
func verifyAudit(ctx context.Context, st store.Store) (int64, error) {
	var v audit.Verifier
	var last int64
	for {
		es, err := st.ListAudit(ctx, last, 5000)
		if err != nil {
			return v.Count(), err
		}
		if len(es) == 0 {
			return v.Count(), nil
		}
		for _, e := range es {
			if err := v.Next(e); err != nil {
				return v.Count(), err
			}
		}
		last = es[len(es)-1].Seq
	}
}

// ---- the parts of one check ----

// measureBreakdown times what one check does, one part at a time, from a
// single goroutine: where the time of a request goes when nothing else
// competes for the CPU or the database.
func measureBreakdown(ctx context.Context, s *stack, token string, bp *benchPlan, pi PolicyInfo) ([]Part, error) {
	const n = 200
	c, err := client.New(s.url, token)
	if err != nil {
		return nil, err
	}
	seq := int64(1_000_000_000)
	var parts []Part
	// timeSplit times what f says it took.
	timeSplit := func(name, note string, f func() (time.Duration, error)) error {
		ds := make([]time.Duration, 0, n)
		for range n {
			d, err := f()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			ds = append(ds, d)
		}
		l := latencies(ds)
		parts = append(parts, Part{Name: name, Note: note, P50: l.P50, Mean: l.Mean})
		return nil
	}
	timeIt := func(name, note string, f func() error) error {
		return timeSplit(name, note, func() (time.Duration, error) {
			t := time.Now()
			err := f()
			return time.Since(t), err
		})
	}

	// The whole request, one pipeline alone.
	var last *api.Check
	if err := timeIt("whole request, one pipeline alone", "POST /v1/checks over HTTP, as measured above but without concurrency", func() error {
		seq++
		v, err := c.CreateCheck(ctx, createRequest(bp, seq))
		if err == nil && v.State != string(store.StateAllowed) {
			err = fmt.Errorf("check %s is %s", v.ID, v.State)
		}
		last = v
		return err
	}); err != nil {
		return nil, err
	}
	hc := &http.Client{}
	if err := timeIt("HTTP round trip", "GET /healthz: connection reuse, routing, middleware", func() error {
		resp, err := hc.Get(s.url + "/healthz")
		if err != nil {
			return err
		}
		_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
		resp.Body.Close()
		return nil
	}); err != nil {
		return nil, err
	}
	caller, err := s.svc.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := timeIt("authenticate the token", "1 read (GetToken) + SHA-256", func() error {
		_, err := s.svc.Authenticate(ctx, token)
		return err
	}); err != nil {
		return nil, err
	}
	if err := timeIt("look for a check to resume", "1 read (FindResumableCheck), not found, with the checks of this run in the store", func() error {
		_, err := s.st.FindResumableCheck(ctx, randomHex(32))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return nil, err
	}
	op := policy.Operation{Kind: "terraform.apply", Workspace: benchWorkspace, Environment: benchEnvironment}
	if err := timeIt("read the plan into the policy input", fmt.Sprintf("plan.Decode of %d bytes, each change turned into Rego terms as it is read", bp.bytes), func() error {
		seq++
		in := s.engine.NewInput(op)
		visit, done := in.Stream()
		_, err := plan.Decode(bytes.NewReader(bp.body(seq)), plan.Options{}, visit)
		if derr := done(); err == nil {
			err = derr
		}
		return err
	}); err != nil {
		return nil, err
	}
	// The evaluation alone, with the default policy and with its type lists
	// emptied: what matching the types of the plan against them costs.
	p, err := plan.Read(bytes.NewReader(bp.body(seq)), plan.Options{})
	if err != nil {
		return nil, err
	}
	lean := policy.DefaultConfig()
	for cat := range lean.SensitiveTypes {
		lean.SensitiveTypes[cat] = []string{"no_such_type"}
	}
	lean.StatefulTypes = []string{"no_such_type"}
	leanEngine, err := policy.New(ctx, lean, nil)
	if err != nil {
		return nil, err
	}
	var assessment *policy.Assessment
	evaluate := func(e *policy.Engine) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			in := e.NewInput(op)
			for i := range p.Changes {
				if err := in.Add(&p.Changes[i]); err != nil {
					return 0, err
				}
			}
			in.SetPlan(p)
			t := time.Now()
			a, err := e.Evaluate(ctx, in)
			d := time.Since(t)
			if err == nil && a.Decision != policy.Allow {
				err = fmt.Errorf("decision %s", a.Decision)
			}
			assessment = a
			return d, err
		}
	}
	if err := timeSplit("evaluate the policy, type lists emptied", "the same with sensitive_types and stateful_types cut to one pattern each: what is left when types are not matched", evaluate(leanEngine)); err != nil {
		return nil, err
	}
	if err := timeSplit("evaluate the policy", fmt.Sprintf("the Rego query of the default policy: %d resource types against %d type patterns (%d of them globs)", pi.PlanTypes, pi.TypePatterns, pi.GlobPatterns), evaluate(s.engine)); err != nil {
		return nil, err
	}
	// Default first in the table.
	parts[len(parts)-1], parts[len(parts)-2] = parts[len(parts)-2], parts[len(parts)-1]
	tmpl, err := s.st.GetCheck(ctx, last.ID)
	if err != nil {
		return nil, err
	}
	if err := timeIt("write the check and 3 audit events", "one transaction: INSERT check, then 3 x (lock the chain, read its head, hash, INSERT event), COMMIT", func() error {
		ch := *tmpl
		now := time.Now().UTC()
		ch.ID, ch.ResumeKey, ch.GrantID = "chk_"+randomHex(12), randomHex(32), "grt_"+randomHex(12)
		ch.CreatedAt, ch.UpdatedAt, ch.ExpiresAt, ch.GrantIssuedAt, ch.GrantExpiresAt = now, now, now.Add(time.Hour), now, now.Add(15*time.Minute)
		created, _ := json.Marshal(map[string]any{"kind": ch.Kind, "workspace": ch.Workspace, "environment": ch.Environment,
			"plan_sha256": ch.PlanSHA256, "plan_file_sha256": "", "decision": "allow", "rules": []string{}, "requirements": nil, "pipeline": ch.Pipeline})
		issued, _ := json.Marshal(map[string]any{"grant_id": ch.GrantID, "expires_at": ch.GrantExpiresAt})
		return s.st.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateCheck(ctx, &ch); err != nil {
				return err
			}
			for _, e := range []*audit.Event{
				{Time: now, Type: audit.CheckCreated, Actor: ch.Requester, Subject: ch.ID, Data: created},
				{Time: now, Type: audit.CheckAllowed, Actor: "policy", Subject: ch.ID},
				{Time: now, Type: audit.GrantIssued, Actor: "policy", Subject: ch.ID, Data: issued},
			} {
				if err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
	}); err != nil {
		return nil, err
	}
	if err := timeIt("read the approvals", "1 read (ListApprovals), none", func() error {
		_, err := s.st.ListApprovals(ctx, tmpl.ID)
		return err
	}); err != nil {
		return nil, err
	}
	if err := timeIt("load the signing key", "1 read (ListSigningKeys) + AES-256-GCM open + Ed25519 key from seed + thumbprint check", func() error {
		_, _, err := s.ring.Signer(ctx, s.st)
		return err
	}); err != nil {
		return nil, err
	}
	kid, key, err := s.ring.Signer(ctx, s.st)
	if err != nil {
		return nil, err
	}
	claims := &grant.Claims{
		Issuer: s.svc.Issuer(), Subject: tmpl.ID, Audience: jwt.Audience{s.svc.Audience()},
		IssuedAt: jwt.NewNumericDate(tmpl.GrantIssuedAt), NotBefore: jwt.NewNumericDate(tmpl.GrantIssuedAt), Expiry: jwt.NewNumericDate(tmpl.GrantExpiresAt),
		ID: tmpl.GrantID, PlanSHA256: tmpl.PlanSHA256, Workspace: tmpl.Workspace, Environment: tmpl.Environment, Kind: tmpl.Kind,
		Pipeline: tmpl.Pipeline, Requester: tmpl.Requester, Decision: string(assessment.Decision), Rules: []string{},
	}
	if err := timeIt("sign the grant", "grant.Sign: JSON claims, Ed25519 (go-jose)", func() error {
		_, err := grant.Sign(kid, key, claims)
		return err
	}); err != nil {
		return nil, err
	}
	view, err := s.svc.GetCheck(ctx, caller, tmpl.ID)
	if err != nil {
		return nil, err
	}
	if err := timeIt("encode and decode the answer", "JSON of the check with its assessment and grant, server and client side", func() error {
		b, err := json.Marshal(view)
		if err != nil {
			return err
		}
		var back api.Check
		return json.Unmarshal(b, &back)
	}); err != nil {
		return nil, err
	}
	return parts, nil
}

// ---- wake-ups ----

// wakeSeq numbers the wake-up plans across measurements.
var wakeSeq atomic.Int64

type waitResult struct {
	check *api.Check
	err   error
	at    time.Time
}

// measureWakeups creates pending checks on waitOn, has a client wait on
// each there, records the last approval through recordOn's service and
// times how long the client takes to hold the approved check.
func measureWakeups(ctx context.Context, waitOn, recordOn *stack, token string, iam []byte, n int) (WakeResult, error) {
	r := WakeResult{N: n, WaitServer: waitOn.name, RecordServer: recordOn.name}
	c, err := client.New(waitOn.url, token)
	if err != nil {
		return r, err
	}
	// The approver: only the approvals of enabled, eligible accounts count.
	if _, err := recordOn.st.GetUserByName(ctx, "alice"); errors.Is(err, store.ErrNotFound) {
		alice := &store.User{ID: "usr_alice", Name: "alice", Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}
		if err := recordOn.st.CreateUser(ctx, alice); err != nil {
			return r, fmt.Errorf("creating the approver: %w", err)
		}
	} else if err != nil {
		return r, err
	}
	var doc map[string]any
	if err := json.Unmarshal(iam, &doc); err != nil {
		return r, fmt.Errorf("reading the wake-up plan: %w", err)
	}
	base := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	var lat, notify, record []time.Duration
	for i := range n {
		// A fresh plan (its timestamp) each time: the same plan would
		// resume the check approved the time before.
		doc["timestamp"] = base.Add(time.Duration(wakeSeq.Add(1)) * time.Second).Format(time.RFC3339)
		body, _ := json.Marshal(doc)
		v, err := c.CreateCheck(ctx, client.CheckRequest{Kind: "terraform.apply", Workspace: "billing-prod", Plan: bytes.NewReader(body)})
		if err != nil {
			return r, err
		}
		if v.State != string(store.StatePending) || v.Resumed || v.Assessment.Requirements == nil {
			return r, fmt.Errorf("check %s is %s (resumed %t), want a new pending check", v.ID, v.State, v.Resumed)
		}
		if i == 0 {
			q := v.Assessment.Requirements
			r.Requirements = fmt.Sprintf("aal %d, %d approval(s) by someone other than the requester", q.AAL, q.Approvals)
		}

		// Hear the notification on the waiting server's hub ourselves, to
		// tell how long it took to arrive.
		notified, unsubscribe := waitOn.hub.Subscribe(v.ID)
		for len(waitOn.waits) > 0 {
			<-waitOn.waits
		}
		done := make(chan waitResult, 1)
		go func() {
			got, err := c.WaitCheck(ctx, v.ID, 30*time.Second)
			done <- waitResult{got, err, time.Now()}
		}()
		if err := waitFor(ctx, waitOn.waits, v.ID, 10*time.Second); err != nil {
			unsubscribe()
			return r, fmt.Errorf("the wait request of %s did not reach the server: %w", v.ID, err)
		}
		// Let the server subscribe and read the check once.
		time.Sleep(50 * time.Millisecond)
		select {
		case w := <-done:
			unsubscribe()
			return r, fmt.Errorf("the wait on %s ended before the approval (%v, err %v)", v.ID, stateOf(w.check), w.err)
		default:
		}
		for len(notified) > 0 { // the check's creation, heard late
			<-notified
		}
		heard := make(chan time.Time, 1)
		go func() {
			select {
			case <-notified:
				heard <- time.Now()
			case <-time.After(15 * time.Second):
				close(heard)
			}
		}()

		t0 := time.Now()
		_, err = recordOn.svc.Record(ctx, v.ID, &gate.Proof{Subject: "alice", Groups: []string{gate.DefaultApproverGroup}, Approved: true, AMR: []string{"hwk"}, AAL: 3, AuthTime: time.Now()})
		recorded := time.Now()
		if err != nil {
			unsubscribe()
			return r, fmt.Errorf("recording the approval of %s: %w", v.ID, err)
		}
		var w waitResult
		select {
		case w = <-done:
		case <-time.After(40 * time.Second):
			unsubscribe()
			return r, fmt.Errorf("the waiting client never got %s: %w", v.ID, errTimeout)
		}
		unsubscribe()
		if w.err != nil {
			return r, fmt.Errorf("waiting on %s: %w", v.ID, w.err)
		}
		if w.check.State != string(store.StateApproved) || w.check.Grant == "" {
			return r, fmt.Errorf("the wait on %s returned %s (grant %t), want approved with a grant", v.ID, w.check.State, w.check.Grant != "")
		}
		lat = append(lat, w.at.Sub(t0))
		record = append(record, recorded.Sub(t0))
		if at, ok := <-heard; ok {
			notify = append(notify, at.Sub(t0))
			if !at.After(w.at) {
				r.ViaNotification++
			}
		}
	}
	r.Latency = latencies(lat)
	r.Record = latencies(record)
	r.Notified = latencies(notify)
	r.NotifiedCount = len(notify)
	return r, nil
}

func stateOf(c *api.Check) string {
	if c == nil {
		return "no check"
	}
	return c.State
}

func waitFor(ctx context.Context, ch <-chan string, id string, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case got := <-ch:
			if got == id {
				return nil
			}
		case <-t.C:
			return errTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func distinctTypes(p *plan.Plan) int {
	seen := map[string]bool{}
	for _, c := range p.Changes {
		seen[c.Type] = true
	}
	return len(seen)
}

// ---- the resume lookup as the store grows ----

// measureLookupScale adds allowed checks to the store until it holds each
// of totals (the benchmark's own are counted in have) and times the lookup
// every check starts with: FindResumableCheck of a key that is not there.
// Allowed checks whose grant was never used stay allowed, so a server keeps
// more of them every day.
func measureLookupScale(ctx context.Context, st store.Store, have int, totals []int) ([]LookupPoint, error) {
	var out []LookupPoint
	now := time.Now().UTC()
	for _, total := range totals {
		for have < total {
			batch := min(total-have, 1000)
			err := st.InTx(ctx, func(tx store.Tx) error {
				for range batch {
					c := &store.Check{
						ID: "chk_" + randomHex(12), State: store.StateAllowed, Kind: "terraform.apply",
						Workspace: benchWorkspace, Environment: benchEnvironment, PlanSHA256: randomHex(32),
						Requester: "ci-bench", TokenID: "bench", Assessment: json.RawMessage(`{"decision":"allow","findings":[]}`),
						ResumeKey: randomHex(32), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour),
						GrantID: "grt_" + randomHex(12), GrantIssuedAt: now, GrantExpiresAt: now.Add(15 * time.Minute),
					}
					if err := tx.CreateCheck(ctx, c); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return out, fmt.Errorf("adding checks: %w", err)
			}
			have += batch
		}
		ds := make([]time.Duration, 0, 50)
		for range 50 {
			t := time.Now()
			_, err := st.FindResumableCheck(ctx, randomHex(32))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return out, err
			}
			ds = append(ds, time.Since(t))
		}
		l := latencies(ds)
		out = append(out, LookupPoint{Checks: total, P50: l.P50, Max: l.Max})
	}
	return out, nil
}
