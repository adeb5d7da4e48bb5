package checkpoint

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// Sink receives a copy of every checkpoint written, outside the database.
// Write is called after the transaction that stored the checkpoint
// committed.
type Sink interface {
	Write(ctx context.Context, cp *audit.Checkpoint) error
}

// ErrTampered says the audit log changed under a checkpoint: the writer
// refuses to sign a head it cannot vouch for.
var ErrTampered = errors.New("audit log tampered with")

// Writer signs the head of the audit chain with the checkpoint key.
type Writer struct {
	st    store.Store
	keys  *keys.CheckpointKeys
	sinks []Sink
	log   *slog.Logger
	now   func() time.Time

	trusted sync.Map // kid -> ed25519.PublicKey, keys that opened under the master key
	last    atomic.Pointer[audit.Checkpoint]
	// genuineLast is the newest checkpoint this writer wrote or verified:
	// found again as the newest, its signature needs no second look.
	genuineLast atomic.Pointer[audit.Checkpoint]
}

// NewWriter returns a writer signing with ck's keys into st, copying each
// checkpoint to sinks.
func NewWriter(st store.Store, ck *keys.CheckpointKeys, log *slog.Logger, now func() time.Time, sinks ...Sink) *Writer {
	return &Writer{st: st, keys: ck, sinks: sinks, log: log, now: now}
}

// Ensure creates the checkpoint key when there is none, and records its
// creation in the audit log. It returns the kid created, "" if one existed.
func (w *Writer) Ensure(ctx context.Context) (string, error) {
	var kid string
	err := w.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if kid, err = w.keys.Ensure(ctx, tx); err != nil || kid == "" {
			return err
		}
		data, _ := json.Marshal(map[string]string{"kid": kid})
		return tx.AppendAudit(ctx, &audit.Event{Time: w.now(), Type: audit.CheckpointKeyCreated, Actor: "stepgate", Subject: "checkpoint-key:" + kid, Data: data})
	})
	if err != nil {
		return "", fmt.Errorf("preparing the audit checkpoint key: %w", err)
	}
	return kid, nil
}

// Last is the newest checkpoint this writer wrote or saw, nil before the
// first.
func (w *Writer) Last() *audit.Checkpoint { return w.last.Load() }

// InTx signs the head of the chain inside tx, when it is after the newest
// checkpoint, and stores the checkpoint; it returns nil when there is
// nothing new to sign. It holds the audit lock from then on (no event can
// slip in after the head it signs). Before signing, it checks that the
// newest checkpoint is genuine and that the chain from it to the head
// links up, so that it never vouches for a log changed under it: then it
// returns an error wrapping ErrTampered, and the transaction must fail.
// Call Publish with the checkpoint once the transaction has committed.
func (w *Writer) InTx(ctx context.Context, tx store.Tx) (*audit.Checkpoint, error) {
	head, err := tx.AuditHead(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	last, err := tx.LastAuditCheckpoint(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		last = nil
	case err != nil:
		return nil, err
	}
	if last != nil {
		if err := w.genuine(ctx, tx, last); err != nil {
			return nil, err
		}
		if last.Seq > head.Seq {
			return nil, fmt.Errorf("%w: the newest checkpoint is at sequence %d, after the last event %d: events were removed", ErrTampered, last.Seq, head.Seq)
		}
	}
	if err := linked(ctx, tx, last, head); err != nil {
		return nil, err
	}
	if last != nil && last.Seq == head.Seq {
		w.last.Store(last)
		return nil, nil
	}
	k, err := w.keys.Signer(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("opening the audit checkpoint key: %w", err)
	}
	defer clear(k.Private)
	cp := &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: w.now().UTC().Truncate(time.Microsecond), KeyID: k.ID}
	if err := audit.SignCheckpoint(cp, k.Private); err != nil {
		return nil, err
	}
	if err := tx.AddAuditCheckpoint(ctx, cp); err != nil {
		return nil, err
	}
	// Remembered as genuine before the commit: if the transaction rolls
	// back, the next newest checkpoint is another one, verified in full.
	w.genuineLast.Store(cp)
	return cp, nil
}

