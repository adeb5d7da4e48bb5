package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// makeReadOnly makes the files at paths impossible to write, even for
// root (which ignores permission bits: there the immutable attribute is
// used), and returns the function that undoes it.
func makeReadOnly(t *testing.T, paths ...string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		for _, p := range paths {
			if err := os.Chmod(p, 0o400); err != nil {
				t.Fatal(err)
			}
		}
		return func() {
			for _, p := range paths {
				if err := os.Chmod(p, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("running as root without chattr: cannot make a file read-only")
	}
	undo := func() {
		for _, p := range paths {
			_ = exec.Command("chattr", "-i", p).Run()
		}
	}
	for _, p := range paths {
		if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
			undo()
			t.Skipf("chattr +i %s: %v: %s (this file system has no immutable attribute)", p, err, out)
		}
	}
	t.Cleanup(undo)
	return undo
}

var nextID atomic.Int64

func create(ctx context.Context, st store.Store) error {
	return st.CreateCheck(ctx, &store.Check{ID: fmt.Sprintf("c%d", nextID.Add(1)), State: store.StatePending})
}

// TestReadyWhenWritable: Ping (what /readyz asks) fails as soon as a
// check could not be recorded, with store.ErrUnavailable, and succeeds
// again, without reopening the store, once the file is writable again.
func TestReadyWhenWritable(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stepgate.db")
	st := open(t, path)
	ctx := t.Context()
	if err := create(ctx, st); err != nil {
		t.Fatalf("creating a check = %v, want nil", err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping() on a writable file = %v, want nil", err)
	}
	// Probing does not grow the database.
	sizeBefore := checkpointedSize(t, path)
	for range 2000 {
		if err := st.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := checkpointedSize(t, path); got != sizeBefore {
		t.Errorf("2000 probes changed the database file from %d to %d bytes, want no change", sizeBefore, got)
	}

	undo := makeReadOnly(t, path, path+"-wal") // not -shm: SQLite maps it in memory
	if err := create(ctx, st); err == nil {
		t.Fatalf("creating a check on a read-only file = nil, want an error")
	}
	start := time.Now()
	err := st.Ping(ctx)
	if err == nil {
		t.Fatalf("Ping() on a read-only file = nil, want an error (readiness must mean a check can be recorded)")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping() = %v, want store.ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Ping() took %v to fail, want under 2s", d)
	}

	// Connections opened meanwhile (under load) open the file read-only.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				_, _ = st.ListTokens(ctx)
				_ = create(ctx, st)
			}
		})
	}
	wg.Wait()

	undo()
	// Recovery: within a few seconds, without reopening the store.
	deadline := time.Now().Add(5 * time.Second)
	for {
		errPing, errCreate := st.Ping(ctx), create(ctx, st)
		if errPing == nil && errCreate == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the file became writable again: Ping() = %v, creating a check = %v; want both nil", errPing, errCreate)
		}
		time.Sleep(100 * time.Millisecond) // polling the recovery, not synchronising
	}
}

// checkpointedSize is the size of the database file once the WAL has been
// copied into it.
func checkpointedSize(t *testing.T, p string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatalf("checkpointing: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
