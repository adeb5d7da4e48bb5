package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func sample() *policy.Assessment {
	addrs := make([]string, 14)
	for i := range addrs {
		addrs[i] = "aws_security_group_rule.ingress[" + string(rune('a'+i)) + "]"
	}
	return &policy.Assessment{
		Decision:     policy.StepUp,
		Requirements: &policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300, Methods: []string{"hwk"}, Groups: []string{"security"}},
		Findings: []policy.Finding{
			{Rule: "sensitive.change", Decision: policy.StepUp, Severity: "critical", Addresses: addrs,
				Reason:       "14 changes to network boundaries (aws_security_group_rule).",
				Requirements: &policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}},
			{Rule: "acme.pipes|and<tags>", Decision: policy.StepUp, Severity: "low", Addresses: []string{"a.b"},
				Reason:       "a reason with | a pipe and <b>html</b>",
				Requirements: &policy.Requirements{AAL: 2, MaxAge: 900}},
		},
		Summary: policy.Summary{Kind: "terraform.apply", Workspace: "net-prod", Production: true,
			ProductionReasons: []string{`workspace "net-prod"`}, Changes: 15, Total: 20,
			ByAction: map[string]int{"create": 10, "update": 4, "delete": 1, "no-op": 5}},
		Plan: policy.PlanInfo{Format: "terraform", FormatVersion: "1.2", ToolVersion: "1.9.5",
			SHA256: "4c1d0a8f2b7e11aa22bb33cc44dd55ee66ff77889900aabbccddeeff00112233", Applyable: true},
	}
}

func TestGolden(t *testing.T) {
	allow := &policy.Assessment{Decision: policy.Allow, Findings: []policy.Finding{},
		Summary: policy.Summary{Kind: "terraform.apply", Workspace: "web-dev", Changes: 1, Total: 1, ByAction: map[string]int{"update": 1}},
		Plan:    policy.PlanInfo{Format: "pulumi", SHA256: "ab"}}
	deny := &policy.Assessment{Decision: policy.Deny, Findings: []policy.Finding{{Rule: "plan.errored", Decision: policy.Deny, Severity: "critical", Addresses: []string{}, Reason: "The plan errored."}},
		Summary: policy.Summary{Kind: "terraform.apply", ByAction: map[string]int{}}}
	for _, tt := range []struct {
		name, format string
		a            *policy.Assessment
		color        bool
	}{
		{"step-up.txt", "text", sample(), false},
		{"step-up-color.txt", "text", sample(), true},
		{"step-up.md", "markdown", sample(), false},
		{"step-up.json", "json", sample(), false},
		{"allow.txt", "text", allow, false},
		{"deny.txt", "text", deny, false},
		{"deny.md", "markdown", deny, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.format, tt.a, Options{Color: tt.color}); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("Write(%s) mismatch (-want +got):\n%s", tt.format, diff)
			}
		})
	}
}

func TestNoColorWithoutTerminal(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "text", sample(), Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "\x1b[") {
		t.Error("text output has ANSI escapes with Color off")
	}
}

func TestMarkdownEscapes(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, "markdown", sample(), Options{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<b>") || !strings.Contains(b.String(), `a reason with \| a pipe`) {
		t.Errorf("markdown does not escape a finding's reason:\n%s", b.String())
	}
}

func TestUnknownFormat(t *testing.T) {
	if err := Write(&bytes.Buffer{}, "yaml", sample(), Options{}); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("Write(yaml) error = %v, want one naming the format", err)
	}
}

func TestControlCharactersAreEscaped(t *testing.T) {
	a := sample()
	a.Findings[0].Addresses[0] = "aws_instance.x\x1b]0;pwned\x07\x1b[2J"
	a.Findings[0].Reason = "line\r\noverwrite"
	for _, format := range []string{"text", "markdown"} {
		var b bytes.Buffer
		if err := Write(&b, format, a, Options{}); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(b.String(), "\x1b\x07\r") {
			t.Errorf("%s output carries control characters from the plan: %q", format, b.String())
		}
		if !strings.Contains(b.String(), `aws_instance.x\x1b]0;pwned`) {
			t.Errorf("%s output does not show the escaped address", format)
		}
	}
}

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"aws_iam_role.admin", "aws_iam_role.admin"},
		{"élodie 日本", "élodie 日本"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"line\nbreak\ttab", `line\x0abreak\x09tab`},
		{"role.\u202enimda", `role.\u202enimda`},
		{"ad\u200bmin", `ad\u200bmin`},
		{"x\u2066y\u2069z\u200f\u061c", `x\u2066y\u2069z\u200f\u061c`},
		{"a\u2028b", `a\u2028b`},
		{"\ufeffbom", `\ufeffbom`},
		{"c1\u0085", `c1\x85`},
	} {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
