package sqlite_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestBackupOnline: a backup taken while checks are being written is a
// consistent database (integrity_check ok, every migration applied) that
// holds every check committed before it began, is private (0600), and
// never overwrites an existing file.
func TestBackupOnline(t *testing.T) {
	dir := t.TempDir()
	st := open(t, filepath.Join(dir, "stepgate.db"))
	ctx := t.Context()
	for i := range 200 {
		if err := st.CreateCheck(ctx, &store.Check{ID: fmt.Sprintf("before-%d", i), State: store.StatePending}); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { // writes go on during the backup
		for i := 0; !stop.Load(); i++ {
			if err := st.CreateCheck(ctx, &store.Check{ID: fmt.Sprintf("during-%d", i), State: store.StatePending}); err != nil {
				t.Errorf("writing during the backup: %v", err)
				return
			}
		}
	})
	backup := filepath.Join(dir, "backup.db")
	err := st.Backup(ctx, backup)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup() = %v, want nil", err)
	}
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %o, want 600", fi.Mode().Perm())
	}
	if got := query[string](t, backup, `PRAGMA integrity_check`); got != "ok" {
		t.Errorf("integrity_check of the backup = %q, want ok", got)
	}
	if got := query[int](t, backup, `SELECT count(*) FROM checks WHERE id LIKE 'before-%'`); got != 200 {
		t.Errorf("the backup has %d of the 200 checks committed before it, want all", got)
	}
	want, _ := sqlite.MigrationCount()
	if got := query[int](t, backup, `SELECT count(*) FROM schema_migrations`); got != want {
		t.Errorf("the backup has %d migrations, want %d", got, want)
	}
	restored := open(t, backup) // a backup opens as a database
	if _, err := restored.GetCheck(ctx, "before-199"); err != nil {
		t.Errorf("GetCheck on the restored copy = %v", err)
	}
	if err := st.Backup(ctx, backup); !errors.Is(err, os.ErrExist) {
		t.Errorf("Backup() onto an existing file = %v, want os.ErrExist", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".backup.db.partial-*"))
	if len(left) != 0 {
		t.Errorf("partial files left behind: %v", left)
	}
}
