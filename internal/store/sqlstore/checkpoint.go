package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// AuditHead takes the audit lock and returns the newest event.
func (x *Tx) AuditHead(ctx context.Context) (*audit.Event, error) {
	if err := x.d.LockAudit(ctx, x.q); err != nil {
		return nil, fmt.Errorf("locking audit chain: %w", err)
	}
	var e *audit.Event
	err := x.queryFound(ctx, func(r Rows) (err error) {
		e, err = scanEvent(r)
		return err
	}, `SELECT `+auditColumns+` FROM audit_events ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return nil, fmt.Errorf("reading head of audit chain: %w", err)
	}
	return e, nil
}

const checkpointColumns = `seq, hash, created_at, key_id, signature`

// AddAuditCheckpoint stores cp; store.ErrConflict when one at its Seq
// exists.
func (x *Tx) AddAuditCheckpoint(ctx context.Context, cp *audit.Checkpoint) error {
	if cp.Seq < 1 || len(cp.Signature) == 0 {
		return fmt.Errorf("storing audit checkpoint %d: want a positive sequence and a signature", cp.Seq)
	}
	_, err := x.q.Exec(ctx, `INSERT INTO audit_checkpoints (`+checkpointColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		cp.Seq, cp.Hash, x.d.timeArg(cp.Time), cp.KeyID, cp.Signature)
	if err != nil {
		return fmt.Errorf("storing audit checkpoint %d: %w", cp.Seq, x.insertErr(err))
	}
	return nil
}

func scanCheckpoint(r Rows) (*audit.Checkpoint, error) {
	var cp audit.Checkpoint
	err := r.Scan(&cp.Seq, &cp.Hash, timeDest{&cp.Time}, &cp.KeyID, bytesDest{&cp.Signature})
	return &cp, err
}

// LastAuditCheckpoint returns the checkpoint with the highest Seq.
func (x *Tx) LastAuditCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	var cp *audit.Checkpoint
	err := x.queryFound(ctx, func(r Rows) (err error) {
		cp, err = scanCheckpoint(r)
		return err
	}, `SELECT `+checkpointColumns+` FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("reading last audit checkpoint: %w", err)
	}
	return cp, nil
}

// ListAuditCheckpoints returns at most limit checkpoints with Seq >
// afterSeq, by Seq.
func (x *Tx) ListAuditCheckpoints(ctx context.Context, afterSeq int64, limit int) ([]*audit.Checkpoint, error) {
	var out []*audit.Checkpoint
	err := positive(limit)
	if err == nil {
		err = x.queryAll(ctx, appendTo(&out, scanCheckpoint), `SELECT `+checkpointColumns+` FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("listing audit checkpoints after %d: %w", afterSeq, err)
	}
	return out, nil
}

const checkpointKeyColumns = `id, public_key, sealed_key, created_at`

// AddCheckpointKey stores a checkpoint key.
func (x *Tx) AddCheckpointKey(ctx context.Context, k *store.CheckpointKey) error {
	if k.ID == "" || len(k.PublicKey) == 0 || len(k.SealedKey) == 0 {
		return fmt.Errorf("storing checkpoint key %q: want an id, a public key and a sealed key", k.ID)
	}
	_, err := x.q.Exec(ctx, `INSERT INTO audit_checkpoint_keys (`+checkpointKeyColumns+`) VALUES ($1, $2, $3, $4)`,
		k.ID, k.PublicKey, k.SealedKey, x.d.timeArg(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("storing checkpoint key %s: %w", k.ID, x.insertErr(err))
	}
	return nil
}

func scanCheckpointKey(r Rows) (*store.CheckpointKey, error) {
	var k store.CheckpointKey
	err := r.Scan(&k.ID, bytesDest{&k.PublicKey}, bytesDest{&k.SealedKey}, timeDest{&k.CreatedAt})
	return &k, err
}

// ListCheckpointKeys returns every checkpoint key, oldest first.
func (x *Tx) ListCheckpointKeys(ctx context.Context) ([]*store.CheckpointKey, error) {
	var out []*store.CheckpointKey
	err := x.queryAll(ctx, appendTo(&out, scanCheckpointKey), `SELECT `+checkpointKeyColumns+` FROM audit_checkpoint_keys ORDER BY created_at NULLS FIRST, id`)
	if err != nil {
		return nil, fmt.Errorf("listing checkpoint keys: %w", err)
	}
	return out, nil
}

// ResealCheckpointKey replaces the sealed private key of checkpoint key id.
func (x *Tx) ResealCheckpointKey(ctx context.Context, id string, sealed []byte) error {
	if len(sealed) == 0 {
		return fmt.Errorf("re-sealing checkpoint key %q: no sealed key", id)
	}
	n, err := x.q.Exec(ctx, `UPDATE audit_checkpoint_keys SET sealed_key = $2 WHERE id = $1`, id, sealed)
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("re-sealing checkpoint key %q: %w", id, err)
	}
	return nil
}
