package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
)

// clock is a settable clock for the limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func auditCount(t *testing.T, s *stack, typ string) int {
	t.Helper()
	evs, err := s.st.ListAudit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestRateLimitPerToken: a token that creates checks faster than its rate
// gets 429 with Retry-After, audited once per minute however many are
// refused; another token is not slowed; the token is let in again once
// its bucket refills.
func TestRateLimitPerToken(t *testing.T) {
	c := &clock{t: time.Now()}
	s := newStack(t, stackOpts{now: c.now, cfg: gate.Config{Limits: gate.Limits{PerMinute: 60, Burst: 3, MaxPending: -1}}})
	flood, other := s.token(t), s.token(t)
	e := &env{srv: s.srv}
	create := func(tok string) (int, string, string) {
		resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev", tok, planBody(t, "dev-tag-change.plan.json"))
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}
	for i := range 3 {
		if code, _, b := create(flood); code >= 300 {
			t.Fatalf("create %d within the burst = %d %s", i, code, b)
		}
	}
	for i := range 5 {
		code, retry, b := create(flood)
		if code != 429 || retry == "" || !strings.Contains(b, "rate_limited") {
			t.Errorf("create %d over the rate = %d (Retry-After %q) %s; want 429 with Retry-After", i, code, retry, b)
		}
	}
	if n := auditCount(t, s, audit.CheckLimited); n != 1 {
		t.Errorf("%d %s events for 5 refusals within a minute, want 1", n, audit.CheckLimited)
	}
	if code, _, b := create(other); code >= 300 {
		t.Errorf("another token during the flood = %d %s, want created", code, b)
	}
	c.add(time.Second)
	if code, _, b := create(flood); code >= 300 {
		t.Errorf("the token a second later = %d %s, want created", code, b)
	}
}

// TestPendingCapPerToken: a token may have at most MaxPending checks
// waiting for people; one more is refused with 429 and audited, while
// resuming one of its own pending checks still works.
func TestPendingCapPerToken(t *testing.T) {
	s := newStack(t, stackOpts{cfg: gate.Config{Limits: gate.Limits{PerMinute: -1, MaxPending: 2}}})
	tok := s.token(t)
	e := &env{srv: s.srv}
	create := func(ws string) (int, string, string) {
		resp, b := e.do(t, "POST", "/v1/checks?workspace="+ws, tok, planBody(t, "prod-iam.plan.json"))
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}
	for i := range 2 {
		if code, _, b := create(fmt.Sprintf("billing-prod-%d", i)); code != 201 || !strings.Contains(b, `"pending"`) {
			t.Fatalf("pending check %d = %d %s, want 201 pending", i, code, b)
		}
	}
	code, retry, b := create("billing-prod-2")
	if code != 429 || retry == "" {
		t.Errorf("a third pending check = %d (Retry-After %q) %s; want 429 with Retry-After", code, retry, b)
	}
	if n := auditCount(t, s, audit.CheckLimited); n != 1 {
		t.Errorf("%d %s events, want 1", n, audit.CheckLimited)
	}
	if code, _, b := create("billing-prod-0"); code >= 300 || !strings.Contains(b, `"resumed": true`) {
		t.Errorf("resuming its own pending check at the cap = %d %s, want it resumed", code, b)
	}
}

// TestOperationalMetrics: the metrics the dashboard and the alerts use
// are exported: pending and overdue checks from the database, checks by
// workspace, the time to people's decision, the database's state.
func TestOperationalMetrics(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.svc.SetNotifier(s.api.Observer())
	e := &env{srv: s.srv}
	tok := s.token(t)
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-prod", tok, planBody(t, "prod-iam.plan.json"))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	_, m := e.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{
		"stepgate_checks_pending 1", "stepgate_checks_overdue 0", "stepgate_store_up 1",
		`stepgate_checks_workspace_total{decision="step_up",workspace="billing-prod"} 1`,
		`stepgate_check_events_total{event="check.pending"} 1`, "stepgate_waiting_requests 0",
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	s.st.Close()
	_, m = e.do(t, "GET", "/metrics", "", nil)
	if !strings.Contains(string(m), "stepgate_store_up 0") {
		t.Errorf("metrics with the database gone lack stepgate_store_up 0")
	}
}
