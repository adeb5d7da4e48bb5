package plan

import (
	"errors"
	"strings"
	"testing"
)

// TestRefusesPlanLog: `terraform plan -json` writes a stream of UI
// messages, one JSON object per line (the machine-readable UI of
// Terraform 0.15.3+). It is not a plan and must be refused with a message
// that says what to give instead.
func TestRefusesPlanLog(t *testing.T) {
	const log = `{"@level":"info","@message":"Terraform 1.9.5","@module":"terraform.ui","@timestamp":"2024-09-01T10:00:00.000000Z","terraform":"1.9.5","type":"version","ui":"1.2"}
{"@level":"info","@message":"aws_security_group_rule.ssh: Plan to create","@module":"terraform.ui","@timestamp":"2024-09-01T10:00:01.000000Z","change":{"resource":{"addr":"aws_security_group_rule.ssh","module":"","resource":"aws_security_group_rule.ssh","implied_provider":"aws","resource_type":"aws_security_group_rule","resource_name":"ssh","resource_key":null},"action":"create"},"type":"planned_change"}
{"@level":"info","@message":"Plan: 1 to add, 0 to change, 0 to destroy.","@module":"terraform.ui","@timestamp":"2024-09-01T10:00:01.000000Z","changes":{"add":1,"change":0,"import":0,"remove":0,"operation":"plan"},"type":"change_summary"}
`
	for name, doc := range map[string]string{"stream": log, "one-line": strings.SplitN(log, "\n", 2)[0]} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(doc), Options{}, func(*Change) error { return nil })
			if !errors.Is(err, ErrNotPlan) {
				t.Fatalf("Decode = %v, want ErrNotPlan", err)
			}
			if want := "this is the log of terraform plan; give the output of terraform show -json"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		})
	}
}
