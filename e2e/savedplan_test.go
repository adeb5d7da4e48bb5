package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSavedPlanMustMatchItsJSON is the attack of security issue 10 through
// the real binary: a pipeline sends a harmless plan JSON with an evil saved
// plan (both written by the real Terraform: one attribute differs), hoping
// that `stepgate apply --plan-file evil.tfplan` then runs the evil plan.
// The check is refused (exit 2) and audited; the matching pair is granted,
// and apply runs only with the saved plan that was verified.
func TestSavedPlanMustMatchItsJSON(t *testing.T) {
	dir := t.TempDir()
	fixtures := repo(t, "internal/plan/planfile/testdata")
	copyFile(t, filepath.Join(fixtures, "create_x_a.json"), filepath.Join(dir, "harmless.json"))
	copyFile(t, filepath.Join(fixtures, "create_x_a.tfplan"), filepath.Join(dir, "harmless.tfplan"))
	copyFile(t, filepath.Join(fixtures, "create_x_b.tfplan"), filepath.Join(dir, "evil.tfplan"))
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"))
	env := pipelineEnv(s, s.token("billing-ci", "billing-*"))

	r := run(t, dir, env, "check", "--plan", "harmless.json", "--plan-file", "evil.tfplan", "--workspace", "billing-dev", "--grant-out", "g.jws")
	if r.code != 2 || !strings.Contains(r.stderr, "terraform_data.x: after.input differs") {
		t.Fatalf("check with an evil saved plan: exit %d, want 2 naming the difference\n%s%s", r.code, r.stdout, r.stderr)
	}
	if fileExists(filepath.Join(dir, "g.jws")) {
		t.Fatal("a refused check left a grant")
	}
	r = run(t, dir, nil, "audit", "export", "--database", s.database)
	if !strings.Contains(r.stdout, `"type":"check.refused"`) || !strings.Contains(r.stdout, "after.input differs") {
		t.Errorf("audit export has no check.refused event with the reason:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, `"type":"check.created"`) {
		t.Errorf("a refused check was recorded:\n%s", r.stdout)
	}

	// The pair Terraform wrote together is granted.
	r = run(t, dir, env, "check", "--plan", "harmless.json", "--plan-file", "harmless.tfplan", "--workspace", "billing-dev", "--grant-out", "g.jws")
	if r.code != 0 {
		t.Fatalf("check with the matching saved plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Its grant does not run the evil saved plan...
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--plan-file", "evil.tfplan", "--", "sh", "-c", "echo applied > marker")
	if r.code != 5 || fileExists(filepath.Join(dir, "marker")) {
		t.Fatalf("apply of the evil saved plan: exit %d, want 5 and no run\n%s%s", r.code, r.stdout, r.stderr)
	}
	// ...and runs the one that was verified.
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--plan-file", "harmless.tfplan", "--", "sh", "-c", "echo applied > marker")
	if r.code != 0 {
		t.Fatalf("apply of the verified saved plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "marker")); string(b) != "applied\n" {
		t.Errorf("the command did not run: marker = %q", b)
	}
	r = run(t, dir, nil, "audit", "verify", "--database", s.database)
	if r.code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
