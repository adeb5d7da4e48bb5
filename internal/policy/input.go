package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	stdstrings "strings"

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
	// Secrets are the secrets the operation would release (a secret.read,
	// or an apply that also reads secrets): input.operation.secrets.
	Secrets []SecretRef `json:"secrets,omitempty"`
}

// SecretRef is one secret an operation would release: its name and the
// glob of the workspaces it is kept for.
type SecretRef struct {
	Name      string `json:"name"`
	Workspace string `json:"workspace"`
	// External is true for a secret kept elsewhere ("vault:billing/db"),
	// whose store trusts the grant; Workspace is then empty.
	External bool `json:"external"`
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
	op       Operation
	changes  []*ast.Term // actions that modify infrastructure
	reads    []*ast.Term // data sources read
	plan     *plan.Plan
	terms    *termBuilder
	tagAttrs []*ast.Term // production.tag_attributes
	refAttrs []*ast.Term // production.reference_attributes

	// attrs, when set, selects the attributes of before and after that
	// the input carries, by resource type (see Engine.attrs).
	attrs       *attributeSelector
	actionLists map[string]*ast.Term
	stacks      []string // Pulumi stacks named by the URNs of changes

	// ctx is what the policy knows besides the plan (SetContext); time
	// is input.time, computed when the input is evaluated.
	ctx   Context
	clock *clock
	time  TimeInput
}

// NewInput starts the input of an operation for this engine's policy.
func (e *Engine) NewInput(op Operation) *Input {
	return &Input{
		op: op, terms: newTermBuilder(), actionLists: map[string]*ast.Term{},
		attrs: e.attrs, tagAttrs: e.tagAttrs, refAttrs: e.refAttrs, clock: e.clock,
	}
}

// Add appends a change. It is meant as the visit function of plan.Decode.
func (in *Input) Add(c *plan.Change) error {
	if c.Action == plan.ActionRead && in.attrs != nil {
		return nil // the built-in rules never read input.reads
	}
	t, err := in.changeTerm(c)
	if err != nil {
		return fmt.Errorf("change %s: %w", c.Address, err)
	}
	if rest, ok := stdstrings.CutPrefix(c.Address, "urn:pulumi:"); ok {
		if stack, _, ok := stdstrings.Cut(rest, "::"); ok && !slices.Contains(in.stacks, stack) {
			in.stacks = append(in.stacks, stack)
		}
	}
	if c.Action == plan.ActionRead {
		in.reads = append(in.reads, t)
	} else {
		in.changes = append(in.changes, t)
	}
	return nil
}

// SetPlan records what the plan says as a whole. Without it, the input
// describes an operation with no plan (secret.read, for instance).
func (in *Input) SetPlan(p *plan.Plan) { in.plan = p }

func str(s string) *ast.Term { return ast.StringTerm(s) }

func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(ast.StringTerm(k), v) }

// Terms shared by every change that has them: terms are never changed once
// built, so one empty list serves twenty thousand changes.
var (
	emptyArray  = ast.ArrayTerm()
	emptyObject = ast.ObjectTerm()
	nullTerm    = ast.NullTerm()
)

// field returns an interned key and its value, for the fields of a change.
func (in *Input) field(k string, v *ast.Term) [2]*ast.Term {
	return [2]*ast.Term{in.terms.str([]byte(k)), v}
}

// actions returns the actions list as a term, one per distinct list.
func (in *Input) actions(a []string) *ast.Term {
	key := stdstrings.Join(a, ",")
	if t, ok := in.actionLists[key]; ok {
		return t
	}
	t := in.stringList(a)
	in.actionLists[key] = t
	return t
}

func (in *Input) stringList(ss []string) *ast.Term {
	if len(ss) == 0 {
		return emptyArray
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = in.terms.str([]byte(s))
	}
	return ast.ArrayTerm(ts...)
}

var (
	keyTerm0       = ast.StringTerm("key")
	valueTerm0     = ast.StringTerm("value")
	keyTermUpper   = ast.StringTerm("Key")
	valueTermUpper = ast.StringTerm("Value")
	labelsTerm     = ast.StringTerm("labels")
	metadataTerm   = ast.StringTerm("metadata")
	namespaceTerm  = ast.StringTerm("namespace")
	nameTerm       = ast.StringTerm("name")
)

// valueTerm converts a decoded JSON value (numbers as json.Number) into a
// Rego term without a round trip through JSON text.
func valueTerm(v any) (*ast.Term, error) {
	switch t := v.(type) {
	case nil:
		return nullTerm, nil
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
			item("secrets", in.secretsTerm()),
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
			item("stacks", in.stringList(in.stacks)),
		)),
		item("summary", ast.ObjectTerm(
			item("changes", ast.IntNumberTerm(p.ChangeCount())),
			item("total", ast.IntNumberTerm(p.Total())),
			item("by_action", ast.ObjectTerm(byAction...)),
		)),
		item("changes", ast.ArrayTerm(in.changes...)),
		item("reads", ast.ArrayTerm(in.reads...)),
		item("pipeline", pipelineTerm(in.ctx.Pipeline)),
		item("pipeline_unverified", stringMapTerm(in.ctx.PipelineUnverified)),
		item("requester", in.ctx.Requester.term()),
		item("time", in.time.term()),
		item("history", historyTerm(in.ctx.History)),
	)
}

// secretsTerm is input.operation.secrets: [{name, workspace}], in order.
func (in *Input) secretsTerm() *ast.Term {
	if len(in.op.Secrets) == 0 {
		return emptyArray
	}
	ts := make([]*ast.Term, len(in.op.Secrets))
	for i, s := range in.op.Secrets {
		ts[i] = ast.ObjectTerm(item("name", str(s.Name)), item("workspace", str(s.Workspace)), item("external", ast.BooleanTerm(s.External)))
	}
	return ast.ArrayTerm(ts...)
}
