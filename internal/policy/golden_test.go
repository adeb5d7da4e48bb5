package policy

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func newEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(context.Background(), DefaultConfig(), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func assessFile(t testing.TB, e *Engine, path string, op Operation) *Assessment {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := e.NewInput(op)
	p, err := plan.Decode(f, plan.Options{}, in.Add)
	if err != nil {
		t.Fatalf("Decode(%s): %v", path, err)
	}
	in.SetPlan(p)
	a, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatalf("Evaluate(%s): %v", path, err)
	}
	return a
}

// TestGolden pins the assessment of a curated set of real plans across AWS,
// Azure, Google Cloud, Kubernetes and Pulumi. Rewrite with -update and
// review the diff.
func TestGolden(t *testing.T) {
	e := newEngine(t)
	for _, tt := range []struct {
		name, plan, workspace, environment string
	}{
		{"aws-iam-dev", "plans/regula/admin_policy_infra.json", "platform-dev", ""},
		{"aws-55-creates-prod", "plans/checkov/plan_tfplan.json", "shop-prod", ""},
		{"aws-destroy", "plans/snyk-cli/tf-plan-destroy.json", "sandbox", ""},
		{"aws-tagged-production", "plans/terraform-compliance/test_dynamodb_kms_key_problem_plan.out.json", "orders", ""},
		{"aws-replace-dev", "plans/learn-terraform-plan/tfplan-input-var.json", "learn", "dev"},
		{"aws-kubernetes-secrets", "plans/overmind-cli/plan.json", "core", "live"},
		{"azure-comprehensive", "plans/tfplan2md/comprehensive-demo_plan.json", "demo", ""},
		{"azure-role-assignments", "plans/tfplan2md/role-assignments.json", "access", ""},
		{"azure-nsg-prod", "plans/regula/security_group_no_inbound_22_infra.json", "network", "production"},
		{"gcp-iam-binding", "plans/terraform-google-conversion/iamBinding.tfplan.json", "iam", ""},
		{"gcp-firewall", "plans/terraform-validator/full_compute_firewall.tfplan.json", "net-prd", ""},
		{"gcp-all-no-op", "plans/opa-policies-tfc/tfplan.json", "gke-prod", ""},
		{"many-creates", "plans/terraform-plan-comment/7-create-hundreds_plan.json", "files", ""},
		{"errored", "plans/opentofu/show-json_plan-error.json", "any", ""},
		{"no-changes", "plans/terraform-json/no_changes_plan.json", "billing-prod", ""},
		{"pulumi-deletes", "plans/stratify-pulumi/sample-preview-deletes.json", "sample-dev", ""},
		{"example-billing-rg-prod", "../examples/billing-rg-prod.plan.json", "billing", ""},
		{"example-dev-tag-change", "../examples/dev-tag-change.plan.json", "billing-dev", ""},
		{"example-prod-iam", "../examples/prod-iam.plan.json", "billing-prod", ""},
		{"stepgate-asg-tag-blocks-prod", "plans/stepgate/asg-tag-blocks-prod.json", "sandbox", ""},
		{"stepgate-azure-roles", "plans/stepgate/azure-roles.json", "sandbox", ""},
		{"stepgate-digitalocean-db-open", "plans/stepgate/digitalocean-db-open.json", "sandbox", ""},
		{"stepgate-empty-unapplyable-1.9", "plans/stepgate/empty-unapplyable-1.9.json", "sandbox", ""},
		{"stepgate-hcloud-digitalocean-web", "plans/stepgate/hcloud-digitalocean-web.json", "sandbox", ""},
		{"stepgate-iam-narrowed", "plans/stepgate/iam-narrowed.json", "sandbox", ""},
		{"stepgate-iam-passrole-and-admin", "plans/stepgate/iam-passrole-and-admin.json", "sandbox", ""},
		{"stepgate-kubernetes-cluster-admin", "plans/stepgate/kubernetes-cluster-admin.json", "sandbox", ""},
		{"stepgate-kubernetes-namespaced-reader", "plans/stepgate/kubernetes-namespaced-reader.json", "sandbox", ""},
		{"stepgate-kubernetes-prod-labels", "plans/stepgate/kubernetes-prod-labels.json", "sandbox", ""},
		{"stepgate-kubernetes-prod-namespace", "plans/stepgate/kubernetes-prod-namespace.json", "sandbox", ""},
		{"stepgate-lambda-role-scoped", "plans/stepgate/lambda-role-scoped.json", "sandbox", ""},
		{"stepgate-lambda-role-star", "plans/stepgate/lambda-role-star.json", "sandbox", ""},
		{"stepgate-null-resources-prod", "plans/stepgate/null-resources-prod.json", "sandbox", ""},
		{"stepgate-oci-defined-tags-prod", "plans/stepgate/oci-defined-tags-prod.json", "sandbox", ""},
		{"stepgate-oci-policy-and-security-list", "plans/stepgate/oci-policy-and-security-list.json", "sandbox", ""},
		{"stepgate-protection-kept", "plans/stepgate/protection-kept.json", "sandbox", ""},
		{"stepgate-protection-removed", "plans/stepgate/protection-removed.json", "sandbox", ""},
		{"stepgate-public-bucket-and-db", "plans/stepgate/public-bucket-and-db.json", "sandbox", ""},
		{"stepgate-pulumi-stack-prod-eu", "plans/stepgate/pulumi-stack-prod-eu.json", "sandbox", ""},
		{"stepgate-saas-admins", "plans/stepgate/saas-admins.json", "sandbox", ""},
		{"stepgate-security-group-ssh-open", "plans/stepgate/security-group-ssh-open.json", "sandbox", ""},
		{"stepgate-security-group-web-only", "plans/stepgate/security-group-web-only.json", "sandbox", ""},
		{"stepgate-yandex-security-group-ssh", "plans/stepgate/yandex-security-group-ssh.json", "sandbox", ""},
		{"stepgate-lambda-role-scoped-prod", "plans/stepgate/lambda-role-scoped.json", "media-prod", ""},
		{"stepgate-lambda-role-star-prod", "plans/stepgate/lambda-role-star.json", "media-prod", ""},
		{"stepgate-protection-removed-prod", "plans/stepgate/protection-removed.json", "orders", "production"},
		{"stepgate-security-group-ssh-open-prod", "plans/stepgate/security-group-ssh-open.json", "edge-prd", ""},
		{"tf18-empty-unapplyable", "plans/terraform-plan-comment/4-empty_plan.json", "billing-dev", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := assessFile(t, e, filepath.Join("../../testdata", tt.plan), Operation{Kind: "terraform.apply", Workspace: tt.workspace, Environment: tt.environment})
			got, err := json.MarshalIndent(a, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("assessment of %s mismatch (-want +got):\n%s", tt.plan, diff)
			}
		})
	}
}

// TestMotivatingExample is the case stepgate exists for: an apply touching
// the resource group of production billing systems needs a step-up, while a
// tag change in a dev workspace passes at once.
func TestMotivatingExample(t *testing.T) {
	e := newEngine(t)
	prod := assessFile(t, e, "../../examples/billing-rg-prod.plan.json", Operation{Kind: "terraform.apply", Workspace: "billing"})
	if prod.Decision != StepUp || prod.Requirements == nil || prod.Requirements.AAL < 2 {
		t.Errorf("billing resource group in production: decision %s %+v, want step_up at aal 2 or more", prod.Decision, prod.Requirements)
	}
	if !prod.Summary.Production || !strings.Contains(strings.Join(prod.Summary.ProductionReasons, " "), "named rg-billing-prod") {
		t.Errorf("production reasons = %v, want the resource group's name", prod.Summary.ProductionReasons)
	}
	dev := assessFile(t, e, "../../examples/dev-tag-change.plan.json", Operation{Kind: "terraform.apply", Workspace: "billing-dev"})
	if dev.Decision != Allow || len(dev.Findings) != 0 {
		t.Errorf("dev tag change: decision %s with %d findings, want allow with none", dev.Decision, len(dev.Findings))
	}
}
