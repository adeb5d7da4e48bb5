package store

import (
	"context"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
)

// CheckpointKey is an Ed25519 key that signs audit checkpoints. The private
// key is sealed under the master key before it reaches the store, so that
// whoever holds only the database can neither sign a checkpoint nor slip in
// a key of their own (a key whose sealed half does not open under the
// master key is not trusted).
type CheckpointKey struct {
	ID        string // RFC 7638 thumbprint of the public key
	PublicKey []byte
	SealedKey []byte
	CreatedAt time.Time
}

// CheckpointTx keeps the signed checkpoints of the audit chain and the keys
// that sign them.
type CheckpointTx interface {
	// AuditHead takes the audit lock (as AppendAudit does; it holds until
	// the transaction ends) and returns the newest event, or ErrNotFound
	// when the log is empty. Inside a transaction, no event can be
	// appended after the one it returns until the transaction ends.
	AuditHead(ctx context.Context) (*audit.Event, error)
	// AddAuditCheckpoint stores a checkpoint; ErrConflict when there is one
	// at its Seq already.
	AddAuditCheckpoint(ctx context.Context, cp *audit.Checkpoint) error
	// LastAuditCheckpoint returns the checkpoint with the highest Seq, or
	// ErrNotFound.
	LastAuditCheckpoint(ctx context.Context) (*audit.Checkpoint, error)
	// ListAuditCheckpoints returns checkpoints with Seq > afterSeq, by Seq,
	// at most limit of them.
	ListAuditCheckpoints(ctx context.Context, afterSeq int64, limit int) ([]*audit.Checkpoint, error)

	AddCheckpointKey(ctx context.Context, k *CheckpointKey) error
	// ListCheckpointKeys returns every checkpoint key, oldest first.
	ListCheckpointKeys(ctx context.Context) ([]*CheckpointKey, error)
	// ResealCheckpointKey replaces the sealed private key of checkpoint key
	// id (a master key rotation); ErrNotFound when there is no such key.
	ResealCheckpointKey(ctx context.Context, id string, sealed []byte) error
}
