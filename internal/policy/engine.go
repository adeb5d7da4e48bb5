package policy

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/stepgate/stepgate/internal/plan"
)

//go:embed rego/*.rego
var builtinFS embed.FS

var (
	// ErrPolicy says a policy module or the configuration is wrong: it does
	// not parse, compile or validate.
	ErrPolicy = errors.New("policy error")
	// ErrEvaluation says evaluating the policy failed or produced an answer
	// that is not a valid assessment. The operation must not be allowed.
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrInput says a plan holds a value the policy cannot be given (a
	// number out of range): the plan is refused as bad input.
	ErrInput = errors.New("plan value not accepted")
)

// checkPackage refuses a user's package that stepgate would not read as
// meant. Findings are collected from packages directly under stepgate.rules,
// so a deeper package would be silently ignored: that would be an allow by
// mistake. stepgate.lib, stepgate.config and stepgate.rules.builtin are
// stepgate's own.
func checkPackage(path ast.Ref) error {
	if len(path) < 2 || !path[1].Equal(ast.StringTerm("stepgate")) {
		return nil // a package of the user's own, e.g. acme.helpers
	}
	name := strings.TrimPrefix(path.String(), "data.")
	if len(path) == 4 && path[2].Equal(ast.StringTerm("rules")) && !path[3].Equal(ast.StringTerm("builtin")) {
		return nil
	}
	return fmt.Errorf("package %s: put rules in a package directly under stepgate.rules, such as stepgate.rules.acme (findings are read only from there; stepgate.lib, stepgate.config and stepgate.rules.builtin belong to stepgate)", name)
}

// findingsQuery collects the findings of every package under
// data.stepgate.rules, the built-in one and the users'.
const findingsQuery = `findings := [f | some f in data.stepgate.rules[_].findings]; production := data.stepgate.lib.production_reasons`

// Module is one Rego source file.
type Module struct {
	Filename string
	Source   string
}

// Engine evaluates the built-in policy and users' modules. It is prepared
// once and safe for concurrent use.
type Engine struct {
	cfg      Config
	query    rego.PreparedEvalQuery
	disabled map[string]bool
	// attrs is set when only the built-in policy is loaded: its rules
	// read a known set of attributes of before and after (see
	// attributeSelector), so the input carries only those. Users' rules
	// may read anything: with any module of theirs, attrs is nil and the
	// input carries every attribute.
	attrs *attributeSelector
	// tagAttrs and refAttrs are production.tag_attributes and
	// production.reference_attributes, as terms (see Input.tags and
	// Input.containers).
	tagAttrs, refAttrs []*ast.Term
	// clock is policy.timezone and the freeze windows, for input.time.
	clock *clock
}

// BuiltinModules returns the embedded Rego modules, tests excluded unless
// withTests is set.
func BuiltinModules(withTests bool) []Module {
	var mods []Module
	_ = fs.WalkDir(builtinFS, "rego", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!withTests && strings.HasSuffix(p, "_test.rego")) {
			return err
		}
		b, _ := builtinFS.ReadFile(p)
		mods = append(mods, Module{Filename: "stepgate:" + p, Source: string(b)})
		return nil
	})
	return mods
}

// LoadModules reads every .rego file in dirs (recursively), leaving out
// tests (*_test.rego) unless withTests is set.
func LoadModules(dirs []string, withTests bool) ([]Module, error) {
	var mods []Module
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: policy directory: %w", ErrPolicy, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: policy directory %s is a file, want a directory of .rego files", ErrPolicy, dir)
		}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".rego") || (!withTests && strings.HasSuffix(p, "_test.rego")) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mods = append(mods, Module{Filename: p, Source: string(b)})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrPolicy, dir, err)
		}
	}
	return mods, nil
}

// ParseModules parses users' modules and refuses those that would add to
// stepgate's own packages.
func ParseModules(mods []Module) (map[string]*ast.Module, error) {
	out := map[string]*ast.Module{}
	var errs []error
	for _, m := range mods {
		parsed, err := ast.ParseModuleWithOpts(m.Filename, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !strings.HasPrefix(m.Filename, "stepgate:") {
			if err := checkPackage(parsed.Package.Path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", m.Filename, err))
				continue
			}
		}
		out[m.Filename] = parsed
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, errors.Join(errs...))
	}
	return out, nil
}

// Store returns the data document rules read: data.stepgate.config.
func (c Config) Store() (storage.Store, error) {
	b, err := json.Marshal(map[string]any{"stepgate": map[string]any{"config": c}})
	if err != nil {
		return nil, fmt.Errorf("encoding policy configuration: %w", err)
	}
	return inmem.NewFromReader(bytes.NewReader(b)), nil
}

// load validates cfg and parses mods: what evaluating and testing the policy
// both start from.
func load(cfg Config, mods []Module) (map[string]*ast.Module, storage.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	parsed, err := ParseModules(mods)
	if err != nil {
		return nil, nil, err
	}
	store, err := cfg.Store()
	if err != nil {
		return nil, nil, err
	}
	return parsed, store, nil
}

