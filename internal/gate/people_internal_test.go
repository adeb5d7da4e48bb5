package gate

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stepgate/stepgate/internal/plan"
)

// The review page reads back what CreateCheck stored: every kept change as
// it was, and how many were left out.
func TestChangeLogRoundTrip(t *testing.T) {
	a := plan.Change{Address: "aws_iam_role.ci", Type: "aws_iam_role", Name: "ci", Provider: "registry.terraform.io/hashicorp/aws", Mode: plan.ModeManaged,
		Actions: []string{"update"}, Action: plan.ActionUpdate, Before: json.RawMessage(`{"name":"ci","tags":{"env":"dev"}}`), After: json.RawMessage(`{"name":"ci","tags":{"env":"prod"}}`),
		AfterUnknown: []string{"arn"}}
	b := plan.Change{Address: `module.db.aws_db_instance.main["eu"]`, Type: "aws_db_instance", Name: "main", Index: "eu", Provider: "aws", Mode: plan.ModeManaged,
		Actions: []string{"delete", "create"}, Action: plan.ActionReplace, Before: json.RawMessage(`{"password":"(sensitive value)"}`), After: json.RawMessage(`null`)}
	for _, tc := range []struct {
		name    string
		changes []plan.Change
		dropped int
	}{
		{"none", nil, 0},
		{"two", []plan.Change{a, b}, 0},
		{"some dropped", []plan.Change{a}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l changeLog
			for i := range tc.changes {
				l.add(&tc.changes[i])
			}
			l.dropped += tc.dropped
			raw := l.json()
			var got Changes
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("stored changes are not valid JSON: %v\n%s", err, raw)
			}
			want := Changes{Changes: tc.changes, Dropped: tc.dropped}
			if want.Changes == nil {
				want.Changes = []plan.Change{}
			}
			// Index decodes as what JSON holds: compare through JSON.
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(got)
			if !reflect.DeepEqual(wb, gb) {
				t.Errorf("read back:\n%s\nwant:\n%s", gb, wb)
			}
		})
	}
}
