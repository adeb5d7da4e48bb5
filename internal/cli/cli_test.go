package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/testenv"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the command line in-process from the repository root, with no
// environment variables.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return call{dir: root, stdin: stdin}.run(t, args...)
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvalDecisions(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"ok/allow-dev", []string{"--plan", "examples/dev-tag-change.plan.json", "--workspace", "billing-dev"}, ExitOK,
			[]string{"ALLOW", "Changes:    1 (1 update)", "not production"}},
		{"ok/step-up-prod-rg", []string{"--plan", "examples/billing-rg-prod.plan.json", "--workspace", "billing"}, ExitStepUp,
			[]string{"STEP-UP REQUIRED", "aal 2", "prod.change", "azurerm_resource_group.billing is named rg-billing-prod"}},
		{"ok/step-up-prod-iam", []string{"--plan", "examples/prod-iam.plan.json", "--workspace", "billing-prod"}, ExitStepUp,
			[]string{"aal 3", "1 approval by someone other than the requester", "proof at most 5 min old", "identity.escalation", "aws_iam_role_policy.deployer allows s3:* on * (was s3:GetObject on arn:aws:s3:::billing-invoices/*)"}},
		{"ok/deny-errored", []string{"--plan", "testdata/plans/opentofu/show-json_plan-error.json"}, ExitDeny,
			[]string{"DENY", "plan.errored", "could not finish planning"}},
		{"ok/secret-read-without-plan", []string{"--kind", "secret.read", "--environment", "prod"}, ExitStepUp,
			[]string{"secret.read", "aal 3"}},
		{"ok/environment-flag", []string{"--plan", "examples/dev-tag-change.plan.json", "--workspace", "reports", "--environment", "PRODUCTION"}, ExitStepUp,
			[]string{`environment "PRODUCTION"`}},
		// 300 local_file creates: helpers, not a blast radius, but a
		// production change that lists them all.
		{"ok/many-addresses-capped", []string{"--plan", "testdata/plans/terraform-plan-comment/7-create-hundreds_plan.json", "--workspace", "files-prod"}, ExitStepUp,
			[]string{"prod.change", "… and 290 more (--output json lists all)"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", append([]string{"eval"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output does not contain %q:\n%s", w, r.stdout)
				}
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing on a decision", r.stderr)
			}
		})
	}
}

func TestEvalJSON(t *testing.T) {
	r := run(t, "", "eval", "--plan", "examples/prod-iam.plan.json", "--workspace", "billing-prod", "--output", "json")
	if r.code != ExitStepUp {
		t.Fatalf("exit code = %d, want 3; stderr: %s", r.code, r.stderr)
	}
	var got struct {
		Decision     string
		Requirements struct{ AAL, Approvals, MaxAge int }
		Findings     []struct {
			Rule, Decision, Severity, Reason string
			Addresses                        []string
		}
		Summary struct {
			Environment string
			Production  bool
			Changes     int
			ByAction    map[string]int `json:"by_action"`
		}
		Plan struct {
			Format        string
			FormatVersion string `json:"format_version"`
			SHA256        string
		}
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, r.stdout)
	}
	if got.Decision != "step_up" || got.Requirements.AAL != 3 || got.Requirements.Approvals != 1 {
		t.Errorf("decision = %s %+v, want step_up aal 3 approvals 1", got.Decision, got.Requirements)
	}
	if len(got.Findings) != 2 || got.Findings[0].Rule != "identity.escalation" || got.Findings[0].Addresses[0] != "aws_iam_role_policy.deployer" {
		t.Errorf("findings = %+v, want identity.escalation first, naming the policy", got.Findings)
	}
	if !got.Summary.Production || got.Summary.Changes != 1 || got.Summary.ByAction["no-op"] != 1 || got.Summary.ByAction["update"] != 1 {
		t.Errorf("summary = %+v", got.Summary)
	}
	raw, _ := os.ReadFile("../../examples/prod-iam.plan.json")
	if got.Plan.Format != "terraform" || got.Plan.FormatVersion != "1.2" || got.Plan.SHA256 != sha256hex(raw) {
		t.Errorf("plan = %+v, want terraform 1.2 with the file's sha256", got.Plan)
	}
}

