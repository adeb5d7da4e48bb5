package policy

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stepgate/stepgate/internal/plan"
)

// With only the built-in policy loaded, the input carries only the
// attributes of before and after that the built-in rules read. This pins
// that the projection changes no assessment: every real plan of the
// fixtures and the examples, in and out of production, is assessed the
// same with the projected input as with every attribute.
func TestProjectedInputAssessesTheSame(t *testing.T) {
	projected := newEngine(t)
	if projected.attrs == nil {
		t.Fatal("an engine with only the built-in policy does not project its input")
	}
	full := newEngine(t)
	full.attrs = nil

	var files []string
	for _, dir := range []string{"../../testdata/plans", "../../examples"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Handmade plans for what no fixture has: an SSM SecureString
	// parameter (sensitive_when), a String one, and a Pulumi parameter.
	dir := t.TempDir()
	for name, body := range map[string]string{
		"ssm-secure.json": `{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":[
			{"address":"aws_ssm_parameter.db","mode":"managed","type":"aws_ssm_parameter","name":"db","provider_name":"registry.terraform.io/hashicorp/aws",
			 "change":{"actions":["update"],"before":{"name":"/app/db","type":"SecureString","value":"x","tags":{"env":"dev"}},"after":{"name":"/app/db","type":"SecureString","value":"y","tags":{"env":"dev"}},"after_unknown":{},"before_sensitive":{"value":true},"after_sensitive":{"value":true}}},
			{"address":"aws_ssm_parameter.plain","mode":"managed","type":"aws_ssm_parameter","name":"plain","provider_name":"registry.terraform.io/hashicorp/aws",
			 "change":{"actions":["create"],"before":null,"after":{"name":"/app/plain","type":"String","value":"v"},"after_unknown":{},"before_sensitive":false,"after_sensitive":{}}}]}`,
		"ssm-string.json": `{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":[
			{"address":"aws_ssm_parameter.plain","mode":"managed","type":"aws_ssm_parameter","name":"plain","provider_name":"registry.terraform.io/hashicorp/aws",
			 "change":{"actions":["update"],"before":{"name":"/app/plain","type":"String","value":"v"},"after":{"name":"/app/plain","type":"String","value":"w"},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}]}`,
		"pulumi-ssm.json": `{"steps":[{"op":"create","urn":"urn:pulumi:prod::app::aws:ssm/parameter:Parameter::db","type":"aws:ssm/parameter:Parameter",
			"newState":{"type":"aws:ssm/parameter:Parameter","inputs":{"type":"SecureString"},"outputs":{"type":"SecureString","name":"db"}}}],"changeSummary":{"create":1}}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	if len(files) < 100 {
		t.Fatalf("found %d plans, want the fixtures and the examples", len(files))
	}
	ops := []Operation{
		{Kind: "terraform.apply", Workspace: "payments-dev", Environment: "dev"},
		{Kind: "terraform.apply", Workspace: "billing-prod"},
		{Kind: "tofu.apply", Workspace: "main", Environment: "production"},
	}
	assessed := 0
	for _, path := range files {
		for _, op := range ops {
			a, err := assessWith(projected, path, op)
			b, errFull := assessWith(full, path, op)
			if (err == nil) != (errFull == nil) {
				t.Fatalf("%s %+v: projected error %v, full error %v", path, op, err, errFull)
			}
			if err != nil {
				continue // a plan stepgate refuses (pinned by internal/plan's tests)
			}
			assessed++
			if a != b {
				t.Errorf("%s %+v: the projected input is assessed differently\nprojected: %s\nfull:      %s", path, op, a, b)
			}
		}
	}
	if assessed < 300 {
		t.Fatalf("assessed %d plan and operation pairs, want every readable plan in three operations", assessed)
	}
}

func assessWith(e *Engine, path string, op Operation) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	in := e.NewInput(op)
	p, err := plan.Decode(f, plan.Options{}, in.Add)
	if err != nil {
		return "", err
	}
	in.SetPlan(p)
	a, err := e.Evaluate(context.Background(), in)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(a)
	return string(b), err
}

// Users' rules may read any attribute: with a module of theirs loaded, the
// input carries every attribute of before and after.
func TestUserRulesSeeEveryAttribute(t *testing.T) {
	rule := Module{Filename: "acme.rego", Source: `package stepgate.rules.acme

findings contains f if {
	some c in input.changes
	c.after.acl == "log-delivery-write"
	f := {"rule": "acme.public", "decision": "deny", "addresses": [c.address], "reason": "Log delivery may write."}
}
`}
	e, err := New(context.Background(), DefaultConfig(), []Module{rule})
	if err != nil {
		t.Fatal(err)
	}
	if e.attrs != nil {
		t.Fatal("an engine with a user's module projects its input")
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	body := `{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":[
		{"address":"aws_s3_bucket_acl.site","mode":"managed","type":"aws_s3_bucket_acl","name":"site","provider_name":"registry.terraform.io/hashicorp/aws",
		 "change":{"actions":["update"],"before":{"acl":"private"},"after":{"acl":"log-delivery-write"},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}]}`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	a := assessFile(t, e, path, Operation{Kind: "terraform.apply", Workspace: "site-dev"})
	if a.Decision != Deny || len(a.Findings) != 1 || a.Findings[0].Rule != "acme.public" {
		t.Fatalf("assessment %+v, want the user's rule to deny the public ACL", a)
	}
}

// The projected input leaves out the fields of a change that the built-in
// rules do not read, and input.reads. This fails when a built-in module
// refers to any other field of a change (c.mode, c.provider...) or to
// input.reads: add the field to projectedFields (and the input) first.
func TestBuiltinRulesReadOnlyProjectedFields(t *testing.T) {
	all := []string{"address", "previous_address", "module_address", "type", "name", "index", "provider", "mode",
		"actions", "action", "action_reason", "importing", "before", "after", "after_unknown", "sensitive_paths",
		"replace_paths", "tags", "containers"}
	dropped := map[string]bool{"reads": true}
	for _, f := range all {
		if !slices.Contains(projectedFields, f) {
			dropped[f] = true
		}
	}
	mods, err := ParseModules(BuiltinModules(false))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for name, m := range mods {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			for _, part := range r[1:] {
				if s, ok := part.Value.(ast.String); ok {
					seen++
					if dropped[string(s)] {
						t.Errorf("%s: %v reads %q, which the projected input leaves out", name, r, string(s))
					}
				}
			}
			return false
		})
	}
	if seen < 20 {
		t.Fatalf("walked %d ref parts in the built-in modules, want the refs of every rule", seen)
	}

	// stepgate.where and stepgate.distinct read the member their second
	// argument names; stepgate.tagged reads tags.
	calls := 0
	check := func(name string, op ast.Ref, args []*ast.Term) {
		switch op.String() {
		case whereName, distinctName:
			calls++
			key, ok := args[1].Value.(ast.String)
			if !ok {
				t.Errorf("%s: %s(%v) names its member with a %s: write the name out so this test can check it", name, op, args, ast.ValueName(args[1].Value))
				return
			}
			if dropped[string(key)] {
				t.Errorf("%s: %s(%v) reads %q, which the projected input leaves out", name, op, args, string(key))
			}
		case taggedName:
			calls++
			if dropped["tags"] {
				t.Errorf("%s: %s reads tags, which the projected input leaves out", name, op)
			}
		}
	}
	for name, m := range mods {
		ast.WalkTerms(m, func(term *ast.Term) bool {
			if c, ok := term.Value.(ast.Call); ok {
				if op, ok := c[0].Value.(ast.Ref); ok {
					check(name, op, c[1:])
				}
			}
			return false
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				terms := e.Terms.([]*ast.Term)
				if op, ok := terms[0].Value.(ast.Ref); ok {
					check(name, op, terms[1:])
				}
			}
			return false
		})
	}
	if calls < 5 {
		t.Fatalf("found %d calls of stepgate's selecting functions in the built-in modules, want every one", calls)
	}
}
