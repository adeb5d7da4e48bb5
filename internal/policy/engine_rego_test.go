package policy

import (
	"context"
	"testing"
)

// TestBuiltinRego runs the built-in policy's own Rego unit tests
// (internal/policy/rego/*_test.rego), as `stepgate policy test` would.
func TestBuiltinRego(t *testing.T) {
	results, err := RunTests(context.Background(), DefaultConfig(), nil, true, "")
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	if len(results) == 0 {
		t.Fatal("RunTests ran no Rego test")
	}
	for _, r := range results {
		if r.Error != nil {
			t.Errorf("%s.%s: error: %v", r.Package, r.Name, r.Error)
		} else if r.Fail {
			t.Errorf("%s.%s: failed at %v", r.Package, r.Name, r.FailedAt)
		}
	}
}