func TestEvalMarkdown(t *testing.T) {
	r := run(t, "", "eval", "--plan", "examples/prod-iam.plan.json", "--workspace", "billing-prod", "-o", "markdown")
	for _, w := range []string{"### 🔐 stepgate: step-up required", "| | severity | rule | reason |", "| 🔐 | critical | `identity.escalation` |", "<details>"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("markdown does not contain %q:\n%s", w, r.stdout)
		}
	}
}

func TestEvalStdin(t *testing.T) {
	raw, err := os.ReadFile("../../examples/billing-rg-prod.plan.json")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, string(raw), "eval", "--plan", "-", "--workspace", "billing")
	if r.code != ExitStepUp {
		t.Errorf("eval --plan - exit code = %d, want 3; stderr: %s", r.code, r.stderr)
	}
}

func TestEvalBadInput(t *testing.T) {
	dir := t.TempDir()
	badRego := writeFile(t, dir, "bad/rules.rego", "package stepgate.rules.acme\nfindings contains f if {\n")
	reserved := writeFile(t, dir, "reserved/lib.rego", "package stepgate.lib\nx := 1\n")
	nested := writeFile(t, dir, "nested/s3.rego", "package stepgate.rules.acme.s3\nfindings contains {\"rule\": \"acme.s3\", \"decision\": \"deny\", \"reason\": \"r\"}\n")
	config := writeFile(t, dir, "config/c.rego", "package stepgate.config.rules\nx := 1\n")
	badConfig := writeFile(t, dir, "stepgate.yaml", "policy:\n  blast_radius: {max_changes: -1}\n")
	state := writeFile(t, dir, "state.json", `{"format_version":"1.0","terraform_version":"1.9.0","values":{"root_module":{}}}`)
	// The bad number in the 300th of 600 changes: the input is built on a
	// goroutine by then, while decoding goes on.
	var late strings.Builder
	late.WriteString(`{"format_version":"1.2","resource_changes":[`)
	for i := range 600 {
		cost := "1"
		if i == 299 {
			cost = "1e100000"
		}
		if i > 0 {
			late.WriteString(",")
		}
		fmt.Fprintf(&late, `{"address":"aws_instance.a[%d]","mode":"managed","type":"aws_instance","name":"a","index":%d,"provider_name":"aws",
			"change":{"actions":["update"],"before":{"tags":{"cost":1}},"after":{"tags":{"cost":%s}},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}`, i, i, cost)
	}
	late.WriteString("]}")
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
		wants []string
	}{
		{"fail/no-plan", []string{}, "", []string{"--plan is required"}},
		{"fail/missing-file", []string{"--plan", "nope.json"}, "", []string{"nope.json", "no such file"}},
		{"fail/empty-stdin", []string{"--plan", "-"}, "", []string{"standard input", "plan is empty"}},
		{"fail/truncated", []string{"--plan", "-"}, `{"format_version": "1.2", "resource_changes": [`, []string{"byte offset"}},
		{"fail/state-not-plan", []string{"--plan", state}, "", []string{"Terraform state"}},
		{"fail/unknown-kind", []string{"--plan", "examples/dev-tag-change.plan.json", "--kind", "terraform.yolo"}, "", []string{`kind "terraform.yolo"`}},
		{"fail/unknown-output", []string{"--plan", "examples/dev-tag-change.plan.json", "-o", "yaml"}, "", []string{`--output "yaml"`}},
		{"fail/unknown-flag", []string{"--plna", "x"}, "", []string{"unknown flag: --plna"}},
		{"fail/bad-config", []string{"--plan", "examples/dev-tag-change.plan.json", "--config", badConfig}, "", []string{"max_changes: -1"}},
		{"fail/missing-config", []string{"--plan", "examples/dev-tag-change.plan.json", "--config", filepath.Join(dir, "none.yaml")}, "", []string{"none.yaml"}},
		{"fail/rego-syntax", []string{"--plan", "examples/dev-tag-change.plan.json", "--policy", filepath.Dir(badRego)}, "", []string{"rules.rego"}},
		{"fail/reserved-package", []string{"--plan", "examples/dev-tag-change.plan.json", "--policy", filepath.Dir(reserved)}, "", []string{"package stepgate.lib: put rules in a package directly under stepgate.rules"}},
		{"fail/nested-package", []string{"--plan", "examples/dev-tag-change.plan.json", "--policy", filepath.Dir(nested)}, "", []string{"package stepgate.rules.acme.s3"}},
		{"fail/config-package", []string{"--plan", "examples/dev-tag-change.plan.json", "--policy", filepath.Dir(config)}, "", []string{"package stepgate.config.rules"}},
		{"fail/policy-dir-missing", []string{"--plan", "examples/dev-tag-change.plan.json", "--policy", filepath.Join(dir, "nope")}, "", []string{"policy directory"}},
		{"fail/bad-size", []string{"--plan", "examples/dev-tag-change.plan.json", "--max-plan-size", "big"}, "", []string{"--max-plan-size"}},
		{"fail/over-size", []string{"--plan", "examples/dev-tag-change.plan.json", "--max-plan-size", "100B"}, "", []string{"too large"}},
		{"fail/number-out-of-range", []string{"--plan", "-"}, `{"format_version":"1.2","resource_changes":[{"address":"aws_instance.a","mode":"managed","type":"aws_instance","name":"a","provider_name":"aws",
			"change":{"actions":["update"],"before":{"tags":{"cost":1}},"after":{"tags":{"cost":1e100000}},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}]}`,
			[]string{"aws_instance.a", "number 1e100000", "number too big"}},
		{"fail/number-out-of-range-late", []string{"--plan", "-"}, late.String(), []string{"aws_instance.a[299]", "number 1e100000", "number too big"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.stdin, append([]string{"eval"}, tt.args...)...)
			if r.code != ExitUsage {
				t.Fatalf("exit code = %d, want 2\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want no report on bad input", r.stdout)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not mention %q", r.stderr, w)
				}
			}
		})
	}
}

