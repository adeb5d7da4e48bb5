package policy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/ciclaims"
	"github.com/stepgate/stepgate/internal/plan"
)

func contextEngine(t *testing.T, src string) *Engine {
	t.Helper()
	var o Overrides
	if err := yaml.Unmarshal([]byte(src), &o); err != nil {
		t.Fatal(err)
	}
	cfg := o.Apply(DefaultConfig())
	e, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func onePlan() *plan.Plan {
	return &plan.Plan{
		Format: "terraform", Applyable: true, Complete: true,
		ByAction: map[plan.Action]int{plan.ActionCreate: 1},
		Changes:  []plan.Change{{Address: "aws_s3_object.a", Type: "aws_s3_object", Action: plan.ActionCreate, Actions: []string{"create"}}},
	}
}

func github(claims ...string) *ciclaims.Pipeline {
	m := map[string]string{"repository": "acme/infra", "event_name": "push"}
	for i := 0; i+1 < len(claims); i += 2 {
		m[claims[i]] = claims[i+1]
	}
	p := ciclaims.Normalize(ciclaims.GitHubActions, m)
	return &p
}

const contextConfig = `
timezone: Europe/Berlin
pipeline: {release_refs: ["refs/heads/main", "refs/tags/v*"]}
freeze:
  approvers: change-board
  windows:
    - {name: year-end, start: "2026-12-20T00:00:00+01:00", end: "2027-01-04T08:00:00+01:00"}
    - {name: weekend, weekly: {from: "Fri 16:00", to: "Mon 08:00"}}
    - {name: release-day, start: "2026-11-02T00:00:00Z", end: "2026-11-03T00:00:00Z", decision: deny}
burst: {max_checks: 3}
`

// Each context rule, in both directions. A Wednesday 10:00 in Berlin is in
// no window.
func TestContextRules(t *testing.T) {
	e := contextEngine(t, contextConfig)
	wed := time.Date(2026, 11, 11, 9, 0, 0, 0, time.UTC)
	applied := &History{RequesterApplied: true}
	person := Requester{Kind: RequesterPerson, Name: "alice", Owner: "alice"}
	for _, tt := range []struct {
		name      string
		workspace string
		ctx       Context
		rule      string // the rule that must (or must not) be among the findings
		fires     bool
		decision  Decision
		groups    []string
	}{
		{"ok/untrusted-feature-branch", "billing-prod", Context{Pipeline: github("ref", "refs/heads/feature-x", "ref_protected", "false"), At: wed}, "pipeline.untrusted_ref", true, Deny, nil},
		{"ok/untrusted-pull-request", "billing-prod", Context{Pipeline: github("ref", "refs/heads/main", "ref_protected", "true", "event_name", "pull_request"), At: wed}, "pipeline.untrusted_ref", true, Deny, nil},
		{"ok/untrusted-protected-but-not-release", "billing-prod", Context{Pipeline: github("ref", "refs/heads/hotfix", "ref_protected", "true"), At: wed}, "pipeline.untrusted_ref", true, Deny, nil},
		{"ok/trusted-main", "billing-prod", Context{Pipeline: github("ref", "refs/heads/main", "ref_protected", "true"), At: wed}, "pipeline.untrusted_ref", false, StepUp, nil},
		{"ok/trusted-tag", "billing-prod", Context{Pipeline: github("ref", "refs/tags/v1.2.0", "ref_type", "tag", "ref_protected", "true"), At: wed}, "pipeline.untrusted_ref", false, StepUp, nil},
		{"ok/untrusted-outside-production", "billing-dev", Context{Pipeline: github("ref", "refs/heads/feature-x", "ref_protected", "false"), At: wed}, "pipeline.untrusted_ref", false, Allow, nil},
		// What a pipeline says of itself never counts, either way.
		{"attack/unverified-main-does-not-pass", "billing-prod", Context{Pipeline: github("ref", "refs/heads/feature-x", "ref_protected", "false"), PipelineUnverified: map[string]string{"ref": "refs/heads/main", "ref_protected": "true"}, At: wed}, "pipeline.untrusted_ref", true, Deny, nil},
		{"ok/unverified-alone-is-not-read", "billing-prod", Context{PipelineUnverified: map[string]string{"ref": "refs/heads/feature-x", "event_name": "pull_request"}, At: wed}, "pipeline.untrusted_ref", false, StepUp, nil},
		{"ok/freeze-dated", "billing-prod", Context{At: time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)}, "change.freeze", true, StepUp, []string{"change-board"}},
		{"ok/freeze-weekly-friday-evening", "billing-dev", Context{At: time.Date(2026, 11, 13, 15, 30, 0, 0, time.UTC)}, "change.freeze", true, StepUp, []string{"change-board"}},
		{"ok/freeze-weekly-monday-early", "billing-dev", Context{At: time.Date(2026, 11, 16, 6, 59, 0, 0, time.UTC)}, "change.freeze", true, StepUp, []string{"change-board"}},
		{"ok/no-freeze-monday-after", "billing-dev", Context{At: time.Date(2026, 11, 16, 7, 0, 0, 0, time.UTC)}, "change.freeze", false, Allow, nil},
		{"ok/no-freeze-friday-before", "billing-dev", Context{At: time.Date(2026, 11, 13, 14, 59, 0, 0, time.UTC)}, "change.freeze", false, Allow, nil},
		{"ok/freeze-window-denies", "billing-dev", Context{At: time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)}, "change.freeze", true, Deny, nil},
		{"ok/first-time", "billing-prod", Context{Requester: person, History: &History{}, At: wed}, "requester.first_time", true, StepUp, nil},
		{"ok/not-first-time", "billing-prod", Context{Requester: person, History: applied, At: wed}, "requester.first_time", false, StepUp, nil},
		{"ok/first-time-offline-unknown", "billing-prod", Context{Requester: person, At: wed}, "requester.first_time", false, StepUp, nil},
		{"ok/first-time-outside-production", "billing-dev", Context{Requester: person, History: &History{}, At: wed}, "requester.first_time", false, Allow, nil},
		{"ok/burst", "billing-dev", Context{Requester: person, History: &History{RequesterApplied: true, RequesterChecksLastHour: 3}, At: wed}, "requester.burst", true, StepUp, nil},
		{"ok/no-burst", "billing-dev", Context{Requester: person, History: &History{RequesterApplied: true, RequesterChecksLastHour: 2}, At: wed}, "requester.burst", false, Allow, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := e.NewInput(Operation{Kind: "terraform.apply", Workspace: tt.workspace})
			for _, c := range onePlan().Changes {
				if err := in.Add(&c); err != nil {
					t.Fatal(err)
				}
			}
			in.SetPlan(onePlan())
			in.SetContext(tt.ctx)
			a, err := e.Evaluate(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(a.Findings, func(f Finding) bool { return f.Rule == tt.rule })
			if (i >= 0) != tt.fires {
				t.Fatalf("rule %s fired = %v, want %v; findings %+v", tt.rule, i >= 0, tt.fires, a.Findings)
			}
			if a.Decision != tt.decision {
				t.Errorf("decision = %s, want %s (findings %+v)", a.Decision, tt.decision, a.Findings)
			}
			if tt.groups != nil && (a.Requirements == nil || !slices.Equal(a.Requirements.Groups, tt.groups)) {
				t.Errorf("requirements = %+v, want groups %v", a.Requirements, tt.groups)
			}
			if tt.rule == "change.freeze" && tt.fires && tt.decision == StepUp && (a.Requirements.AAL != 3 || a.Requirements.Approvals != 1) {
				t.Errorf("freeze requirements = %+v, want aal 3 and 1 approval", a.Requirements)
			}
		})
	}
}

