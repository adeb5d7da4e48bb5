package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/plan/planfile/planfiletest"
)

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

var checkID = regexp.MustCompile(`chk_[0-9a-f]{24}`)

// TestDevPlanIsGrantedAndApplied: a low-risk plan passes at once and apply
// runs the command with the grant.
func TestDevPlanIsGrantedAndApplied(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"))
	env := pipelineEnv(s, s.token("billing-ci", "billing-*"))
	plan := repo(t, "examples/dev-tag-change.plan.json")

	r := run(t, dir, env, "check", "--plan", plan, "--workspace", "billing-dev", "--grant-out", "g.jws")
	if r.code != 0 {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st, err := os.Stat(filepath.Join(dir, "g.jws")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("grant file: %v, mode %v; want mode 0600", err, st)
	}
	// An apply grant with no plan given runs nothing, and is not used up
	// (issue: apply without a binding ran the command with a warning).
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--workspace", "billing-dev", "--", "sh", "-c", "echo applied > marker")
	if r.code != 5 || fileExists(filepath.Join(dir, "marker")) || !strings.Contains(r.stderr, "plan not given") {
		t.Fatalf("apply with no plan: exit %d, ran %v; want 5 and no run\n%s", r.code, fileExists(filepath.Join(dir, "marker")), r.stderr)
	}
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--plan", plan, "--workspace", "billing-dev", "--", "sh", "-c", "echo applied > marker; exit 7")
	if r.code != 7 {
		t.Fatalf("apply: exit %d, want the command's 7\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "marker")); string(b) != "applied\n" {
		t.Errorf("the command did not run: marker = %q", b)
	}
	// The same grant again: refused, the command does not run.
	os.Remove(filepath.Join(dir, "marker"))
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--plan", plan, "--workspace", "billing-dev", "--", "sh", "-c", "echo applied > marker")
	if r.code != 5 || fileExists(filepath.Join(dir, "marker")) {
		t.Errorf("replayed grant: exit %d, marker %v; want 5 and no run\n%s", r.code, fileExists(filepath.Join(dir, "marker")), r.stderr)
	}
	// A token for other workspaces cannot even ask.
	other := pipelineEnv(s, s.token("web-ci", "web-*"))
	r = run(t, dir, other, "check", "--plan", plan, "--workspace", "billing-dev")
	if r.code == 0 || !strings.Contains(r.stderr, "billing-dev") {
		t.Errorf("check with a token of other workspaces: exit %d\n%s", r.code, r.stderr)
	}
	// The audit log is intact and has the story.
	r = run(t, dir, nil, "audit", "verify", "--database", s.database)
	if r.code != 0 || !strings.Contains(r.stdout, "audit log intact") {
		t.Errorf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, dir, nil, "audit", "export", "--database", s.database)
	for _, typ := range []string{"token.created", "check.created", "check.allowed", "grant.issued", "grant.consumed", "apply.outcome", "grant.refused"} {
		if !strings.Contains(r.stdout, `"type":"`+typ+`"`) {
			t.Errorf("audit export has no %s event", typ)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestProductionIAMWaitsForApproval: a production IAM change waits; the
// requester's own approval does not count; another person's passkey
// approval releases the waiting check with its grant; and the grant is
// refused for a changed plan file, another workspace, and once expired.
func TestProductionIAMWaitsForApproval(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"))
	env := pipelineEnv(s, s.token("billing-ci"))
	plan := repo(t, "examples/prod-iam.plan.json")
	tfplan := filepath.Join(dir, "tfplan")
	planfiletest.WriteFor(t, plan, tfplan) // the server compares it with the JSON

	// The pipeline waits in the background.
	check := startCheck(t, dir, env, "--plan", plan, "--plan-file", tfplan, "--workspace", "billing-prod", "--wait", "60s", "--grant-out", "g.jws")
	defer check.stop()
	id := check.id(t)
	svc, st := s.domain()
	approvers(t, st, "alice", "bob")
	now := time.Now()
	// The requester (the token's owner, billing-ci) cannot approve.
	_, err := svc.Record(context.Background(), id, &gate.Proof{Subject: "billing-ci", Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: now})
	if !errors.Is(err, gate.ErrSelfApproval) {
		t.Fatalf("the requester's approval: %v, want ErrSelfApproval", err)
	}
	// An approval at too low a level does not complete it.
	v, err := svc.Record(context.Background(), id, &gate.Proof{Subject: "bob", Groups: []string{"approvers"}, Approved: true, AMR: []string{"otp"}, AAL: 2, AuthTime: now})
	if err != nil || v.State != "pending" {
		t.Fatalf("an aal 2 approval of an aal 3 check: state %v, err %v; want still pending", v, err)
	}
	start := time.Now()
	v, err = svc.Record(context.Background(), id, &gate.Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()})
	if err != nil || v.State != "approved" {
		t.Fatalf("alice's passkey approval: %v, %v; want approved", v, err)
	}
	if code := check.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("waiting check: exit %d\n%s", code, check.output())
	}
	// The approval was written by another process into SQLite, which
	// sends no notification across processes: the waiting request's
	// re-read (gate.RecheckInterval) bounds how late it learns of it.
	if took := time.Since(start); took > gate.RecheckInterval+3*time.Second {
		t.Errorf("the waiting check got its grant %v after the approval, want within the %v re-read (and the CLI's answer)", took, gate.RecheckInterval)
	} else {
		t.Logf("the waiting check got its grant %v after the approval", took)
	}
	if !strings.Contains(check.output(), s.url+"/checks/"+id) {
		t.Errorf("check did not print the review URL:\n%s", check.output())
	}

	// Another workspace: refused before anything runs.
	marker := filepath.Join(dir, "marker")
	r := run(t, dir, env, "apply", "--grant", "g.jws", "--plan-file", tfplan, "--workspace", "billing-staging", "--", "touch", marker)
	if r.code != 5 || fileExists(marker) {
		t.Errorf("grant for another workspace: exit %d, ran %v\n%s", r.code, fileExists(marker), r.stderr)
	}
	// The plan file changed after approval: refused.
	if err := os.WriteFile(tfplan, []byte("PK\x03\x04 a different plan"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--plan-file", tfplan, "--workspace", "billing-prod", "--", "touch", marker)
	if r.code != 5 || fileExists(marker) {
		t.Errorf("changed plan file: exit %d, ran %v\n%s", r.code, fileExists(marker), r.stderr)
	}
	// Without the plan file the grant was bound to: refused.
	r = run(t, dir, env, "apply", "--grant", "g.jws", "--workspace", "billing-prod", "--", "touch", marker)
	if r.code != 5 || fileExists(marker) {
		t.Errorf("grant bound to a plan file, none given: exit %d, ran %v\n%s", r.code, fileExists(marker), r.stderr)
	}
}

// watchWriter keeps what a process writes and reports the first match of
// re in it.
type watchWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	re    *regexp.Regexp
	found chan string
	sent  bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := w.re.FindString(w.buf.String()); m != "" {
			w.sent = true
			select {
			case w.found <- m:
			default:
			}
		}
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
