package postgres

import "github.com/stepgate/stepgate/internal/store/sqlstore"

// ListenerPID is the backend pid of s's listener connection, 0 while it is
// disconnected.
func ListenerPID(s *Store) uint32 { return s.listenerPID.Load() }

// MigrationCount is the number of embedded migrations.
func MigrationCount() (int, error) {
	ms, err := sqlstore.ReadMigrations(migrationFS, "migrations")
	return len(ms), err
}
