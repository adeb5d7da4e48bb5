package gate

import (
	"testing"
	"time"

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
		groups    map[string][]string
		want      bool
	}{
		{"ok/requester-may-confirm-with-0-approvals", policy.Requirements{AAL: 2, MaxAge: 900}, []*store.Approval{ap("ci", 2, 0)}, nil, true},
		{"fail/requester-never-counts-with-1", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900}, []*store.Approval{ap("ci", 3, 0)}, nil, false},
		{"fail/same-person-twice-is-one", policy.Requirements{AAL: 2, Approvals: 2, MaxAge: 900}, []*store.Approval{ap("alice", 3, 0), ap("alice", 3, 0)}, nil, false},
		{"ok/two-people", policy.Requirements{AAL: 2, Approvals: 2, MaxAge: 900}, []*store.Approval{ap("alice", 3, 0), ap("bob", 2, time.Minute)}, nil, true},
		{"fail/stale-proof", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}, []*store.Approval{ap("alice", 3, 301*time.Second)}, nil, false},
		{"fail/proof-from-the-future", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}, []*store.Approval{ap("alice", 3, -5*time.Minute)}, nil, false},
		{"fail/rejection-is-not-approval", policy.Requirements{AAL: 1}, []*store.Approval{{Subject: "alice", Approved: false, AAL: 3, AuthTime: now}}, nil, false},
		{"fail/method-not-accepted", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Methods: []string{"hwk"}}, []*store.Approval{ap("alice", 2, 0, "otp")}, nil, false},
		{"ok/method-accepted", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Methods: []string{"hwk"}}, []*store.Approval{ap("alice", 3, 0, "hwk", "user")}, nil, true},
		{"fail/groups-unknown", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Groups: []string{"security"}}, []*store.Approval{ap("alice", 3, 0)}, nil, false},
		{"fail/not-in-every-group", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Groups: []string{"security", "sre"}}, []*store.Approval{ap("alice", 3, 0)}, map[string][]string{"alice": {"security"}}, false},
		{"ok/in-every-group", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900, Groups: []string{"security", "sre"}}, []*store.Approval{ap("alice", 3, 0)}, map[string][]string{"alice": {"sre", "security", "dev"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Satisfied(&tt.req, "ci", tt.approvals, tt.groups, now); got != tt.want {
				t.Errorf("Satisfied(%+v) = %v, want %v", tt.req, got, tt.want)
			}
		})
	}
}
