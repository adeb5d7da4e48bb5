package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// listAll reads the whole audit log, a page at a time.
func listAll(t *testing.T, st store.Store) []*audit.Event {
	t.Helper()
	var all []*audit.Event
	for {
		page, err := st.ListAudit(t.Context(), int64(len(all)), 7)
		if err != nil {
			t.Fatalf("ListAudit(%d, 7) = %v, want nil", len(all), err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// checkChain fails t unless events are one intact chain with seq 1..n.
func checkChain(t *testing.T, events []*audit.Event, n int) {
	t.Helper()
	if len(events) != n {
		t.Errorf("audit log has %d events, want %d", len(events), n)
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("audit event %d has Seq %d, want %d", i, e.Seq, i+1)
		}
	}
	if err := audit.Verify(events); err != nil {
		t.Errorf("audit.Verify() = %v, want nil", err)
	}
}

func testAudit(t *testing.T, open Opener) {
	for _, tt := range []struct {
		name string
		in   []*audit.Event
		want []*audit.Event // without Seq, PrevHash, Hash: the chain is checked on its own
	}{
		{
			name: "ok/links-events",
			in: []*audit.Event{
				{Time: at(0), Type: audit.CheckCreated, Actor: "ci", Subject: "c1", Data: json.RawMessage(`{"kind":"terraform.apply"}`)},
				{Time: at(time.Second), Type: audit.CheckApproval, Actor: "alice", Subject: "c1"},
				{Time: at(2 * time.Second), Type: audit.GrantIssued, Actor: "stepgate", Subject: "c1", Data: json.RawMessage(`[1,2]`)},
			},
			want: []*audit.Event{
				{Time: stored(at(0)), Type: audit.CheckCreated, Actor: "ci", Subject: "c1", Data: json.RawMessage(`{"kind":"terraform.apply"}`)},
				{Time: stored(at(time.Second)), Type: audit.CheckApproval, Actor: "alice", Subject: "c1"},
				{Time: stored(at(2 * time.Second)), Type: audit.GrantIssued, Actor: "stepgate", Subject: "c1", Data: json.RawMessage(`[1,2]`)},
			},
		},
		{
			name: "ok/time-in-utc-to-the-microsecond",
			in:   []*audit.Event{{Time: time.Date(2026, 7, 1, 2, 3, 4, 5006007, time.FixedZone("X", 5*3600)), Type: audit.KeyRotated}},
			want: []*audit.Event{{Time: time.Date(2026, 6, 30, 21, 3, 4, 5006000, time.UTC), Type: audit.KeyRotated}},
		},
		{
			name: "ok/data-kept-byte-for-byte",
			in:   []*audit.Event{{Time: at(0), Type: audit.ApplyOutcome, Data: json.RawMessage(`{"z": 1.50,  "a": [1e2, "\u00e9"]}`)}},
			want: []*audit.Event{{Time: stored(at(0)), Type: audit.ApplyOutcome, Data: json.RawMessage(`{"z": 1.50,  "a": [1e2, "\u00e9"]}`)}},
		},
		{
			name: "ok/empty-data-comes-back-nil",
			in:   []*audit.Event{{Time: at(0), Type: audit.TokenCreated, Data: json.RawMessage{}}},
			want: []*audit.Event{{Time: stored(at(0)), Type: audit.TokenCreated}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			for i, e := range tt.in {
				if err := st.AppendAudit(ctx, e); err != nil {
					t.Fatalf("AppendAudit(%d) = %v, want nil", i, err)
				}
				if e.Seq != int64(i+1) {
					t.Errorf("AppendAudit(%d) set Seq %d, want %d", i, e.Seq, i+1)
				}
			}
			got := listAll(t, st)
			checkChain(t, got, len(tt.want))
			// The caller's event after AppendAudit has the stored Seq,
			// hashes and time.
			type sealed struct {
				Seq            int64
				Time           time.Time
				PrevHash, Hash string
			}
			seal := func(es []*audit.Event) (out []sealed) {
				for _, e := range es {
					out = append(out, sealed{e.Seq, e.Time, e.PrevHash, e.Hash})
				}
				return out
			}
			if diff := cmp.Diff(seal(tt.in), seal(got), cmpOpts()); diff != "" {
				t.Errorf("ListAudit() differs from the appended events (-appended +listed):\n%s", diff)
			}
			for _, e := range got {
				e.Seq, e.PrevHash, e.Hash = 0, "", ""
			}
			if diff := cmp.Diff(tt.want, got, cmpOpts()); diff != "" {
				t.Errorf("ListAudit() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("ok/list-pages", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		for i := range 5 {
			if err := st.AppendAudit(ctx, &audit.Event{Time: at(time.Duration(i) * time.Second), Type: audit.CheckCreated, Subject: fmt.Sprint(i)}); err != nil {
				t.Fatalf("AppendAudit(%d) = %v, want nil", i, err)
			}
		}
		for _, tt := range []struct {
			after   int64
			limit   int
			want    []int64
			wantErr bool
		}{
			{0, 2, []int64{1, 2}, false},
			{2, 10, []int64{3, 4, 5}, false},
			{4, 1, []int64{5}, false},
			{5, 10, nil, false},
			{-3, 1, []int64{1}, false},
			{0, 0, nil, true},
			{0, -1, nil, true},
		} {
			got, err := st.ListAudit(ctx, tt.after, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Errorf("ListAudit(%d, %d) error = %v, want error %v", tt.after, tt.limit, err, tt.wantErr)
				continue
			}
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if diff := cmp.Diff(tt.want, seqs); diff != "" {
				t.Errorf("ListAudit(%d, %d) mismatch (-want +got):\n%s", tt.after, tt.limit, diff)
			}
		}
	})

	t.Run("fail/invalid-data-is-refused", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if err := st.AppendAudit(ctx, &audit.Event{Time: at(0), Type: audit.CheckCreated, Data: json.RawMessage(`{"a":`)}); err == nil {
			t.Fatal("AppendAudit(invalid JSON data) = nil, want an error")
		}
		e := &audit.Event{Time: at(0), Type: audit.CheckCreated}
		if err := st.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit() = %v, want nil", err)
		}
		checkChain(t, listAll(t, st), 1)
	})

	t.Run("ok/appends-inside-transactions", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		err := st.InTx(ctx, func(tx store.Tx) error {
			for i := range 3 {
				if err := tx.AppendAudit(ctx, &audit.Event{Time: at(0), Type: audit.CheckCreated, Subject: fmt.Sprint(i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("InTx(3 × AppendAudit) = %v, want nil", err)
		}
		checkChain(t, listAll(t, st), 3)
	})

	t.Run("ok/concurrent-appends-keep-one-chain", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		const n = 40
		errs := concurrently(n, func(i int) error {
			e := &audit.Event{Time: at(time.Duration(i) * time.Millisecond), Type: audit.CheckCreated, Subject: fmt.Sprint(i)}
			if i%2 == 0 {
				return st.AppendAudit(ctx, e)
			}
			// In a transaction that writes something else first, as the
			// server does.
			return st.InTx(ctx, func(tx store.Tx) error {
				if err := tx.CreateCheck(ctx, &store.Check{ID: fmt.Sprint(i), State: store.StatePending}); err != nil {
					return err
				}
				return tx.AppendAudit(ctx, e)
			})
		})
		for _, err := range errs {
			if err != nil {
				t.Errorf("concurrent append = %v, want nil", err)
			}
		}
		checkChain(t, listAll(t, st), n)
	})

	t.Run("ok/rolled-back-appends-leave-no-gap", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		errBoom := errors.New("boom")
		for i := range 3 {
			err := st.InTx(ctx, func(tx store.Tx) error {
				if err := tx.AppendAudit(ctx, &audit.Event{Time: at(0), Type: audit.CheckCreated}); err != nil {
					return err
				}
				if i == 1 {
					return errBoom
				}
				return nil
			})
			if want := map[bool]error{true: errBoom, false: nil}[i == 1]; !errors.Is(err, want) {
				t.Fatalf("InTx(%d) = %v, want %v", i, err, want)
			}
		}
		checkChain(t, listAll(t, st), 2)
	})
}
