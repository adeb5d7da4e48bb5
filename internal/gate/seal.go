package gate

import (
	"context"
	"fmt"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// Sealer signs the head of the audit log (package checkpoint).
//
// The gate calls InTx inside the transaction that issues a grant, after
// its grant.issued event, rather than after the commit: the checkpoint
// commits with the grant or neither does, so no grant exists whose event
// a signed checkpoint does not cover (a crash, or a checkpoint that cannot
// be signed, between the commit and a later checkpoint would leave that
// window open for whoever holds the database), and a log found tampered
// with stops grants from being issued (fail closed). Publish copies the
// checkpoint outside the database once the transaction has committed (a
// copy written before the commit could name a head that was rolled back).
type Sealer interface {
	InTx(ctx context.Context, tx store.Tx) (*audit.Checkpoint, error)
	Publish(ctx context.Context, cp *audit.Checkpoint)
}

// SetSealer makes the service checkpoint the audit log at every grant it
// issues.
func (s *Service) SetSealer(x Sealer) { s.sealer = x }

// sealIn checkpoints the log inside tx, when a sealer is set, and keeps
// the checkpoint in *cp for publish.
func (s *Service) sealIn(ctx context.Context, tx store.Tx, cp **audit.Checkpoint) error {
	if s.sealer == nil {
		return nil
	}
	c, err := s.sealer.InTx(ctx, tx)
	if err != nil {
		return fmt.Errorf("checkpointing the audit log: %w", err)
	}
	*cp = c
	return nil
}

// publish copies a checkpoint written by sealIn out, after the commit.
func (s *Service) publish(ctx context.Context, cp *audit.Checkpoint) {
	if s.sealer != nil && cp != nil {
		s.sealer.Publish(ctx, cp)
	}
}
