package gate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// recordingSealer is a Sealer that records what the transaction it runs
// in holds, and what is published after.
type recordingSealer struct {
	err       error
	heads     []string // the type of the head of the chain each InTx saw
	published []int64
}

func (r *recordingSealer) InTx(ctx context.Context, tx store.Tx) (*audit.Checkpoint, error) {
	if r.err != nil {
		return nil, r.err
	}
	head, err := tx.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	r.heads = append(r.heads, head.Type)
	return &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash}, nil
}

func (r *recordingSealer) Publish(_ context.Context, cp *audit.Checkpoint) {
	r.published = append(r.published, cp.Seq)
}

// TestGrantsAreCheckpointedInTheirTransaction: every grant issued (by the
// policy at once, or by the approval that completes a check) is
// checkpointed inside the transaction that issues it, with its
// grant.issued event as the head, and published after; a checkpoint that
// cannot be written fails the issuance (no grant without a checkpoint).
func TestGrantsAreCheckpointedInTheirTransaction(t *testing.T) {
	ctx := context.Background()
	t.Run("ok/allowed", func(t *testing.T) {
		f := newFixture(t)
		sealer := &recordingSealer{}
		f.svc.SetSealer(sealer)
		if _, state := f.create(t, "dev-tag-change.plan.json", "billing-dev"); state != string(store.StateAllowed) {
			t.Fatalf("state %s, want allowed", state)
		}
		if len(sealer.heads) != 1 || sealer.heads[0] != audit.GrantIssued || len(sealer.published) != 1 {
			t.Errorf("sealer saw heads %v, published %v; want one checkpoint of grant.issued, published", sealer.heads, sealer.published)
		}
	})
	t.Run("ok/approved", func(t *testing.T) {
		f := newFixture(t)
		sealer := &recordingSealer{}
		f.svc.SetSealer(sealer)
		id, state := f.create(t, "prod-iam.plan.json", "billing-prod")
		if state != string(store.StatePending) || len(sealer.heads) != 0 {
			t.Fatalf("state %s, sealer saw %v; want pending and no checkpoint yet", state, sealer.heads)
		}
		f.approvers(t, "alice")
		v, err := f.svc.Record(ctx, id, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk", "user"}, AuthTime: f.clock.Now()})
		if err != nil || v.State != string(store.StateApproved) {
			t.Fatalf("Record() = %v, %v; want approved", v, err)
		}
		if len(sealer.heads) != 1 || sealer.heads[0] != audit.GrantIssued || len(sealer.published) != 1 {
			t.Errorf("sealer saw heads %v, published %v; want one checkpoint of grant.issued, published", sealer.heads, sealer.published)
		}
	})
	t.Run("fail/no-checkpoint-no-grant", func(t *testing.T) {
		f := newFixture(t)
		boom := errors.New("checkpoint key unavailable")
		f.svc.SetSealer(&recordingSealer{err: boom})
		file, err := os.Open(filepath.Join("..", "..", "examples", "dev-tag-change.plan.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		_, _, err = f.svc.CreateCheck(ctx, f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-dev", Plan: file})
		if !errors.Is(err, boom) {
			t.Fatalf("CreateCheck() = %v, want the checkpoint's error", err)
		}
		if evs, _ := f.st.ListAudit(ctx, 0, 100); len(evs) != 1 || evs[0].Type != audit.TokenCreated {
			t.Errorf("the audit log has %d events after a failed checkpoint, want only the token's", len(evs))
		}
	})
}
