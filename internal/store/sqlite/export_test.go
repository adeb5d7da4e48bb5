package sqlite

import "github.com/stepgate/stepgate/internal/store/sqlstore"

// MigrationCount is the number of embedded migrations.
func MigrationCount() (int, error) {
	ms, err := sqlstore.ReadMigrations(migrationFS, "migrations")
	return len(ms), err
}
