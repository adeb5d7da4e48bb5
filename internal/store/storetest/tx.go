package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// writeAll writes one of every record in tx, and changes check "old".
func writeAll(t *testing.T, tx store.Tx) error {
	ctx := t.Context()
	if err := tx.CreateCheck(ctx, filledCheck(t, "new", 1)); err != nil {
		return err
	}
	if err := tx.AddApproval(ctx, filledApproval(t, "a1", "new", 1)); err != nil {
		return err
	}
	if err := tx.CreateToken(ctx, filledToken(t, "t1", 1)); err != nil {
		return err
	}
	if err := tx.AddSigningKey(ctx, filledKey(t, "k1", 1)); err != nil {
		return err
	}
	if err := tx.PutCheckChanges(ctx, "new", changesOf(1)); err != nil {
		return err
	}
	if err := tx.CreateUser(ctx, filledUser(t, "u1", 1)); err != nil {
		return err
	}
	if err := tx.AddCredential(ctx, filledCredential(t, "cr1", "u1", 1)); err != nil {
		return err
	}
	if err := tx.CreateEnrollment(ctx, filledEnrollment(t, "e1", "u1", 1)); err != nil {
		return err
	}
	if err := tx.CreateSession(ctx, filledSession(t, "s1", "u1", 1)); err != nil {
		return err
	}
	old, err := tx.GetCheckForUpdate(ctx, "old")
	if err != nil {
		return err
	}
	old.State = store.StateApproved
	if err := tx.UpdateCheck(ctx, old); err != nil {
		return err
	}
	return tx.AppendAudit(ctx, &audit.Event{Time: at(0), Type: audit.CheckApproved, Actor: "alice", Subject: "old"})
}

// changesOf is JSON changes of a check that depend on seed.
func changesOf(seed int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`[{"address": "null_resource.r%d",  "actions": ["create"]}]`, seed))
}

// contents is what a test can see of a whole store: of people, what
// writeAll writes.
type contents struct {
	Checks      map[string]*store.Check
	Changes     map[string]json.RawMessage
	Approvals   []*store.Approval
	Tokens      []*store.Token
	Keys        []*store.SigningKey
	Users       []*store.User
	Credentials []*store.Credential // of u1
	Enrollments []*store.Enrollment // e1
	Sessions    []*store.Session    // s1
	Audit       []*audit.Event
}

func readAll(t *testing.T, st store.Store, checkIDs ...string) contents {
	t.Helper()
	ctx := t.Context()
	var c contents
	var err error
	c.Checks = map[string]*store.Check{}
	for _, id := range checkIDs {
		ch, err := st.GetCheck(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("GetCheck(%s) = %v, want nil", id, err)
		}
		c.Checks[id] = ch
	}
	for _, id := range checkIDs {
		ch, err := st.GetCheckChanges(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("GetCheckChanges(%s) = %v, want nil", id, err)
		}
		if c.Changes == nil {
			c.Changes = map[string]json.RawMessage{}
		}
		c.Changes[id] = ch
	}
	for _, id := range checkIDs {
		as, err := st.ListApprovals(ctx, id)
		if err != nil {
			t.Fatalf("ListApprovals(%s) = %v, want nil", id, err)
		}
		c.Approvals = append(c.Approvals, as...)
	}
	if c.Tokens, err = st.ListTokens(ctx); err != nil {
		t.Fatalf("ListTokens() = %v, want nil", err)
	}
	if c.Keys, err = st.ListSigningKeys(ctx); err != nil {
		t.Fatalf("ListSigningKeys() = %v, want nil", err)
	}
	if c.Users, err = st.ListUsers(ctx); err != nil {
		t.Fatalf("ListUsers() = %v, want nil", err)
	}
	if c.Credentials, err = st.ListCredentials(ctx, "u1"); err != nil {
		t.Fatalf("ListCredentials(u1) = %v, want nil", err)
	}
	if e, err := st.GetEnrollment(ctx, []byte("e1")); err == nil {
		c.Enrollments = []*store.Enrollment{e}
	} else if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetEnrollment(e1) = %v, want nil", err)
	}
	if s, err := st.GetSession(ctx, []byte("s1")); err == nil {
		c.Sessions = []*store.Session{s}
	} else if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession(s1) = %v, want nil", err)
	}
	if c.Audit, err = st.ListAudit(ctx, 0, 1000); err != nil {
		t.Fatalf("ListAudit() = %v, want nil", err)
	}
	c.Approvals, c.Tokens, c.Keys, c.Audit = emptyAsNil(c.Approvals), emptyAsNil(c.Tokens), emptyAsNil(c.Keys), emptyAsNil(c.Audit)
	c.Users, c.Credentials = emptyAsNil(c.Users), emptyAsNil(c.Credentials)
	return c
}

