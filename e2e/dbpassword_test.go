package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDatabasePasswordNeverLogged: whatever form the password takes in
// the database URL (user:password@, ?password=), no line the server
// writes carries it, even when the database is unreachable and every
// retry is logged with its error.
func TestDatabasePasswordNeverLogged(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "stepgate.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  database_timeouts: {start_retry: 1s, connect: 200ms}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{
		"postgres://stepgate:Sup3rSecretPw@127.0.0.1:1/stepgate?sslmode=disable",
		"postgres://stepgate@127.0.0.1:1/stepgate?sslmode=disable&password=Sup3rSecretPw",
		"postgresql://127.0.0.1:1/stepgate?user=stepgate&password=Sup3rSecretPw&sslmode=disable",
	} {
		r := run(t, dir, nil, "serve", "--dev", "--config", cfg, "--database", dsn, "--listen", "127.0.0.1:0", "--master-key-file", filepath.Join(dir, "master.key"))
		if r.code == 0 {
			t.Errorf("serve with an unreachable database exited 0")
		}
		out := r.stdout + r.stderr
		if strings.Contains(out, "Sup3rSecretPw") {
			t.Errorf("serve --database %s printed the password:\n%s", strings.ReplaceAll(dsn, "Sup3rSecretPw", "PW"), out)
		}
		if !strings.Contains(out, "database not reachable; retrying") {
			t.Errorf("serve printed no retry:\n%s", out)
		}
	}
}

// TestSQLiteFilesPrivate: the database and its -wal and -shm files are
// created readable by their owner only: they hold the sealed signing keys,
// TOTP secrets and the audit log.
func TestSQLiteFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "stepgate.db")
	s := startServer(t, dir, "sqlite://"+db)
	s.token("billing-ci") // a write, so that the WAL exists
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
			continue
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), mode)
		}
	}
}
