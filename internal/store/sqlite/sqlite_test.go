package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "stepgate.db"))
	})
}

// TestIndexesAreUsed: the lookups every request makes use an index (with
// the state as a bound parameter SQLite could not match the partial index
// and would read every check).
func TestIndexesAreUsed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tt := range []struct{ query, index string }{
		{`SELECT id FROM checks WHERE resume_key = 'k' AND state IN ('pending', 'allowed', 'approved') ORDER BY created_at DESC NULLS LAST, id DESC LIMIT 1`, "checks_resumable_resume_key"},
		{`SELECT id FROM checks WHERE resume_key = 'k' AND state = 'pending' ORDER BY created_at DESC NULLS LAST, id DESC LIMIT 1`, "checks_pending_resume_key"},
		{`SELECT id FROM checks WHERE state = 'pending' AND expires_at < 5 ORDER BY expires_at, id LIMIT 10`, "checks_pending_expires_at"},
		{`SELECT id FROM checks WHERE pipeline IS NOT NULL AND pipeline ->> 'run_id' = '7' AND pipeline ->> 'repository' = 'a/b' AND pipeline ->> 'system' = 'github-actions' ORDER BY created_at NULLS FIRST, id LIMIT 10`, "checks_pipeline_run_id"},
		{`SELECT hash FROM used_nonces WHERE expires_at < 5 ORDER BY expires_at LIMIT 100`, "used_nonces_expires_at"},
	} {
		rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		// Without statistics SQLite may pick another index on state; what
		// matters is that no lookup reads the whole table.
		if p := strings.Join(plan, " "); !strings.Contains(p, "USING INDEX") || strings.Contains(p, "SCAN checks") {
			t.Errorf("%s\nplan %q reads the table instead of an index such as %s", tt.query, plan, tt.index)
		}
	}
}

// TestWritersQueue: a transaction waits for the one in progress (writers
// of one process queue in Go) and gives up when its context ends, with the
// context's error, instead of failing with SQLITE_BUSY or waiting on.
func TestWritersQueue(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "stepgate.db"))
	ctx := t.Context()
	holding := make(chan struct{})
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- st.InTx(ctx, func(tx store.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := st.InTx(short, func(tx store.Tx) error {
		t.Error("the second transaction ran while the first held the write lock")
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second InTx while the first is open: %v, want context.DeadlineExceeded", err)
	}

	// A waiting writer goes on once the first commits.
	second := make(chan error, 1)
	ran := false
	go func() {
		second <- st.InTx(ctx, func(tx store.Tx) error { ran = true; return nil })
	}()
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first InTx: %v", err)
	}
	if err := <-second; err != nil || !ran {
		t.Fatalf("waiting InTx: %v (ran %v), want it to run after the first", err, ran)
	}
}

// TestAttacks attacks the audit log through the SQLite file itself.
func TestAttacks(t *testing.T) {
	storetest.RunAttacks(t, func(t *testing.T) (store.Store, storetest.Attacker) {
		path := filepath.Join(t.TempDir(), "stepgate.db")
		st := open(t, path)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return st, func(t *testing.T, query string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
				t.Fatalf("attacking with %q: %v", query, err)
			}
		}
	})
}
