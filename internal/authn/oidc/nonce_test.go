package oidc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// rpWith is an RP of p remembering used nonces in nonces (nil: memory).
func rpWith(t *testing.T, p *oidctest.Provider, nonces oidc.NonceStore) *oidc.RP {
	t.Helper()
	rp, err := oidc.New(context.Background(), oidc.Config{
		Issuer: p.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret, RedirectURL: redirect,
		Nonces: nonces,
	}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStoredNoncesAcrossServers: two RPs (two servers) sharing one
// database. The browser's flow is answered twice by the provider (the
// same authorization request sent again): two codes, two ID tokens with
// the same nonce. The first server accepts its callback; the second
// refuses the other as a replay, while an RP remembering nonces in its own
// memory would accept it.
func TestStoredNoncesAcrossServers(t *testing.T) {
	p := oidctest.Start(t, redirect)
	path := filepath.Join(t.TempDir(), "stepgate.db")
	st1, st2 := openSQLite(t, path), openSQLite(t, path)
	rp1 := rpWith(t, p, oidc.StoredNonces(st1, time.Now))
	rp2 := rpWith(t, p, oidc.StoredNonces(st2, time.Now))
	alone := rpWith(t, p, nil)

	u, f := rp1.BeginSignIn()
	q1, q2, q3 := authorize(t, u), authorize(t, u), authorize(t, u)
	if q1.Get("code") == q2.Get("code") {
		t.Fatal("the provider answered twice with the same code")
	}
	if _, err := finish(t, rp1, f, q1); err != nil {
		t.Fatalf("first server: Finish() = %v, want nil", err)
	}
	if id, err := finish(t, rp2, f, q2); !errors.Is(err, oidc.ErrReplay) {
		t.Fatalf("second server, same nonce: Finish() = %+v, %v, want %v", id, err, oidc.ErrReplay)
	}
	// Not because the answer was otherwise wrong: alone, a server accepts it.
	if _, err := finish(t, alone, f, q3); err != nil {
		t.Fatalf("a server with its own memory: Finish() = %v, want nil", err)
	}

	// The database holds the nonce's SHA-256, not the nonce.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored []byte
	var n int
	if err := db.QueryRow(`SELECT hash, (SELECT count(*) FROM used_nonces) FROM used_nonces`).Scan(&stored, &n); err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256([]byte(f.Nonce)); n != 1 || !bytes.Equal(stored, want[:]) {
		t.Errorf("used_nonces holds %d rows, hash %x; want one row, the nonce's SHA-256 %x", n, stored, want)
	}
}

type failingDB struct{ err error }

func (f failingDB) UseNonce(context.Context, []byte, time.Time, time.Time) (bool, error) {
	return false, f.err
}

// TestNonceStoreErrorRefuses: when the database cannot say whether a nonce
// was used, the sign-in is refused, and not as a replay.
func TestNonceStoreErrorRefuses(t *testing.T) {
	p := oidctest.Start(t, redirect)
	closed := openSQLite(t, filepath.Join(t.TempDir(), "stepgate.db"))
	closed.Close()
	errDown := errors.New("database is down")
	for _, tt := range []struct {
		name string
		db   oidc.NonceDB
		want error
	}{
		{name: "fail/database-error", db: failingDB{errDown}, want: errDown},
		{name: "fail/closed-database", db: closed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp := rpWith(t, p, oidc.StoredNonces(tt.db, time.Now))
			u, f := rp.BeginSignIn()
			id, err := finish(t, rp, f, authorize(t, u))
			if err == nil || id != nil {
				t.Fatalf("Finish() = %+v, %v, want no identity and an error", id, err)
			}
			if errors.Is(err, oidc.ErrReplay) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Finish() = %v, want the database's error %v", err, tt.want)
			}
		})
	}
}
