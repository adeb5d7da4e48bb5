package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// hash64 is a 64-character hex string made of c.
func hash64(c string) string { return strings.Repeat(c, 64) }

func testCheckpoints(t *testing.T, open Opener) {
	t.Run("ok/round-trip-and-order", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if _, err := st.LastAuditCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LastAuditCheckpoint(none) = %v, want ErrNotFound", err)
		}
		in := []*audit.Checkpoint{
			{Seq: 9, Hash: hash64("b"), Time: at(time.Minute), KeyID: "k1", Signature: []byte{9, 9}},
			{Seq: 3, Hash: hash64("a"), Time: at(0), KeyID: "k1", Signature: []byte{3}},
			{Seq: 12, Hash: hash64("c"), Time: at(2 * time.Minute), KeyID: "k2", Signature: []byte{1, 2, 0}},
		}
		for _, cp := range in {
			if err := st.AddAuditCheckpoint(ctx, cp); err != nil {
				t.Fatalf("AddAuditCheckpoint(%d) = %v, want nil", cp.Seq, err)
			}
		}
		want := []*audit.Checkpoint{
			{Seq: 3, Hash: hash64("a"), Time: stored(at(0)), KeyID: "k1", Signature: []byte{3}},
			{Seq: 9, Hash: hash64("b"), Time: stored(at(time.Minute)), KeyID: "k1", Signature: []byte{9, 9}},
			{Seq: 12, Hash: hash64("c"), Time: stored(at(2 * time.Minute)), KeyID: "k2", Signature: []byte{1, 2, 0}},
		}
		var got []*audit.Checkpoint
		for after := int64(0); ; {
			page, err := st.ListAuditCheckpoints(ctx, after, 2)
			if err != nil {
				t.Fatalf("ListAuditCheckpoints(%d, 2) = %v", after, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
			t.Errorf("ListAuditCheckpoints() mismatch (-want +got):\n%s", diff)
		}
		last, err := st.LastAuditCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[2], last, cmpOpts()); diff != "" {
			t.Errorf("LastAuditCheckpoint() mismatch (-want +got):\n%s", diff)
		}
		if _, err := st.ListAuditCheckpoints(ctx, 0, 0); err == nil {
			t.Error("ListAuditCheckpoints(limit 0) = nil, want an error")
		}
	})

	t.Run("fail/same-seq-twice", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		cp := &audit.Checkpoint{Seq: 1, Hash: hash64("a"), Time: at(0), KeyID: "k", Signature: []byte{1}}
		if err := st.AddAuditCheckpoint(ctx, cp); err != nil {
			t.Fatal(err)
		}
		if err := st.AddAuditCheckpoint(ctx, cp); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AddAuditCheckpoint(same seq) = %v, want ErrConflict", err)
		}
		for _, bad := range []*audit.Checkpoint{{Seq: 0, Hash: hash64("a"), KeyID: "k", Signature: []byte{1}}, {Seq: 2, Hash: hash64("a"), KeyID: "k"}} {
			if err := st.AddAuditCheckpoint(ctx, bad); err == nil {
				t.Errorf("AddAuditCheckpoint(%+v) = nil, want an error", bad)
			}
		}
	})

	t.Run("ok/keys", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		ks, err := st.ListCheckpointKeys(ctx)
		if err != nil || len(ks) != 0 {
			t.Fatalf("ListCheckpointKeys(none) = %v, %v; want none", ks, err)
		}
		k2 := &store.CheckpointKey{ID: "k2", PublicKey: []byte{2}, SealedKey: []byte{3, 4}, CreatedAt: at(time.Hour)}
		k1 := &store.CheckpointKey{ID: "k1", PublicKey: []byte{1}, SealedKey: []byte{5}, CreatedAt: at(0)}
		for _, k := range []*store.CheckpointKey{k2, k1} {
			if err := st.AddCheckpointKey(ctx, k); err != nil {
				t.Fatalf("AddCheckpointKey(%s) = %v", k.ID, err)
			}
		}
		if err := st.AddCheckpointKey(ctx, k1); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AddCheckpointKey(existing) = %v, want ErrConflict", err)
		}
		if err := st.AddCheckpointKey(ctx, &store.CheckpointKey{ID: "k3"}); err == nil {
			t.Error("AddCheckpointKey(no keys) = nil, want an error")
		}
		got, err := st.ListCheckpointKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*store.CheckpointKey{normalized(k1), normalized(k2)}, got, cmpOpts()); diff != "" {
			t.Errorf("ListCheckpointKeys() mismatch (-want +got):\n%s", diff)
		}
		// A master key rotation re-seals a key; nothing else of it changes.
		if err := st.ResealCheckpointKey(ctx, "k1", []byte{7, 7}); err != nil {
			t.Fatalf("ResealCheckpointKey(k1) = %v", err)
		}
		if err := st.ResealCheckpointKey(ctx, "nope", []byte{1}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ResealCheckpointKey(unknown) = %v, want ErrNotFound", err)
		}
		if err := st.ResealCheckpointKey(ctx, "k2", nil); err == nil {
			t.Error("ResealCheckpointKey(no sealed key) = nil, want an error")
		}
		got, err = st.ListCheckpointKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r1 := normalized(k1)
		r1.SealedKey = []byte{7, 7}
		if diff := cmp.Diff([]*store.CheckpointKey{r1, normalized(k2)}, got, cmpOpts()); diff != "" {
			t.Errorf("ListCheckpointKeys() after a re-seal mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ok/audit-head", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if _, err := st.AuditHead(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("AuditHead(empty) = %v, want ErrNotFound", err)
		}
		var last *audit.Event
		for i := range 3 {
			last = &audit.Event{Time: at(time.Duration(i) * time.Second), Type: audit.CheckCreated, Subject: fmt.Sprint(i)}
			if err := st.AppendAudit(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
		head, err := st.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(last, head, cmpOpts()); diff != "" {
			t.Errorf("AuditHead() mismatch (-want +got):\n%s", diff)
		}
	})

	// Each transaction appends an event and checkpoints the head it reads:
	// the audit lock AuditHead takes (already held from AppendAudit) keeps
	// another append from slipping in, so every head read is the
	// transaction's own event and no checkpoint conflicts.
	t.Run("ok/head-is-stable-inside-a-transaction", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		const n = 20
		errs := concurrently(n, func(i int) error {
			return st.InTx(ctx, func(tx store.Tx) error {
				e := &audit.Event{Time: at(0), Type: audit.GrantIssued, Subject: fmt.Sprint(i)}
				if i%2 == 1 {
					// The loop's order: head first, then no append.
					head, err := tx.AuditHead(ctx)
					if errors.Is(err, store.ErrNotFound) {
						return nil
					}
					if err != nil {
						return err
					}
					last, err := tx.LastAuditCheckpoint(ctx)
					if err == nil && last.Seq >= head.Seq {
						return nil
					}
					return tx.AddAuditCheckpoint(ctx, &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: at(0), KeyID: "k", Signature: []byte{1}})
				}
				if err := tx.AppendAudit(ctx, e); err != nil {
					return err
				}
				head, err := tx.AuditHead(ctx)
				if err != nil {
					return err
				}
				if head.Seq != e.Seq || head.Hash != e.Hash {
					return fmt.Errorf("AuditHead() = %d, want the event just appended, %d", head.Seq, e.Seq)
				}
				return tx.AddAuditCheckpoint(ctx, &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: at(0), KeyID: "k", Signature: []byte{1}})
			})
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("transaction %d = %v, want nil", i, err)
			}
		}
		checkChain(t, listAll(t, st), n/2)
	})
}
