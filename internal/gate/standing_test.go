package gate

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// putCheck stores a pending check of ci-bot with these requirements.
func (f *fixture) putCheck(t *testing.T, id string, req policy.Requirements) {
	t.Helper()
	a, _ := json.Marshal(policy.Assessment{Decision: policy.StepUp, Requirements: &req, Findings: []policy.Finding{}})
	now := f.clock.Now()
	c := &store.Check{ID: id, State: store.StatePending, Kind: "terraform.apply", Workspace: "billing-prod", Requester: "ci-bot", TokenID: f.caller.TokenID,
		Assessment: a, ResumeKey: "rk-" + id, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := f.st.CreateCheck(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) approve(t *testing.T, id, who string, groups ...string) string {
	t.Helper()
	if len(groups) == 0 {
		groups = []string{DefaultApproverGroup}
	}
	v, err := f.svc.Record(context.Background(), id, &Proof{Subject: who, Groups: groups, Approved: true, AAL: 3, AMR: []string{"hwk", "user"}, AuthTime: f.clock.Now()})
	if err != nil {
		t.Fatalf("%s approving %s: %v", who, id, err)
	}
	return v.State
}

// TestApprovalsOfDisabledOrIneligiblePeopleDoNotCount: when a check's
// requirements are evaluated, only the approvals of people enabled and
// still eligible count. bob approves, then is disabled (or leaves the
// group the check needs): alice's approval does not complete a
// two-approval check with his.
func TestApprovalsOfDisabledOrIneligiblePeopleDoNotCount(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		groups []string // the check's required groups
		change func(t *testing.T, m *account.Manager)
		why    string
	}{
		{
			name:   "fail/disabled",
			change: func(t *testing.T, m *account.Manager) { mustDo(t, m.SetDisabled(ctx, "bob", true, "admin")) },
			why:    WithdrawnDisabled,
		},
		{
			name:   "fail/left-the-group",
			groups: []string{"sre"},
			change: func(t *testing.T, m *account.Manager) {
				_, err := m.SetGroups(ctx, "bob", []string{"dev"}, false, "admin")
				mustDo(t, err)
			},
			why: WithdrawnNotEligible,
		},
		{
			name: "fail/no-longer-an-approver",
			change: func(t *testing.T, m *account.Manager) {
				_, err := m.SetGroups(ctx, "bob", nil, false, "admin")
				mustDo(t, err)
			},
			why: WithdrawnNotEligible,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			groups := []string{DefaultApproverGroup}
			if tt.groups != nil {
				groups = tt.groups
			}
			for _, n := range []string{"alice", "bob", "carol"} {
				mustDo(t, f.st.CreateUser(ctx, &store.User{ID: "usr_" + n, Name: n, Groups: groups, CreatedAt: f.clock.Now()}))
			}
			f.putCheck(t, "chk_two", policy.Requirements{AAL: 3, Approvals: 2, MaxAge: 900, Groups: tt.groups})
			if s := f.approve(t, "chk_two", "bob", groups...); s != "pending" {
				t.Fatalf("after bob: %s, want pending", s)
			}
			tt.change(t, account.New(f.st, f.clock.Now))
			if s := f.approve(t, "chk_two", "alice", groups...); s != "pending" {
				t.Fatalf("alice's approval with bob's (%s): %s, want pending", tt.why, s)
			}
			v, err := f.svc.ReviewCheck(ctx, "chk_two")
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range v.Approvals {
				want := ""
				if a.Subject == "bob" {
					want = tt.why
				}
				if a.Withdrawn != want {
					t.Errorf("approval of %s: withdrawn %q, want %q", a.Subject, a.Withdrawn, want)
				}
			}
			events, _ := f.st.ListAudit(ctx, 0, 1000)
			found := false
			for _, e := range events {
				found = found || (e.Type == audit.CheckApprovalsWithdrawn && e.Subject == "chk_two")
			}
			if !found {
				t.Errorf("no %s event", audit.CheckApprovalsWithdrawn)
			}
			// A third eligible person completes it; the grant names those
			// who counted, and still does once bob is back.
			if s := f.approve(t, "chk_two", "carol", groups...); s != "approved" {
				t.Fatalf("after carol: %s, want approved", s)
			}
			approvers := func() []string {
				v, err := f.svc.GetCheck(ctx, f.caller, "chk_two")
				if err != nil {
					t.Fatal(err)
				}
				ks, _ := f.svc.Keys(ctx)
				c, err := grant.Verify(ctx, v.Grant, ks, grant.Expect{Issuer: "https://stepgate.example.com", Audience: "stepgate", Now: f.clock.Now(), Leeway: time.Second})
				if err != nil {
					t.Fatalf("the grant does not verify: %v", err)
				}
				var names []string
				for _, a := range c.Approvals {
					names = append(names, a.Subject)
				}
				slices.Sort(names)
				return names
			}
			if got := approvers(); !slices.Equal(got, []string{"alice", "carol"}) {
				t.Errorf("the grant names %v, want [alice carol]", got)
			}
			mustDo(t, account.New(f.st, f.clock.Now).SetDisabled(ctx, "bob", false, "admin"))
			_, err = account.New(f.st, f.clock.Now).SetGroups(ctx, "bob", groups, false, "admin")
			mustDo(t, err)
			if got := approvers(); !slices.Equal(got, []string{"alice", "carol"}) {
				t.Errorf("once bob is back the grant names %v, want [alice carol]", got)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
