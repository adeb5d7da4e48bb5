package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
)

// refusalEvents returns the audit events of type typ about subject.
func (f *fixture) refusalEvents(t *testing.T, typ, subject string) []*audit.Event {
	t.Helper()
	events, err := f.st.ListAudit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*audit.Event
	for _, e := range events {
		if e.Type == typ && (subject == "" || e.Subject == subject) {
			out = append(out, e)
		}
	}
	return out
}

// Every refusal of an approval or a sign-in is written to the audit log,
// naming who tried what and why, whether the web refused it before asking
// the gate or the gate refused it. Each case is one attempt: one event.
func TestRefusalsAreAudited(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.addUser(t, "alice", "approvers")
	f.addUser(t, "dev", "developers")
	f.putCheck(t, "chk_alice", checkSpec{requester: "alice", req: policy.Requirements{AAL: 2, Approvals: 1}})
	f.putCheck(t, "chk_bot", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 2, Approvals: 1}})
	f.putCheck(t, "chk_aal3", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 3, Approvals: 1}})

	for _, tt := range []struct {
		name    string
		as      string // signed in as; "" for nobody
		try     func(b *browser) *response
		status  int
		typ     string
		subject string
		actor   string
		reason  string
	}{
		{"fail/self-approval", "alice", func(b *browser) *response {
			return b.post(t, "/checks/chk_alice/approve/totp", url.Values{"code": {f.code(t, "alice")}})
		}, http.StatusForbidden, audit.ApprovalRefused, "chk_alice", "alice", "someone else must approve"},
		{"fail/not-eligible", "dev", func(b *browser) *response {
			return b.post(t, "/checks/chk_bot/approve/totp", url.Values{"code": {f.code(t, "dev")}})
		}, http.StatusForbidden, audit.ApprovalRefused, "chk_bot", "dev", "not one of the approvers"},
		{"fail/too-weak-method", "bob", func(b *browser) *response {
			return b.post(t, "/checks/chk_aal3/approve/totp", url.Values{"code": {f.code(t, "bob")}})
		}, http.StatusForbidden, audit.ApprovalRefused, "chk_aal3", "bob", "level 3"},
		{"fail/passkey-begin-signed-out", "", func(b *browser) *response {
			return b.postJSON(t, "/checks/chk_aal3/approve/passkey/begin", map[string]any{})
		}, http.StatusUnauthorized, audit.ApprovalRefused, "chk_aal3", "anonymous", "sign in"},
		{"fail/sign-in-unknown-person", "", func(b *browser) *response {
			return b.post(t, "/signin/totp", url.Values{"username": {"nobody"}, "code": {"123456"}})
		}, http.StatusUnauthorized, audit.SignInRefused, "user:nobody", "anonymous", "no such person"},
		{"fail/enrollment-link-unknown", "", func(b *browser) *response {
			return b.post(t, "/enroll/not-a-link/totp", url.Values{"code": {"123456"}})
		}, http.StatusNotFound, audit.EnrollmentRefused, "", "anonymous", "enrollment link"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.refusalEvents(t, tt.typ, tt.subject))
			b := f.browser(t)
			if tt.as != "" {
				b.signIn(t, tt.as)
			}
			res := tt.try(b)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d\n%s", res.status, tt.status, res.body)
			}
			events := f.refusalEvents(t, tt.typ, tt.subject)
			if len(events) != before+1 {
				t.Fatalf("%d new %s events about %q, want 1", len(events)-before, tt.typ, tt.subject)
			}
			e := events[len(events)-1]
			if e.Actor != tt.actor || !strings.Contains(string(e.Data), tt.reason) {
				t.Errorf("event = actor %q data %s; want actor %q and a reason with %q", e.Actor, e.Data, tt.actor, tt.reason)
			}
		})
	}
}

// A stranger signing in under ever new names (nobody's) from one address
// is anonymous: the typed name is no actor, and the refusals are audited
// per source at most once a minute with the count, not one write each.
func TestSignInAsNobodyFloodDoesNotFloodTheAuditLog(t *testing.T) {
	f := newFixture(t)
	before := len(f.refusalEvents(t, audit.SignInRefused, ""))
	b := f.browser(t)
	for i := range 30 {
		res := b.post(t, "/signin/totp", url.Values{"username": {"nobody" + strings.Repeat("x", i)}, "code": {"123456"}})
		if res.status != http.StatusUnauthorized && res.status != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 401 or 429", res.status)
		}
	}
	events := f.refusalEvents(t, audit.SignInRefused, "")
	if got := len(events) - before; got != 1 {
		t.Fatalf("%d sign-in refusals audited for 30 attempts from one address, want 1", got)
	}
	if e := events[len(events)-1]; e.Actor != "anonymous" {
		t.Errorf("actor %q, want anonymous: the name typed is nobody's", e.Actor)
	}
}
