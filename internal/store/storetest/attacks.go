package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// Attacker runs SQL on a store's database directly, bypassing the store,
// as someone who holds the database (and not the master key) would.
type Attacker func(t *testing.T, query string, args ...any)

// AttackOpener returns a new, empty store for one test and an Attacker on
// its database.
type AttackOpener func(t *testing.T) (store.Store, Attacker)

// attackLog is a store with a checkpointed log, ready to be attacked:
//
//	1 audit.checkpoint_key_created
//	2 check.created chk_1, 3 check.pending, 4 check.approval (alice),
//	5 check.approved, 6 grant.issued            <- checkpoint at 6
//	7 check.created chk_2, 8 check.allowed,
//	9 grant.issued                              <- checkpoint at 9
//	10 grant.consumed, 11 apply.outcome         (unsealed)
//
// Every checkpoint is also in the checkpoint file.
type attackLog struct {
	st     store.Store
	attack Attacker
	ck     *keys.CheckpointKeys
	w      *checkpoint.Writer
	file   string
}

func newAttackLog(t *testing.T, open AttackOpener) *attackLog {
	t.Helper()
	st, attack := open(t)
	ctx := t.Context()
	master, err := keys.NewMaster(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := base
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	ck := keys.NewCheckpointKeys(master, now)
	path := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	file, err := checkpoint.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	w := checkpoint.NewWriter(st, ck, slog.New(slog.NewTextHandler(io.Discard, nil)), now, file)
	if _, err := w.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	appendAll := func(es ...*audit.Event) {
		for _, e := range es {
			e.Time = now()
			if err := st.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustCheckpoint := func(seq int64) {
		cp, err := w.Checkpoint(ctx)
		if err != nil || cp == nil || cp.Seq != seq {
			t.Fatalf("Checkpoint() = %+v, %v; want a checkpoint at %d", cp, err, seq)
		}
	}
	appendAll(
		&audit.Event{Type: audit.CheckCreated, Actor: "billing-ci", Subject: "chk_1"},
		&audit.Event{Type: audit.CheckPending, Actor: "policy", Subject: "chk_1"},
		&audit.Event{Type: audit.CheckApproval, Actor: "alice", Subject: "chk_1"},
		&audit.Event{Type: audit.CheckApproved, Actor: "alice", Subject: "chk_1"},
		&audit.Event{Type: audit.GrantIssued, Actor: "alice", Subject: "chk_1"},
	)
	mustCheckpoint(6)
	appendAll(
		&audit.Event{Type: audit.CheckCreated, Actor: "billing-ci", Subject: "chk_2"},
		&audit.Event{Type: audit.CheckAllowed, Actor: "policy", Subject: "chk_2"},
		&audit.Event{Type: audit.GrantIssued, Actor: "policy", Subject: "chk_2"},
	)
	mustCheckpoint(9)
	appendAll(
		&audit.Event{Type: audit.GrantConsumed, Actor: "billing-ci", Subject: "chk_2"},
		&audit.Event{Type: audit.ApplyOutcome, Actor: "billing-ci", Subject: "chk_2"},
	)
	return &attackLog{st: st, attack: attack, ck: ck, w: w, file: path}
}

// verify runs checkpoint.Verify on the database, with the checkpoint file
// when withFile.
func (l *attackLog) verify(t *testing.T, withFile bool) *checkpoint.Report {
	t.Helper()
	ctx := t.Context()
	trusted, untrusted, err := l.ck.Trusted(ctx, l.st)
	if err != nil {
		t.Fatal(err)
	}
	var o checkpoint.Options
	if withFile {
		o.HaveFile = true
		if o.File, o.FileProblems, err = checkpoint.ReadFile(l.file); err != nil {
			t.Fatal(err)
		}
	}
	r, err := checkpoint.Verify(ctx, l.st, checkpoint.Keys{Trusted: trusted, Untrusted: untrusted}, o)
	if err != nil {
		t.Fatalf("Verify() = %v, want a report", err)
	}
	return r
}

// reseal removes the event at seq and seals the events after it again
// with the project's own audit.Seal (through AppendAudit): the chain on
// its own verifies afterwards.
func (l *attackLog) reseal(t *testing.T, seq int64) {
	t.Helper()
	ctx := t.Context()
	tail, err := l.st.ListAudit(ctx, seq, 1000)
	if err != nil {
		t.Fatal(err)
	}
	l.attack(t, `DELETE FROM audit_events WHERE seq >= $1`, seq)
	for _, e := range tail {
		if err := l.st.AppendAudit(ctx, &audit.Event{Time: e.Time, Type: e.Type, Actor: e.Actor, Subject: e.Subject, Data: e.Data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := audit.Verify(listAll(t, l.st)); err != nil {
		t.Fatalf("the re-sealed chain does not verify on its own (%v): the attack is not the one meant", err)
	}
}

// kinds returns the kinds of a report's findings, each with its source.
func kinds(r *checkpoint.Report) map[string]bool {
	out := map[string]bool{}
	for _, f := range r.Findings {
		out[f.Kind] = true
		out[f.Kind+"@"+f.Source] = true
	}
	return out
}

// RunAttacks attacks a checkpointed audit log through the database, as
// someone holding it but not the master key, and checks that
// checkpoint.Verify names each attack (and that the writer refuses to sign
// over one).
func RunAttacks(t *testing.T, open AttackOpener) {
	for _, tt := range []struct {
		name   string
		attack func(t *testing.T, l *attackLog)
		// want are finding kinds (kind or kind@source) that must be
		// reported, from the database alone and with the file.
		wantDB, wantFile []string
		// unsealed is the count of unsealed events wanted when nothing is
		// found.
		unsealed int64
		// writerRefuses: the writer must not sign the head afterwards.
		writerRefuses bool
	}{
		{
			name:     "ok/untampered",
			attack:   func(*testing.T, *attackLog) {},
			unsealed: 2,
		},
		{
			name: "fail/last-rows-deleted",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `DELETE FROM audit_events WHERE seq >= $1`, 8)
			},
			wantDB:        []string{checkpoint.Truncated + "@database"},
			wantFile:      []string{checkpoint.Truncated + "@database", checkpoint.Truncated + "@file"},
			writerRefuses: true,
		},
		{
			name:          "fail/approval-deleted-and-chain-resealed",
			attack:        func(t *testing.T, l *attackLog) { l.reseal(t, 4) },
			wantDB:        []string{checkpoint.Rechained + "@database"},
			wantFile:      []string{checkpoint.Rechained + "@database", checkpoint.Rechained + "@file"},
			writerRefuses: true,
		},
		{
			name: "fail/resealed-and-checkpoints-forged-with-another-key",
			attack: func(t *testing.T, l *attackLog) {
				l.reseal(t, 4)
				l.attack(t, `DELETE FROM audit_checkpoints`)
				// The attacker's own key, sealed under their own master
				// key, and a checkpoint of the re-sealed head signed with it.
				ctx := t.Context()
				other, err := keys.NewMaster(bytes.Repeat([]byte{8}, 32))
				if err != nil {
					t.Fatal(err)
				}
				mine := keys.NewCheckpointKeys(other, time.Now)
				fake := &memCheckpointKeys{}
				if _, err := mine.Ensure(ctx, fake); err != nil {
					t.Fatal(err)
				}
				if err := l.st.AddCheckpointKey(ctx, fake.keys[0]); err != nil {
					t.Fatal(err)
				}
				k, err := mine.Signer(ctx, fake)
				if err != nil {
					t.Fatal(err)
				}
				head, err := l.st.AuditHead(ctx)
				if err != nil {
					t.Fatal(err)
				}
				cp := &audit.Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: time.Now(), KeyID: k.ID}
				if err := audit.SignCheckpoint(cp, k.Private); err != nil {
					t.Fatal(err)
				}
				if err := l.st.AddAuditCheckpoint(ctx, cp); err != nil {
					t.Fatal(err)
				}
			},
			wantDB:        []string{checkpoint.UnknownKey + "@database", checkpoint.CheckpointMissing + "@database"},
			wantFile:      []string{checkpoint.UnknownKey + "@database", checkpoint.Rechained + "@file", checkpoint.CheckpointMissing + "@file"},
			writerRefuses: true,
		},
		{
			name: "fail/checkpoint-edited",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `UPDATE audit_checkpoints SET hash = $1 WHERE seq = 9`, hash64("e"))
			},
			wantDB:        []string{checkpoint.BadSignature + "@database"},
			wantFile:      []string{checkpoint.BadSignature + "@database", checkpoint.CheckpointMissing + "@file"},
			writerRefuses: true,
		},
		{
			name: "fail/checkpoints-deleted",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `DELETE FROM audit_checkpoints`)
			},
			// The grants issued have lost the checkpoint of their
			// transaction.
			wantDB:   []string{checkpoint.CheckpointMissing + "@database"},
			wantFile: []string{checkpoint.CheckpointMissing + "@database", checkpoint.CheckpointMissing + "@file"},
		},
		{
			// The newest checkpoint and the events after the one before:
			// from the database alone the log looks whole (the limit of
			// what a database can prove); the file shows both.
			name: "fail/tail-and-newest-checkpoint-deleted",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `DELETE FROM audit_checkpoints WHERE seq = 9`)
				l.attack(t, `DELETE FROM audit_events WHERE seq >= 7`)
			},
			wantDB:   nil,
			wantFile: []string{checkpoint.Truncated + "@file", checkpoint.CheckpointMissing + "@file"},
			unsealed: 0,
		},
		{
			name: "fail/checkpointed-event-deleted",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `DELETE FROM audit_events WHERE seq = 6`)
			},
			wantDB:   []string{checkpoint.ChainBroken, checkpoint.EventMissing + "@database"},
			wantFile: []string{checkpoint.ChainBroken, checkpoint.EventMissing + "@file"},
			// The writer checks only from the newest checkpoint on (which
			// holds): signing on launders nothing, the hole stays.
		},
		{
			name: "fail/first-rows-deleted",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `DELETE FROM audit_events WHERE seq <= 2`)
			},
			wantDB:        []string{checkpoint.ChainBroken},
			wantFile:      []string{checkpoint.ChainBroken},
			writerRefuses: false, // the chain from the newest checkpoint is whole
		},
		{
			// What no checkpoint can prove: the unsealed events after the
			// newest one can go unnoticed (this is why the loop checkpoints
			// every minute and every grant is checkpointed at once).
			name: "limit/unsealed-events-deleted",
			attack: func(t *testing.T, l *attackLog) {
				l.attack(t, `DELETE FROM audit_events WHERE seq >= 10`)
			},
			unsealed: 0,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newAttackLog(t, open)
			tt.attack(t, l)
			for _, withFile := range []bool{false, true} {
				want := tt.wantDB
				if withFile {
					want = tt.wantFile
				}
				r := l.verify(t, withFile)
				got := kinds(r)
				for _, k := range want {
					if !got[k] {
						t.Errorf("with file %v: Verify() did not report %s; findings: %+v", withFile, k, r.Findings)
					}
				}
				if len(want) == 0 {
					if !r.OK() {
						t.Errorf("with file %v: Verify() found %+v, want nothing", withFile, r.Findings)
					} else if r.Unsealed.Count != tt.unsealed {
						t.Errorf("with file %v: Verify() unsealed = %+v, want %d", withFile, r.Unsealed, tt.unsealed)
					}
				} else if r.OK() {
					t.Errorf("with file %v: Verify() found nothing, want %v", withFile, want)
				}
			}
			cp, err := l.w.Checkpoint(t.Context())
			if tt.writerRefuses {
				if !errors.Is(err, checkpoint.ErrTampered) {
					t.Errorf("Checkpoint() after the attack = %+v, %v; want ErrTampered", cp, err)
				}
			} else if err != nil {
				t.Errorf("Checkpoint() = %v, want nil", err)
			}
		})
	}
}

// memCheckpointKeys is an attacker's own key store.
type memCheckpointKeys struct{ keys []*store.CheckpointKey }

func (m *memCheckpointKeys) AddCheckpointKey(_ context.Context, k *store.CheckpointKey) error {
	m.keys = append(m.keys, k)
	return nil
}

func (m *memCheckpointKeys) ListCheckpointKeys(context.Context) ([]*store.CheckpointKey, error) {
	return m.keys, nil
}
