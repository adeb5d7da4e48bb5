package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestDecodeFindings(t *testing.T) {
	for _, tt := range []struct {
		name, findings string
		want           []Finding
		err            string
	}{
		{
			name:     "step_up with requirements",
			findings: `[{"rule": "acme.x", "decision": "step_up", "addresses": ["b", "a"], "reason": "r", "requirements": {"aal": 3, "approvals": 1, "methods": ["hwk"], "extra": true}, "note": "ignored"}]`,
			want: []Finding{{Rule: "acme.x", Decision: StepUp, Severity: "high", Addresses: []string{"b", "a"}, Reason: "r",
				Requirements: &Requirements{AAL: 3, Approvals: 1, MaxAge: DefaultMaxAge(3), Methods: []string{"hwk"}}}},
		},
		{
			name:     "addresses as a set, defaults",
			findings: `[{"rule": "acme.x", "decision": "step_up", "addresses": {"b", "a"}, "reason": "r", "requirements": null}]`,
			want: []Finding{{Rule: "acme.x", Decision: StepUp, Severity: "high", Addresses: []string{"a", "b"}, Reason: "r",
				Requirements: &Requirements{AAL: 2, MaxAge: DefaultMaxAge(2)}}},
		},
		{
			name:     "deny without addresses",
			findings: `[{"rule": "acme.x", "decision": "deny", "reason": "r", "severity": "medium"}]`,
			want:     []Finding{{Rule: "acme.x", Decision: Deny, Severity: "medium", Addresses: []string{}, Reason: "r"}},
		},
		{name: "not a list", findings: `{"rule": "x"}`, err: "findings are an object, want a list"},
		{name: "not an object", findings: `["x"]`, err: "finding 0 (\"x\"): a finding is a string, want an object"},
		{name: "rule not a string", findings: `[{"rule": 1, "decision": "deny", "reason": "r"}]`, err: "rule is a number, want a string"},
		{name: "no rule", findings: `[{"decision": "deny", "reason": "r"}]`, err: "it has no rule id"},
		{name: "bad decision", findings: `[{"rule": "acme.x", "decision": "maybe", "reason": "r"}]`, err: "finding of rule acme.x: its decision is not"},
		{name: "no reason", findings: `[{"rule": "acme.x", "decision": "deny"}]`, err: "has no reason"},
		{name: "addresses not strings", findings: `[{"rule": "acme.x", "decision": "deny", "reason": "r", "addresses": [1]}]`, err: "addresses holds a number, want strings"},
		{name: "addresses a string", findings: `[{"rule": "acme.x", "decision": "deny", "reason": "r", "addresses": "a"}]`, err: "addresses is a string, want a list of strings"},
		{name: "fractional aal", findings: `[{"rule": "acme.x", "decision": "step_up", "reason": "r", "requirements": {"aal": 2.5}}]`, err: "aal is 2.5, want a whole number"},
		{name: "aal a string", findings: `[{"rule": "acme.x", "decision": "step_up", "reason": "r", "requirements": {"aal": "3"}}]`, err: "aal is a string, want a whole number"},
		{name: "aal out of range", findings: `[{"rule": "acme.x", "decision": "step_up", "reason": "r", "requirements": {"aal": 4}}]`, err: "aal 4 is not 1, 2 or 3"},
		{name: "requirements a list", findings: `[{"rule": "acme.x", "decision": "step_up", "reason": "r", "requirements": []}]`, err: "requirements is an array, want an object"},
		{name: "bad severity", findings: `[{"rule": "acme.x", "decision": "deny", "reason": "r", "severity": "urgent"}]`, err: `severity "urgent" is not one of`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFindings(ast.MustParseTerm(tt.findings))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
