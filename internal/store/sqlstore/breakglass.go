package sqlstore

import (
	"context"
	"fmt"

	"github.com/stepgate/stepgate/internal/store"
)

const breakGlassColumns = `check_id, reason, deny_rules, requested_at, subject, approval_id, used_at,
	review_due_at, reviewer, review_note, reviewed_at, reminded_at`

func scanBreakGlass(r Rows) (*store.BreakGlass, error) {
	var b store.BreakGlass
	err := r.Scan(&b.CheckID, &b.Reason, jsonDest{&b.DenyRules}, timeDest{&b.RequestedAt}, &b.Subject, optDest{&b.ApprovalID},
		timeDest{&b.UsedAt}, timeDest{&b.ReviewDueAt}, &b.Reviewer, &b.ReviewNote, timeDest{&b.ReviewedAt}, timeDest{&b.RemindedAt})
	return &b, err
}

func (x *Tx) breakGlassArgs(b *store.BreakGlass) ([]any, error) {
	rules, err := jsonArg(b.DenyRules)
	if err != nil {
		return nil, err
	}
	t := x.d.timeArg
	return []any{b.CheckID, b.Reason, rules, t(b.RequestedAt), b.Subject, optArg(b.ApprovalID), t(b.UsedAt),
		t(b.ReviewDueAt), b.Reviewer, b.ReviewNote, t(b.ReviewedAt), t(b.RemindedAt)}, nil
}

// CreateBreakGlass records a break-glass request (see store.BreakGlassTx).
func (x *Tx) CreateBreakGlass(ctx context.Context, b *store.BreakGlass) error {
	args, err := x.breakGlassArgs(b)
	if err != nil {
		return fmt.Errorf("encoding break-glass request of %q: %w", b.CheckID, err)
	}
	_, err = x.q.Exec(ctx, `INSERT INTO break_glass (`+breakGlassColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, args...)
	if err != nil && x.d.Classify(err) == ForeignKeyViolation {
		return fmt.Errorf("recording break-glass request of %q: no such check: %w", b.CheckID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("recording break-glass request of %q: %w", b.CheckID, x.insertErr(err))
	}
	return nil
}

// GetBreakGlass returns a check's break-glass request.
func (x *Tx) GetBreakGlass(ctx context.Context, checkID string) (*store.BreakGlass, error) {
	var b *store.BreakGlass
	err := x.queryFound(ctx, func(r Rows) (err error) {
		b, err = scanBreakGlass(r)
		return err
	}, `SELECT `+breakGlassColumns+` FROM break_glass WHERE check_id = $1`, checkID)
	if err != nil {
		return nil, fmt.Errorf("reading break-glass request of %q: %w", checkID, err)
	}
	return b, nil
}

// UpdateBreakGlass writes a break-glass request back.
func (x *Tx) UpdateBreakGlass(ctx context.Context, b *store.BreakGlass) error {
	args, err := x.breakGlassArgs(b)
	if err != nil {
		return fmt.Errorf("encoding break-glass request of %q: %w", b.CheckID, err)
	}
	n, err := x.q.Exec(ctx, `UPDATE break_glass SET reason = $2, deny_rules = $3, requested_at = $4, subject = $5,
		approval_id = $6, used_at = $7, review_due_at = $8, reviewer = $9, review_note = $10, reviewed_at = $11,
		reminded_at = $12 WHERE check_id = $1`, args...)
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("updating break-glass request of %q: %w", b.CheckID, err)
	}
	return nil
}

// ListBreakGlassUsed lists the break-glass requests people used.
func (x *Tx) ListBreakGlassUsed(ctx context.Context, unreviewed bool, limit int) ([]*store.BreakGlass, error) {
	if err := positive(limit); err != nil {
		return nil, err
	}
	cond := ""
	if unreviewed {
		cond = " AND reviewed_at IS NULL"
	}
	var out []*store.BreakGlass
	err := x.queryAll(ctx, appendTo(&out, scanBreakGlass), `SELECT `+breakGlassColumns+` FROM break_glass
		WHERE used_at IS NOT NULL`+cond+` ORDER BY used_at, check_id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing used break-glass requests: %w", err)
	}
	return out, nil
}

// ListBreakGlassReviewed lists the reviewed break-glass uses, newest review
// first.
func (x *Tx) ListBreakGlassReviewed(ctx context.Context, limit int) ([]*store.BreakGlass, error) {
	if err := positive(limit); err != nil {
		return nil, err
	}
	var out []*store.BreakGlass
	err := x.queryAll(ctx, appendTo(&out, scanBreakGlass), `SELECT `+breakGlassColumns+` FROM break_glass
		WHERE reviewed_at IS NOT NULL ORDER BY reviewed_at DESC, check_id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing reviewed break-glass uses: %w", err)
	}
	return out, nil
}
