package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/policy"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stepgate.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	for _, tt := range []struct {
		name  string
		body  string
		check func(t *testing.T, c *Config, pc policy.Config)
	}{
		{"ok/empty", "", func(t *testing.T, c *Config, pc policy.Config) {
			if diff := cmp.Diff(policy.DefaultConfig(), pc); diff != "" {
				t.Errorf("empty file changed the policy (-want +got):\n%s", diff)
			}
			if c.Plan.MaxSize != 512<<20 {
				t.Errorf("max_size = %d, want 512 MiB", c.Plan.MaxSize)
			}
			if c.Plan.SavedPlanBinding != "verify" {
				t.Errorf("saved_plan_binding = %q, want verify", c.Plan.SavedPlanBinding)
			}
		}},
		{"ok/json-only", "plan: {saved_plan_binding: json-only}\n", func(t *testing.T, c *Config, pc policy.Config) {
			if c.Plan.SavedPlanBinding != "json-only" {
				t.Errorf("saved_plan_binding = %q, want json-only", c.Plan.SavedPlanBinding)
			}
		}},
		{"ok/tuning", `
plan:
  max_size: 64MiB
policy:
  production:
    environments: [prod, prod-eu]
    workspaces: ["billing-*"]
    name_attributes:
      google_folder: []
      aws_vpc: [name]
  sensitive_types:
    add: [acme_vault_entry]
    remove: [aws_key_pair]
  stateful_types:
    add: [acme_database]
    remove: [aws_ecr_repository]
  blast_radius:
    max_changes: 100
  rules:
    prod.change:
      production: {aal: 3}
    secret.read:
      outside_production: off
    stateful.destroy:
      enabled: false
`, func(t *testing.T, c *Config, pc policy.Config) {
			if c.Plan.MaxSize != 64<<20 {
				t.Errorf("max_size = %d, want 64 MiB", c.Plan.MaxSize)
			}
			if got := pc.Production.Environments; !cmp.Equal(got, []string{"prod", "prod-eu"}) {
				t.Errorf("environments = %v", got)
			}
			if _, ok := pc.Production.NameAttributes["google_folder"]; ok {
				t.Error("google_folder still has name attributes after an empty list")
			}
			if got := pc.Production.NameAttributes["azurerm_resource_group"]; len(got) == 0 {
				t.Error("defaults for azurerm_resource_group were lost when another type was added")
			}
			if got := pc.SensitiveTypes["custom"]; !cmp.Equal(got, []string{"acme_vault_entry"}) {
				t.Errorf("custom sensitive types = %v", got)
			}
			for _, p := range pc.SensitiveTypes["secrets"] {
				if p == "aws_key_pair" {
					t.Error("aws_key_pair was not removed")
				}
			}
			if pc.BlastRadius.MaxChanges != 100 || pc.BlastRadius.MaxDestructive != 10 {
				t.Errorf("blast radius = %+v, want 100 and the default 10", pc.BlastRadius)
			}
			pr := pc.Rules["prod.change"].Production
			if pr == nil || pr.AAL != 3 || pr.Decision != policy.StepUp || pr.Approvals != 0 {
				t.Errorf("prod.change production = %+v, want aal 3 with the other fields kept", pr)
			}
			if pc.Rules["secret.read"].OutsideProduction != nil {
				t.Error("secret.read outside_production: off did not switch it off")
			}
			if pc.Rules["secret.read"].Production == nil {
				t.Error("secret.read production was lost")
			}
			if pc.Rules["stateful.destroy"].Enabled {
				t.Error("stateful.destroy is still enabled")
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(write(t, tt.body))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			pc, err := c.PolicyConfig()
			if err != nil {
				t.Fatalf("PolicyConfig: %v", err)
			}
			tt.check(t, c, pc)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		body string
		want []string // every one must appear in the error
	}{
		{"fail/unknown-key", "polcy: {}\n", []string{"polcy"}},
		{"fail/not-yaml", "policy: [\n", []string{"yaml"}},
		{"fail/bad-size", "plan: {max_size: lots}\n", []string{`"lots"`}},
		{"fail/bad-binding", "plan: {saved_plan_binding: trust}\n", []string{`plan.saved_plan_binding "trust"`, "verify, json-only"}},
		{"fail/empty-binding", "plan: {saved_plan_binding: \"\"}\n", []string{`plan.saved_plan_binding ""`}},
		{"fail/bad-rule", `
policy:
  rules:
    prod.change:
      production: {decision: maybe, aal: 7}
    blast.radius:
      production: {approvals: -1}
`, []string{`decision "maybe"`, "aal 7", "approvals -1", "policy.rules.prod.change.production", "policy.rules.blast.radius.production"}},
		{"fail/typo-in-rule", "policy: {rules: {prod.change: {production: {aall: 1}}}}\n", []string{`unknown key "aall"`}},
		{"fail/rule-not-mapping", "policy: {rules: {prod.change: {production: [1]}}}\n", []string{"want a mapping"}},
		{"fail/aal-not-number", "policy: {rules: {prod.change: {production: {aal: high}}}}\n", []string{"aal"}},
		{"fail/negative-threshold", "policy: {blast_radius: {max_changes: -5}}\n", []string{"max_changes: -5"}},
		{"fail/no-environments", "policy: {production: {environments: []}}\n", []string{"environments"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.body))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Load error %v is not ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

func TestOIDCCLIClient(t *testing.T) {
	for _, tt := range []struct {
		name, cli string
		ok        bool
	}{
		{"ok/none", "", true},
		{"ok/separate-public-client", "stepgate-cli", true},
		{"fail/the-web-client", "stepgate", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{Database: "sqlite://x.db", OIDC: &OIDC{Issuer: "https://sso.example.com", ClientID: "stepgate", CLIClientID: tt.cli}}
			err := s.Validate()
			if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "server.oidc.cli_client_id")) {
				t.Errorf("Validate() with cli_client_id %q = %v, want ok %v", tt.cli, err, tt.ok)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "100000000", want: 100000000},
		{in: "512MiB", want: 512 << 20},
		{in: "512 MiB", want: 512 << 20},
		{in: "64mib", want: 64 << 20},
		{in: "1GB", want: 1e9},
		{in: "1.5 GB", want: 1.5e9},
		{in: "2Gi", want: 2 << 30},
		{in: "10k", want: 10000},
		{in: "1TiB", want: 1 << 40},
		{in: "2TiB", err: true},
		{in: "0", err: true},
		{in: "", err: true},
		{in: "MiB", err: true},
		{in: "12 parsecs", err: true},
		{in: "-5MiB", err: true},
		{in: "1e3", err: true},
	} {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// An unknown key is named by its path in the file, with the closest known
// key suggested; Go types never reach the message.
func TestUnknownKeysAreNamed(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		want      []string
	}{
		{"fail/typo-in-plan", "plan:\n  max_sise: 5MiB\n", []string{"line 2: unknown key plan.max_sise (did you mean plan.max_size?)"}},
		{"fail/typo-in-anonymous-struct", "policy:\n  blast_radius:\n    max_change: 4\n", []string{"unknown key policy.blast_radius.max_change (did you mean policy.blast_radius.max_changes?)"}},
		{"fail/two-typos", "server:\n  listn: x\n  audiense: y\n", []string{"line 2: unknown key server.listn (did you mean server.listen?)", "line 3: unknown key server.audiense (did you mean server.audience?)"}},
		{"fail/nothing-close", "server:\n  frobnicate: 1\n", []string{"line 2: unknown key server.frobnicate"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.decode([]byte(tt.doc))
			if err == nil {
				t.Fatal("decode = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "type ") || strings.Contains(err.Error(), "struct") {
				t.Errorf("error %q names a Go type", err)
			}
			if strings.Contains(tt.name, "nothing-close") && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("error %q suggests a key that is not close", err)
			}
		})
	}
}

func TestRedactSecrets(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"ok/url userinfo", "postgres://u:s3cret@db:5432/x", "postgres://u:xxxxx@db:5432/x"},
		{"ok/url query", "postgres://u@db/x?sslmode=disable&password=s3cret", "postgres://u@db/x?sslmode=disable&password=xxxxx"},
		{"ok/key value", "host=db user=u password=s3cret dbname=x", "host=db user=u password=xxxxx dbname=x"},
		{"ok/key value quoted", "host=db password='s3 cr\\'et' dbname=x", "host=db password=xxxxx dbname=x"},
		{"ok/in an error", `opening "postgresql://u:s3cret@db/x": refused`, `opening "postgresql://u:xxxxx@db/x": refused`},
		{"ok/no password", "postgres://u@db/x", "postgres://u@db/x"},
		{"ok/email untouched", "approved by alice@example.com", "approved by alice@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactSecrets(tc.in); got != tc.want || strings.Contains(got, "s3cret") {
				t.Errorf("RedactSecrets(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAuditSettings(t *testing.T) {
	c := Default()
	if time.Duration(c.Server.Audit.CheckpointInterval) != time.Minute || c.Server.Audit.CheckpointFile != "" {
		t.Errorf("default audit settings = %+v, want a 1m interval and no file", c.Server.Audit)
	}
	if err := c.decode([]byte("server:\n  audit:\n    checkpoint_file: /var/log/stepgate/checkpoints.jsonl\n    checkpoint_interval: 30s\n")); err != nil {
		t.Fatal(err)
	}
	if c.Server.Audit.CheckpointFile != "/var/log/stepgate/checkpoints.jsonl" || time.Duration(c.Server.Audit.CheckpointInterval) != 30*time.Second {
		t.Errorf("audit settings = %+v", c.Server.Audit)
	}
	c.ApplyEnv(func(k string) string {
		if k == EnvCheckpointFile {
			return "/elsewhere.jsonl"
		}
		return ""
	})
	if c.Server.Audit.CheckpointFile != "/elsewhere.jsonl" {
		t.Errorf("%s did not set the checkpoint file: %q", EnvCheckpointFile, c.Server.Audit.CheckpointFile)
	}
	c.Server.Audit.CheckpointInterval = Duration(2 * time.Minute)
	if err := c.Server.Validate(); err == nil || !strings.Contains(err.Error(), "server.audit.checkpoint_interval") {
		t.Errorf("Validate(2m interval) = %v, want an error naming server.audit.checkpoint_interval", err)
	}
}

// TestDeployExamplesLoad: the example configuration shipped for systemd
// is valid as it stands.
func TestDeployExamplesLoad(t *testing.T) {
	c, err := Load("../../deploy/systemd/stepgate.yaml")
	if err != nil {
		t.Fatalf("Load(deploy/systemd/stepgate.yaml) = %v", err)
	}
	if err := c.Server.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if c.Server.PublicURL != "https://stepgate.example.com" || len(c.Server.TrustedProxies) != 2 {
		t.Errorf("server = %+v", c.Server)
	}
}

func TestBreakGlassSettings(t *testing.T) {
	for _, tt := range []struct {
		name, yaml string
		wantErr    string // a key path the error names; "" for none
	}{
		{"ok/off", "server:\n  database: sqlite://x.db\n", ""},
		{"ok/every-key", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: oncall\n    grant_ttl: 2m\n    review_within: 12h\n    fresh_passkey: 3m\n    allow_deny_rules: [plan.errored]\n    remind_every: 30m\n", ""},
		{"fail/keys-without-group", "server:\n  database: sqlite://x.db\n  break_glass:\n    grant_ttl: 2m\n", "server.break_glass.group"},
		{"fail/grant-ttl-too-long", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: oncall\n    grant_ttl: 2h\n", "server.break_glass.grant_ttl"},
		{"fail/grant-ttl-longer-than-grants", "server:\n  database: sqlite://x.db\n  grant_ttl: 1m\n  break_glass:\n    group: oncall\n    grant_ttl: 5m\n", "server.break_glass.grant_ttl"},
		{"fail/stale-passkey", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: oncall\n    fresh_passkey: 1h\n", "server.break_glass.fresh_passkey"},
		{"fail/review-too-short", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: oncall\n    review_within: 1m\n", "server.break_glass.review_within"},
		{"fail/remind-too-often", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: oncall\n    remind_every: 1s\n", "server.break_glass.remind_every"},
		{"fail/blank-rule", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: oncall\n    allow_deny_rules: [\"\"]\n", "server.break_glass.allow_deny_rules[0]"},
		{"fail/group-with-spaces", "server:\n  database: sqlite://x.db\n  break_glass:\n    group: \" oncall\"\n", "server.break_glass.group"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if err := c.decode([]byte(tt.yaml)); err != nil {
				t.Fatal(err)
			}
			err := c.Server.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestHCPTerraformSettings(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    *HCPTerraform
		want []string // every one must appear in the error; none: valid
	}{
		{"ok/none", nil, nil},
		{"ok/defaults", &HCPTerraform{HMACKeyFile: "/k"}, nil},
		{"ok/tfe-and-test-hosts", &HCPTerraform{HMACKeyFile: "/k", APIHosts: []string{"tfe.example.com", "127.0.0.1:8443"}, Workspace: "{organization}-{workspace_id}", Heartbeat: Duration(time.Minute)}, nil},
		{"fail/no-key", &HCPTerraform{}, []string{"server.integrations.hcp_terraform.hmac_key_file"}},
		{"fail/unknown-placeholder", &HCPTerraform{HMACKeyFile: "/k", Workspace: "{org}/{workspace}"}, []string{"server.integrations.hcp_terraform.workspace", "{org}"}},
		{"fail/heartbeat-too-long", &HCPTerraform{HMACKeyFile: "/k", Heartbeat: Duration(10 * time.Minute)}, []string{"server.integrations.hcp_terraform.heartbeat"}},
		{"fail/url-as-host", &HCPTerraform{HMACKeyFile: "/k", APIHosts: []string{"https://app.terraform.io"}}, []string{"server.integrations.hcp_terraform.api_hosts"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Server{Database: "sqlite://x.db", Integrations: Integrations{HCPTerraform: tt.h}}).Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
