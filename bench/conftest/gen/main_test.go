package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
)

// TestCopyIsCurrent fails when bench/conftest holds an older copy of the
// built-in policy than internal/policy: run `go run ./bench/conftest/gen`.
func TestCopyIsCurrent(t *testing.T) {
	bad, err := stale("..")
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("bench/conftest is stale (%v): run go run ./bench/conftest/gen", bad)
	}
}

// TestConftestCopyAgrees runs the conftest copy of the policy (this
// directory's Rego, with OPA as conftest embeds it) and stepgate's engine
// on every plan of testdata/plans, and requires the same findings: the
// same rules with the same addresses. It checks the pure-Rego functions and
// input adapter of the copy against stepgate's Go ones.
func TestConftestCopyAgrees(t *testing.T) {
	ctx := context.Background()
	var mods []func(*rego.Rego)
	for _, name := range []string{"policy.rego", "adapter.rego", "functions.rego", "stepgate_lib.rego", "stepgate_builtin.rego", "stepgate_risks.rego", "stepgate_context.rego"} {
		b, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, rego.Module(name, string(b)))
	}
	cfg, err := os.ReadFile("../data/stepgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(cfg, &data); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir("../../../testdata/plans", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, workspace := range []string{"sandbox", "billing-prod"} {
		data["workspace"] = workspace
		q, err := rego.New(append(mods,
			rego.Query("data.stepgate.rules.builtin.findings"),
			rego.Store(inmem.NewFromObject(data)),
			rego.SetRegoVersion(ast.RegoV1),
		)...).PrepareForEval(ctx)
		if err != nil {
			t.Fatalf("preparing the conftest copy: %v", err)
		}
		for _, path := range files {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in := engine.NewInput(policy.Operation{Kind: "terraform.apply", Workspace: workspace})
			p, err := plan.Decode(bytes.NewReader(raw), plan.Options{}, in.Add)
			if err != nil || p.Format != plan.FormatTerraform {
				continue // refused, or Pulumi: conftest's copy reads Terraform plans
			}
			in.SetPlan(p)
			a, err := engine.Evaluate(ctx, in)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			want := map[string]string{}
			for _, f := range a.Findings {
				addrs := slices.Clone(f.Addresses)
				slices.Sort(addrs)
				want[f.Rule] = string(f.Decision) + " " + strings.Join(addrs, " ")
			}
			var doc any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			rs, err := q.Eval(ctx, rego.EvalInput(doc))
			if err != nil {
				t.Fatalf("%s: conftest copy: %v", path, err)
			}
			got := map[string]string{}
			if len(rs) == 1 {
				for _, f := range rs[0].Expressions[0].Value.([]any) {
					m := f.(map[string]any)
					var addrs []string
					for _, a := range m["addresses"].([]any) {
						addrs = append(addrs, a.(string))
					}
					slices.Sort(addrs)
					got[m["rule"].(string)] = m["decision"].(string) + " " + strings.Join(addrs, " ")
				}
			}
			compared++
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (workspace %s): stepgate and the conftest copy disagree (-stepgate +conftest):\n%s", path, workspace, diff)
			}
		}
	}
	if compared < 200 {
		t.Fatalf("compared %d plans, want every Terraform plan of the fixtures in both workspaces", compared)
	}
}
