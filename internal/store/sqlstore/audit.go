package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/stepgate/stepgate/internal/audit"
)

const auditColumns = `seq, occurred_at, type, actor, subject, data, prev_hash, hash`

// AppendAudit links e to the last event and stores it. It must run inside a
// transaction: it takes the dialect's audit lock, which holds until the
// transaction ends, reads the head of the chain, seals e with audit.Seal and
// inserts it.
//
// Before sealing, e.Time is set to what the store keeps of it (UTC,
// truncated to the microsecond), so that the hash covers exactly what is
// stored and e reads back equal. It also sets e.Seq, e.PrevHash and e.Hash.
//
// Take the audit lock last in a transaction that also locks rows (call
// AppendAudit after GetCheckForUpdate), or two transactions may deadlock.
func (x *Tx) AppendAudit(ctx context.Context, e *audit.Event) error {
	if err := x.d.LockAudit(ctx, x.q); err != nil {
		return fmt.Errorf("locking audit chain for %q: %w", e.Type, err)
	}
	var prev *audit.Event
	err := x.queryOne(ctx, func(r Rows) error {
		prev = new(audit.Event)
		return r.Scan(&prev.Seq, &prev.Hash)
	}, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`)
	if err != nil && !errors.Is(err, errNoRows) {
		return fmt.Errorf("reading head of audit chain for %q: %w", e.Type, err)
	}
	e.Time = NormalTime(e.Time)
	if err := audit.Seal(prev, e); err != nil {
		return fmt.Errorf("sealing audit event %q: %w", e.Type, err)
	}
	_, err = x.q.Exec(ctx, `INSERT INTO audit_events (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Seq, x.d.timeArg(e.Time), e.Type, e.Actor, e.Subject, rawArg(e.Data), e.PrevHash, e.Hash)
	if err != nil {
		// A unique violation here means the lock did not hold: the chain
		// would have forked, and the constraint refused it.
		return fmt.Errorf("appending audit event %d %q: %w", e.Seq, e.Type, x.insertErr(err))
	}
	return nil
}

func scanEvent(r Rows) (*audit.Event, error) {
	var e audit.Event
	err := r.Scan(&e.Seq, timeDest{&e.Time}, &e.Type, &e.Actor, &e.Subject, rawDest{&e.Data}, &e.PrevHash, &e.Hash)
	return &e, err
}

// ListAudit returns at most limit events with Seq > afterSeq, oldest first.
func (x *Tx) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*audit.Event, error) {
	var out []*audit.Event
	err := positive(limit)
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanEvent), `SELECT `+auditColumns+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing audit events after %d: %w", afterSeq, err)
	}
	return out, nil
}
