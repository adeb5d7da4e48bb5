package client

import (
	"os/exec"
	"strings"
	"testing"
)

// The client of the API (and so the CLI's server side: check, apply,
// approve) does not pull in the policy engine: its wire types come from
// api and assessment, which import nothing heavy.
func TestClientDoesNotImportThePolicyEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "open-policy-agent") || strings.HasSuffix(dep, "/internal/policy") {
			t.Errorf("package client depends on %s", dep)
		}
	}
}
