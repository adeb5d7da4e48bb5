package plan

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fixturesDir = "../../testdata/plans"

// refused pins the real fixtures that are not a plan stepgate accepts, with
// why. Every other fixture must be read.
var refused = map[string]struct {
	err  error
	want string
}{
	// A hand-edited test file with the same key twice in one object: two
	// readers could disagree on its value, so it is refused.
	"terraform-validator/tf1_0plan.applied.json": {ErrSyntax, "duplicate object member name"},
	// Hand-made: a placeholder format_version and every action in one list.
	"tf-plan-format/artificial_full.json": {ErrUnsupported, `"test_format_version" is not a version number`},
	// Deliberately invalid fixtures of tfplan-validator.
	"tfplan-validator/plan-invalid-actions.json": {ErrInvalid, `local_file.foo: unknown actions ["invalid"]`},
	"tfplan-validator/plan-missing-version.json": {ErrInvalid, `local_file.foo: unknown actions ["invalid"]`},
}

// oracle counts resource changes with the standard library's decoder, a
// reader independent of the streaming one under test.
type oracle struct {
	ResourceChanges []struct {
		Change struct {
			Actions []string `json:"actions"`
		} `json:"change"`
	} `json:"resource_changes"`
	Steps []struct {
		Op string `json:"op"`
	} `json:"steps"`
}

func fixtureFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(fixturesDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 139 {
		t.Fatalf("found %d fixtures in %s, want the 139 real plans", len(files), fixturesDir)
	}
	return files
}

func TestFixtures(t *testing.T) {
	seen := 0
	for _, path := range fixtureFiles(t) {
		name, _ := filepath.Rel(fixturesDir, path)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var visited []Change
			p, err := Decode(strings.NewReader(string(raw)), Options{}, func(c *Change) error {
				visited = append(visited, *c)
				return nil
			})
			if r, ok := refused[name]; ok {
				seen++
				if !errors.Is(err, r.err) || !strings.Contains(err.Error(), r.want) {
					t.Fatalf("Decode(%s) error = %v, want %v mentioning %q", name, err, r.err, r.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s): %v", name, err)
			}
			var o oracle
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("oracle: %v", err)
			}
			want, noops := len(o.ResourceChanges), 0
			for _, rc := range o.ResourceChanges {
				if a := strings.Join(rc.Change.Actions, ","); a == "no-op" || a == "" {
					noops++
				}
			}
			if p.Format == FormatPulumi {
				want, noops = len(o.Steps), 0
				for _, s := range o.Steps {
					if s.Op == "same" {
						noops++
					}
				}
			}
			if got := p.Total(); got != want {
				t.Errorf("Total() = %d, want %d resource changes", got, want)
			}
			if got := len(visited); got != want-noops+p.ByAction[ActionImport] {
				t.Errorf("visited %d changes, want %d (all but no-ops)", got, want-noops)
			}
			for _, c := range visited {
				if c.Action == ActionNoOp {
					t.Errorf("no-op change %s was passed on", c.Address)
				}
				if c.Address == "" || c.Type == "" {
					t.Errorf("change %+v has no address or type", c)
				}
			}
			if len(p.SHA256) != 64 || p.Size != int64(len(raw)) {
				t.Errorf("SHA256 = %q, Size = %d; want a digest of %d bytes", p.SHA256, p.Size, len(raw))
			}
		})
	}
	if seen != len(refused) {
		t.Errorf("%d of the %d refused fixtures were found", seen, len(refused))
	}
}
