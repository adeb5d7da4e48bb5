package httpapi

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/clocktest"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/store"
)

const bgReason = "INC-1234: invoices fail to upload, the deployer role needs s3:PutObject"

// countAudit counts the audit events of type typ.
func countAudit(t *testing.T, st store.Store, typ string) int {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), 0, 10000)
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

// TestBreakGlassRequests attacks break_glass=true on POST /v1/checks: each
// malformed or refused request is a clear 400, audited once, and creates
// nothing.
func TestBreakGlassRequests(t *testing.T) {
	on := newStack(t, stackOpts{cfg: gate.Config{BreakGlass: gate.BreakGlassConfig{Group: "oncall"}}})
	off := newStack(t, stackOpts{})
	for _, tt := range []struct {
		name  string
		s     *stack
		query string
		want  string // in the message
	}{
		{"fail/reason-too-short", on, "break_glass=true&break_glass_reason=" + url.QueryEscape("INC-1: broken"), "at least 20 characters"},
		{"fail/no-reason", on, "break_glass=true", "at least 20 characters"},
		{"fail/spaces-are-not-a-reason", on, "break_glass=true&break_glass_reason=" + url.QueryEscape("INC-1"+strings.Repeat(" ", 40)), "at least 20 characters"},
		{"fail/control-characters", on, "break_glass=true&break_glass_reason=" + url.QueryEscape("INC-1234: all good\x1b[2K\rapproved by the CISO"), "control characters"},
		{"fail/reason-without-break-glass", on, "break_glass_reason=" + url.QueryEscape(bgReason), "break_glass=true"},
		{"fail/not-a-boolean", on, "break_glass=yes&break_glass_reason=" + url.QueryEscape(bgReason), "true or false"},
		{"fail/off-on-this-server", off, "break_glass=true&break_glass_reason=" + url.QueryEscape(bgReason), "not enabled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{srv: tt.s.srv, token: tt.s.token(t)}
			before := countAudit(t, tt.s.st, audit.BreakGlassRefused)
			resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-prod&"+tt.query, e.token, planBody(t, "prod-iam.plan.json"))
			if resp.StatusCode != 400 || errCode(t, b) != api.CodeBadRequest || !strings.Contains(string(b), tt.want) {
				t.Fatalf("POST /v1/checks?%s = %d %s; want 400 saying %q", tt.query, resp.StatusCode, b, tt.want)
			}
			if n := countAudit(t, tt.s.st, audit.BreakGlassRefused) - before; n != 1 {
				t.Errorf("%d %s events written, want 1", n, audit.BreakGlassRefused)
			}
			if cs, _ := tt.s.st.ListChecks(context.Background(), store.StatePending, 10); len(cs) != 0 {
				t.Errorf("a refused request created %d pending checks", len(cs))
			}
		})
	}
}

// TestBreakGlassThroughTheAPI: a check asked for with break_glass=true
// shows its request; once the glass is broken the pipeline's view shows
// who did, the grant lives break_glass.grant_ttl, and an overdue review
// shows in /metrics.
func TestBreakGlassThroughTheAPI(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	s := newStack(t, stackOpts{now: clk.Now, cfg: gate.Config{BreakGlass: gate.BreakGlassConfig{Group: "oncall", GrantTTL: 2 * time.Minute}}})
	e := &env{srv: s.srv, token: s.token(t)}
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-prod&break_glass=true&break_glass_reason="+url.QueryEscape(bgReason), e.token, planBody(t, "prod-iam.plan.json"))
	var c api.Check
	if resp.StatusCode != 201 || json.Unmarshal(b, &c) != nil || c.State != "pending" || c.BreakGlass == nil || c.BreakGlass.Reason != bgReason || c.BreakGlass.UsedBy != "" {
		t.Fatalf("POST /v1/checks with break_glass = %d %s; want 201, pending, the break-glass request", resp.StatusCode, b)
	}
	if err := s.st.CreateUser(context.Background(), &store.User{ID: "usr_o", Name: "olivia", Groups: []string{"oncall"}, CreatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	p := &gate.Proof{Subject: "olivia", Groups: []string{"oncall"}, Approved: true, AAL: 3, AMR: []string{"hwk", "user", "mfa"},
		AuthTime: clk.Now(), Evidence: json.RawMessage(`{"method":"webauthn"}`)}
	if _, err := s.svc.BreakGlass(context.Background(), c.ID, p); err != nil {
		t.Fatal(err)
	}
	_, b = e.do(t, "GET", "/v1/checks/"+c.ID, e.token, nil)
	c = api.Check{}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.State != "approved" || c.Grant == "" || c.GrantExpiresAt == nil || !c.GrantExpiresAt.Equal(clk.Now().Add(2*time.Minute)) ||
		c.BreakGlass == nil || c.BreakGlass.UsedBy != "olivia" || c.BreakGlass.ReviewURL != s.srv.URL+"/reviews" {
		t.Fatalf("GET /v1/checks/%s after break-glass = %s; want approved by olivia, a 2-minute grant, the review queue's link", c.ID, b)
	}
	for _, tt := range []struct {
		after time.Duration
		want  string
	}{{0, "stepgate_break_glass_reviews_overdue 0"}, {25 * time.Hour, "stepgate_break_glass_reviews_overdue 1"}} {
		clk.Add(tt.after)
		_, m := e.do(t, "GET", "/metrics", "", nil)
		if !strings.Contains(string(m), "\n"+tt.want+"\n") {
			t.Errorf("after %v, /metrics lacks %q", tt.after, tt.want)
		}
	}
}