func testTransactions(t *testing.T, open Opener) {
	errBoom := errors.New("boom")
	// Before each case the store holds check "old" (pending), nothing else.
	oldCheck := func(t *testing.T) *store.Check {
		c := filledCheck(t, "old", 5)
		c.State = store.StatePending
		return c
	}
	untouched := func(t *testing.T) contents {
		return contents{Checks: map[string]*store.Check{"old": normalized(oldCheck(t))}}
	}
	committed := func(t *testing.T) contents {
		old := normalized(oldCheck(t))
		old.State = store.StateApproved
		return contents{
			Checks:      map[string]*store.Check{"old": old, "new": normalized(filledCheck(t, "new", 1))},
			Changes:     map[string]json.RawMessage{"new": changesOf(1)},
			Approvals:   []*store.Approval{normalized(filledApproval(t, "a1", "new", 1))},
			Tokens:      []*store.Token{normalized(filledToken(t, "t1", 1))},
			Keys:        []*store.SigningKey{normalized(filledKey(t, "k1", 1))},
			Users:       []*store.User{normalized(filledUser(t, "u1", 1))},
			Credentials: []*store.Credential{normalized(filledCredential(t, "cr1", "u1", 1))},
			Enrollments: []*store.Enrollment{normalized(filledEnrollment(t, "e1", "u1", 1))},
			Sessions:    []*store.Session{normalized(filledSession(t, "s1", "u1", 1))},
			// Audit: compared on their own.
		}
	}

	for _, tt := range []struct {
		name      string
		fn        func(t *testing.T, tx store.Tx) error
		wantErr   error // errors.Is
		wantPanic bool
		want      func(t *testing.T) contents
	}{
		{
			name: "ok/commit-makes-every-write-visible",
			fn:   writeAll,
			want: committed,
		},
		{
			name: "ok/reads-its-own-writes",
			fn: func(t *testing.T, tx store.Tx) error {
				if err := writeAll(t, tx); err != nil {
					return err
				}
				got, err := tx.GetCheck(t.Context(), "new")
				if err != nil {
					return err
				}
				if diff := cmp.Diff(normalized(filledCheck(t, "new", 1)), got, cmpOpts()); diff != "" {
					t.Errorf("GetCheck() in the transaction mismatch (-want +got):\n%s", diff)
				}
				return nil
			},
			want: committed,
		},
		{
			name: "fail/error-rolls-back-every-write",
			fn: func(t *testing.T, tx store.Tx) error {
				if err := writeAll(t, tx); err != nil {
					return err
				}
				return errBoom
			},
			wantErr: errBoom,
			want:    untouched,
		},
		{
			name: "fail/wrapped-sentinel-passes-through",
			fn: func(t *testing.T, tx store.Tx) error {
				if err := writeAll(t, tx); err != nil {
					return err
				}
				_, err := tx.GetCheck(t.Context(), "nope")
				return fmt.Errorf("approving: %w", err)
			},
			wantErr: store.ErrNotFound,
			want:    untouched,
		},
		{
			name: "fail/failed-statement-rolls-back-the-rest",
			fn: func(t *testing.T, tx store.Tx) error {
				if err := writeAll(t, tx); err != nil {
					return err
				}
				return tx.CreateCheck(t.Context(), &store.Check{ID: "new"})
			},
			wantErr: store.ErrConflict,
			want:    untouched,
		},
		{
			name: "fail/panic-rolls-back",
			fn: func(t *testing.T, tx store.Tx) error {
				if err := writeAll(t, tx); err != nil {
					return err
				}
				panic("boom")
			},
			wantPanic: true,
			want:      untouched,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			if err := st.CreateCheck(ctx, oldCheck(t)); err != nil {
				t.Fatalf("CreateCheck(old) = %v, want nil", err)
			}
			var err error
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				err = st.InTx(ctx, func(tx store.Tx) error { return tt.fn(t, tx) })
				return false
			}()
			if panicked != tt.wantPanic {
				t.Fatalf("InTx() panicked = %v, want %v", panicked, tt.wantPanic)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("InTx() = %v, want %v", err, tt.wantErr)
			}
			got := readAll(t, st, "old", "new")
			wantAudit := 0
			if tt.wantErr == nil && !tt.wantPanic {
				wantAudit = 1
			}
			if len(got.Audit) != wantAudit {
				t.Errorf("audit events after InTx() = %d, want %d", len(got.Audit), wantAudit)
			}
			got.Audit = nil
			if diff := cmp.Diff(tt.want(t), got, cmpOpts()); diff != "" {
				t.Errorf("store after InTx() mismatch (-want +got):\n%s", diff)
			}
			// The store still works, and a rolled-back append left no gap.
			e := &audit.Event{Time: at(0), Type: audit.CheckExpired, Subject: "old"}
			if err := st.AppendAudit(ctx, e); err != nil {
				t.Fatalf("AppendAudit() after InTx() = %v, want nil", err)
			}
			if want := int64(wantAudit + 1); e.Seq != want {
				t.Errorf("AppendAudit() after InTx() Seq = %d, want %d", e.Seq, want)
			}
		})
	}

	t.Run("ok/no-lost-update", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if err := st.CreateCheck(ctx, &store.Check{ID: "c1", State: store.StatePending}); err != nil {
			t.Fatalf("CreateCheck() = %v, want nil", err)
		}
		const n = 25
		errs := concurrently(n, func(int) error {
			return st.InTx(ctx, func(tx store.Tx) error {
				c, err := tx.GetCheckForUpdate(ctx, "c1")
				if err != nil {
					return err
				}
				c.OutcomeDurationMS++
				return tx.UpdateCheck(ctx, c)
			})
		})
		for _, err := range errs {
			if err != nil {
				t.Errorf("InTx(increment) = %v, want nil", err)
			}
		}
		c, err := st.GetCheck(ctx, "c1")
		if err != nil {
			t.Fatalf("GetCheck() = %v, want nil", err)
		}
		if c.OutcomeDurationMS != n {
			t.Errorf("after %d concurrent increments OutcomeDurationMS = %d, want %d", n, c.OutcomeDurationMS, n)
		}
	})

	t.Run("ok/concurrent-creates-one-wins", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		const n = 10
		errs := concurrently(n, func(i int) error {
			return st.CreateCheck(ctx, &store.Check{ID: "c1", Kind: fmt.Sprint(i)})
		})
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("CreateCheck() = %v, want nil or %v", err, store.ErrConflict)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d concurrent CreateCheck() of one id succeeded, want 1", won, n)
		}
	})
}
