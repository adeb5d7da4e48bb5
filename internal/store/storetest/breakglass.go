package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func testBreakGlass(t *testing.T, open Opener) {
	ctx := t.Context()
	st := open(t)
	for _, id := range []string{"c1", "c2", "c3"} {
		if err := st.CreateCheck(ctx, &store.Check{ID: id, State: store.StatePending}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddApproval(ctx, &store.Approval{ID: "a1", CheckID: "c1", Subject: "oncall", Approved: true, AAL: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetBreakGlass(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBreakGlass(none) = %v, want ErrNotFound", err)
	}
	full := new(store.BreakGlass)
	fill(t, full, 1)
	full.CheckID, full.ApprovalID = "c1", "a1"
	if err := st.CreateBreakGlass(ctx, full); err != nil {
		t.Fatalf("CreateBreakGlass(every field) = %v", err)
	}
	got, err := st.GetBreakGlass(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalized(full), got, cmpOpts()); diff != "" {
		t.Errorf("GetBreakGlass after CreateBreakGlass (-want +got):\n%s", diff)
	}
	if err := st.CreateBreakGlass(ctx, &store.BreakGlass{CheckID: "c1", Reason: "again", RequestedAt: time.Now()}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateBreakGlass(twice) = %v, want ErrConflict", err)
	}
	if err := st.CreateBreakGlass(ctx, &store.BreakGlass{CheckID: "nope", Reason: "x", RequestedAt: time.Now()}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateBreakGlass(no such check) = %v, want ErrNotFound", err)
	}
	// Zero values stay zero, empty lists come back nil.
	t0 := time.Date(2026, 6, 2, 3, 4, 5, 6000, time.UTC) // after every time fill sets
	min := &store.BreakGlass{CheckID: "c2", Reason: "INC-1: the database is on fire", DenyRules: []string{}, RequestedAt: t0}
	if err := st.CreateBreakGlass(ctx, min); err != nil {
		t.Fatal(err)
	}
	got, err = st.GetBreakGlass(ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	min.DenyRules = nil
	if diff := cmp.Diff(min, got, cmpOpts()); diff != "" {
		t.Errorf("GetBreakGlass(zero values) (-want +got):\n%s", diff)
	}
	if l, err := st.ListBreakGlassUsed(ctx, false, 10); err != nil || len(l) != 1 || l[0].CheckID != "c1" {
		t.Errorf("ListBreakGlassUsed(all) = %v, %v; want c1 alone (c2 is not used)", l, err)
	}
	// c2 used later than c1, not reviewed; c3 none.
	got.Subject, got.UsedAt, got.ReviewDueAt = "oncall", t0.Add(time.Hour), t0.Add(25*time.Hour)
	if err := st.UpdateBreakGlass(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := st.UpdateBreakGlass(ctx, &store.BreakGlass{CheckID: "c3", Reason: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateBreakGlass(no request) = %v, want ErrNotFound", err)
	}
	l, err := st.ListBreakGlassUsed(ctx, false, 10)
	if err != nil || len(l) != 2 {
		t.Fatalf("ListBreakGlassUsed(all) = %d, %v; want 2", len(l), err)
	}
	if diff := cmp.Diff(got, l[1], cmpOpts()); diff != "" {
		t.Errorf("ListBreakGlassUsed()[1] (-want +got):\n%s", diff)
	}
	// c1 is reviewed (fill set reviewed_at): the unreviewed list has c2 alone.
	if l, err := st.ListBreakGlassUsed(ctx, true, 10); err != nil || len(l) != 1 || l[0].CheckID != "c2" {
		t.Errorf("ListBreakGlassUsed(unreviewed) = %v, %v; want c2 alone", l, err)
	}
	if l, err := st.ListBreakGlassUsed(ctx, false, 1); err != nil || len(l) != 1 {
		t.Errorf("ListBreakGlassUsed(limit 1) = %d, %v; want 1", len(l), err)
	}
	// c2 reviewed after c1: newest review first.
	got.Reviewer, got.ReviewNote, got.ReviewedAt = "alice", "fine", t0.Add(2*time.Hour)
	if err := st.UpdateBreakGlass(ctx, got); err != nil {
		t.Fatal(err)
	}
	if l, err := st.ListBreakGlassReviewed(ctx, 10); err != nil || len(l) != 2 || l[0].CheckID != "c2" || l[1].CheckID != "c1" {
		t.Errorf("ListBreakGlassReviewed = %v, %v; want c2 then c1", l, err)
	}
	if l, err := st.ListBreakGlassUsed(ctx, true, 10); err != nil || len(l) != 0 {
		t.Errorf("ListBreakGlassUsed(unreviewed) after both reviews = %v, %v; want none", l, err)
	}
	if _, err := st.ListBreakGlassReviewed(ctx, 0); err == nil {
		t.Error("ListBreakGlassReviewed(limit 0) = nil error, want an error")
	}
	if _, err := st.ListBreakGlassUsed(ctx, false, 0); err == nil {
		t.Error("ListBreakGlassUsed(limit 0) = nil error, want an error")
	}
}
