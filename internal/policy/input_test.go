package policy

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stepgate/stepgate/internal/plan"
)

func TestInputTagsAndContainers(t *testing.T) {
	e := newEngine(t)
	in := e.NewInput(Operation{Kind: "terraform.apply"})
	c := &plan.Change{
		Address: "azurerm_storage_account.a", Type: "azurerm_storage_account", Action: plan.ActionUpdate, Mode: plan.ModeManaged,
		Before: json.RawMessage(`{"resource_group_name": "rg-billing-prod", "tags": {"Environment": "Prod", "Owner": "a"}}`),
		After:  json.RawMessage(`{"resource_group_name": "rg-billing-prod", "tags": {"environment": "prod", "Owner": "b"}, "labels": {"tier": "web"}}`),
	}
	if err := in.Add(c); err != nil {
		t.Fatal(err)
	}
	got := in.changes[0]
	wantTags := ast.MustParseTerm(`{"environment": ["Prod", "prod"], "owner": ["a", "b"], "tier": ["web"]}`)
	if ast.Compare(got.Get(ast.StringTerm("tags")).Value, wantTags.Value) != 0 {
		t.Errorf("tags = %v, want %v", got.Get(ast.StringTerm("tags")), wantTags)
	}
	if want := ast.MustParseTerm(`["rg-billing-prod"]`); ast.Compare(got.Get(ast.StringTerm("containers")).Value, want.Value) != 0 {
		t.Errorf("containers = %v, want %v", got.Get(ast.StringTerm("containers")), want)
	}
}

func TestStreamStopsOnBuildError(t *testing.T) {
	e := newEngine(t)
	in := e.NewInput(Operation{Kind: "terraform.apply"})
	visit, done := in.Stream()
	bad := &plan.Change{Address: "a.b", Type: "a", Action: plan.ActionCreate, After: json.RawMessage(`{"x": `)}
	var visitErr error
	for range 2000 {
		if visitErr = visit(bad); visitErr != nil {
			break
		}
	}
	if err := done(); err == nil {
		t.Fatal("done() = nil after a change that cannot be built")
	}
	if !errors.Is(visitErr, errBuilderFailed) {
		t.Errorf("visit kept accepting changes after the builder failed: %v", visitErr)
	}
}

func TestStreamMatchesAdd(t *testing.T) {
	e := newEngine(t)
	f, err := os.Open("../../testdata/plans/tfplan2md/comprehensive-demo_plan.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := plan.Read(f, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	direct := e.NewInput(Operation{Kind: "terraform.apply"})
	streamed := e.NewInput(Operation{Kind: "terraform.apply"})
	visit, done := streamed.Stream()
	for i := range p.Changes {
		if err := direct.Add(&p.Changes[i]); err != nil {
			t.Fatal(err)
		}
		c := p.Changes[i]
		if err := visit(&c); err != nil {
			t.Fatal(err)
		}
	}
	if err := done(); err != nil {
		t.Fatal(err)
	}
	direct.SetPlan(p)
	streamed.SetPlan(p)
	if ast.Compare(direct.value(), streamed.value()) != 0 {
		t.Error("the streamed input differs from the one built change by change")
	}
}
