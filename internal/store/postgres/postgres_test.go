package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/storetest"
	"github.com/stepgate/stepgate/internal/testenv"
)

func testDSN(t *testing.T) string {
	t.Helper()
	dsn := testenv.PostgresDSN(t)
	return dsn
}

// admin runs sql on dsn's database outside any test schema.
func admin(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	// Not t.Context(): admin also runs in t.Cleanup, after it ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("running %q: %v", sql, err)
	}
}

// newSchema creates an empty schema with a random name, dropped when the
// test ends, and returns dsn with that schema as its search_path.
func newSchema(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "stepgate_test_" + hex.EncodeToString(b)
	admin(t, dsn, "CREATE SCHEMA "+name)
	t.Cleanup(func() { admin(t, dsn, "DROP SCHEMA "+name+" CASCADE") })
	return withParam(dsn, "search_path", name)
}

// withParam sets a parameter of a URL or key=value DSN.
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newSchema(t, dsn)) })
}

// TestTwoStores runs two stores on one schema, as two servers behind a load
// balancer would.
func TestTwoStores(t *testing.T) {
	dsn := testDSN(t)
	both := func(t *testing.T) [2]*postgres.Store {
		schema := newSchema(t, dsn)
		return [2]*postgres.Store{open(t, schema), open(t, schema)}
	}

	t.Run("ok/notifications-cross-stores", func(t *testing.T) {
		t.Parallel()
		st := both(t)
		w0, w1 := watch(t, st[0]), watch(t, st[1])
		notify(t, st[1], "from-1")
		storetest.WaitForIDs(t, w0, "from-1")
		storetest.WaitForIDs(t, w1, "from-1")
		notify(t, st[0], "from-0")
		storetest.WaitForIDs(t, w1, "from-0")
		storetest.WaitForIDs(t, w0, "from-0")
	})

	t.Run("ok/each-watcher-gets-a-notification-once", func(t *testing.T) {
		t.Parallel()
		st := both(t)
		w0, w1 := watch(t, st[0]), watch(t, st[1])
		notify(t, st[0], "c1")
		notify(t, st[1], "c2")
		for i, w := range []<-chan string{w0, w1} {
			storetest.WaitForIDs(t, w, "c1", "c2")
			select {
			case id := <-w:
				t.Errorf("store %d watcher got %q twice, want each id once", i, id)
			case <-time.After(300 * time.Millisecond):
			}
		}
	})

	t.Run("ok/concurrent-appends-keep-one-chain", func(t *testing.T) {
		t.Parallel()
		st := both(t)
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				e := &audit.Event{Time: time.Now(), Type: audit.CheckCreated, Subject: fmt.Sprint(i)}
				if err := st[i%2].AppendAudit(t.Context(), e); err != nil {
					t.Errorf("store %d AppendAudit() = %v, want nil", i%2, err)
				}
			})
		}
		wg.Wait()
		for i, s := range st {
			events, err := s.ListAudit(t.Context(), 0, 2*n)
			if err != nil {
				t.Fatalf("store %d ListAudit() = %v, want nil", i, err)
			}
			if len(events) != n || events[n-1].Seq != n {
				t.Errorf("store %d lists %d events, want seq 1..%d", i, len(events), n)
			}
			if err := audit.Verify(events); err != nil {
				t.Errorf("store %d audit.Verify() = %v, want nil", i, err)
			}
		}
	})

	t.Run("ok/no-lost-update", func(t *testing.T) {
		t.Parallel()
		st := both(t)
		ctx := t.Context()
		if err := st[0].CreateCheck(ctx, &store.Check{ID: "c1", State: store.StatePending}); err != nil {
			t.Fatalf("CreateCheck() = %v, want nil", err)
		}
		const n = 30
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				err := st[i%2].InTx(ctx, func(tx store.Tx) error {
					c, err := tx.GetCheckForUpdate(ctx, "c1")
					if err != nil {
						return err
					}
					c.OutcomeDurationMS++
					return tx.UpdateCheck(ctx, c)
				})
				if err != nil {
					t.Errorf("store %d InTx(increment) = %v, want nil", i%2, err)
				}
			})
		}
		wg.Wait()
		c, err := st[1].GetCheck(ctx, "c1")
		if err != nil {
			t.Fatalf("GetCheck() = %v, want nil", err)
		}
		if c.OutcomeDurationMS != n {
			t.Errorf("after %d increments from two stores OutcomeDurationMS = %d, want %d", n, c.OutcomeDurationMS, n)
		}
	})

	t.Run("ok/listener-reconnects", func(t *testing.T) {
		t.Parallel()
		st := both(t)
		w := watch(t, st[0])
		pid := postgres.ListenerPID(st[0])
		if pid == 0 {
			t.Fatal("ListenerPID() = 0 after Open, want the listener's backend")
		}
		admin(t, dsn, "SELECT pg_terminate_backend($1)", int64(pid))
		deadline := time.Now().Add(10 * time.Second)
		for p := postgres.ListenerPID(st[0]); p == 0 || p == pid; p = postgres.ListenerPID(st[0]) {
			if time.Now().After(deadline) {
				t.Fatal("the listener did not reconnect within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		notify(t, st[1], "after-reconnect")
		storetest.WaitForIDs(t, w, "after-reconnect")
	})
}

func watch(t *testing.T, st store.Store) <-chan string {
	t.Helper()
	ch, err := st.WatchChecks(t.Context())
	if err != nil {
		t.Fatalf("WatchChecks() = %v, want nil", err)
	}
	return ch
}

func notify(t *testing.T, st store.Store, id string) {
	t.Helper()
	if err := st.NotifyCheck(t.Context(), id); err != nil {
		t.Fatalf("NotifyCheck(%s) = %v, want nil", id, err)
	}
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := newSchema(t, testDSN(t))
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open() %d of %d at once = %v, want nil", i, n, errs[i])
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	want, err := postgres.MigrationCount()
	if err != nil {
		t.Fatal(err)
	}
	got := countMigrations(t, dsn)
	if got != want {
		t.Errorf("schema_migrations has %d rows after %d concurrent Open(), want %d", got, n, want)
	}
}

func countMigrations(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatalf("counting migrations: %v", err)
	}
	return n
}

func TestReopenKeepsData(t *testing.T) {
	dsn := newSchema(t, testDSN(t))
	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	if err := st.CreateCheck(t.Context(), &store.Check{ID: "c1", State: store.StatePending}); err != nil {
		t.Fatalf("CreateCheck() = %v, want nil", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	st = open(t, dsn)
	if _, err := st.GetCheck(t.Context(), "c1"); err != nil {
		t.Errorf("GetCheck() after reopening = %v, want nil", err)
	}
	if want, _ := postgres.MigrationCount(); countMigrations(t, dsn) != want {
		t.Errorf("schema_migrations has %d rows after reopening, want %d", countMigrations(t, dsn), want)
	}
}

// TestSchemasAreIndependent: stores in two schemas of one database share
// neither notifications nor the audit chain.
func TestSchemasAreIndependent(t *testing.T) {
	dsn := testDSN(t)
	a, b := open(t, newSchema(t, dsn)), open(t, newSchema(t, dsn))
	w := watch(t, a)
	notify(t, b, "in-b")
	notify(t, a, "in-a")
	select {
	case id := <-w:
		if id != "in-a" {
			t.Errorf("watcher of schema a got %q, want in-a only", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
	select {
	case id := <-w:
		t.Errorf("watcher of schema a got %q, want in-a only", id)
	case <-time.After(300 * time.Millisecond):
	}
	for _, st := range []*postgres.Store{a, b} {
		e := &audit.Event{Time: time.Now(), Type: audit.CheckCreated}
		if err := st.AppendAudit(t.Context(), e); err != nil {
			t.Fatalf("AppendAudit() = %v, want nil", err)
		}
		if e.Seq != 1 {
			t.Errorf("first AppendAudit() of a schema Seq = %d, want 1", e.Seq)
		}
	}
}

func TestCloseStopsListener(t *testing.T) {
	dsn := testDSN(t)
	st, err := postgres.Open(t.Context(), newSchema(t, dsn))
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	pid := postgres.ListenerPID(st)
	if err := st.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(t.Context())
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int64(pid)).Scan(&n); err != nil {
			t.Fatalf("reading pg_stat_activity: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener's backend %d is still connected 10s after Close()", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSmallPool: with pool_max_conns=1, concurrent callers wait for the one
// connection instead of failing.
func TestSmallPool(t *testing.T) {
	dsn := withParam(newSchema(t, testDSN(t)), "pool_max_conns", "1")
	st := open(t, dsn)
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := st.AppendAudit(t.Context(), &audit.Event{Time: time.Now(), Type: audit.CheckCreated, Subject: fmt.Sprint(i)}); err != nil {
				t.Errorf("AppendAudit() = %v, want nil", err)
			}
		})
	}
	wg.Wait()
	events, err := st.ListAudit(t.Context(), 0, 2*n)
	if err != nil {
		t.Fatalf("ListAudit() = %v, want nil", err)
	}
	if len(events) != n {
		t.Errorf("ListAudit() = %d events, want %d", len(events), n)
	}
	if err := audit.Verify(events); err != nil {
		t.Errorf("audit.Verify() = %v, want nil", err)
	}
}

func TestOpenFails(t *testing.T) {
	dsn := testDSN(t)
	for _, tt := range []struct{ name, dsn string }{
		{"fail/not-a-dsn", "postgres://%zz"},
		{"fail/bad-pool-size", withParam(dsn, "pool_max_conns", "0")},
		{"fail/nobody-listening", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
		{"fail/no-schema-on-search-path", withParam(dsn, "search_path", "stepgate_no_such_schema")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := postgres.Open(t.Context(), tt.dsn)
			if err == nil {
				st.Close()
				t.Fatalf("Open(%q) = nil error, want an error", tt.dsn)
			}
		})
	}
}

// TestAttacks attacks the audit log through a connection of its own to
// the schema, as someone holding the database would.
func TestAttacks(t *testing.T) {
	dsn := testDSN(t)
	storetest.RunAttacks(t, func(t *testing.T) (store.Store, storetest.Attacker) {
		schema := newSchema(t, dsn)
		st := open(t, schema)
		return st, func(t *testing.T, query string, args ...any) {
			t.Helper()
			conn, err := pgx.Connect(t.Context(), schema)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(t.Context(), query, args...); err != nil {
				t.Fatalf("attacking with %q: %v", query, err)
			}
		}
	})
}
