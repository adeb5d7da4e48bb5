package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/store"
)

func stateAt(c *store.Check, now time.Time) store.CheckState {
	if c.State == store.StatePending && !c.ExpiresAt.After(now) {
		return store.StateExpired
	}
	return c.State
}

// expire marks a pending check whose time ran out as expired.
func (s *Service) expire(ctx context.Context, id string) (*store.Check, error) {
	now := s.now().UTC()
	var c *store.Check
	changed := false
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if c, err = tx.GetCheckForUpdate(ctx, id); err != nil {
			return err
		}
		if c.State != store.StatePending || c.ExpiresAt.After(now) {
			return nil
		}
		c.State, c.UpdatedAt, changed = store.StateExpired, now, true
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(now, audit.CheckExpired, "stepgate", c.ID, nil))
	})
	if err != nil {
		return nil, fmt.Errorf("expiring check %s: %w", id, err)
	}
	if changed {
		s.wake(ctx, id)
		s.announce(ctx, notify.Expired, c)
	}
	return c, nil
}

// ExpireDue expires every pending check whose time ran out, and returns
// how many it expired. The server runs it periodically; several servers
// may run it at once (each check is expired once, under its row lock).
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	due, err := s.st.ExpiredChecks(ctx, s.now(), 100)
	if err != nil {
		return 0, fmt.Errorf("listing expired checks: %w", err)
	}
	n := 0
	for _, c := range due {
		if _, err := s.expire(ctx, c.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
