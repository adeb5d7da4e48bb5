package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stepgate/stepgate/internal/store"
)

// ceremonyHash is the SHA-256 of a ceremony id, as the store takes it.
func ceremonyHash(id string) []byte {
	h := sha256.Sum256([]byte("ceremony:" + id))
	return h[:]
}

// newCeremony is a ceremony created at base, expiring after ttl.
func newCeremony(id string, ttl time.Duration) *store.Ceremony {
	return &store.Ceremony{
		Hash: ceremonyHash(id), Purpose: "approve", Bind: []byte("session-hash-" + id), Subject: "chk_" + id,
		Data: []byte{0, 1, 2, 0xff}, CreatedAt: at(0), ExpiresAt: at(ttl),
	}
}

func normalCeremony(c *store.Ceremony) *store.Ceremony {
	n := *c
	n.CreatedAt, n.ExpiresAt, n.UsedAt = stored(c.CreatedAt), stored(c.ExpiresAt), stored(c.UsedAt)
	return &n
}

func testCeremonies(t *testing.T, open Opener) {
	t.Run("ok/create-get-use-once", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		c := newCeremony("a", 5*time.Minute)
		if err := st.CreateCeremony(ctx, c); err != nil {
			t.Fatalf("CreateCeremony() = %v", err)
		}
		want := normalCeremony(c)
		got, err := st.GetCeremony(ctx, c.Hash)
		if err != nil {
			t.Fatalf("GetCeremony() = %v", err)
		}
		if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
			t.Errorf("GetCeremony() mismatch (-want +got):\n%s", diff)
		}
		used, err := st.UseCeremony(ctx, c.Hash, at(time.Minute))
		if err != nil {
			t.Fatalf("UseCeremony() = %v", err)
		}
		want.UsedAt = stored(at(time.Minute))
		if diff := cmp.Diff(want, used, cmpOpts()); diff != "" {
			t.Errorf("UseCeremony() mismatch (-want +got):\n%s", diff)
		}
		// A second use is a replay: refused, with the record.
		again, err := st.UseCeremony(ctx, c.Hash, at(2*time.Minute))
		if !errors.Is(err, store.ErrUsed) {
			t.Fatalf("second UseCeremony() = %v, want store.ErrUsed", err)
		}
		if diff := cmp.Diff(want, again, cmpOpts()); diff != "" {
			t.Errorf("second UseCeremony() record mismatch (-want +got):\n%s", diff)
		}
		// Still refused as used once past its expiry.
		if _, err := st.UseCeremony(ctx, c.Hash, at(time.Hour)); !errors.Is(err, store.ErrUsed) {
			t.Errorf("UseCeremony() of a used, expired ceremony = %v, want store.ErrUsed", err)
		}
	})

	t.Run("fail/expired", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		c := newCeremony("a", 5*time.Minute)
		if err := st.CreateCeremony(ctx, c); err != nil {
			t.Fatal(err)
		}
		// Refused at its expiry, included.
		got, err := st.UseCeremony(ctx, c.Hash, at(5*time.Minute))
		if !errors.Is(err, store.ErrExpired) || got == nil || got.Subject != c.Subject {
			t.Fatalf("UseCeremony() at its expiry = %+v, %v, want the record and store.ErrExpired", got, err)
		}
		if g, _ := st.GetCeremony(ctx, c.Hash); g == nil || !g.UsedAt.IsZero() {
			t.Errorf("an expired ceremony was marked used: %+v", g)
		}
	})

	t.Run("fail/unknown", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if got, err := st.UseCeremony(ctx, ceremonyHash("nope"), at(0)); !errors.Is(err, store.ErrNotFound) || got != nil {
			t.Errorf("UseCeremony() of an unknown hash = %+v, %v, want nil and store.ErrNotFound", got, err)
		}
		if _, err := st.GetCeremony(ctx, ceremonyHash("nope")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetCeremony() of an unknown hash = %v, want store.ErrNotFound", err)
		}
	})

	for _, tt := range []struct {
		name string
		c    func() *store.Ceremony
	}{
		{"fail/hash-not-sha256", func() *store.Ceremony { c := newCeremony("a", time.Minute); c.Hash = []byte("id"); return c }},
		{"fail/no-expiry", func() *store.Ceremony { c := newCeremony("a", time.Minute); c.ExpiresAt = time.Time{}; return c }},
		{"fail/no-creation", func() *store.Ceremony { c := newCeremony("a", time.Minute); c.CreatedAt = time.Time{}; return c }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			if err := st.CreateCeremony(t.Context(), tt.c()); err == nil {
				t.Fatalf("CreateCeremony() = nil, want an error")
			}
		})
	}

	t.Run("fail/hash-taken", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if err := st.CreateCeremony(ctx, newCeremony("a", time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateCeremony(ctx, newCeremony("a", time.Hour)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateCeremony() of a taken hash = %v, want store.ErrConflict", err)
		}
	})

	t.Run("ok/expired-records-are-deleted", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		// 250 records expired by 2h; each creation deletes at most 100.
		for i := range 250 {
			if err := st.CreateCeremony(ctx, newCeremony(fmt.Sprintf("old%d", i), time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		keep := newCeremony("keep", 3*time.Hour)
		if err := st.CreateCeremony(ctx, keep); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			c := newCeremony(fmt.Sprintf("new%d", i), 3*time.Hour)
			c.CreatedAt = at(2 * time.Hour)
			if err := st.CreateCeremony(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		for _, i := range []int{0, 123, 249} {
			if _, err := st.GetCeremony(ctx, ceremonyHash(fmt.Sprintf("old%d", i))); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("expired ceremony old%d: GetCeremony() = %v, want store.ErrNotFound", i, err)
			}
		}
		if _, err := st.GetCeremony(ctx, keep.Hash); err != nil {
			t.Errorf("a ceremony not expired was deleted: %v", err)
		}
	})

	t.Run("ok/in-a-rolled-back-transaction", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		c := newCeremony("a", time.Hour)
		if err := st.CreateCeremony(ctx, c); err != nil {
			t.Fatal(err)
		}
		rollback := errors.New("roll back")
		err := st.InTx(ctx, func(tx store.Tx) error {
			if _, err := tx.UseCeremony(ctx, c.Hash, at(0)); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx() = %v, want %v", err, rollback)
		}
		if _, err := st.UseCeremony(ctx, c.Hash, at(0)); err != nil {
			t.Errorf("UseCeremony() after a rolled-back use = %v, want nil", err)
		}
	})

	// Concurrent finishes of one ceremony: exactly one uses it, each other
	// gets store.ErrUsed.
	t.Run("ok/concurrent-uses-one-wins", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		c := newCeremony("n", time.Hour)
		if err := st.CreateCeremony(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		const n = 16
		errs := concurrently(n, func(int) error {
			// Half of them in a transaction, as the web side does.
			_, err := st.UseCeremony(t.Context(), c.Hash, at(time.Minute))
			return err
		})
		errs = append(errs, concurrently(n, func(int) error {
			return st.InTx(t.Context(), func(tx store.Tx) error {
				_, err := tx.UseCeremony(t.Context(), c.Hash, at(time.Minute))
				return err
			})
		})...)
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, store.ErrUsed):
				t.Errorf("UseCeremony() in goroutine %d = %v, want nil or store.ErrUsed", i, err)
			}
		}
		if winners != 1 {
			t.Errorf("%d of %d concurrent UseCeremony() of one ceremony succeeded, want exactly 1", winners, len(errs))
		}
	})

	t.Run("ok/concurrent-enrollment-uses-one-wins", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		mustCreateUsers(t, st, "u1")
		e := &store.Enrollment{Hash: ceremonyHash("link"), UserID: "u1", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
		if err := st.CreateEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
		const n = 16
		errs := concurrently(n, func(int) error {
			return st.InTx(ctx, func(tx store.Tx) error {
				_, err := tx.UseEnrollment(ctx, e.Hash, at(time.Minute))
				return err
			})
		})
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, store.ErrUsed):
				t.Errorf("UseEnrollment() in goroutine %d = %v, want nil or store.ErrUsed", i, err)
			}
		}
		if winners != 1 {
			t.Errorf("%d of %d concurrent UseEnrollment() of one link succeeded, want exactly 1", winners, n)
		}
		got, err := st.GetEnrollment(ctx, e.Hash)
		if err != nil || !got.UsedAt.Equal(at(time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("GetEnrollment() = %+v, %v, want used at %v", got, err, at(time.Minute))
		}
	})

	t.Run("fail/enrollment-expired-or-unknown", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		mustCreateUsers(t, st, "u1")
		e := &store.Enrollment{Hash: ceremonyHash("link"), UserID: "u1", CreatedAt: at(0), ExpiresAt: at(time.Hour)}
		if err := st.CreateEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
		if got, err := st.UseEnrollment(ctx, e.Hash, at(time.Hour)); !errors.Is(err, store.ErrExpired) || got == nil || got.UserID != "u1" {
			t.Errorf("UseEnrollment() at its expiry = %+v, %v, want the record and store.ErrExpired", got, err)
		}
		if _, err := st.UseEnrollment(ctx, ceremonyHash("nope"), at(0)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UseEnrollment() of an unknown link = %v, want store.ErrNotFound", err)
		}
	})
}

