package cli

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// savedPlans are saved plans and their JSON written by the real Terraform
// (internal/plan/planfile/testdata/generate.sh), relative to the module.
const savedPlans = "internal/plan/planfile/testdata/"

// TestEvalPlanFile: eval --plan-file compares the saved plan with the
// JSON offline, as the server does, and refuses a mismatch with exit 2.
func TestEvalPlanFile(t *testing.T) {
	dir := t.TempDir()
	unknownVersion := filepath.Join(dir, "v4.tfplan")
	writeVersion4(t, savedPlans+"create_x_a.tfplan", unknownVersion)
	jsonOnly := writeFile(t, dir, "stepgate.yaml", "plan: {saved_plan_binding: json-only}\n")
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"ok/same-changes", []string{"--plan", savedPlans + "create_x_a.json", "--plan-file", savedPlans + "create_x_a.tfplan"}, ExitOK, "ALLOW"},
		{"ok/opentofu", []string{"--plan", savedPlans + "opentofu-1.10.6/create.json", "--plan-file", savedPlans + "opentofu-1.10.6/create.tfplan"}, ExitOK, "3 (3 create)"},
		{"fail/one-value-differs", []string{"--plan", savedPlans + "create_x_a.json", "--plan-file", savedPlans + "create_x_b.tfplan"}, ExitUsage,
			"the saved plan does not match the plan JSON: terraform_data.x: after.input differs"},
		{"fail/other-action", []string{"--plan", savedPlans + "update_x.json", "--plan-file", savedPlans + "replace_x.tfplan"}, ExitUsage,
			"terraform_data.x: action update in the JSON, replace in the saved plan"},
		{"fail/not-a-saved-plan", []string{"--plan", savedPlans + "create_x_a.json", "--plan-file", savedPlans + "create_x_a.json"}, ExitUsage, "not a zip archive"},
		{"fail/saved-plan-as-plan", []string{"--plan", savedPlans + "create_x_a.tfplan", "--plan-file", savedPlans + "create_x_a.tfplan"}, ExitUsage, "give its JSON"},
		{"fail/plan-file-alone", []string{"--plan-file", savedPlans + "create_x_a.tfplan", "--kind", "secret.read"}, ExitUsage, "--plan-file goes with --plan"},
		{"fail/unknown-format", []string{"--plan", savedPlans + "create_x_a.json", "--plan-file", unknownVersion}, ExitUsage,
			`tfplan format version 4, written by version "1.11.4"`},
		{"ok/unknown-format-json-only", []string{"--plan", savedPlans + "create_x_a.json", "--plan-file", unknownVersion, "--config", jsonOnly, "-o", "json"}, ExitOK,
			`"rule": "plan.unverified"`},
		{"fail/json-only-still-refuses-a-mismatch", []string{"--plan", savedPlans + "create_x_a.json", "--plan-file", savedPlans + "create_x_b.tfplan", "--config", jsonOnly}, ExitUsage,
			"terraform_data.x: after.input differs"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", append([]string{"eval", "--workspace", "billing-dev"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.contains) {
				t.Errorf("stepgate eval %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), r.code, tt.code, tt.contains, r.stdout, r.stderr)
			}
		})
	}
}

// writeVersion4 copies a saved plan with its tfplan format version set to
// 4, a version this stepgate does not know.
func writeVersion4(t *testing.T, src, dst string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(filepath.Join(root, src))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "tfplan" {
			if b[0] != 0x08 || b[1] != 0x03 {
				t.Fatalf("tfplan starts % x, want version 3 (08 03)", b[:2])
			}
			b[1] = 0x04
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
