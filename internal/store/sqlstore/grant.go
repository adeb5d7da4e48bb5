package sqlstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/stepgate/stepgate/internal/store"
)

// SetGrantApprovals records the approvals a check's grant carries (see
// store.GrantTx), one row each. It runs several statements: each
// backend's Store runs it in a transaction of its own.
func (x *Tx) SetGrantApprovals(ctx context.Context, checkID string, approvalIDs []string) error {
	for _, id := range approvalIDs {
		_, err := x.q.Exec(ctx, `INSERT INTO grant_approvals (check_id, approval_id)
			SELECT $1, id FROM approvals WHERE id = $2 AND check_id = $1`, checkID, id)
		if err != nil {
			return fmt.Errorf("recording the approvals of the grant of %q: %w", checkID, x.insertErr(err))
		}
	}
	n := 0
	if err := x.queryOne(ctx, func(r Rows) error { return r.Scan(&n) },
		`SELECT count(*) FROM grant_approvals WHERE check_id = $1`, checkID); err != nil {
		return fmt.Errorf("counting the approvals of the grant of %q: %w", checkID, err)
	}
	if n != len(approvalIDs) {
		return fmt.Errorf("recording the approvals of the grant of %q: %d of %d are approvals of it: %w", checkID, n, len(approvalIDs), store.ErrNotFound)
	}
	return nil
}

// GrantApprovals returns the approvals a check's grant carries, sorted.
func (x *Tx) GrantApprovals(ctx context.Context, checkID string) ([]string, error) {
	var out []string
	err := x.queryAll(ctx, func(r Rows) error {
		var id string
		err := r.Scan(&id)
		out = append(out, id)
		return err
	}, `SELECT approval_id FROM grant_approvals WHERE check_id = $1 ORDER BY approval_id`, checkID)
	if err != nil {
		return nil, fmt.Errorf("reading the approvals of the grant of %q: %w", checkID, err)
	}
	slices.Sort(out)
	return out, nil
}
