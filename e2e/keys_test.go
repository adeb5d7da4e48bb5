package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func kidOf(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(string(raw), ".")
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestKeyRotationKeepsGrantsInFlight: after `keys rotate`, a grant signed
// by the old key still verifies and runs; new grants use the new key.
func TestKeyRotationKeepsGrantsInFlight(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "stepgate.db")
	s := startServer(t, dir, db)
	env := pipelineEnv(s, s.token("billing-ci"))
	plan := repo(t, "examples/dev-tag-change.plan.json")
	if r := run(t, dir, env, "check", "--plan", plan, "--workspace", "billing-dev", "--grant-out", "old.jws"); r.code != 0 {
		t.Fatalf("check: exit %d\n%s", r.code, r.stderr)
	}
	r := run(t, dir, nil, "keys", "rotate", "--database", db, "--master-key-file", filepath.Join(dir, "stepgate.master.key"))
	if r.code != 0 {
		t.Fatalf("keys rotate: exit %d\n%s", r.code, r.stderr)
	}
	newKid := strings.TrimSpace(r.stdout)
	if newKid == "" || newKid == kidOf(t, filepath.Join(dir, "old.jws")) {
		t.Fatalf("keys rotate printed %q; want a new kid", r.stdout)
	}
	if r := run(t, dir, env, "apply", "--grant", "old.jws", "--plan", plan, "--workspace", "billing-dev", "--", "true"); r.code != 0 {
		t.Errorf("a grant of the old key after rotation: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, dir, env, "check", "--plan", plan, "--workspace", "billing-dev2", "--grant-out", "new.jws"); r.code != 0 {
		t.Fatalf("check after rotation: exit %d\n%s", r.code, r.stderr)
	}
	if got := kidOf(t, filepath.Join(dir, "new.jws")); got != newKid {
		t.Errorf("a grant issued after rotation has kid %s, want the new %s", got, newKid)
	}
	r = run(t, dir, nil, "keys", "list", "--database", db, "-o", "json")
	if r.code != 0 || strings.Count(r.stdout, `"kid"`) != 2 || !strings.Contains(r.stdout, "publish_end") {
		t.Errorf("keys list: exit %d\n%s", r.code, r.stdout)
	}
	r = run(t, dir, nil, "audit", "export", "--database", db)
	if !strings.Contains(r.stdout, `"type":"key.rotated"`) {
		t.Error("the rotation is not in the audit log")
	}
}
