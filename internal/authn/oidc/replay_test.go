package oidc

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemoryNonces(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	m := &memoryNonces{now: func() time.Time { return now }, used: map[string]time.Time{}}
	use := func(nonce string, until time.Time, want bool) {
		t.Helper()
		if got, err := m.Use(context.Background(), nonce, until); err != nil || got != want {
			t.Fatalf("Use(%q, %v) at %v = %v, %v, want %v, nil", nonce, until, now, got, err, want)
		}
	}
	until := now.Add(time.Hour)
	use("n1", until, true)
	use("n1", until, false)
	use("n2", until, true)
	now = until
	use("n1", until.Add(time.Hour), false) // at its until: still used
	now = until.Add(time.Second)
	use("n1", now.Add(time.Hour), true) // past it: forgotten
}

// nonceFunc is a NonceStore made of a function.
type nonceFunc func(ctx context.Context, nonce string, until time.Time) (bool, error)

func (f nonceFunc) Use(ctx context.Context, nonce string, until time.Time) (bool, error) {
	return f(ctx, nonce, until)
}

func TestUseNonce(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	errDB := errors.New("database is down")
	for _, tt := range []struct {
		name      string
		exp       time.Time
		fresh     bool
		err       error
		wantUntil time.Time
		want      error
	}{
		{name: "ok/kept-an-hour-past-the-expiry", exp: now.Add(5 * time.Minute), fresh: true, wantUntil: now.Add(65 * time.Minute)},
		{name: "ok/expired-token-kept-an-hour-from-now", exp: now.Add(-time.Minute), fresh: true, wantUntil: now.Add(time.Hour)},
		{name: "fail/replay", exp: now.Add(5 * time.Minute), wantUntil: now.Add(65 * time.Minute), want: ErrReplay},
		{name: "fail/store-error", exp: now.Add(5 * time.Minute), err: errDB, wantUntil: now.Add(65 * time.Minute), want: errDB},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var gotUntil time.Time
			rp := &RP{now: func() time.Time { return now }, nonces: nonceFunc(func(_ context.Context, nonce string, until time.Time) (bool, error) {
				if nonce != "n" {
					t.Errorf("Use(%q), want the nonce n", nonce)
				}
				gotUntil = until
				return tt.fresh, tt.err
			})}
			err := rp.useNonce(context.Background(), "n", tt.exp)
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("useNonce() = %v, want %v", err, tt.want)
			}
			if tt.err != nil && errors.Is(err, ErrReplay) {
				t.Fatalf("useNonce() = %v: a store error is not a replay", err)
			}
			if !gotUntil.Equal(tt.wantUntil) {
				t.Errorf("Use(until %v), want %v", gotUntil, tt.wantUntil)
			}
		})
	}
}