// genuine checks cp's signature with a key that opens under the master
// key.
func (w *Writer) genuine(ctx context.Context, tx store.Tx, cp *audit.Checkpoint) error {
	if known := w.genuineLast.Load(); known != nil && known.Equal(cp) {
		return nil
	}
	pub, ok := w.trusted.Load(cp.KeyID)
	if !ok {
		trusted, _, err := w.keys.Trusted(ctx, tx)
		if err != nil {
			return err
		}
		for kid, k := range trusted {
			w.trusted.Store(kid, k)
		}
		if pub, ok = trusted[cp.KeyID]; !ok {
			return fmt.Errorf("%w: the newest checkpoint (sequence %d) is signed with key %s, which is not a checkpoint key of this server", ErrTampered, cp.Seq, cp.KeyID)
		}
	}
	if err := audit.VerifyCheckpoint(cp, pub.(ed25519.PublicKey)); err != nil {
		return fmt.Errorf("%w: %w", ErrTampered, err)
	}
	w.genuineLast.Store(cp)
	return nil
}

// linkPage is how many events linked reads at a time.
const linkPage = 500

// linked checks that the chain from the checkpoint last (nil: from the
// start) to head is whole: the event at last.Seq still has the hash last
// signed, and each event after it links to the one before.
func linked(ctx context.Context, tx store.Tx, last *audit.Checkpoint, head *audit.Event) error {
	var v audit.Verifier
	after := int64(0)
	if last != nil {
		after = last.Seq - 1
	}
	for after < head.Seq {
		page, err := tx.ListAudit(ctx, after, linkPage)
		if err != nil {
			return err
		}
		for _, e := range page {
			if e.Seq > head.Seq {
				break
			}
			if last != nil && v.Count() == 0 {
				// The event the checkpoint signed.
				if e.Seq != last.Seq || e.Hash != last.Hash {
					return fmt.Errorf("%w: the event at sequence %d is not the one its checkpoint signed", ErrTampered, last.Seq)
				}
				err = v.Resume(e)
			} else {
				err = v.Next(e)
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ErrTampered, err)
			}
			after = e.Seq
		}
		if len(page) < linkPage {
			break
		}
	}
	if v.Count() != head.Seq {
		return fmt.Errorf("%w: the chain from the newest checkpoint ends at sequence %d, its head is %d", ErrTampered, v.Count(), head.Seq)
	}
	return nil
}

// Publish copies cp to the sinks. A sink that fails is logged: the
// checkpoint is in the database already.
func (w *Writer) Publish(ctx context.Context, cp *audit.Checkpoint) {
	if cp == nil {
		return
	}
	w.last.Store(cp)
	for _, s := range w.sinks {
		if err := s.Write(ctx, cp); err != nil {
			w.log.ErrorContext(ctx, "copying an audit checkpoint to its sink failed", "seq", cp.Seq, "err", err)
		}
	}
}

// Checkpoint signs the head of the chain in a transaction of its own and
// publishes it. It returns the checkpoint written, nil if nothing was new.
func (w *Writer) Checkpoint(ctx context.Context) (*audit.Checkpoint, error) {
	var cp *audit.Checkpoint
	err := w.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		cp, err = w.InTx(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("checkpointing the audit log: %w", err)
	}
	w.Publish(ctx, cp)
	return cp, nil
}

// Run writes a checkpoint, when there are new events, at every tick until
// ctx ends. The server passes a ticker of one minute; tests their own
// channel.
func (w *Writer) Run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			cp, err := w.Checkpoint(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				w.log.ErrorContext(ctx, "checkpointing the audit log failed", "err", err)
			case cp != nil:
				w.log.DebugContext(ctx, "audit log checkpointed", "seq", cp.Seq)
			}
		}
	}
}
