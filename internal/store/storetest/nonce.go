package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// nonceHash is the SHA-256 of a nonce, as the store takes it.
func nonceHash(nonce string) []byte {
	h := sha256.Sum256([]byte(nonce))
	return h[:]
}

// nonceUse is one UseNonce call: the nonce (hashed), until and now as
// offsets from base, and the answer wanted.
type nonceUse struct {
	nonce      string
	until, now time.Duration
	want       bool
}

func useNonces(t *testing.T, tx store.Tx, uses []nonceUse) {
	t.Helper()
	for i, u := range uses {
		got, err := tx.UseNonce(t.Context(), nonceHash(u.nonce), at(u.until), at(u.now))
		if err != nil {
			t.Fatalf("use %d: UseNonce(%s, until %v, now %v) = %v, want nil", i, u.nonce, u.until, u.now, err)
		}
		if got != u.want {
			t.Fatalf("use %d: UseNonce(%s, until %v, now %v) = %v, want %v", i, u.nonce, u.until, u.now, got, u.want)
		}
	}
}

func testNonces(t *testing.T, open Opener) {
	for _, tt := range []struct {
		name string
		uses []nonceUse
	}{
		{
			name: "ok/once",
			uses: []nonceUse{
				{"a", time.Hour, 0, true},
				{"a", time.Hour, 0, false},
				{"a", 2 * time.Hour, 30 * time.Minute, false}, // a later until changes nothing
				{"b", time.Hour, 0, true},
			},
		},
		{
			name: "ok/refused-until-its-until-included",
			uses: []nonceUse{
				{"a", time.Hour, 0, true},
				{"a", 2 * time.Hour, time.Hour, false},
			},
		},
		{
			name: "ok/past-its-until-a-nonce-is-forgotten",
			uses: []nonceUse{
				{"a", time.Hour, 0, true},
				{"a", 3 * time.Hour, time.Hour + time.Microsecond, true},
				{"a", 3 * time.Hour, 2 * time.Hour, false}, // the new record holds
			},
		},
		{
			// Another nonce's use deletes a's record once past its until.
			// The clock then goes back inside a's old window: only a
			// deleted record lets a through there.
			name: "ok/forgotten-records-are-deleted",
			uses: []nonceUse{
				{"a", time.Hour, 0, true},
				{"b", 3 * time.Hour, 2 * time.Hour, true},
				{"a", 2 * time.Hour, 30 * time.Minute, true},
			},
		},
		{
			name: "ok/records-inside-their-window-are-kept",
			uses: []nonceUse{
				{"a", 3 * time.Hour, 0, true},
				{"b", 3 * time.Hour, 2 * time.Hour, true},
				{"a", 3 * time.Hour, 30 * time.Minute, false},
				{"a", 4 * time.Hour, 2 * time.Hour, false},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			useNonces(t, open(t), tt.uses)
		})
	}

	t.Run("ok/many-forgotten-records-are-deleted", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		// 250 records past their until; each use deletes at most 100 of
		// them, so three uses delete them all.
		var uses []nonceUse
		for i := range 250 {
			uses = append(uses, nonceUse{fmt.Sprintf("old%d", i), time.Hour, 0, true})
		}
		for i := range 3 {
			uses = append(uses, nonceUse{fmt.Sprintf("new%d", i), 3 * time.Hour, 2 * time.Hour, true})
		}
		for _, i := range []int{0, 123, 249} {
			uses = append(uses, nonceUse{fmt.Sprintf("old%d", i), 2 * time.Hour, 30 * time.Minute, true})
		}
		useNonces(t, st, uses)
	})

	t.Run("ok/in-a-transaction", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		rollback := errors.New("roll back")
		err := st.InTx(ctx, func(tx store.Tx) error {
			useNonces(t, tx, []nonceUse{{"a", time.Hour, 0, true}, {"a", time.Hour, 0, false}})
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx() = %v, want %v", err, rollback)
		}
		// Rolled back: a was not recorded.
		err = st.InTx(ctx, func(tx store.Tx) error {
			useNonces(t, tx, []nonceUse{{"a", time.Hour, 0, true}})
			return nil
		})
		if err != nil {
			t.Fatalf("InTx() = %v, want nil", err)
		}
		useNonces(t, st, []nonceUse{{"a", time.Hour, 0, false}})
	})

	for _, tt := range []struct {
		name       string
		hash       []byte
		until, now time.Time
	}{
		{name: "fail/hash-too-short", hash: nonceHash("a")[:31], until: at(time.Hour), now: at(0)},
		{name: "fail/the-nonce-itself", hash: []byte("a nonce, not its hash"), until: at(time.Hour), now: at(0)},
		{name: "fail/no-until", hash: nonceHash("a"), now: at(0)},
		{name: "fail/no-now", hash: nonceHash("a"), until: at(time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			if ok, err := st.UseNonce(t.Context(), tt.hash, tt.until, tt.now); err == nil || ok {
				t.Fatalf("UseNonce() = %v, %v, want false and an error", ok, err)
			}
			// Nothing was recorded.
			useNonces(t, st, []nonceUse{{"a", time.Hour, 0, true}})
		})
	}

	// Concurrent uses of one nonce: exactly one of them records it, the
	// first time and again once its record is past its until.
	for _, tt := range []struct {
		name  string
		first []nonceUse
		now   time.Duration
	}{
		{name: "ok/concurrent-uses-one-wins"},
		{name: "ok/concurrent-uses-past-its-until-one-wins", first: []nonceUse{{"n", time.Hour, 0, true}}, now: 2 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			useNonces(t, st, tt.first)
			const n = 16
			won := make([]bool, n)
			errs := concurrently(n, func(i int) (err error) {
				won[i], err = st.UseNonce(t.Context(), nonceHash("n"), at(tt.now+time.Hour), at(tt.now))
				return err
			})
			winners := 0
			for i := range n {
				if errs[i] != nil {
					t.Errorf("UseNonce() in goroutine %d = %v, want nil", i, errs[i])
				}
				if won[i] {
					winners++
				}
			}
			if winners != 1 {
				t.Errorf("%d of %d concurrent UseNonce() of one nonce returned true, want exactly 1", winners, n)
			}
			useNonces(t, st, []nonceUse{{"n", tt.now + time.Hour, tt.now, false}})
		})
	}
}