// mustCreateUsers creates users with these ids (and names).
func mustCreateUsers(t *testing.T, st store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := st.CreateUser(context.Background(), &store.User{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
}

func testGrantApprovals(t *testing.T, open Opener) {
	// Every case starts with check c1 and its approvals a1, a2, a3, and
	// check c2 with its approval b1.
	setup := func(t *testing.T) store.Store {
		st, ctx := open(t), t.Context()
		for _, c := range []struct {
			check string
			aps   []string
		}{{"c1", []string{"a1", "a2", "a3"}}, {"c2", []string{"b1"}}} {
			if err := st.CreateCheck(ctx, &store.Check{ID: c.check, State: store.StatePending}); err != nil {
				t.Fatal(err)
			}
			for _, id := range c.aps {
				if err := st.AddApproval(ctx, &store.Approval{ID: id, CheckID: c.check, Subject: id, Approved: true, AAL: 3}); err != nil {
					t.Fatal(err)
				}
			}
		}
		return st
	}
	for _, tt := range []struct {
		name    string
		set     []string
		wantErr error
		want    []string
	}{
		{name: "ok/some", set: []string{"a3", "a1"}, want: []string{"a1", "a3"}},
		{name: "ok/none", set: nil, want: nil},
		{name: "fail/an-approval-of-another-check", set: []string{"a1", "b1"}, wantErr: store.ErrNotFound},
		{name: "fail/no-such-approval", set: []string{"a1", "zz"}, wantErr: store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := setup(t), t.Context()
			err := st.SetGrantApprovals(ctx, "c1", tt.set)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("SetGrantApprovals(%v) = %v, want %v", tt.set, err, tt.wantErr)
			}
			got, err := st.GrantApprovals(ctx, "c1")
			if err != nil {
				t.Fatalf("GrantApprovals() = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("GrantApprovals() mismatch (-want +got):\n%s", diff)
			}
			if other, _ := st.GrantApprovals(ctx, "c2"); len(other) != 0 {
				t.Errorf("GrantApprovals(c2) = %v, want none", other)
			}
		})
	}
	t.Run("fail/twice", func(t *testing.T) {
		t.Parallel()
		st, ctx := setup(t), t.Context()
		if err := st.SetGrantApprovals(ctx, "c1", []string{"a1"}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetGrantApprovals(ctx, "c1", []string{"a1", "a2"}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("SetGrantApprovals() again = %v, want store.ErrConflict", err)
		}
		if got, _ := st.GrantApprovals(ctx, "c1"); !cmp.Equal(got, []string{"a1"}) {
			t.Errorf("GrantApprovals() = %v, want [a1] (the failed call changed nothing)", got)
		}
	})
}
