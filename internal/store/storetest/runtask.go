package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func testRunTasks(t *testing.T, open Opener) {
	ctx := t.Context()
	st := open(t)
	if err := st.CreateCheck(ctx, &store.Check{ID: "chk1", State: store.StatePending, CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	post := &store.RunTask{
		ID: "taskrs-1", RunID: "run-1", Stage: "post_plan", State: store.RunTaskReceived,
		SealedRequest: []byte{1, 2, 3}, Owner: "srv-a", LeaseUntil: at(60e9), CreatedAt: at(0), UpdatedAt: at(0), Deadline: at(60 * 60e9),
	}
	if err := st.CreateRunTask(ctx, post); err != nil {
		t.Fatalf("CreateRunTask = %v", err)
	}
	// The same task_result_id twice (HCP Terraform retrying its request)
	// is a conflict: one server works on it.
	if err := st.CreateRunTask(ctx, post); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateRunTask(again) = %v, want ErrConflict", err)
	}
	got, err := st.GetRunTask(ctx, "taskrs-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalized(post), got, cmpOpts()); diff != "" {
		t.Errorf("GetRunTask mismatch (-want +got):\n%s", diff)
	}
	if _, err := st.GetRunTask(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRunTask(unknown) = %v, want ErrNotFound", err)
	}
	pre := &store.RunTask{
		ID: "taskrs-2", RunID: "run-1", Stage: "pre_apply", State: store.RunTaskReceived,
		SealedRequest: []byte{4}, CreatedAt: at(2e9), UpdatedAt: at(2e9), Deadline: at(3e9),
	}
	if err := st.CreateRunTask(ctx, pre); err != nil {
		t.Fatal(err)
	}
	post.State, post.Result, post.Message, post.CheckID, post.PlanSHA256, post.UpdatedAt =
		store.RunTaskDone, "passed", "approved", "chk1", "ab", at(1e9)
	if err := st.UpdateRunTask(ctx, post); err != nil {
		t.Fatalf("UpdateRunTask = %v", err)
	}
	if err := st.UpdateRunTask(ctx, &store.RunTask{ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateRunTask(unknown) = %v, want ErrNotFound", err)
	}
	found, err := st.FindRunTask(ctx, "run-1", "post_plan")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalized(post), found, cmpOpts()); diff != "" {
		t.Errorf("FindRunTask mismatch (-want +got):\n%s", diff)
	}
	if _, err := st.FindRunTask(ctx, "run-2", "post_plan"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindRunTask(other run) = %v, want ErrNotFound", err)
	}
	open1, err := st.OpenRunTasks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(open1, func(r *store.RunTask) string { return r.ID }); !cmp.Equal(got, []string{"taskrs-2"}) {
		t.Errorf("OpenRunTasks = %v, want [taskrs-2] (the done one left out)", got)
	}
	if _, err := st.OpenRunTasks(ctx, 0); err == nil {
		t.Error("OpenRunTasks(limit 0) = nil error")
	}
	// Leases: the owner renews; nobody else claims before it runs out;
	// after, exactly one of many claims wins.
	claim := func(id, owner string, until, now time.Time) bool {
		t.Helper()
		ok, err := st.ClaimRunTask(ctx, id, owner, until, now)
		if err != nil {
			t.Fatalf("ClaimRunTask(%s, %s) = %v", id, owner, err)
		}
		return ok
	}
	if !claim("taskrs-1", "srv-a", at(120e9), at(30e9)) {
		t.Error("the owner could not renew its lease")
	}
	if claim("taskrs-1", "srv-b", at(200e9), at(90e9)) {
		t.Error("another server claimed a task whose lease runs")
	}
	if claim("nope", "srv-b", at(200e9), at(90e9)) {
		t.Error("a claim of an unknown task succeeded")
	}
	var mu sync.Mutex
	won := 0
	errs := concurrently(8, func(i int) error {
		ok, err := st.ClaimRunTask(ctx, "taskrs-1", fmt.Sprintf("srv-%d", i), at(400e9), at(300e9))
		if ok {
			mu.Lock()
			won++
			mu.Unlock()
		}
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Errorf("%d of 8 concurrent claims of a lapsed lease won, want 1", won)
	}
	if got, _ := st.GetRunTask(ctx, "taskrs-1"); !got.LeaseUntil.Equal(stored(at(400e9))) {
		t.Errorf("lease until %v after the claim, want %v", got.LeaseUntil, stored(at(400e9)))
	}
	if err := st.CreateRunTask(ctx, &store.RunTask{ID: "x", RunID: "r", Stage: "post_plan"}); err == nil {
		t.Error("CreateRunTask without sealed request or times = nil error")
	}
}
