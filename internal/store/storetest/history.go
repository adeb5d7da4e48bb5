package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func testCheckHistory(t *testing.T, open Opener) {
	st := open(t)
	checks := []*store.Check{
		// billing-prod: applied by alice, then by bob (newest), consumed
		// out of creation order.
		{ID: "a1", Workspace: "billing-prod", Requester: "alice", State: store.StateConsumed, CreatedAt: at(0), ConsumedAt: at(10 * time.Minute)},
		{ID: "a2", Workspace: "billing-prod", Requester: "bob", State: store.StateConsumed, CreatedAt: at(-time.Hour), ConsumedAt: at(20 * time.Minute)},
		// carol asked here, but her grant was never used.
		{ID: "c1", Workspace: "billing-prod", Requester: "carol", State: store.StateApproved, PlanSHA256: "p1", CreatedAt: at(30 * time.Minute), GrantExpiresAt: at(35 * time.Minute)},
		{ID: "c2", Workspace: "billing-prod", Requester: "carol", State: store.StatePending, PlanSHA256: "p2", CreatedAt: at(40 * time.Minute)},
		{ID: "c3", Workspace: "billing-dev", Requester: "carol", State: store.StateConsumed, PlanSHA256: "p3", CreatedAt: at(50 * time.Minute), ConsumedAt: at(51 * time.Minute)},
		// An approved check of plan p4 whose grant is still valid.
		{ID: "c4", Workspace: "billing-prod", Requester: "dave", State: store.StateApproved, PlanSHA256: "p4", CreatedAt: at(50 * time.Minute), GrantExpiresAt: at(2 * time.Hour)},
	}
	for _, c := range checks {
		if err := st.CreateCheck(t.Context(), c); err != nil {
			t.Fatalf("CreateCheck(%s) = %v, want nil", c.ID, err)
		}
	}
	now := at(time.Hour)
	for _, tt := range []struct {
		name string
		q    store.HistoryQuery
		want store.History
	}{
		{"ok/applied-before", store.HistoryQuery{Workspace: "billing-prod", Requester: "alice", Since: now.Add(-time.Hour), Now: now},
			store.History{LastAppliedAt: at(20 * time.Minute), LastAppliedBy: "bob", RequesterApplied: true, RequesterChecks: 1}},
		{"ok/created-before-the-hour-not-counted", store.HistoryQuery{Workspace: "billing-prod", Requester: "bob", Since: now.Add(-time.Hour), Now: now},
			store.History{LastAppliedAt: at(20 * time.Minute), LastAppliedBy: "bob", RequesterApplied: true}},
		{"ok/never-applied-here", store.HistoryQuery{Workspace: "billing-prod", Requester: "carol", PlanSHA256: "p2", Since: now.Add(-time.Hour), Now: now},
			store.History{LastAppliedAt: at(20 * time.Minute), LastAppliedBy: "bob", RequesterChecks: 3}},
		{"ok/approved-then-expired", store.HistoryQuery{Workspace: "billing-prod", Requester: "carol", PlanSHA256: "p1", Since: now.Add(-time.Hour), Now: now},
			store.History{LastAppliedAt: at(20 * time.Minute), LastAppliedBy: "bob", RequesterChecks: 3, PlanApprovedThenExpired: true}},
		{"ok/approved-other-workspace", store.HistoryQuery{Workspace: "billing-dev", Requester: "carol", PlanSHA256: "p1", Since: now.Add(-time.Hour), Now: now},
			store.History{LastAppliedAt: at(51 * time.Minute), LastAppliedBy: "carol", RequesterApplied: true, RequesterChecks: 3}},
		{"ok/grant-still-valid", store.HistoryQuery{Workspace: "billing-prod", Requester: "dave", PlanSHA256: "p4", Since: now.Add(-time.Hour), Now: now},
			store.History{LastAppliedAt: at(20 * time.Minute), LastAppliedBy: "bob", RequesterChecks: 1}},
		{"ok/new-workspace", store.HistoryQuery{Workspace: "new", Requester: "mallory", Since: now.Add(-time.Hour), Now: now},
			store.History{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.CheckHistory(t.Context(), tt.q)
			if err != nil {
				t.Fatalf("CheckHistory(%+v) = %v, want nil", tt.q, err)
			}
			if diff := cmp.Diff(*normalized(&tt.want), *got); diff != "" {
				t.Errorf("CheckHistory(%+v) mismatch (-want +got):\n%s", tt.q, diff)
			}
		})
	}
}
