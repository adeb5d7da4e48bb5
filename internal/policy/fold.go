package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Folding: a rule whose value reads neither the input nor anything that
// changes between evaluations (the configuration in the store is fixed
// for the life of an engine) has the same value at every evaluation. OPA
// computes it again each time: content_types, for one, builds a set of
// two hundred type names from forty lists, which took more time than all
// the rules that read a 20-change plan. fold evaluates such rules once,
// when the engine is prepared, and puts each one's value in place of its
// definitions: `content_types := {"aws_iam_policy", ...}`. The Rego
// source is unchanged, and so is every rule's value; only when it is
// computed changes.
//
// A rule is folded when it is a complete rule without arguments whose
// head is ground (`x := ...`, `x if ...`, with their else and default),
// and neither it nor any rule or function it uses, transitively, refers
// to input, calls a non-deterministic function (time.now_ns, http.send,
// rand.intn...) or print. Nothing is folded when a module uses `with` on
// anything but input: `with data.stepgate.config as ...` in a rule would
// make a folded value wrong under it. A rule whose value is undefined, or
// whose evaluation fails, is left as it is (evaluations then fail as they
// would have).

// foldable reports the paths of the rules that can be folded, sorted.
func foldable(compiler *ast.Compiler) []ast.Ref {
	if usesWith(compiler) {
		return nil
	}
	impure := map[*ast.Rule]bool{} // memo: true impure, false pure
	var isImpure func(r *ast.Rule, seen map[*ast.Rule]bool) bool
	isImpure = func(r *ast.Rule, seen map[*ast.Rule]bool) bool {
		if v, ok := impure[r]; ok {
			return v
		}
		if seen[r] { // recursion is refused by the compiler; be safe anyway
			return true
		}
		seen[r] = true
		bad := readsVolatile(r) // its else too
		// The graph lists what an else uses under the else itself.
		for node := r; node != nil && !bad; node = node.Else {
			for dep := range compiler.Graph.Dependencies(node) {
				if d, ok := dep.(*ast.Rule); !ok || isImpure(d, seen) {
					bad = true
					break
				}
			}
		}
		impure[r] = bad
		return bad
	}

	byPath := map[string][]*ast.Rule{}
	var paths []ast.Ref
	for _, m := range compiler.Modules {
		for _, r := range m.Rules {
			ref := r.Ref()
			k := ref.String()
			if _, ok := byPath[k]; !ok {
				paths = append(paths, ref)
			}
			byPath[k] = append(byPath[k], r)
		}
	}
	var out []ast.Ref
	for _, p := range paths {
		rules := byPath[p.String()]
		ok := p.IsGround()
		for _, r := range rules {
			if !ok {
				break
			}
			ok = len(r.Head.Args) == 0 && r.Head.RuleKind() == ast.SingleValue &&
				!isImpure(r, map[*ast.Rule]bool{})
		}
		if ok && !trivial(rules) {
			out = append(out, p)
		}
	}
	sortRefs(out)
	return out
}

// trivial reports whether rules is one rule whose value is written out
// already: folding it gains nothing.
func trivial(rules []*ast.Rule) bool {
	if len(rules) != 1 || rules[0].Else != nil || rules[0].Default {
		return false
	}
	r := rules[0]
	return r.Head.Value.IsGround() && len(r.Body) == 1 && r.Body[0].Terms != nil &&
		r.Body[0].IsGround() && !r.Body[0].IsCall()
}

// readsVolatile reports whether r itself (its head, body and else) refers
// to input or calls a function whose answer may change between
// evaluations.
func readsVolatile(r *ast.Rule) bool {
	bad := false
	vis := ast.NewGenericVisitor(func(x any) bool {
		if bad {
			return true
		}
		switch x := x.(type) {
		case ast.Ref:
			if len(x) > 0 && x[0].Equal(ast.InputRootDocument) {
				bad = true
			}
		case *ast.Expr:
			if x.IsCall() && volatileCall(x.Operator()) {
				bad = true
			}
		case *ast.Term:
			if c, ok := x.Value.(ast.Call); ok && len(c) > 0 {
				if ref, ok := c[0].Value.(ast.Ref); ok && volatileCall(ref) {
					bad = true
				}
			}
		}
		return bad
	})
	vis.Walk(r)
	return bad
}

// volatileCall: a built-in function whose answer is not fixed by its
// arguments, or that does something (print).
func volatileCall(op ast.Ref) bool {
	name := op.String()
	if b, ok := ast.BuiltinMap[name]; ok {
		return b.Nondeterministic || name == ast.Print.Name || name == ast.InternalPrint.Name || name == ast.Trace.Name
	}
	return false // stepgate's functions, and the policy's own (the graph has those)
}

