package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
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

// A change whose terms cannot be built stops the stream with that error,
// whether it is built inline (the first changes) or on the builder's
// goroutine: visit returns it, so plan.Decode stops and returns the cause,
// and done returns it too.
func TestStreamStopsOnBuildError(t *testing.T) {
	for _, goodBefore := range []int{0, streamInline - 1, streamInline, 10 * streamInline} {
		e := newEngine(t)
		in := e.NewInput(Operation{Kind: "terraform.apply"})
		visit, done := in.Stream()
		for i := range goodBefore {
			c := &plan.Change{Address: fmt.Sprintf("a.ok[%d]", i), Type: "a", Action: plan.ActionCreate, After: json.RawMessage(`{"x": 1}`)}
			if err := visit(c); err != nil {
				t.Fatalf("after %d good changes: visit: %v", i, err)
			}
		}
		bad := &plan.Change{Address: "a.bad", Type: "a", Action: plan.ActionCreate, After: json.RawMessage(`{"tags": {"env": 1e100000}}`)}
		var visitErr error
		for range 2000 {
			if visitErr = visit(bad); visitErr != nil {
				break
			}
		}
		doneErr := done()
		if !errors.Is(doneErr, ErrInput) || !strings.Contains(doneErr.Error(), "a.bad") {
			t.Errorf("%d good changes first: done() = %v, want the ErrInput naming a.bad", goodBefore, doneErr)
		}
		if visitErr != doneErr {
			t.Errorf("%d good changes first: visit returned %v, want done's error %v", goodBefore, visitErr, doneErr)
		}
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
	// Enough changes that some are built inline and most on the
	// builder's goroutine.
	for round := 0; round*len(p.Changes) < 4*streamInline; round++ {
		for i := range p.Changes {
			c := p.Changes[i]
			c.Address = fmt.Sprintf("%s#%d", c.Address, round)
			if err := direct.Add(&c); err != nil {
				t.Fatal(err)
			}
			sc := c
			if err := visit(&sc); err != nil {
				t.Fatal(err)
			}
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
