package gate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

const incident = "INC-1234: the deployer role cannot write invoices"

// newBreakGlassFixture is newFixture with break-glass for the group
// "oncall", and, when denyIAM is set, a policy that denies a production
// identity.escalation.
func newBreakGlassFixture(t *testing.T, cfg BreakGlassConfig, denyIAM bool) *fixture {
	t.Helper()
	f := newFixture(t)
	engine := f.svc.engine
	if denyIAM {
		pc := policy.DefaultConfig()
		r := pc.Rules["identity.escalation"]
		r.Production = &policy.RuleContext{Decision: policy.Deny, Severity: "critical"}
		pc.Rules["identity.escalation"] = r
		var err error
		if engine, err = policy.New(t.Context(), pc, nil); err != nil {
			t.Fatal(err)
		}
	}
	c := f.svc.cfg
	if cfg.Group == "" {
		cfg.Group = "oncall"
	}
	c.BreakGlass = cfg
	f.svc = New(f.st, engine, f.svc.ring, c, slog.New(slog.NewTextHandler(io.Discard, nil)), f.clock.Now)
	for name, groups := range map[string][]string{"olivia": {"oncall"}, "oscar": {"oncall"}, "alice": {DefaultApproverGroup}, "mallory": {"developers"}, "billing-ci": {"oncall"}} {
		u := &store.User{ID: "usr_" + name, Name: name, Groups: groups, CreatedAt: f.clock.Now()}
		if err := f.st.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// ask creates a check of the production IAM change, asking for break-glass
// with reason when it is not empty.
func (f *fixture) ask(t *testing.T, reason string) (string, error) {
	t.Helper()
	file, err := os.Open(filepath.Join("..", "..", "examples", "prod-iam.plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r := &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod", Plan: file}
	if reason != "" {
		r.BreakGlass = &BreakGlassRequest{Reason: reason}
	}
	v, _, err := f.svc.CreateCheck(t.Context(), f.caller, r)
	if err != nil {
		return "", err
	}
	return v.ID, nil
}

// passkey is a proof by a fresh passkey with user verification.
func (f *fixture) passkey(name string, groups ...string) *Proof {
	return &Proof{
		Subject: name, Groups: groups, Approved: true, AAL: 3, AMR: []string{"hwk", "user", "mfa"},
		AuthTime: f.clock.Now(), Evidence: json.RawMessage(`{"method":"webauthn"}`),
	}
}

func (f *fixture) lastAudit(t *testing.T) *audit.Event {
	t.Helper()
	evs, err := f.st.ListAudit(t.Context(), 0, 10000)
	if err != nil || len(evs) == 0 {
		t.Fatalf("ListAudit = %d events, %v", len(evs), err)
	}
	return evs[len(evs)-1]
}

func (f *fixture) auditTypes(t *testing.T, subject string) []string {
	t.Helper()
	evs, err := f.st.ListAudit(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if e.Subject == subject {
			out = append(out, e.Type)
		}
	}
	return out
}

func TestBreakGlassUse(t *testing.T) {
	f := newBreakGlassFixture(t, BreakGlassConfig{}, false)
	r := &recorder{}
	f.svc.SetNotifier(r)
	id, err := f.ask(t, incident)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(10 * time.Second)
	v, err := f.svc.BreakGlass(t.Context(), id, f.passkey("olivia", "oncall"))
	if err != nil {
		t.Fatalf("BreakGlass(olivia of oncall, fresh passkey) = %v, want the check approved", err)
	}
	now := f.clock.Now().UTC()
	if v.State != "approved" || v.GrantExpiresAt == nil || !v.GrantExpiresAt.Equal(now.Add(DefaultBreakGlassGrantTTL)) {
		t.Errorf("after break-glass: state %s, grant expires %v; want approved, %v", v.State, v.GrantExpiresAt, now.Add(DefaultBreakGlassGrantTTL))
	}
	if bg := v.BreakGlass; bg == nil || bg.UsedBy != "olivia" || bg.Reason != incident || bg.ReviewDueAt == nil || !bg.ReviewDueAt.Equal(now.Add(24*time.Hour)) {
		t.Errorf("break-glass view %+v; want used by olivia for %q, review due in 24h", v.BreakGlass, incident)
	}
	if got := strings.Join(f.auditTypes(t, id), " "); !strings.Contains(got, "breakglass.requested") || !strings.Contains(got, "breakglass.used check.approval check.approved grant.issued") {
		t.Errorf("audit events of the check: %s; want breakglass.requested, then breakglass.used, check.approval, check.approved, grant.issued", got)
	}
	if got := strings.Join(r.events, ","); got != "check.pending pending,"+notify.BreakGlassUsed+" approved" {
		t.Errorf("notifications %q; want the pending check, then break_glass.used", got)
	}
	if n, err := f.svc.OverdueReviews(t.Context()); err != nil || n != 0 {
		t.Errorf("OverdueReviews = %d, %v; want 0 before the deadline", n, err)
	}

	// The review: never by who broke the glass, nor by the requester;
	// by an approver, with a note, once.
	for _, tt := range []struct {
		name string
		who  *Reviewer
		note string
		want error
	}{
		{"fail/who-broke-the-glass", &Reviewer{Subject: "Olivia", Groups: []string{"oncall"}, Admin: true}, "fine", ErrSelfReview},
		{"fail/the-requester", &Reviewer{Subject: "billing-ci", Groups: []string{"oncall"}}, "fine", ErrSelfReview},
		{"fail/not-a-reviewer", &Reviewer{Subject: "mallory", Groups: []string{"developers"}}, "fine", ErrNotEligible},
		{"fail/no-note", &Reviewer{Subject: "alice", Groups: []string{DefaultApproverGroup}}, "   ", ErrBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.AcknowledgeBreakGlass(t.Context(), id, tt.who, tt.note)
			if !errors.Is(err, tt.want) || !Audited(err) {
				t.Fatalf("AcknowledgeBreakGlass = %v (audited %t); want %v, audited", err, Audited(err), tt.want)
			}
			if e := f.lastAudit(t); e.Type != audit.BreakGlassRefused || e.Actor != tt.who.Subject || e.Subject != id {
				t.Errorf("last audit event %s by %s on %s; want %s by %s on %s", e.Type, e.Actor, e.Subject, audit.BreakGlassRefused, tt.who.Subject, id)
			}
		})
	}
	f.clock.Add(25 * time.Hour)
	if n, err := f.svc.OverdueReviews(t.Context()); err != nil || n != 1 {
		t.Errorf("OverdueReviews 25h later = %d, %v; want 1", n, err)
	}
	r.events = nil
	for i, want := range []int{1, 0} {
		if n, err := f.svc.RemindOverdue(t.Context()); err != nil || n != want {
			t.Errorf("RemindOverdue #%d = %d, %v; want %d (once per remind_every)", i+1, n, err, want)
		}
	}
	f.clock.Add(DefaultBreakGlassRemindEvery)
	if n, err := f.svc.RemindOverdue(t.Context()); err != nil || n != 1 {
		t.Errorf("RemindOverdue an hour later = %d, %v; want 1 again", n, err)
	}
	if got := strings.Join(r.events, ","); got != notify.BreakGlassOverdue+" approved,"+notify.BreakGlassOverdue+" approved" {
		t.Errorf("notifications %q; want break_glass.review_overdue twice", got)
	}
	bg, err := f.svc.AcknowledgeBreakGlass(t.Context(), id, &Reviewer{Subject: "alice", Groups: []string{DefaultApproverGroup}}, "Checked with olivia: INC-1234 fix, reverted after.")
	if err != nil || bg.ReviewedBy != "alice" || bg.Overdue {
		t.Fatalf("AcknowledgeBreakGlass(alice) = %+v, %v; want reviewed by alice", bg, err)
	}
	if e := f.lastAudit(t); e.Type != audit.BreakGlassReviewed || !strings.Contains(string(e.Data), `"late":true`) {
		t.Errorf("last audit event %s %s; want breakglass.reviewed, late", e.Type, e.Data)
	}
	if _, err := f.svc.AcknowledgeBreakGlass(t.Context(), id, &Reviewer{Subject: "oscar", Groups: []string{"oncall"}}, "again"); !errors.Is(err, ErrConflict) {
		t.Errorf("a second review = %v; want ErrConflict", err)
	}
	if n, _ := f.svc.OverdueReviews(t.Context()); n != 0 {
		t.Errorf("OverdueReviews after the review = %d, want 0", n)
	}
	if n, _ := f.svc.RemindOverdue(t.Context()); n != 0 {
		t.Errorf("RemindOverdue after the review = %d, want 0", n)
	}
}

// TestBreakGlassRefusals attacks each rule of a use: every refusal leaves
// the check pending and is audited.
func TestBreakGlassRefusals(t *testing.T) {
	otp := func(f *fixture) *Proof {
		p := f.passkey("olivia", "oncall")
		p.AAL, p.AMR, p.Evidence = 2, []string{"otp"}, json.RawMessage(`{"method":"totp"}`)
		return p
	}
	for _, tt := range []struct {
		name    string
		noAsk   bool
		denyIAM bool
		allow   []string
		proof   func(f *fixture) *Proof
		before  func(t *testing.T, f *fixture, id string)
		want    error
	}{
		{name: "fail/pipeline-did-not-ask", noAsk: true, proof: func(f *fixture) *Proof { return f.passkey("olivia", "oncall") }, want: ErrBreakGlass},
		{name: "fail/wrong-group", proof: func(f *fixture) *Proof { return f.passkey("alice", DefaultApproverGroup) }, want: ErrNotEligible},
		{name: "fail/admin-not-in-group", proof: func(f *fixture) *Proof { p := f.passkey("root"); p.Admin = true; return p }, want: ErrNotEligible},
		{name: "fail/the-requester", proof: func(f *fixture) *Proof { return f.passkey("Billing-CI", "oncall") }, want: ErrSelfApproval},
		{name: "fail/totp", proof: otp, want: ErrBreakGlass},
		{name: "fail/passkey-without-user-verification", proof: func(f *fixture) *Proof {
			p := f.passkey("olivia", "oncall")
			p.AAL, p.AMR = 2, []string{"hwk"}
			return p
		}, want: ErrBreakGlass},
		{name: "fail/oidc-at-level-3", proof: func(f *fixture) *Proof {
			p := f.passkey("olivia", "oncall")
			p.Evidence = json.RawMessage(`{"method":"oidc"}`)
			return p
		}, want: ErrBreakGlass},
		{name: "fail/passkey-6-minutes-old", proof: func(f *fixture) *Proof {
			p := f.passkey("olivia", "oncall")
			p.AuthTime = f.clock.Now().Add(-6 * time.Minute)
			return p
		}, want: ErrBreakGlass},
		{name: "fail/passkey-from-the-future", proof: func(f *fixture) *Proof {
			p := f.passkey("olivia", "oncall")
			p.AuthTime = f.clock.Now().Add(2 * time.Minute)
			return p
		}, want: ErrBreakGlass},
		{name: "fail/expired-check", proof: func(f *fixture) *Proof { return f.passkey("olivia", "oncall") },
			before: func(t *testing.T, f *fixture, id string) { f.clock.Add(2 * time.Hour) }, want: ErrNotPending},
		{name: "fail/used-twice", proof: func(f *fixture) *Proof { return f.passkey("oscar", "oncall") },
			before: func(t *testing.T, f *fixture, id string) {
				if _, err := f.svc.BreakGlass(t.Context(), id, f.passkey("olivia", "oncall")); err != nil {
					t.Fatal(err)
				}
			}, want: ErrNotPending},
		// The deny rule was allowed when the check was created, and is not
		// any more: the configuration now decides.
		{name: "fail/deny-rule-no-longer-allowed", denyIAM: true, allow: []string{"identity.escalation"}, proof: func(f *fixture) *Proof { return f.passkey("olivia", "oncall") },
			before: func(t *testing.T, f *fixture, id string) { f.svc.cfg.BreakGlass.AllowDenyRules = nil }, want: ErrBreakGlass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newBreakGlassFixture(t, BreakGlassConfig{AllowDenyRules: tt.allow}, tt.denyIAM)
			reason := incident
			if tt.noAsk {
				reason = ""
			}
			id, err := f.ask(t, reason)
			if err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(t, f, id)
			}
			p := tt.proof(f)
			_, err = f.svc.BreakGlass(t.Context(), id, p)
			if !errors.Is(err, tt.want) || !Audited(err) {
				t.Fatalf("BreakGlass = %v (audited %t); want %v, audited", err, Audited(err), tt.want)
			}
			if e := f.lastAudit(t); e.Type != audit.BreakGlassRefused || e.Actor != p.Subject || e.Subject != id {
				t.Errorf("last audit event %s by %s on %s; want %s by %s on %s", e.Type, e.Actor, e.Subject, audit.BreakGlassRefused, p.Subject, id)
			}
			c, err := f.st.GetCheck(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "fail/used-twice" && c.GrantID != "" {
				t.Errorf("a refused break-glass issued grant %s", c.GrantID)
			}
		})
	}
}

// TestBreakGlassRequest attacks the request: off, a short reason, a deny
// not allowed; and a deny that is allowed waits for a break-glass only.
func TestBreakGlassRequest(t *testing.T) {
	t.Run("fail/off", func(t *testing.T) {
		f := newBreakGlassFixture(t, BreakGlassConfig{}, false)
		f.svc.cfg.BreakGlass.Group = ""
		_, err := f.ask(t, incident)
		if !errors.Is(err, ErrBadRequest) || !errors.Is(err, ErrBreakGlass) || !Audited(err) {
			t.Fatalf("CreateCheck(break-glass, off) = %v; want ErrBadRequest, ErrBreakGlass, audited", err)
		}
		if e := f.lastAudit(t); e.Type != audit.BreakGlassRefused || e.Subject != "workspace:billing-prod" {
			t.Errorf("last audit event %s on %s; want %s on workspace:billing-prod", e.Type, e.Subject, audit.BreakGlassRefused)
		}
	})
	for _, reason := range []string{"INC-1", "   INC-1234: fix       ", strings.Repeat("x", 1001), "INC-1234: fine\x1b[31m red text"} {
		t.Run("fail/reason-"+reason[:min(len(reason), 8)], func(t *testing.T) {
			f := newBreakGlassFixture(t, BreakGlassConfig{}, false)
			_, err := f.ask(t, reason)
			if !errors.Is(err, ErrBadRequest) || !Audited(err) {
				t.Fatalf("CreateCheck(reason %q) = %v; want ErrBadRequest, audited", reason, err)
			}
			if e := f.lastAudit(t); e.Type != audit.BreakGlassRefused || e.Actor != "billing-ci" {
				t.Errorf("last audit event %s by %s; want %s by billing-ci", e.Type, e.Actor, audit.BreakGlassRefused)
			}
		})
	}
	t.Run("fail/deny-not-allowed", func(t *testing.T) {
		f := newBreakGlassFixture(t, BreakGlassConfig{}, true)
		id, err := f.ask(t, incident)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := f.st.GetCheck(t.Context(), id)
		if c.State != store.StateDenied {
			t.Fatalf("a deny with break-glass asked, the rule not allowed: %s, want denied", c.State)
		}
		if got := f.auditTypes(t, id); !strings.Contains(strings.Join(got, " "), "check.denied breakglass.refused") {
			t.Errorf("audit events %v; want check.denied then breakglass.refused", got)
		}
		if _, err := f.svc.BreakGlass(t.Context(), id, f.passkey("olivia", "oncall")); err == nil {
			t.Error("BreakGlass on a denied check = nil, want a refusal")
		}
	})
	t.Run("ok/deny-allowed-waits-for-break-glass-only", func(t *testing.T) {
		f := newBreakGlassFixture(t, BreakGlassConfig{AllowDenyRules: []string{"identity.escalation"}}, true)
		id, err := f.ask(t, incident)
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.svc.GetCheck(t.Context(), f.caller, id)
		if err != nil || v.State != "pending" || v.BreakGlass == nil || strings.Join(v.BreakGlass.DenyRules, ",") != "identity.escalation" {
			t.Fatalf("GetCheck = %+v, %v; want pending, break-glass over identity.escalation", v, err)
		}
		// An approver's approval, however strong, does not count.
		if err := MayApprove(v, f.passkey("alice", DefaultApproverGroup)); !errors.Is(err, ErrNotEligible) {
			t.Errorf("MayApprove(alice) = %v; want ErrNotEligible", err)
		}
		if _, err := f.svc.Record(t.Context(), id, f.passkey("alice", DefaultApproverGroup)); !errors.Is(err, ErrNotEligible) || !Audited(err) {
			t.Errorf("Record(alice) = %v; want ErrNotEligible, audited", err)
		}
		if v, err := f.svc.BreakGlass(context.Background(), id, f.passkey("olivia", "oncall")); err != nil || v.State != "approved" {
			t.Errorf("BreakGlass(olivia) = %v; want approved", err)
		}
	})
	t.Run("ok/approvers-still-approve", func(t *testing.T) {
		f := newBreakGlassFixture(t, BreakGlassConfig{}, false)
		id, err := f.ask(t, incident)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := f.svc.Record(t.Context(), id, f.passkey("alice", DefaultApproverGroup)); err != nil || v.State != "approved" {
			t.Fatalf("Record(alice) = %v; want approved: asking for break-glass does not stop the approvers", err)
		}
	})
}

// TestRemindLoop: the loop announces at each tick what is overdue, and
// returns when its context ends.
func TestRemindLoop(t *testing.T) {
	f := newBreakGlassFixture(t, BreakGlassConfig{ReviewWithin: time.Hour}, false)
	r := &recorder{}
	f.svc.SetNotifier(r)
	id, err := f.ask(t, incident)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.BreakGlass(t.Context(), id, f.passkey("olivia", "oncall")); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2 * time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	tick := make(chan time.Time)
	done := make(chan struct{})
	go func() { f.svc.RemindLoop(ctx, tick); close(done) }()
	tick <- time.Time{} // announces
	tick <- time.Time{} // a second tick: its work for the first is done
	r.mu.Lock()
	got := strings.Join(r.events, ",")
	r.mu.Unlock()
	if !strings.HasSuffix(got, notify.BreakGlassOverdue+" approved") || strings.Count(got, notify.BreakGlassOverdue) != 1 {
		t.Errorf("notifications %q; want one break_glass.review_overdue", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RemindLoop did not return after its context ended")
	}
}