// TestEvalFailsClosed: a user rule that cannot be evaluated, or that
// produces something that is not a finding, never yields an allow.
func TestEvalFailsClosed(t *testing.T) {
	for _, tt := range []struct {
		name, rego string
		code       int
		want       string
	}{
		{"fail/runtime-error", `package stepgate.rules.acme
findings contains f if {
	some c in input.changes
	n := to_number(c.type)
	f := {"rule": "acme.x", "decision": "allow", "reason": sprintf("%v", [n])}
}`, ExitInternal, "to_number"},
		{"fail/malformed-finding", `package stepgate.rules.acme
findings contains {"rule": "acme.x", "decision": "maybe", "reason": "r"}`, ExitInternal, `finding of rule acme.x: its decision is not`},
		{"fail/no-reason", `package stepgate.rules.acme
findings contains {"rule": "acme.x", "decision": "step_up"}`, ExitInternal, "has no reason"},
		{"fail/conflict", `package stepgate.rules.acme
x := 1 if input.operation.kind == "terraform.apply"
x := 2 if input.operation.workspace == "billing-dev"
findings contains {"rule": "acme.x", "decision": "allow", "reason": sprintf("%d", [x])}`, ExitInternal, "conflict"},
		{"ok/custom-deny", `package stepgate.rules.acme
findings contains f if {
	some c in input.changes
	c.type == "aws_instance"
	f := {"rule": "acme.no-instances", "decision": "deny", "addresses": [c.address], "reason": "EC2 instances are managed by the platform team."}
}`, ExitDeny, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "acme.rego", tt.rego)
			r := run(t, "", "eval", "--plan", "examples/dev-tag-change.plan.json", "--workspace", "billing-dev", "--policy", dir)
			if r.code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tt.want)
			}
			if tt.code != ExitDeny && strings.Contains(r.stdout, "ALLOW") {
				t.Errorf("a failed evaluation printed ALLOW:\n%s", r.stdout)
			}
		})
	}
}

