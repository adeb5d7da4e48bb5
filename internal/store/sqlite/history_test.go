package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// The history read at every new check searches indexes: no scan of the
// checks table, no sort, whatever the table's size.
func TestCheckHistoryReadsIndexesOnly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stepgate.db")
	st, err := sqlite.Open(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqlstore.CheckHistoryQuery, "ws", "alice", 1, "digest", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	searches := 0
	for _, d := range plan {
		if strings.HasPrefix(d, "SCAN checks") || strings.Contains(d, "TEMP B-TREE") {
			t.Errorf("query plan step %q: want index searches only\n%s", d, strings.Join(plan, "\n"))
		}
		if strings.HasPrefix(d, "SEARCH checks USING") {
			searches++
		}
	}
	if searches != 5 {
		t.Errorf("%d index searches, want 5:\n%s", searches, strings.Join(plan, "\n"))
	}
}