// New prepares an engine with the built-in policy, the configuration and
// users' modules.
func New(ctx context.Context, cfg Config, user []Module) (*Engine, error) {
	parsed, store, err := load(cfg, append(BuiltinModules(false), user...))
	if err != nil {
		return nil, err
	}
	parsed, _, err = fold(ctx, parsed, store, newBuiltins().options())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	opts := append(newBuiltins().options(),
		rego.Query(findingsQuery),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.GenerateJSON(keepTerms),
	)
	for _, m := range parsed {
		opts = append(opts, rego.ParsedModule(m))
	}
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	cl, err := newClock(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	e := &Engine{cfg: cfg, query: q, disabled: map[string]bool{}, clock: cl}
	if len(user) == 0 {
		e.attrs = newAttributeSelector(cfg)
		types, patterns, err := contentTypes(ctx, parsed, store)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
		}
		if err := e.attrs.setContentTypes(types, patterns); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
		}
	}
	for _, a := range cfg.Production.TagAttributes {
		e.tagAttrs = append(e.tagAttrs, ast.StringTerm(a))
	}
	for _, a := range cfg.Production.ReferenceAttributes {
		e.refAttrs = append(e.refAttrs, ast.StringTerm(a))
	}
	for id, r := range cfg.Rules {
		if !r.Enabled {
			e.disabled[id] = true
		}
	}
	return e, nil
}

// contentTypes reads from the built-in policy the types whose values its
// content rules read (content_types, content_type_patterns in
// risks.rego): the projected input keeps those attributes for them only.
func contentTypes(ctx context.Context, parsed map[string]*ast.Module, store storage.Store) ([]string, []string, error) {
	opts := append(newBuiltins().options(),
		rego.Query("types := data.stepgate.rules.builtin.content_types; patterns := data.stepgate.rules.builtin.content_type_patterns"),
		rego.Store(store),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Input(map[string]any{}),
	)
	for _, m := range parsed {
		opts = append(opts, rego.ParsedModule(m))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reading content_types: %w", err)
	}
	if len(rs) != 1 {
		return nil, nil, errors.New("reading content_types: the built-in policy does not define it")
	}
	read := func(name string) ([]string, error) {
		list, ok := rs[0].Bindings[name].([]any)
		if !ok {
			return nil, fmt.Errorf("reading content_types: %s is a %T, want a list", name, rs[0].Bindings[name])
		}
		out := make([]string, 0, len(list))
		for _, v := range list {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("reading content_types: %s holds a %T", name, v)
			}
			out = append(out, s)
		}
		return out, nil
	}
	types, err := read("types")
	if err != nil {
		return nil, nil, err
	}
	patterns, err := read("patterns")
	return types, patterns, err
}

// Assess evaluates a plan that was read whole.
func (e *Engine) Assess(ctx context.Context, op Operation, p *plan.Plan) (*Assessment, error) {
	in := e.NewInput(op)
	for i := range p.Changes {
		if err := in.Add(&p.Changes[i]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEvaluation, err)
		}
	}
	in.SetPlan(p)
	return e.Evaluate(ctx, in)
}

// Evaluate runs the policy on an input. Any failure is an error wrapping
// ErrEvaluation: never an allow.
func (e *Engine) Evaluate(ctx context.Context, in *Input) (*Assessment, error) {
	if in.ctx.At.IsZero() {
		in.ctx.At = time.Now()
	}
	in.time = in.clock.timeInput(in.ctx.At)
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(in.value()))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("%w: the policy gave %d results, want 1", ErrEvaluation, len(rs))
	}
	findings, err := decodeFindings(rs[0].Bindings["findings"])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	kept := findings[:0]
	for _, f := range findings {
		if !e.disabled[f.Rule] {
			kept = append(kept, f)
		}
	}
	findings = kept
	sortFindings(findings)
	decision, req, err := Combine(findings)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	reasons := stringSet(rs[0].Bindings["production"])
	a := &Assessment{
		Decision:     decision,
		Requirements: req,
		Findings:     findings,
		Summary: Summary{
			Kind:              in.op.Kind,
			Workspace:         in.op.Workspace,
			Environment:       in.op.Environment,
			Production:        len(reasons) > 0,
			ProductionReasons: reasons,
			ByAction:          map[string]int{},
		},
	}
	if p := in.plan; p != nil {
		a.Summary.Changes = p.ChangeCount()
		a.Summary.Total = p.Total()
		for k, v := range p.ByAction {
			a.Summary.ByAction[string(k)] = v
		}
		a.Plan = PlanInfo{
			Format:        string(p.Format),
			FormatVersion: p.FormatVersion,
			ToolVersion:   p.ToolVersion,
			SHA256:        p.SHA256,
			Errored:       p.Errored,
			Applyable:     p.Applyable,
		}
	}
	return a, nil
}
