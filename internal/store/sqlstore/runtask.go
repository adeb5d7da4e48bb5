package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

const runTaskColumns = `id, run_id, stage, state, result, message, check_id, plan_sha256,
	sealed_request, owner, lease_until, created_at, updated_at, deadline`

func scanRunTask(r Rows) (*store.RunTask, error) {
	var t store.RunTask
	var state string
	err := r.Scan(&t.ID, &t.RunID, &t.Stage, &state, &t.Result, &t.Message, optDest{&t.CheckID}, &t.PlanSHA256,
		bytesDest{&t.SealedRequest}, &t.Owner, timeDest{&t.LeaseUntil}, timeDest{&t.CreatedAt}, timeDest{&t.UpdatedAt}, timeDest{&t.Deadline})
	t.State = store.RunTaskState(state)
	return &t, err
}

// CreateRunTask stores t (see store.RunTaskTx).
func (x *Tx) CreateRunTask(ctx context.Context, t *store.RunTask) error {
	switch {
	case t.ID == "" || t.RunID == "" || t.Stage == "":
		return errors.New("creating run task: id, run and stage must be set")
	case len(t.SealedRequest) == 0:
		return errors.New("creating run task: the sealed request must be set")
	case NormalTime(t.CreatedAt).IsZero() || NormalTime(t.Deadline).IsZero():
		return errors.New("creating run task: created_at and deadline must be set")
	}
	tm := x.d.timeArg
	_, err := x.q.Exec(ctx, `INSERT INTO run_tasks (`+runTaskColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		t.ID, t.RunID, t.Stage, string(t.State), t.Result, t.Message, optArg(t.CheckID), t.PlanSHA256,
		t.SealedRequest, t.Owner, tm(t.LeaseUntil), tm(t.CreatedAt), tm(t.UpdatedAt), tm(t.Deadline))
	if err != nil {
		return fmt.Errorf("creating run task %q: %w", t.ID, x.insertErr(err))
	}
	return nil
}

// GetRunTask reads a run task by ID.
func (x *Tx) GetRunTask(ctx context.Context, id string) (*store.RunTask, error) {
	var t *store.RunTask
	err := x.queryFound(ctx, func(r Rows) (err error) {
		t, err = scanRunTask(r)
		return err
	}, `SELECT `+runTaskColumns+` FROM run_tasks WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("getting run task %q: %w", id, err)
	}
	return t, nil
}

// UpdateRunTask writes what changes in a run task's life.
func (x *Tx) UpdateRunTask(ctx context.Context, t *store.RunTask) error {
	tm := x.d.timeArg
	n, err := x.q.Exec(ctx, `UPDATE run_tasks SET state = $2, result = $3, message = $4, check_id = $5,
		plan_sha256 = $6, updated_at = $7 WHERE id = $1`,
		t.ID, string(t.State), t.Result, t.Message, optArg(t.CheckID), t.PlanSHA256, tm(t.UpdatedAt))
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("updating run task %q: %w", t.ID, err)
	}
	return nil
}

// ClaimRunTask takes or renews the lease of a run task in one UPDATE, which
// only a task held by nobody, by owner, or by a lease past now matches:
// of concurrent claims, exactly one matches.
func (x *Tx) ClaimRunTask(ctx context.Context, id, owner string, until, now time.Time) (bool, error) {
	if owner == "" || NormalTime(until).IsZero() || NormalTime(now).IsZero() {
		return false, errors.New("claiming run task: owner, until and now must be set")
	}
	tm := x.d.timeArg
	n, err := x.q.Exec(ctx, `UPDATE run_tasks SET owner = $2, lease_until = $3
		WHERE id = $1 AND (owner = $2 OR lease_until IS NULL OR lease_until < $4)`, id, owner, tm(until), tm(now))
	if err != nil {
		return false, fmt.Errorf("claiming run task %q: %w", id, err)
	}
	return n == 1, nil
}

// FindRunTask returns the newest run task of a run at a stage.
func (x *Tx) FindRunTask(ctx context.Context, runID, stage string) (*store.RunTask, error) {
	var t *store.RunTask
	err := x.queryFound(ctx, func(r Rows) (err error) {
		t, err = scanRunTask(r)
		return err
	}, `SELECT `+runTaskColumns+` FROM run_tasks WHERE run_id = $1 AND stage = $2
		ORDER BY created_at DESC, id DESC LIMIT 1`, runID, stage)
	if err != nil {
		return nil, fmt.Errorf("finding the %s run task of %q: %w", stage, runID, err)
	}
	return t, nil
}

// OpenRunTasks lists the run tasks not done, oldest first.
func (x *Tx) OpenRunTasks(ctx context.Context, limit int) ([]*store.RunTask, error) {
	if err := positive(limit); err != nil {
		return nil, fmt.Errorf("listing open run tasks: %w", err)
	}
	var out []*store.RunTask
	err := x.queryAll(ctx, appendTo(&out, scanRunTask), `SELECT `+runTaskColumns+` FROM run_tasks
		WHERE state <> 'done' ORDER BY created_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing open run tasks: %w", err)
	}
	return out, nil
}
