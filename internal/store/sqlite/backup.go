package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path while the
// database stays in use (VACUUM INTO: one read transaction, so the copy is
// the database at one instant, whatever commits meanwhile). The copy is
// written next to path, made durable, and renamed into place, readable by
// its owner only; an existing path is never overwritten.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backing up to %s: %w", path, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backing up to %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return fmt.Errorf("backing up to %s: %w", path, err)
	}
	name := tmp.Name()
	_ = tmp.Close() // empty, mode 0600: VACUUM INTO fills an empty file
	done := false
	defer func() {
		if !done {
			_ = os.Remove(name)
		}
	}()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, name); err != nil {
		return fmt.Errorf("backing up to %s: copying the database: %w", path, err)
	}
	if err := syncFile(name); err != nil {
		return fmt.Errorf("backing up to %s: %w", path, err)
	}
	// A hard link fails if path appeared meanwhile: never overwrite.
	if err := os.Link(name, path); err != nil {
		return fmt.Errorf("backing up to %s: %w", path, err)
	}
	_ = os.Remove(name)
	done = true
	return syncFile(filepath.Dir(path))
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
