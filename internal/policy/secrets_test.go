package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// policy.secrets in stepgate.yaml raises what reading the matching secrets
// asks for, and says why in the finding.
func TestSecretRequirements(t *testing.T) {
	var o Overrides
	src := `secrets: {"billing/db-*": {aal: 3, approvals: 2, groups: [dba]}}`
	if err := yaml.Unmarshal([]byte(src), &o); err != nil {
		t.Fatal(err)
	}
	cfg := o.Apply(DefaultConfig())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		op      Operation
		want    Requirements
		reasons []string
	}{
		{
			name: "ok/default-outside-production",
			op:   Operation{Kind: "secret.read", Workspace: "billing-dev", Secrets: []SecretRef{{Name: "billing/api", Workspace: "billing-*"}}},
			want: Requirements{AAL: 3, Approvals: 0, MaxAge: 300},
		},
		{
			name: "ok/default-in-production",
			op:   Operation{Kind: "secret.read", Workspace: "billing-prod", Secrets: []SecretRef{{Name: "billing/api", Workspace: "billing-*"}}},
			want: Requirements{AAL: 3, Approvals: 1, MaxAge: 300},
		},
		{
			name: "ok/per-secret-pattern",
			op:   Operation{Kind: "secret.read", Workspace: "billing-dev", Secrets: []SecretRef{{Name: "billing/api", Workspace: "*"}, {Name: "billing/db-main", Workspace: "billing-*"}}},
			want: Requirements{AAL: 3, Approvals: 2, MaxAge: 300, Groups: []string{"dba"}},
			reasons: []string{
				`Secret billing/db-main matches policy.secrets["billing/db-*"], which asks for aal 3 and 2 approvals from group dba.`,
				"Releases 2 secrets to the pipeline: billing/api, billing/db-main.",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := e.NewInput(tt.op)
			a, err := e.Evaluate(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if a.Decision != StepUp || a.Requirements == nil {
				t.Fatalf("Evaluate() = %s, want step_up", a.Decision)
			}
			if diff := cmp.Diff(tt.want, *a.Requirements); diff != "" {
				t.Errorf("requirements mismatch (-want +got):\n%s", diff)
			}
			var reasons []string
			for _, f := range a.Findings {
				reasons = append(reasons, f.Reason)
			}
			for _, r := range tt.reasons {
				if !strings.Contains(strings.Join(reasons, "\n"), r) {
					t.Errorf("reasons %q do not say %q", reasons, r)
				}
			}
		})
	}
}

func TestSecretRequirementsValidate(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"fail/aal", `secrets: {"a/*": {aal: 4}}`, `policy.secrets["a/*"]: aal 4 is not 1, 2 or 3`},
		{"fail/negative-approvals", `secrets: {"a/*": {aal: 3, approvals: -1}}`, "approvals -1 is negative"},
		{"fail/empty-group", `secrets: {"a/*": {aal: 3, groups: [""]}}`, "empty group name"},
		{"fail/decision", `secrets: {"a/*": {aal: 3, decision: maybe}}`, `decision "maybe"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var o Overrides
			if err := yaml.Unmarshal([]byte(tt.src), &o); err != nil {
				t.Fatal(err)
			}
			err := o.Apply(DefaultConfig()).Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
