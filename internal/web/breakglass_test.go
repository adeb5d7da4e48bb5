package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// TestBreakGlassRefusedOnTheWeb attacks the break-glass routes: each
// refusal is one breakglass.refused event naming who tried, and nothing
// is recorded.
func TestBreakGlassRefusedOnTheWeb(t *testing.T) {
	f := newFixtureWith(t, gate.Config{BreakGlass: gate.BreakGlassConfig{Group: "oncall"}})
	f.addUser(t, "olivia", "oncall")
	f.addUser(t, "oscar", "oncall")
	f.addUser(t, "dev", "developers")
	f.addUser(t, "bob", "approvers")
	req := policy.Requirements{AAL: 3, Approvals: 1}
	f.putCheck(t, "chk_bg", checkSpec{requester: "ci-bot", req: req})
	f.putCheck(t, "chk_own", checkSpec{requester: "oscar", req: req})
	f.putCheck(t, "chk_plain", checkSpec{requester: "ci-bot", req: req})
	f.putCheck(t, "chk_used", checkSpec{requester: "ci-bot", req: req})
	now := f.clock.Now()
	for _, b := range []*store.BreakGlass{
		{CheckID: "chk_bg", Reason: "INC-1234: the invoices bucket is down", RequestedAt: now},
		{CheckID: "chk_own", Reason: "INC-1234: the invoices bucket is down", RequestedAt: now},
		{CheckID: "chk_used", Reason: "INC-1234: the invoices bucket is down", RequestedAt: now, Subject: "olivia", UsedAt: now, ReviewDueAt: now.Add(24 * time.Hour)},
	} {
		if err := f.st.CreateBreakGlass(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	begin := func(id string) func(b *browser) *response {
		return func(b *browser) *response {
			return b.postJSON(t, "/checks/"+id+"/breakglass/passkey/begin", map[string]any{})
		}
	}
	ack := func(id, note string) func(b *browser) *response {
		return func(b *browser) *response {
			return b.post(t, "/reviews/"+id+"/acknowledge", url.Values{"note": {note}})
		}
	}
	for _, tt := range []struct {
		name, as string
		try      func(b *browser) *response
		status   int
		subject  string
		reason   string
	}{
		{"fail/not-in-the-group", "dev", begin("chk_bg"), http.StatusForbidden, "chk_bg", "oncall"},
		{"fail/an-approver-is-not-on-call", "bob", begin("chk_bg"), http.StatusForbidden, "chk_bg", "oncall"},
		{"fail/the-requester", "oscar", begin("chk_own"), http.StatusForbidden, "chk_own", "separation of duties"},
		{"fail/pipeline-did-not-ask", "olivia", begin("chk_plain"), http.StatusForbidden, "chk_plain", "did not ask"},
		{"fail/finish-without-begin", "olivia", func(b *browser) *response {
			return b.postJSON(t, "/checks/chk_bg/breakglass/passkey/finish", map[string]any{})
		}, http.StatusBadRequest, "chk_bg", "expired"},
		{"fail/review-by-who-broke-it", "olivia", ack("chk_used", "fine"), http.StatusForbidden, "chk_used", "broke the glass"},
		{"fail/review-without-a-note", "bob", ack("chk_used", " "), http.StatusBadRequest, "chk_used", "note"},
		{"fail/review-by-a-developer", "dev", ack("chk_used", "fine"), http.StatusForbidden, "chk_used", "admin, an approver"},
		{"fail/review-of-an-unused-request", "bob", ack("chk_bg", "fine"), http.StatusNotFound, "chk_bg", "nobody broke the glass"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.refusalEvents(t, audit.BreakGlassRefused, tt.subject))
			b := f.browser(t)
			b.signIn(t, tt.as)
			res := tt.try(b)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d\n%s", res.status, tt.status, res.body)
			}
			events := f.refusalEvents(t, audit.BreakGlassRefused, tt.subject)
			if len(events) != before+1 {
				t.Fatalf("%d new %s events about %s, want 1", len(events)-before, audit.BreakGlassRefused, tt.subject)
			}
			if e := events[len(events)-1]; e.Actor != tt.as || !strings.Contains(strings.ToLower(string(e.Data)), strings.ToLower(tt.reason)) {
				t.Errorf("event = actor %q data %s; want actor %q and a reason with %q", e.Actor, e.Data, tt.as, tt.reason)
			}
			if f.state(t, tt.subject) != store.StatePending {
				t.Errorf("check %s is %s after a refusal, want pending", tt.subject, f.state(t, tt.subject))
			}
		})
	}

	// The queue shows the use; bob reviews it.
	b := f.browser(t)
	b.signIn(t, "bob")
	res := b.get(t, "/reviews")
	if res.status != http.StatusOK || !strings.Contains(res.body, "chk_used") || !strings.Contains(res.body, `action="/reviews/chk_used/acknowledge"`) {
		t.Fatalf("GET /reviews = %d; want chk_used with a review form\n%s", res.status, res.body)
	}
	res = b.post(t, "/reviews/chk_used/acknowledge", url.Values{"note": {"Checked with olivia: INC-1234."}})
	if res.status != http.StatusSeeOther || !strings.HasSuffix(res.header.Get("Location"), "/reviews?done=acknowledged") {
		t.Fatalf("acknowledging = %d %s, want a redirect to /reviews?done=acknowledged", res.status, res.header.Get("Location"))
	}
	bg, err := f.st.GetBreakGlass(context.Background(), "chk_used")
	if err != nil || bg.Reviewer != "bob" || bg.ReviewNote != "Checked with olivia: INC-1234." {
		t.Errorf("after the review: %+v, %v; want reviewed by bob with his note", bg, err)
	}
}

// TestReviewsBanner: the list of checks tells whoever may review that
// uses of break-glass wait for a review, and which are overdue.
func TestReviewsBanner(t *testing.T) {
	f := newFixtureWith(t, gate.Config{BreakGlass: gate.BreakGlassConfig{Group: "oncall"}})
	f.addUser(t, "bob", "approvers")
	f.addUser(t, "dev", "developers")
	f.putCheck(t, "chk_used", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 3, Approvals: 1}})
	now := f.clock.Now()
	if err := f.st.CreateBreakGlass(context.Background(), &store.BreakGlass{CheckID: "chk_used", Reason: "INC-1234: the invoices bucket is down",
		RequestedAt: now, Subject: "olivia", UsedAt: now, ReviewDueAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		as    string
		after time.Duration
		want  string
	}{
		{"bob", 0, "1 use(s) waiting for a review</a>."},
		{"bob", 2 * time.Hour, "1 use(s) waiting for a review</a>, 1 overdue."},
		{"dev", 0, ""},
	} {
		f.clock.Add(tt.after)
		b := f.browser(t)
		b.signIn(t, tt.as)
		res := b.get(t, "/checks")
		if got := strings.Contains(res.body, "Break-glass:"); got != (tt.want != "") || !strings.Contains(res.body, tt.want) {
			t.Errorf("/checks for %s after %v: banner %t; want %q\n%s", tt.as, tt.after, got, tt.want, res.body)
		}
	}
}
