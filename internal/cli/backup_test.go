package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// TestBackupCommand: stepgate backup --to FILE writes a copy that opens as
// the same database; it refuses an existing FILE, a missing --to, and a
// PostgreSQL database (pg_dump's job).
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "stepgate.db")
	c := call{dir: dir}
	if r := c.run(t, "tokens", "create", "--name", "billing-ci", "--database", db, "--init"); r.code != 0 {
		t.Fatalf("tokens create: %d %s", r.code, r.stderr)
	}
	r := c.run(t, "backup", "--init", "--database", db, "--to", "copy.db")
	if r.code != 0 || !strings.Contains(r.stdout, "backed up") {
		t.Fatalf("backup = %d %s %s, want 0", r.code, r.stdout, r.stderr)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	toks, err := st.ListTokens(t.Context())
	if err != nil || len(toks) != 1 || toks[0].Name != "billing-ci" {
		t.Errorf("tokens in the copy = %v, %v; want billing-ci", toks, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/existing file", []string{"backup", "--init", "--database", db, "--to", "copy.db"}, "exists"},
		{"fail/no --to", []string{"backup", "--database", db}, "--to FILE is required"},
		{"fail/postgres", []string{"backup", "--database", "postgres://u:pw@127.0.0.1:1/x?connect_timeout=1", "--to", "pg.db"}, "pg_dump"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(t, tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v = %d %s, want an error saying %q", tc.args, r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, ":pw@") {
				t.Errorf("the password reached stderr: %s", r.stderr)
			}
		})
	}
}
