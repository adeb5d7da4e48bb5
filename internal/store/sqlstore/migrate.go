package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one numbered SQL file of a backend.
type Migration struct {
	Version int
	Name    string // the file name, e.g. 0001_init.sql
	SQL     string
}

// ReadMigrations reads dir/NNNN_name.sql files from fsys, sorted by number.
// Numbers must be positive and distinct.
func ReadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations %q: %w", dir, err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("reading migration %q: the name must be NNNN_name.sql with NNNN > 0", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("reading migrations %q: %q and %q have the same number", dir, out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}

// Migrator applies migrations through inTx, which runs fn in one
// transaction. The caller makes sure no other process migrates the same
// database meanwhile (PostgreSQL: an advisory lock; SQLite: transactions
// that take the write lock at BEGIN).
type Migrator struct {
	// CreateTable creates schema_migrations(version, name, applied_at) if
	// it does not exist.
	CreateTable string
	InTx        func(ctx context.Context, fn func(q Querier) error) error
}

// Migrate applies the migrations that schema_migrations does not list, in
// order, each in its own transaction together with its row in
// schema_migrations. It returns how many it applied.
func (m Migrator) Migrate(ctx context.Context, migrations []Migration) (int, error) {
	err := m.InTx(ctx, func(q Querier) error {
		_, err := q.Exec(ctx, m.CreateTable)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("creating schema_migrations: %w", err)
	}
	applied := 0
	for _, mg := range migrations {
		did := false
		err := m.InTx(ctx, func(q Querier) error {
			did = false
			var v int
			err := NewTx(q, nil).queryOne(ctx, func(r Rows) error { return r.Scan(&v) },
				`SELECT version FROM schema_migrations WHERE version = $1`, mg.Version)
			if err == nil {
				return nil // applied before
			}
			if !errors.Is(err, errNoRows) {
				return err
			}
			if _, err := q.Exec(ctx, mg.SQL); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, mg.Version, mg.Name); err != nil {
				return err
			}
			did = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("applying migration %q: %w", mg.Name, err)
		}
		if did {
			applied++
		}
	}
	return applied, nil
}
