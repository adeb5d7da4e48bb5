package policy

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stepgate/stepgate/internal/plan"
)

// Kinds lists the operation kinds stepgate knows.
var Kinds = []string{"terraform.apply", "tofu.apply", "pulumi.up", "secret.read", "command"}

// Operation is what a pipeline wants to do, apart from its plan.
type Operation struct {
	Kind        string `json:"kind"`
	Workspace   string `json:"workspace"`
	Environment string `json:"environment"`
}

// Validate reports what is wrong with an operation.
func (o Operation) Validate() error {
	if !slices.Contains(Kinds, o.Kind) {
		return fmt.Errorf("kind %q is not one of %v", o.Kind, Kinds)
	}
	return nil
}

// Input is the document a policy is evaluated against, built one change at a
// time so that a large plan is never held twice: each change is turned into
// Rego terms as it is read, and its Go values can be dropped.
type Input struct {
	op      Operation
	changes []*ast.Term
	plan    *plan.Plan
}

// NewInput starts the input of an operation.
func NewInput(op Operation) *Input { return &Input{op: op} }

// Add appends a change. It is meant as the visit function of plan.Decode.
func (in *Input) Add(c *plan.Change) error {
	t, err := changeTerm(c)
	if err != nil {
		return fmt.Errorf("change %s: %w", c.Address, err)
	}
	in.changes = append(in.changes, t)
	return nil
}

// SetPlan records what the plan says as a whole. Without it, the input
// describes an operation with no plan (secret.read, for instance).
func (in *Input) SetPlan(p *plan.Plan) { in.plan = p }

func str(s string) *ast.Term { return ast.StringTerm(s) }

func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(ast.StringTerm(k), v) }

func stringList(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

func changeTerm(c *plan.Change) (*ast.Term, error) {
	before, err := valueTerm(c.Before)
	if err != nil {
		return nil, fmt.Errorf("before: %w", err)
	}
	after, err := valueTerm(c.After)
	if err != nil {
		return nil, fmt.Errorf("after: %w", err)
	}
	index, err := valueTerm(c.Index)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return ast.ObjectTerm(
		item("address", str(c.Address)),
		item("previous_address", str(c.PreviousAddress)),
		item("module_address", str(c.ModuleAddress)),
		item("type", str(c.Type)),
		item("name", str(c.Name)),
		item("index", index),
		item("provider", str(c.Provider)),
		item("mode", str(string(c.Mode))),
		item("actions", stringList(c.Actions)),
		item("action", str(string(c.Action))),
		item("action_reason", str(c.ActionReason)),
		item("importing", ast.BooleanTerm(c.Importing)),
		item("before", before),
		item("after", after),
		item("after_unknown", stringList(c.AfterUnknown)),
		item("sensitive_paths", stringList(c.SensitivePaths)),
		item("replace_paths", stringList(c.ReplacePaths)),
	), nil
}

// valueTerm converts a decoded JSON value (numbers as json.Number) into a
// Rego term without a round trip through JSON text.
func valueTerm(v any) (*ast.Term, error) {
	switch t := v.(type) {
	case nil:
		return ast.NullTerm(), nil
	case bool:
		return ast.BooleanTerm(t), nil
	case string:
		return ast.StringTerm(t), nil
	case json.Number:
		return ast.NumberTerm(t), nil
	case float64:
		return ast.FloatNumberTerm(t), nil
	case int:
		return ast.IntNumberTerm(t), nil
	case []any:
		ts := make([]*ast.Term, len(t))
		for i, e := range t {
			et, err := valueTerm(e)
			if err != nil {
				return nil, err
			}
			ts[i] = et
		}
		return ast.ArrayTerm(ts...), nil
	case map[string]any:
		items := make([][2]*ast.Term, 0, len(t))
		for k, e := range t {
			et, err := valueTerm(e)
			if err != nil {
				return nil, err
			}
			items = append(items, item(k, et))
		}
		return ast.ObjectTerm(items...), nil
	}
	return nil, fmt.Errorf("unexpected value of type %T", v)
}

func (in *Input) value() ast.Value {
	p := in.plan
	if p == nil {
		p = &plan.Plan{ByAction: map[plan.Action]int{}, Applyable: true, Complete: true}
	}
	byAction := make([][2]*ast.Term, 0, len(p.ByAction))
	for a, n := range p.ByAction {
		byAction = append(byAction, item(string(a), ast.IntNumberTerm(n)))
	}
	return ast.NewObject(
		item("operation", ast.ObjectTerm(
			item("kind", str(in.op.Kind)),
			item("workspace", str(in.op.Workspace)),
			item("environment", str(in.op.Environment)),
		)),
		item("plan", ast.ObjectTerm(
			item("format", str(string(p.Format))),
			item("format_version", str(p.FormatVersion)),
			item("tool_version", str(p.ToolVersion)),
			item("errored", ast.BooleanTerm(p.Errored)),
			item("applyable", ast.BooleanTerm(p.Applyable)),
			item("complete", ast.BooleanTerm(p.Complete)),
			item("sha256", str(p.SHA256)),
			item("action_invocations", ast.IntNumberTerm(p.ActionInvocations)),
		)),
		item("summary", ast.ObjectTerm(
			item("changes", ast.IntNumberTerm(p.ChangeCount())),
			item("total", ast.IntNumberTerm(p.Total())),
			item("by_action", ast.ObjectTerm(byAction...)),
		)),
		item("changes", ast.ArrayTerm(in.changes...)),
	)
}