func TestEvalConfigTuning(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "stepgate.yaml", `
policy:
  production:
    workspaces: ["billing*"]
  rules:
    prod.change:
      production: {aal: 3, approvals: 1}
`)
	r := run(t, "", "eval", "--plan", "examples/dev-tag-change.plan.json", "--workspace", "billing-dev", "--config", cfg)
	if r.code != ExitStepUp || !strings.Contains(r.stdout, "aal 3") || !strings.Contains(r.stdout, `workspace "billing-dev" matches "billing*"`) {
		t.Errorf("eval with tuned config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestEvalSavedPlan(t *testing.T) {
	// The contract of a saved plan: stepgate runs `TOOL show -json -no-color
	// FILE` in the working directory and reads its output. This stand-in
	// for terraform follows it and checks the arguments it gets.
	bin := t.TempDir()
	writeFile(t, bin, "terraform", `#!/bin/sh
[ "$1 $2 $3" = "show -json -no-color" ] || { echo "unexpected arguments: $*" >&2; exit 1; }
head -c 2 "$4" | grep -q PK || { echo "not a zip: $4" >&2; exit 1; }
cat "$STEPGATE_TEST_PLAN_JSON"
`)
	if err := os.Chmod(filepath.Join(bin, "terraform"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":/usr/bin:/bin")
	json, _ := filepath.Abs("../../examples/billing-rg-prod.plan.json")
	t.Setenv("STEPGATE_TEST_PLAN_JSON", json)
	saved := writeFile(t, t.TempDir(), "tfplan", "PK\x03\x04 not really a zip, but it starts like one")
	r := run(t, "", "eval", "--plan", saved, "--workspace", "billing", "-o", "json")
	if r.code != ExitStepUp {
		t.Fatalf("exit code = %d, want 3; stderr: %s", r.code, r.stderr)
	}
	raw, _ := os.ReadFile(saved)
	if !strings.Contains(r.stdout, sha256hex(raw)) {
		t.Errorf("the assessment does not carry the saved plan's sha256:\n%s", r.stdout)
	}
	r = run(t, "", "eval", "--plan", saved, "--tool", "tofu")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "tofu") {
		t.Errorf("--tool tofu with no tofu: exit %d, stderr %q; want 2 naming tofu", r.code, r.stderr)
	}
	t.Setenv("PATH", t.TempDir())
	r = run(t, "", "eval", "--plan", saved)
	if r.code != ExitUsage || !strings.Contains(r.stderr, "no terraform or tofu on PATH") {
		t.Errorf("saved plan with no tool: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestEvalSavedPlanRealTerraform(t *testing.T) {
	tf := testenv.Tool(t, "terraform", "TestEvalSavedPlan covers the contract with a stand-in")
	dir := t.TempDir()
	writeFile(t, dir, "main.tf", `resource "terraform_data" "release" {
  input = "v1"
}
`)
	for _, args := range [][]string{{"init", "-input=false", "-no-color"}, {"plan", "-input=false", "-no-color", "-out", "tfplan"}} {
		cmd := exec.Command(tf, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("terraform %s: %v\n%s", args[0], err, out)
		}
	}
	r := call{dir: dir}.run(t, "eval", "--plan", "tfplan", "--workspace", "release-prod")
	if r.code != ExitStepUp || !strings.Contains(r.stdout, "terraform_data.release") || !strings.Contains(r.stdout, "1 create") {
		t.Errorf("eval of a real saved plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Help shows each flag as it is typed, and the version reads the same both
// ways.
func TestHelpAndVersion(t *testing.T) {
	for _, cmd := range [][]string{{"--help"}, {"check", "--help"}, {"apply", "--help"}, {"users", "--help"}, {"eval", "--help"}} {
		r := run(t, "", cmd...)
		if r.code != 0 || !strings.Contains(r.stdout, "--help ") {
			t.Fatalf("%v: exit %d\n%s%s", cmd, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout, "[=true|false]") {
			t.Errorf("%v shows a boolean flag as --flag[=true|false]:\n%s", cmd, r.stdout)
		}
	}
	a, b := run(t, "", "--version"), run(t, "", "version")
	if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "stepgate ") {
		t.Errorf("--version printed %q, version printed %q; want the same", a.stdout, b.stdout)
	}
	// The exit codes of check --help are listed in order.
	r := run(t, "", "check", "--help")
	last := -1
	for _, line := range strings.Split(r.stdout, "\n") {
		var code int
		if n, _ := fmt.Sscanf(line, "  %d  ", &code); n == 1 {
			if code <= last {
				t.Errorf("check --help lists exit code %d after %d", code, last)
			}
			last = code
		}
	}
}
