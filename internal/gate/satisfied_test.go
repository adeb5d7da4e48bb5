package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

func TestSatisfied(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ap := func(sub string, aal int, age time.Duration, amr ...string) *store.Approval {
		return &store.Approval{Subject: sub, Approved: true, AAL: aal, AMR: amr, AuthTime: now.Add(-age)}
	}
	for _, tt := range []struct {
		name      string
		req       policy.Requirements
		approvals []*store.Approval
		want      bool
	}{
		{"ok/requester-may-confirm-with-0-approvals", policy.Requirements{AAL: 2, MaxAge: 900}, []*store.Approval{ap("ci", 2, 0)}, true},
		{"fail/requester-never-counts-with-1", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900}, []*store.Approval{ap("ci", 3, 0)}, false},
		{"fail/same-person-twice-is-one", policy.Requirements{AAL: 2, Approvals: 2, MaxAge: 900}, []*store.Approval{ap("alice", 3, 0), ap("alice", 3, 0)}, false},
		{"ok/two-people", policy.Requirements{AAL: 2, Approvals: 2, MaxAge: 900}, []*store.Approval{ap("alice", 3, 0), ap("bob", 2, time.Minute)}, true},
		{"fail/stale-proof", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}, []*store.Approval{ap("alice", 3, 301*time.Second)}, false},
		{"fail/proof-from-the-future", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}, []*store.Approval{ap("alice", 3, -5*time.Minute)}, false},
		{"fail/rejection-is-not-approval", policy.Requirements{AAL: 1}, []*store.Approval{{Subject: "alice", Approved: false, AAL: 3, AuthTime: now}}, false},
		{"fail/method-not-accepted", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Methods: []string{"hwk"}}, []*store.Approval{ap("alice", 2, 0, "otp")}, false},
		{"ok/method-accepted", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Methods: []string{"hwk"}}, []*store.Approval{ap("alice", 3, 0, "hwk", "user")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Satisfied(&tt.req, "ci", tt.approvals, now); got != tt.want {
				t.Errorf("Satisfied(%+v) = %v, want %v", tt.req, got, tt.want)
			}
		})
	}
}

func TestEligible(t *testing.T) {
	for _, tt := range []struct {
		name string
		req  policy.Requirements
		p    Proof
		want bool
	}{
		{"ok/approvers-group", policy.Requirements{Approvals: 1}, Proof{Subject: "alice", Groups: []string{"approvers"}}, true},
		{"ok/admin", policy.Requirements{Approvals: 1}, Proof{Subject: "root", Admin: true}, true},
		{"fail/no-group", policy.Requirements{Approvals: 1}, Proof{Subject: "mallory", Groups: []string{"dev"}}, false},
		{"ok/requester-confirms-with-0-approvals", policy.Requirements{}, Proof{Subject: "ci"}, true},
		{"fail/named-groups-need-all", policy.Requirements{Approvals: 1, Groups: []string{"security", "sre"}}, Proof{Subject: "alice", Groups: []string{"security", "approvers"}}, false},
		{"fail/admin-not-in-named-group", policy.Requirements{Approvals: 1, Groups: []string{"security"}}, Proof{Subject: "root", Admin: true}, false},
		{"ok/in-every-named-group", policy.Requirements{Approvals: 1, Groups: []string{"security", "sre"}}, Proof{Subject: "alice", Groups: []string{"sre", "security", "dev"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Eligible(&tt.req, "ci", &tt.p); got != tt.want {
				t.Errorf("Eligible(%+v, %+v) = %v, want %v", tt.req, tt.p, got, tt.want)
			}
		})
	}
}

func TestMayApprove(t *testing.T) {
	alice := &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true}
	check := func(state string, requester string, req *policy.Requirements) *api.Check {
		return &api.Check{ID: "chk_1", State: state, Requester: requester, Assessment: &policy.Assessment{Decision: policy.StepUp, Requirements: req}}
	}
	for _, tt := range []struct {
		name string
		c    *api.Check
		want error
	}{
		{"ok/pending", check("pending", "bob", &policy.Requirements{AAL: 2, Approvals: 1}), nil},
		{"ok/own-check-without-others", check("pending", "alice", &policy.Requirements{AAL: 2}), nil},
		{"fail/approved", check("approved", "bob", &policy.Requirements{AAL: 2, Approvals: 1}), ErrNotPending},
		{"fail/no-requirements", check("pending", "bob", nil), ErrNotPending},
		{"fail/no-assessment", &api.Check{ID: "chk_1", State: "pending", Requester: "bob"}, ErrNotPending},
		{"fail/own-check", check("pending", "alice", &policy.Requirements{AAL: 2, Approvals: 1}), ErrSelfApproval},
		{"fail/not-in-group", check("pending", "bob", &policy.Requirements{AAL: 2, Approvals: 1, Groups: []string{"security"}}), ErrNotEligible},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := MayApprove(tt.c, alice); got != tt.want {
				t.Errorf("MayApprove() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCleanReason(t *testing.T) {
	long := strings.Repeat("é", MaxReasonLength+5)
	for in, want := range map[string]string{
		"  deletes the prod database \n": "deletes the prod database",
		"   ":                            "",
		long:                             strings.Repeat("é", MaxReasonLength),
	} {
		if got := CleanReason(in); got != want {
			t.Errorf("CleanReason(%.20q) = %.20q (%d characters), want %.20q", in, got, len([]rune(got)), want)
		}
	}
}
