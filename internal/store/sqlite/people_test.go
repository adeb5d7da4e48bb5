package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stepgate/stepgate/internal/store/storetest"
)

// TestDeletesCascade: deleting a user or a check with SQL deletes what is
// theirs (with foreign keys on, as the store opens the file).
func TestDeletesCascade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stepgate.db")
	st := open(t, path)
	db, err := sql.Open("sqlite", path+"?_foreign_keys=1")
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer db.Close()
	storetest.Cascade(t, st, func(q string, args ...any) {
		if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("running %q: %v", q, err)
		}
	})
}