// policy.pipeline.require_verified: an API token's production operation
// is untrusted too; a verified protected main is not.
func TestRequireVerifiedPipeline(t *testing.T) {
	e := contextEngine(t, `pipeline: {require_verified: true}`)
	for _, tt := range []struct {
		name string
		ctx  Context
		want Decision
	}{
		{"ok/api-token", Context{PipelineUnverified: map[string]string{"ref": "refs/heads/main", "ref_protected": "true"}}, Deny},
		{"ok/ci-token-main", Context{Pipeline: github("ref", "refs/heads/main", "ref_protected", "true")}, StepUp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := e.NewInput(Operation{Kind: "terraform.apply", Workspace: "billing-prod"})
			for _, c := range onePlan().Changes {
				if err := in.Add(&c); err != nil {
					t.Fatal(err)
				}
			}
			in.SetPlan(onePlan())
			in.SetContext(tt.ctx)
			a, err := e.Evaluate(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != tt.want {
				t.Errorf("decision = %s, want %s (%+v)", a.Decision, tt.want, a.Findings)
			}
		})
	}
}

// The rules are off where they need configuration: with the defaults, no
// window, no release_refs, no burst limit.
func TestContextRulesOffByDefault(t *testing.T) {
	e := contextEngine(t, "")
	in := e.NewInput(Operation{Kind: "terraform.apply", Workspace: "billing-dev"})
	in.SetContext(Context{
		Pipeline: github("ref", "refs/heads/feature-x"), History: &History{RequesterChecksLastHour: 1000},
		At: time.Date(2026, 12, 25, 12, 0, 0, 0, time.UTC),
	})
	in.SetPlan(&plan.Plan{ByAction: map[plan.Action]int{}, Applyable: true, Complete: true})
	a, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if a.Decision != Allow || len(a.Findings) != 0 {
		t.Errorf("Evaluate = %s %+v, want allow with no findings", a.Decision, a.Findings)
	}
}