// usesWith reports whether a module replaces anything but input with
// `with`.
func usesWith(compiler *ast.Compiler) bool {
	found := false
	for _, m := range compiler.Modules {
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			for _, w := range e.With {
				ref, ok := w.Target.Value.(ast.Ref)
				if !ok || len(ref) == 0 || !ref[0].Equal(ast.InputRootDocument) {
					found = true
				}
			}
			return found
		})
		if found {
			return true
		}
	}
	return false
}

func sortRefs(refs []ast.Ref) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].Compare(refs[j]) < 0 })
}

// definesAny reports whether m defines one of the rules of values.
func definesAny(m *ast.Module, values map[string]*ast.Term) bool {
	for _, r := range m.Rules {
		if _, ok := values[m.Package.Path.Extend(r.Head.Ref()).String()]; ok {
			return true
		}
	}
	return false
}

// constantRule is `path := v if { v := object.get({"v": value}, "v", null) }`
// in module m, where rule r was. object.get hides the value's shape from
// the type checker (its answer is of any type), as the rule's body did: a
// user's rule that reads a key the folded object does not have
// (lib.cfg.some_key) must stay undefined, not become a type error. It
// costs one lookup in a one-key object per evaluation.
func constantRule(m *ast.Module, r *ast.Rule, value *ast.Term) *ast.Rule {
	v := ast.VarTerm("folded")
	get := ast.CallTerm(ast.NewTerm(ast.ObjectGet.Ref()),
		ast.ObjectTerm(ast.Item(ast.StringTerm("v"), value)), ast.StringTerm("v"), ast.NullTerm())
	head := ast.RefHead(r.Head.Ref().Copy(), v)
	head.Assign = true
	head.Location = r.Head.Location
	return &ast.Rule{
		Head:     head,
		Body:     ast.NewBody(ast.Assign.Expr(v, get)),
		Module:   m,
		Location: r.Location,
	}
}

// fold returns mods with the foldable rules replaced by their values, and
// the paths folded. opts are the engine's (its functions).
func fold(ctx context.Context, mods map[string]*ast.Module, store storage.Store, opts []func(*rego.Rego)) (map[string]*ast.Module, []ast.Ref, error) {
	decls := map[string]*ast.Builtin{}
	for _, f := range newBuiltins().all() {
		decls[f.decl.Name] = f.decl
	}
	compiler := ast.NewCompiler().WithBuiltins(decls)
	compiler.Compile(mods)
	if compiler.Failed() {
		return nil, nil, fmt.Errorf("compiling the policy: %w", compiler.Errors)
	}
	paths := foldable(compiler)
	if len(paths) == 0 {
		return mods, nil, nil
	}
	// One query for all: each value as a list of none (undefined) or one.
	var q strings.Builder
	for i, p := range paths {
		if i > 0 {
			q.WriteString("; ")
		}
		fmt.Fprintf(&q, "v%d := [x | x := %s]", i, p)
	}
	ropts := append(append([]func(*rego.Rego){}, opts...),
		rego.Compiler(compiler),
		rego.Query(q.String()),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.GenerateJSON(keepTerms),
	)
	rs, err := rego.New(ropts...).Eval(ctx)
	if err != nil || len(rs) != 1 {
		return mods, nil, nil // evaluated at each query, as before
	}
	values := map[string]*ast.Term{}
	var folded []ast.Ref
	for i, p := range paths {
		t, ok := rs[0].Bindings[fmt.Sprintf("v%d", i)].(*ast.Term)
		if !ok {
			continue
		}
		arr, ok := t.Value.(*ast.Array)
		if !ok || arr.Len() != 1 {
			continue
		}
		values[p.String()] = arr.Elem(0)
		folded = append(folded, p)
	}
	out := make(map[string]*ast.Module, len(mods))
	for name, m := range mods {
		if !definesAny(m, values) {
			out[name] = m
			continue
		}
		m = m.Copy()
		kept := m.Rules[:0]
		for _, r := range m.Rules {
			k := m.Package.Path.Extend(r.Head.Ref()).String()
			v, ok := values[k]
			switch {
			case !ok:
				kept = append(kept, r)
			case v != nil:
				kept = append(kept, constantRule(m, r, v))
				values[k] = nil // placed: the other definitions go
			}
		}
		m.Rules = kept
		out[name] = m
	}
	return out, folded, nil
}
