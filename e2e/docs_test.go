package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestThreatModelNamesRealTests: every claim of docs/threat-model.md names
// the test that attacks it; each test named there exists, in the package
// named (internal/PKG, or e2e).
func TestThreatModelNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile(repo(t, "docs/threat-model.md"))
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile("`([a-z][a-z0-9/]*)\\.(Test[A-Za-z0-9_]+)").FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 30 {
		t.Fatalf("docs/threat-model.md names %d tests; the claims there each name theirs", len(refs))
	}
	for _, m := range refs {
		pkg, name := m[1], m[2]
		dir := repo(t, filepath.Join("internal", pkg))
		if pkg == "e2e" {
			dir = repo(t, "e2e")
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		found := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "\nfunc "+name+"(t *testing.T)") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("docs/threat-model.md names %s.%s, which is not a test of %s", pkg, name, dir)
		}
	}
}
