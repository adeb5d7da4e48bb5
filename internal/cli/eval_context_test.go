package cli

import (
	"encoding/json"
	"slices"
	"testing"
)

// Each context rule, both ways, through stepgate eval with --pipeline,
// --at, --requester and --history.
func TestEvalContextRules(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "stepgate.yaml", `
policy:
  timezone: Europe/Berlin
  pipeline: {release_refs: [refs/heads/main]}
  freeze:
    approvers: change-board
    windows:
      - {name: weekend, weekly: {from: "Fri 16:00", to: "Mon 08:00"}}
      - {name: launch, start: "2026-11-02T00:00:00Z", end: "2026-11-03T00:00:00Z", decision: deny}
  burst: {max_checks: 5}
`)
	const wed = "2026-11-11T10:00:00+01:00"
	prod := []string{"--plan", "examples/dev-tag-change.plan.json", "--workspace", "billing-prod"}
	dev := []string{"--plan", "examples/dev-tag-change.plan.json", "--workspace", "billing-dev"}
	gh := func(ref, protected string) []string {
		return []string{"--pipeline", "system=github-actions", "--pipeline", "repository=acme/infra", "--pipeline", "event_name=push",
			"--pipeline", "ref=" + ref, "--pipeline", "ref_protected=" + protected}
	}
	for _, tt := range []struct {
		name     string
		args     [][]string
		rule     string
		fires    bool
		exit     int
		decision string
	}{
		{"ok/untrusted-ref-feature-branch", [][]string{prod, gh("refs/heads/feature-x", "false"), {"--at", wed}}, "pipeline.untrusted_ref", true, ExitDeny, "deny"},
		{"ok/trusted-ref-main", [][]string{prod, gh("refs/heads/main", "true"), {"--at", wed}}, "pipeline.untrusted_ref", false, ExitStepUp, "step_up"},
		{"ok/untrusted-ref-pull-request", [][]string{prod, gh("refs/pull/7/merge", "false"), {"--pipeline", "event_name=pull_request", "--at", wed}}, "pipeline.untrusted_ref", true, ExitDeny, "deny"},
		{"ok/freeze-weekend", [][]string{dev, {"--at", "2026-11-13T17:00:00+01:00"}}, "change.freeze", true, ExitStepUp, "step_up"},
		{"ok/no-freeze-weekday", [][]string{dev, {"--at", wed}}, "change.freeze", false, ExitOK, "allow"},
		{"ok/freeze-window-denies", [][]string{dev, {"--at", "2026-11-02T12:00:00Z"}}, "change.freeze", true, ExitDeny, "deny"},
		{"ok/first-time", [][]string{prod, gh("refs/heads/main", "true"), {"--at", wed, "--requester", "alice", "--history", "requester_applied=false"}}, "requester.first_time", true, ExitStepUp, "step_up"},
		{"ok/not-first-time", [][]string{prod, gh("refs/heads/main", "true"), {"--at", wed, "--requester", "alice", "--history", "requester_applied=true"}}, "requester.first_time", false, ExitStepUp, "step_up"},
		{"ok/burst", [][]string{dev, {"--at", wed, "--requester", "ci:deploy", "--history", "requester_applied=true", "--history", "requester_checks_last_hour=5"}}, "requester.burst", true, ExitStepUp, "step_up"},
		{"ok/no-burst", [][]string{dev, {"--at", wed, "--requester", "ci:deploy", "--history", "requester_applied=true", "--history", "requester_checks_last_hour=4"}}, "requester.burst", false, ExitOK, "allow"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"eval", "--config", cfg, "-o", "json"}
			for _, a := range tt.args {
				args = append(args, a...)
			}
			r := run(t, "", args...)
			var out struct {
				Decision string `json:"decision"`
				Findings []struct {
					Rule string `json:"rule"`
				} `json:"findings"`
				Context struct {
					Pipeline *struct {
						Ref string `json:"ref"`
					} `json:"pipeline"`
					Time struct {
						Local   string   `json:"local"`
						Windows []string `json:"windows"`
					} `json:"time"`
				} `json:"context"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("eval: exit %d, output is not JSON: %v\n%s%s", r.code, err, r.stdout, r.stderr)
			}
			fired := slices.ContainsFunc(out.Findings, func(f struct {
				Rule string `json:"rule"`
			}) bool {
				return f.Rule == tt.rule
			})
			if fired != tt.fires || r.code != tt.exit || out.Decision != tt.decision {
				t.Errorf("eval: exit %d, decision %s, %s fired %v; want exit %d, %s, fired %v\n%s", r.code, out.Decision, tt.rule, fired, tt.exit, tt.decision, tt.fires, r.stdout)
			}
			if out.Context.Time.Local == "" {
				t.Errorf("the JSON output does not echo the time it used:\n%s", r.stdout)
			}
		})
	}
}

// The context echo says what eval assumed: the normalised pipeline, the
// time in the configured zone, the active windows.
func TestEvalEchoesContext(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "stepgate.yaml", `
policy:
  timezone: Europe/Berlin
  freeze: {windows: [{name: weekend, weekly: {from: "Fri 16:00", to: "Mon 08:00"}}]}
`)
	r := run(t, "", "eval", "--config", cfg, "-o", "json", "--plan", "examples/dev-tag-change.plan.json", "--workspace", "billing-dev",
		"--pipeline", "project_path=acme/infra", "--pipeline", "ref=main", "--pipeline", "ref_type=branch", "--pipeline", "ref_protected=true",
		"--requester", "token:deploy", "--at", "2026-11-14T12:00:00Z")
	var out struct {
		Context struct {
			Pipeline  map[string]any    `json:"pipeline"`
			Requester map[string]any    `json:"requester"`
			Time      map[string]any    `json:"time"`
			History   *map[string]any   `json:"history"`
			Unverif   map[string]string `json:"pipeline_unverified"`
		} `json:"context"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("eval: %v\n%s%s", err, r.stdout, r.stderr)
	}
	c := out.Context
	if c.Pipeline["system"] != "gitlab-ci" || c.Pipeline["repository"] != "acme/infra" || c.Pipeline["ref"] != "refs/heads/main" || c.Pipeline["ref_protected"] != true {
		t.Errorf("pipeline = %v, want GitLab's claims normalised", c.Pipeline)
	}
	if c.Requester["kind"] != "token" || c.Requester["name"] != "deploy" {
		t.Errorf("requester = %v, want token deploy", c.Requester)
	}
	if c.Time["local"] != "2026-11-14T13:00:00+01:00" || c.Time["weekday"] != "Sat" || c.Time["hour"] != float64(13) || !slices.Equal(toStrings(c.Time["windows"]), []string{"weekend"}) {
		t.Errorf("time = %v, want Saturday 13:00 in Berlin, in the weekend window", c.Time)
	}
	if c.History != nil {
		t.Errorf("history = %v, want null offline without --history", *c.History)
	}
}

func TestEvalContextBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--at", "tomorrow"},
		{"--pipeline", "ref"},
		{"--history", "requester_applied=maybe"},
		{"--history", "colour=blue"},
	} {
		r := run(t, "", append([]string{"eval", "--plan", "examples/dev-tag-change.plan.json"}, args...)...)
		if r.code != ExitUsage {
			t.Errorf("eval %v: exit %d, want %d\n%s", args, r.code, ExitUsage, r.stderr)
		}
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