// No built-in rule reads input.pipeline_unverified.
func TestBuiltinRulesNeverReadUnverifiedPipeline(t *testing.T) {
	files, err := filepath.Glob("rego/*.rego")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rego files: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "#")
			if strings.Contains(code, "pipeline_unverified") {
				t.Errorf("%s:%d reads pipeline_unverified: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

func TestContextConfigErrors(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"fail/timezone", `timezone: Mars/Olympus`, "policy.timezone"},
		{"fail/window-no-name", `freeze: {windows: [{start: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z"}]}`, "policy.freeze.windows[0].name"},
		{"fail/window-bad-start", `freeze: {windows: [{name: a, start: "tomorrow", end: "2026-01-02T00:00:00Z"}]}`, "policy.freeze.windows[0]: start"},
		{"fail/window-end-before-start", `freeze: {windows: [{name: a, start: "2026-01-02T00:00:00Z", end: "2026-01-01T00:00:00Z"}]}`, "policy.freeze.windows[0]: end"},
		{"fail/weekly-bad-day", `freeze: {windows: [{name: a, weekly: {from: "Fry 16:00", to: "Mon 08:00"}}]}`, "policy.freeze.windows[0]: weekly.from"},
		{"fail/weekly-bad-hour", `freeze: {windows: [{name: a, weekly: {from: "Fri 16:00", to: "Mon 25:00"}}]}`, "policy.freeze.windows[0]: weekly.to"},
		{"fail/window-decision", `freeze: {windows: [{name: a, weekly: {from: "Fri 16:00", to: "Mon 08:00"}, decision: allow}]}`, "policy.freeze.windows[0].decision"},
		{"fail/duplicate-window", `freeze: {windows: [{name: a, weekly: {from: "Fri 16:00", to: "Mon 08:00"}}, {name: a, weekly: {from: "Sat 16:00", to: "Mon 08:00"}}]}`, "policy.freeze.windows[1].name"},
		{"fail/burst", `burst: {max_checks: -1}`, "policy.burst.max_checks"},
		{"fail/release-refs", `pipeline: {release_refs: [""]}`, "policy.pipeline.release_refs[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o Overrides
			if err := yaml.Unmarshal([]byte(tt.src), &o); err != nil {
				t.Fatal(err)
			}
			err := o.Apply(DefaultConfig()).Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestWeekMinute(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"Fri 16:00", 5*1440 + 960, true},
		{"friday 16:00", 5*1440 + 960, true},
		{"Sun 00:00", 0, true},
		{"Mon 8:00", 1440 + 480, true},
		{"Mon 08:0", 0, false},
		{"Fr 16:00", 0, false},
		{"Fri", 0, false},
	} {
		got, err := weekMinute(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("weekMinute(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// docs/policy.md shows defaults.yaml whole: the reference cannot drift.
func TestDocsShowTheDefaults(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), strings.TrimSpace(string(DefaultsYAML()))) {
		t.Error("docs/policy.md does not show internal/policy/defaults.yaml as it is (section The defaults)")
	}
}
