package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// query runs a one-value query on the database file at path, outside the
// store.
func query[T any](t *testing.T, path, q string) T {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer db.Close()
	var v T
	if err := db.QueryRowContext(t.Context(), q).Scan(&v); err != nil {
		t.Fatalf("running %q: %v", q, err)
	}
	return v
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stepgate.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	if err := st.CreateCheck(t.Context(), &store.Check{ID: "c1", State: store.StatePending}); err != nil {
		t.Fatalf("CreateCheck() = %v, want nil", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	st = open(t, path)
	if _, err := st.GetCheck(t.Context(), "c1"); err != nil {
		t.Errorf("GetCheck() after reopening = %v, want nil", err)
	}
	want, err := sqlite.MigrationCount()
	if err != nil {
		t.Fatal(err)
	}
	if got := query[int](t, path, `SELECT count(*) FROM schema_migrations`); got != want {
		t.Errorf("schema_migrations has %d rows after reopening, want %d", got, want)
	}
}

// TestFileSettings: the file is in WAL mode, so readers do not wait for
// the writer and a crash loses no committed transaction.
func TestFileSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stepgate.db")
	open(t, path)
	if got := query[string](t, path, `PRAGMA journal_mode`); got != "wal" {
		t.Errorf("journal_mode = %q, want wal", got)
	}
}

func TestReadsDoNotWaitForAWriter(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "stepgate.db"))
	ctx := t.Context()
	if err := st.CreateCheck(ctx, &store.Check{ID: "c1", State: store.StatePending}); err != nil {
		t.Fatalf("CreateCheck() = %v, want nil", err)
	}
	writing, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- st.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateCheck(ctx, &store.Check{ID: "c2", State: store.StatePending}); err != nil {
				return err
			}
			close(writing)
			<-release
			return nil
		})
	}()
	<-writing
	start := time.Now()
	if _, err := st.GetCheck(ctx, "c1"); err != nil {
		t.Errorf("GetCheck() while a transaction writes = %v, want nil", err)
	}
	if _, err := st.GetCheck(ctx, "c2"); err == nil {
		t.Error("GetCheck() sees a write not yet committed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("reads took %v while a transaction wrote, want no wait", d)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("InTx() = %v, want nil", err)
	}
}

// TestTwoStoresOnOneFile: two stores on one file (as two processes would
// be) keep one audit chain and lose no update.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stepgate.db")
	const n = 4
	stores := make([]*sqlite.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = sqlite.Open(t.Context(), path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open() %d of %d at once = %v, want nil", i, n, errs[i])
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	want, _ := sqlite.MigrationCount()
	if got := query[int](t, path, `SELECT count(*) FROM schema_migrations`); got != want {
		t.Errorf("schema_migrations has %d rows after %d concurrent Open(), want %d", got, n, want)
	}

	ctx := t.Context()
	if err := stores[0].CreateCheck(ctx, &store.Check{ID: "c1", State: store.StatePending}); err != nil {
		t.Fatalf("CreateCheck() = %v, want nil", err)
	}
	const m = 40
	for i := range m {
		wg.Go(func() {
			st := stores[i%n]
			err := st.InTx(ctx, func(tx store.Tx) error {
				c, err := tx.GetCheckForUpdate(ctx, "c1")
				if err != nil {
					return err
				}
				c.OutcomeDurationMS++
				if err := tx.UpdateCheck(ctx, c); err != nil {
					return err
				}
				return tx.AppendAudit(ctx, &audit.Event{Time: time.Now(), Type: audit.ApplyOutcome, Subject: fmt.Sprint(i)})
			})
			if err != nil {
				t.Errorf("store %d InTx() = %v, want nil", i%n, err)
			}
		})
	}
	wg.Wait()
	c, err := stores[1].GetCheck(ctx, "c1")
	if err != nil {
		t.Fatalf("GetCheck() = %v, want nil", err)
	}
	if c.OutcomeDurationMS != m {
		t.Errorf("after %d increments from %d stores OutcomeDurationMS = %d, want %d", m, n, c.OutcomeDurationMS, m)
	}
	events, err := stores[2].ListAudit(ctx, 0, 2*m)
	if err != nil {
		t.Fatalf("ListAudit() = %v, want nil", err)
	}
	if len(events) != m {
		t.Errorf("ListAudit() = %d events, want %d", len(events), m)
	}
	if err := audit.Verify(events); err != nil {
		t.Errorf("audit.Verify() = %v, want nil", err)
	}
}

func TestOpenRejectsWhatIsNotAFile(t *testing.T) {
	for _, path := range []string{"", ":memory:", "stepgate.db?mode=ro", filepath.Join(t.TempDir(), "missing", "stepgate.db")} {
		if st, err := sqlite.Open(t.Context(), path); err == nil {
			st.Close()
			t.Errorf("Open(%q) = nil error, want an error", path)
		}
	}
}
