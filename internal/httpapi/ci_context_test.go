package httpapi

import (
	"slices"
	"testing"
	"time"
)

// A production apply for a feature branch is denied by the CI token's
// verified claims, whatever the request says of itself; the same from a
// protected main steps up as before.
func TestCITokenUntrustedRef(t *testing.T) {
	e := newCIEnv(t)
	base := e.issuer.GitHubClaims("stepgate", time.Now())
	payments := func(ref, protected, runID string) string {
		return e.issuer.Token(t, base, func(m map[string]any) {
			m["repository"], m["ref"], m["ref_protected"], m["run_id"] = "acme/payments", ref, protected, runID
		})
	}
	for _, tt := range []struct {
		name  string
		token string
		query string
		state string
		fires bool
	}{
		{"attack/feature-branch-claiming-main", payments("refs/heads/feature-x", "false", "1"),
			"&pipeline.ref=refs/heads/main&pipeline.ref_protected=true&pipeline.event_name=push", "denied", true},
		{"ok/feature-branch", payments("refs/heads/feature-x", "false", "2"), "", "denied", true},
		{"ok/protected-main", payments("refs/heads/main", "true", "3"), "", "pending", false},
		// What the request says cannot make a trusted run untrusted either:
		// no built-in rule reads it.
		{"ok/main-claiming-feature", payments("refs/heads/main", "true", "4"), "&pipeline.ref=refs/heads/feature-x&pipeline.event_name=pull_request", "pending", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-prod"+tt.query, tt.token, planBody(t, "dev-tag-change.plan.json"))
			if resp.StatusCode != 201 {
				t.Fatalf("status = %d: %s", resp.StatusCode, b)
			}
			c := decodeCheck(t, b)
			var rules []string
			for _, f := range c.Assessment.Findings {
				rules = append(rules, f.Rule)
			}
			if c.State != tt.state || slices.Contains(rules, "pipeline.untrusted_ref") != tt.fires {
				t.Errorf("check = %s %v, want %s with pipeline.untrusted_ref %v", c.State, rules, tt.state, tt.fires)
			}
			if tt.state == "pending" && !slices.Contains(rules, "prod.change") {
				t.Errorf("rules = %v, want prod.change as before", rules)
			}
		})
	}
}
