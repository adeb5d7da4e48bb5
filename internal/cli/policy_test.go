package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const acmeRule = `package stepgate.rules.acme

import data.stepgate.lib

findings contains f if {
	some c in lib.changes
	c.type == "aws_instance"
	lib.production
	f := {"rule": "acme.no-prod-instances", "decision": "deny", "addresses": [c.address], "reason": "no hand-made instances in production"}
}
`

func TestPolicyTest(t *testing.T) {
	for _, tt := range []struct {
		name  string
		test  string
		code  int
		wants []string
	}{
		{"ok/pass", `package stepgate.rules.acme_test

import data.stepgate.rules.acme

test_denies_prod_instance if {
	some f in acme.findings with input as {"operation": {"kind": "terraform.apply", "workspace": "web-prod", "environment": ""}, "changes": [{"address": "aws_instance.a", "type": "aws_instance", "action": "create", "before": null, "after": {}}]}
	f.decision == "deny"
}

test_dev_instance_passes if {
	count(acme.findings) == 0 with input as {"operation": {"kind": "terraform.apply", "workspace": "web-dev", "environment": ""}, "changes": [{"address": "aws_instance.a", "type": "aws_instance", "action": "create", "before": null, "after": {}}]}
}
`, ExitOK, []string{"PASS: 2/2"}},
		{"ok/stepgate-functions", `package stepgate.rules.acme_test

changes := [
	{"address": "a", "type": "aws_iam_role", "action": "delete", "tags": {"team": ["Payments"]}},
	{"address": "b", "type": "aws_instance", "action": "create", "tags": {}},
]

test_functions if {
	[c.address | some c in stepgate.where(changes, "action", {"delete"})] == ["a"]
	stepgate.distinct(changes, "type") == {"aws_iam_role", "aws_instance"}
	[c.address | some c in stepgate.tagged(changes, {"team"}, {"payments"})] == ["a"]
	stepgate.tokens("rg-Billing-prod") == {"rg", "billing", "prod"}
	stepgate.type_categories({"identity": ["aws_iam_*"]}, {"aws_iam_role"}) == {"aws_iam_role": {"identity"}}
}
`, ExitOK, []string{"PASS: 1/1"}},
		{"fail/failing-test", `package stepgate.rules.acme_test

import data.stepgate.rules.acme

test_wrong if {
	count(acme.findings) == 1 with input as {"operation": {"kind": "terraform.apply", "workspace": "web-dev", "environment": ""}, "changes": []}
}
`, ExitInternal, []string{"FAIL: 1/1", "test_wrong"}},
		{"fail/no-tests", "", ExitInternal, []string{"no test to run"}},
		{"fail/does-not-compile", `package stepgate.rules.acme_test
test_x if { undefined_function(1) }
`, ExitUsage, []string{"undefined_function"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "acme.rego", acmeRule)
			if tt.test != "" {
				writeFile(t, dir, "acme_test.rego", tt.test)
			}
			r := run(t, "", "policy", "test", dir)
			if r.code != tt.code {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("output does not mention %q:\nstdout: %s\nstderr: %s", w, r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestPolicyTestBuiltin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "acme.rego", acmeRule)
	r := run(t, "", "policy", "test", dir, "--builtin", "-o", "json")
	// The user's directory has no test, but --builtin adds the built-in
	// ones: they run and pass.
	if r.code != ExitOK {
		t.Fatalf("policy test --builtin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `"package": "data.stepgate.rules.builtin_test"`) {
		t.Errorf("--builtin did not run the built-in tests:\n%s", r.stdout)
	}
}

func TestPolicyDefaults(t *testing.T) {
	r := run(t, "", "policy", "defaults")
	for _, w := range []string{"sensitive_types:", "aws_iam_*", "max_changes: 50", "prod.change:"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("policy defaults does not contain %q", w)
		}
	}
}

func TestHelpNamesExitCodes(t *testing.T) {
	r := run(t, "", "eval", "--help")
	if r.code != ExitOK {
		t.Fatalf("eval --help exit %d", r.code)
	}
	for _, w := range []string{"0  allow", "3  step_up", "4  deny", "2  bad input", "1  internal error", "--plan", "--workspace"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("eval --help does not mention %q", w)
		}
	}
}

// TestAllFlagsDocumented: every command and flag appears in docs/cli.md.
func TestAllFlagsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		path := c.CommandPath()
		if !strings.Contains(string(doc), path) {
			t.Errorf("docs/cli.md does not document the command %q", path)
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			if !regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + `\b`).Match(doc) {
				t.Errorf("docs/cli.md does not document %s --%s", path, f.Name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(OSEnv()))
}
