package gate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/clocktest"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/secret"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/testenv"
)

// postgresStore opens a store on a fresh schema of the PostgreSQL of
// STEPGATE_TEST_POSTGRES_DSN, dropped at the end.
func postgresStore(t *testing.T) store.Store {
	t.Helper()
	// The interleaving this test needs exists on PostgreSQL only (SQLite
	// serializes writers).
	dsn := testenv.PostgresSchema(t, "gate")
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// rotatingOpener runs a master key rotation, to its commit, from inside
// the release: after the release has read the sealed versions under the
// check's row lock, before it opens them.
type rotatingOpener struct {
	inner  SecretOpener
	once   sync.Once
	rotate func() error
	err    error
}

func (o *rotatingOpener) Open(v *store.SecretVersion) ([]byte, error) {
	o.once.Do(func() { o.err = o.rotate() })
	return o.inner.Open(v)
}

// TestReleaseDuringMasterKeyRotation rotates the master key while a
// release is in flight: the release read the version sealed under the old
// key, the rotation re-sealed it under the new key and committed, then the
// release opens what it read. A server holding both keys releases it; one
// holding the new key alone refuses, uses nothing up and audits it, and
// the next exchange, which reads the re-sealed version, succeeds.
func TestReleaseDuringMasterKeyRotation(t *testing.T) {
	for _, tt := range []struct {
		name       string
		serverKeys func(oldKey, newKey *keys.Master) *keys.Master
		first      error
	}{
		{"ok/server-holds-both-keys", func(o, n *keys.Master) *keys.Master { return n.WithPrevious(o) }, nil},
		{"fail/server-holds-the-new-key-alone", func(o, n *keys.Master) *keys.Master { return n }, secret.ErrSealed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := postgresStore(t)
			oldKey, _ := keys.NewMaster(bytes.Repeat([]byte{1}, 32))
			newKey, _ := keys.NewMaster(bytes.Repeat([]byte{2}, 32))
			clk := clocktest.New(time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC))
			ring := keys.NewRing(oldKey, clk.Now)
			if _, err := ring.Ensure(ctx, st); err != nil {
				t.Fatal(err)
			}
			engine, err := policy.New(ctx, policy.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			// The ring signs with what the old key sealed: give it both.
			svc := New(st, engine, keys.NewRing(newKey.WithPrevious(oldKey), clk.Now), Config{PublicURL: "https://stepgate.example.com"},
				slog.New(slog.NewTextHandler(io.Discard, nil)), clk.Now)
			if _, err := secret.New(st, oldKey, clk.Now).Put(ctx, "billing/db", "billing-*", "", []byte("the value"), "test"); err != nil {
				t.Fatal(err)
			}
			opener := &rotatingOpener{
				inner: secret.New(st, tt.serverKeys(oldKey, newKey), clk.Now),
				rotate: func() error {
					n, err := secret.New(st, newKey.WithPrevious(oldKey), clk.Now).RotateMaster(ctx, "test")
					if err == nil && n != 1 {
						err = errors.New("the rotation re-sealed nothing")
					}
					return err
				},
			}
			svc.SetSecrets(opener)
			tok, _, err := CreateToken(ctx, st, TokenSpec{Name: "billing-ci", Workspaces: []string{"billing-*"}}, "test", clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			caller, err := svc.Authenticate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			ch, _, err := svc.CreateCheck(ctx, caller, &CreateRequest{Kind: "secret.read", Workspace: "billing-dev", Secrets: []store.CheckSecret{{Name: "billing/db", Env: "DB"}}})
			if err != nil {
				t.Fatal(err)
			}
			// Only approvals of people with an account, enabled, count.
			if err := st.CreateUser(ctx, &store.User{ID: "usr_alice", Name: "alice", Admin: true, CreatedAt: clk.Now()}); err != nil && !errors.Is(err, store.ErrConflict) {
				t.Fatal(err)
			}
			v, err := svc.Record(ctx, ch.ID, &Proof{Subject: "alice", Admin: true, Approved: true, AMR: []string{"hwk"}, AAL: 3, AuthTime: clk.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if v.State != "approved" {
				t.Fatalf("check is %s, want approved", v.State)
			}
			ch, err = svc.GetCheck(ctx, caller, ch.ID)
			if err != nil {
				t.Fatal(err)
			}

			rel, err := svc.Release(ctx, caller, ch.Grant)
			if opener.err != nil {
				t.Fatalf("the rotation inside the release failed: %v", opener.err)
			}
			if cur, _ := st.GetSecret(ctx, "billing/db"); cur.KeyID != newKey.ID() {
				t.Fatalf("after the rotation billing/db is under %s, want the new key %s", cur.KeyID, newKey.ID())
			}
			if tt.first == nil {
				if err != nil || len(rel.Secrets) != 1 || string(rel.Secrets[0].Value) != "the value" {
					t.Fatalf("Release() during the rotation = %v, %v; want the value", rel, err)
				}
				return
			}
			if !errors.Is(err, tt.first) || !Audited(err) {
				t.Fatalf("Release() during the rotation = %v, want %v, audited", err, tt.first)
			}
			evs, _ := st.ListAudit(ctx, 0, 100)
			if last := evs[len(evs)-1]; last.Type != audit.SecretRefused {
				t.Errorf("last audit event %s, want %s", last.Type, audit.SecretRefused)
			}
			// Nothing was used up: the next exchange reads the re-sealed
			// version and releases it.
			rel, err = svc.Release(ctx, caller, ch.Grant)
			if err != nil || string(rel.Secrets[0].Value) != "the value" {
				t.Fatalf("Release() after the rotation = %v, %v; want the value", rel, err)
			}
		})
	}
}
