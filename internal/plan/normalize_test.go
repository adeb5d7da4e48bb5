package plan

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readFixture(t *testing.T, name string) *Plan {
	t.Helper()
	f, err := os.Open(fixturesDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Read(f, Options{})
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	return p
}

func find(t *testing.T, p *Plan, addr string) Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Address == addr {
			return c
		}
	}
	t.Fatalf("no change %s in plan", addr)
	return Change{}
}

func TestNormalize(t *testing.T) {
	ignoreValues := cmpopts.IgnoreFields(Change{}, "Before", "After")
	for _, tt := range []struct {
		name, fixture, address string
		want                   Change
		before, after          any // when set, the decoded values must match
	}{
		{
			name: "ok/replace-delete-create", fixture: "learn-terraform-plan/tfplan-input-var.json",
			address: "module.hello.random_pet.server",
			want: Change{
				Address: "module.hello.random_pet.server", ModuleAddress: "module.hello",
				Type: "random_pet", Name: "server", Provider: "registry.terraform.io/hashicorp/random",
				Mode: ModeManaged, Actions: []string{"delete", "create"}, Action: ActionReplace,
				ActionReason: "replace_because_cannot_update",
				AfterUnknown: []string{"id"}, ReplacePaths: []string{"keepers"},
				SensitivePaths: []string{"keepers.secret_key"},
			},
		},
		{
			name: "ok/replace-create-delete", fixture: "tfplan-validator/create-delete_plan.json",
			address: "local_file.foo",
			want: Change{
				Address: "local_file.foo", Type: "local_file", Name: "foo",
				Provider: "registry.terraform.io/hashicorp/local", Mode: ModeManaged,
				Actions: []string{"create", "delete"}, Action: ActionReplace,
				ActionReason: "replace_because_cannot_update",
				AfterUnknown: []string{"id"}, ReplacePaths: []string{"content"},
			},
		},
		{
			name: "ok/forget", fixture: "terraform-plan-comment/3-remove_plan.json", address: "local_file.test2",
			want: Change{
				Address: "local_file.test2", Type: "local_file", Name: "test2",
				Provider: "registry.terraform.io/hashicorp/local", Mode: ModeManaged,
				Actions: []string{"forget"}, Action: ActionForget,
				ActionReason: "delete_because_no_resource_config",
			},
		},
		{
			name: "ok/import", fixture: "cds-snc-terraform-plan/import.json",
			address: "aws_cloudwatch_log_group.controltower-notificationforwarder",
			want: Change{
				Address: "aws_cloudwatch_log_group.controltower-notificationforwarder", Type: "aws_cloudwatch_log_group",
				Name: "controltower-notificationforwarder", Provider: "registry.terraform.io/hashicorp/aws", Mode: ModeManaged,
				Actions: []string{"no-op"}, Action: ActionImport, Importing: true,
			},
		},
		{
			name: "ok/sensitive-masked", fixture: "tf-plan-format/sensitive_terraform.tfplan.json", address: "random_bytes.test",
			before: map[string]any{"base64": Mask, "hex": Mask, "keepers": nil, "length": json.Number("4")},
			after:  map[string]any{"keepers": nil, "length": json.Number("8")},
			want: Change{
				Address: "random_bytes.test", Type: "random_bytes", Name: "test",
				Provider: "registry.terraform.io/hashicorp/random", Mode: ModeManaged,
				Actions: []string{"delete", "create"}, Action: ActionReplace,
				ActionReason:   "replace_because_cannot_update",
				AfterUnknown:   []string{"base64", "hex"},
				SensitivePaths: []string{"base64", "hex"},
				ReplacePaths:   []string{"length"},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := find(t, readFixture(t, tt.fixture), tt.address)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), ignoreValues); diff != "" {
				t.Errorf("change %s mismatch (-want +got):\n%s", tt.address, diff)
			}
			if tt.before == nil && tt.after == nil {
				return
			}
			before, after, err := got.Values()
			if err != nil {
				t.Fatalf("Values: %v", err)
			}
			if diff := cmp.Diff([]any{tt.before, tt.after}, []any{before, after}); diff != "" {
				t.Errorf("values of %s mismatch (-want +got):\n%s", tt.address, diff)
			}
		})
	}
}

func TestNoSensitiveValueLeaks(t *testing.T) {
	// The fixture's real secret material must appear nowhere in what is
	// passed on.
	p := readFixture(t, "tf-plan-format/sensitive_terraform.tfplan.json")
	b, err := json.Marshal(p.Changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hxk5iA==", "87193988"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("sensitive value %q leaked into the normalized changes", secret)
		}
	}
}

func TestPulumi(t *testing.T) {
	p := readFixture(t, "stratify-pulumi/sample-preview-deletes.json")
	if p.Format != FormatPulumi {
		t.Fatalf("Format = %q, want pulumi", p.Format)
	}
	const urn = "urn:pulumi:dev::sample::aws:s3/bucket:Bucket$aws:s3:BucketEventSubscription$aws:iam/rolePolicyAttachment:RolePolicyAttachment::docsHandler-4aaabb8e"
	c := find(t, p, urn)
	want := Change{
		Address: urn, Type: "aws:iam/rolePolicyAttachment:RolePolicyAttachment", Name: "docsHandler-4aaabb8e",
		Provider: "aws", Mode: ModeManaged, Actions: []string{"delete"}, Action: ActionDelete,
	}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Change{}, "Before", "After"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("pulumi change mismatch (-want +got):\n%s", diff)
	}
	if c.Before == nil {
		t.Error("a pulumi delete has no before values")
	}
}

func TestPulumiSecretsAndReplace(t *testing.T) {
	const doc = `{"steps":[
	 {"op":"create-replacement","urn":"urn:pulumi:prod::app::aws:rds/instance:Instance::db","newState":{"type":"aws:rds/instance:Instance","inputs":{"password":{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","value":"hunter2hunter2"}}}},
	 {"op":"replace","urn":"urn:pulumi:prod::app::aws:rds/instance:Instance::db"},
	 {"op":"delete-replaced","urn":"urn:pulumi:prod::app::aws:rds/instance:Instance::db"},
	 {"op":"same","urn":"urn:pulumi:prod::app::pulumi:pulumi:Stack::app-prod"}],
	 "diagnostics":[{"severity":"error","message":"boom"}],"changeSummary":{}}`
	p, err := Read(strings.NewReader(doc), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || p.Changes[0].Action != ActionReplace {
		t.Fatalf("changes = %+v, want one replace for the three replacement steps", p.Changes)
	}
	if !p.Errored {
		t.Error("an error diagnostic did not mark the plan errored")
	}
	b, _ := json.Marshal(p.Changes)
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("pulumi secret leaked: %s", b)
	}
}

func TestPlanFlags(t *testing.T) {
	for _, tt := range []struct {
		fixture               string
		errored, applyable    bool
		format, version, tool string
	}{
		{"opentofu/show-json_plan-error.json", true, true, "terraform", "1.2", "1.12.0-dev"},
		{"terraform-json/basic_plan.json", false, true, "terraform", "0.1", "0.12.0"},
		{"opentofu/cloud_plan-json-full_plan-redacted.json", false, true, "hcp-terraform", "1.1", ""},
		{"overmind-cli/plan.json", false, true, "terraform", "", ""},
	} {
		t.Run(tt.fixture, func(t *testing.T) {
			p := readFixture(t, tt.fixture)
			got := []any{p.Errored, p.Applyable, string(p.Format), p.FormatVersion}
			want := []any{tt.errored, tt.applyable, tt.format, tt.version}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errored, applyable, format, version mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
