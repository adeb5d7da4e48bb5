package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminCommandsUseTheServersDatabaseAndURL: the first hour of a new
// user. Admin commands print links on the URL the server is reached at,
// refuse a database the server never ran on, and serve --dev refuses a
// public URL passkeys cannot use before it creates anything.
func TestAdminCommandsUseTheServersDatabaseAndURL(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "stepgate.db")
	public := "http://gate.localhost:18443"
	s := startServer(t, dir, "sqlite://"+db, "--public-url", public)

	// users add prints the link on the server's public URL, although
	// the admin command was told nothing of it.
	r := run(t, dir, nil, "users", "add", "bob", "--group", "approvers", "--database", s.database)
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), public+"/enroll/") {
		t.Errorf("users add: exit %d, printed %q; want a link on %s\n%s", r.code, r.stdout, public, r.stderr)
	}

	// A mistyped database is not created.
	typo := filepath.Join(dir, "stepgte.db")
	r = run(t, dir, nil, "tokens", "create", "--name", "ci", "--database", "sqlite://"+typo)
	if r.code != 2 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("tokens create on a missing database: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("the mistyped database was created: %v", err)
	}
	// --init starts one.
	if r = run(t, dir, nil, "tokens", "create", "--name", "ci", "--database", "sqlite://"+typo, "--init"); r.code != 0 {
		t.Errorf("tokens create --init: exit %d\n%s", r.code, r.stderr)
	}

	// An IP address as public URL is refused before a master key, a
	// signing key or an admin exists.
	other := t.TempDir()
	r = run(t, other, nil, "serve", "--dev", "--database", "sqlite://"+filepath.Join(other, "x.db"), "--listen", "127.0.0.1:0", "--public-url", "http://127.0.0.1:8080")
	if r.code == 0 || !strings.Contains(r.stderr, "domain name") {
		t.Errorf("serve --dev with an IP public URL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range []string{"x.db", "x.master.key"} {
		if _, err := os.Stat(filepath.Join(other, f)); !os.IsNotExist(err) {
			t.Errorf("%s exists after the refused start", f)
		}
	}

	// The first admin never enrolled: the next serve --dev says how to get
	// a new link.
	s.stop()
	// The hint is printed before the "listening" line startWebServerOn
	// waits for, by the same reader: it is in the log by then.
	ws := startWebServerOn(t, dir, "sqlite://"+db, "127.0.0.1:0", "--public-url", public)
	if !strings.Contains(ws.log.String(), "has not enrolled yet") {
		t.Errorf("serve --dev with an admin who never enrolled does not say how to get a link:\n%s", ws.log)
	}
}
