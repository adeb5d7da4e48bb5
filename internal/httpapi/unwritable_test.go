package httpapi

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestUnwritableDatabaseFailsClosed: when the SQLite files cannot be
// written, creating a check answers 503 "unavailable" (never a grant),
// /readyz is red, and both recover once the files are writable again.
func TestUnwritableDatabaseFailsClosed(t *testing.T) {
	s := newStack(t, stackOpts{})
	e := &env{srv: s.srv}
	tok := s.token(t)
	files := []string{s.path, s.path + "-wal"} // not -shm: SQLite maps it in memory, and a fault there would crash the process
	if os.Geteuid() != 0 {
		t.Skip("needs root for chattr +i (permission bits do not stop root)")
	}
	undo := func() {
		for _, f := range files {
			_ = exec.Command("chattr", "-i", f).Run()
		}
	}
	t.Cleanup(undo)
	for _, f := range files {
		if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
			t.Skipf("chattr +i: %v %s", err, out)
		}
	}
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev", tok, planBody(t, "dev-tag-change.plan.json"))
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"unavailable"`) || strings.Contains(string(b), `"grant"`) {
		t.Errorf("create on an unwritable database = %d %s, want 503 unavailable and no grant", resp.StatusCode, b)
	}
	if resp, _ := e.do(t, "GET", "/readyz", "", nil); resp.StatusCode != 503 {
		t.Errorf("readyz on an unwritable database = %d, want 503", resp.StatusCode)
	}
	undo()
	start := time.Now()
	for {
		resp, _ := e.do(t, "GET", "/readyz", "", nil)
		if resp.StatusCode == 200 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("readyz 5s after the files became writable = %d, want 200", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // polling the recovery
	}
	t.Logf("ready again %v after the files became writable", time.Since(start))
	if resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev", tok, planBody(t, "dev-tag-change.plan.json")); resp.StatusCode != 201 {
		t.Errorf("create once writable = %d %s, want 201", resp.StatusCode, b)
	}
}
