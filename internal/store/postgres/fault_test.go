package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/faulttest"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
)

var nextID atomic.Int64

func create(ctx context.Context, st store.Store) error {
	return st.CreateCheck(ctx, &store.Check{ID: fmt.Sprintf("fault-%d-%d", time.Now().UnixNano(), nextID.Add(1)), State: store.StatePending})
}

// TestRestartFailsNoRequest: after `pg_ctl restart -m fast` every pooled
// connection is dead; the next requests on a healthy database must all
// succeed (a dead connection is found before a statement is sent, and a
// statement that failed before anything was sent is retried once on a
// fresh connection).
func TestRestartFailsNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := faulttest.NewCluster(t)
	st, err := postgres.Open(t.Context(), c.DSN(c.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	// Fill the pool: 8 concurrent creates.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := create(ctx, st); err != nil {
				t.Errorf("create before the restart: %v", err)
			}
		})
	}
	wg.Wait()

	c.Restart()
	// The idle connections are now more than a second old, as in the
	// measured fault (5 s).
	time.Sleep(1100 * time.Millisecond) // ages the idle connections; not synchronisation
	var got []string
	failed := false
	for range 8 {
		if err := create(ctx, st); err != nil {
			got, failed = append(got, err.Error()), true
		} else {
			got = append(got, "ok")
		}
	}
	if failed {
		t.Errorf("creates after the restart: %q; want all ok", got)
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping() after the restart = %v, want nil", err)
	}
}

// TestPartitionFailsFast: when the network to the database silently drops
// everything, statements fail within the configured timeouts with
// store.ErrUnavailable (503 at the API), Ping fails as fast, and all is
// well again once the network heals.
func TestPartitionFailsFast(t *testing.T) {
	dsn := newSchema(t, testDSN(t))
	cfg := mustParse(t, dsn)
	p := faulttest.NewProxy(t, fmt.Sprintf("%s:%d", cfg.host, cfg.port))
	opts := postgres.Options{ConnectTimeout: time.Second, StatementTimeout: time.Second, AcquireTimeout: time.Second}
	st, err := postgres.OpenWith(t.Context(), withHost(t, dsn, p.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	if err := create(ctx, st); err != nil {
		t.Fatalf("create before the partition: %v", err)
	}

	p.Blackhole()
	for _, step := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"create", func(ctx context.Context) error { return create(ctx, st) }},
		{"create in a transaction", func(ctx context.Context) error {
			return st.InTx(ctx, func(tx store.Tx) error {
				return tx.CreateCheck(ctx, &store.Check{ID: fmt.Sprintf("tx-%d", nextID.Add(1)), State: store.StatePending})
			})
		}},
		{"ping", st.Ping},
	} {
		start := time.Now()
		err := step.fn(ctx)
		d := time.Since(start)
		if err == nil {
			t.Errorf("%s during the partition = nil, want an error", step.name)
		} else if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s during the partition = %v, want store.ErrUnavailable", step.name, err)
		}
		if d > 3*time.Second {
			t.Errorf("%s during the partition took %v, want under 3s (timeouts of 1s)", step.name, d)
		}
	}

	p.Heal()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := create(ctx, st)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create 10s after the network healed: %v, want nil", err)
		}
		time.Sleep(100 * time.Millisecond) // polling the recovery
	}
}

type hostPort struct {
	host string
	port uint16
}

func mustParse(t *testing.T, dsn string) hostPort {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return hostPort{cfg.Host, cfg.Port}
}

// withHost points a URL DSN at addr.
func withHost(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Fatalf("want a URL DSN, got %q", dsn)
	}
	u.Host = addr
	return u.String()
}
