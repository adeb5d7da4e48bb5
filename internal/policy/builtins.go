package policy

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
)

// stepgate's own Rego built-in functions. The built-in policy calls them and
// users' rules may too; docs/policy.md describes each.
//
// They exist for speed. A plan of twenty thousand changes makes a Rego
// comprehension over input.changes cost 10 to 90 ms, and the default
// policy needs a dozen such passes; each function below does one pass in Go
// at a few hundred nanoseconds a change. They select and collect, and leave
// the decisions to the Rego that calls them: which keys, values and types
// count is always an argument.

const (
	whereName    = "stepgate.where"
	distinctName = "stepgate.distinct"
	taggedName   = "stepgate.tagged"
	tokensName   = "stepgate.tokens"
)

var (
	anyCollection = types.NewAny(types.NewArray(nil, types.A), types.NewSet(types.A))

	whereDecl = types.NewFunction(
		types.Args(
			types.Named("items", anyCollection).Description("objects, such as input.changes"),
			types.Named("key", types.S).Description("the member to look at, such as \"type\""),
			types.Named("values", types.A).Description("a set, array or object (its keys) of the values wanted"),
		),
		types.Named("selected", types.NewArray(nil, types.A)).
			Description("the items whose member key is one of values (or, for an array or set member, holds one), in order"),
	)
	distinctDecl = types.NewFunction(
		types.Args(
			types.Named("items", anyCollection).Description("objects, such as input.changes"),
			types.Named("key", types.S).Description("the member to collect, such as \"type\""),
		),
		types.Named("values", types.NewSet(types.A)).
			Description("every value of the member key (the elements of an array or set member)"),
	)
	taggedDecl = types.NewFunction(
		types.Args(
			types.Named("items", anyCollection).Description("changes, each with a tags object of key to list of values"),
			types.Named("keys", types.A).Description("a set, array or object (its keys) of tag keys, in lower case"),
			types.Named("values", types.A).Description("a set, array or object (its keys) of tag values, in lower case"),
		),
		types.Named("selected", types.NewArray(nil, types.A)).
			Description("the items with a tag whose key and value, in lower case, are in keys and values, in order"),
	)
)

var tokensDecl = types.NewFunction(
	types.Args(types.Named("s", types.S).Description("a name, such as rg-billing-prod")),
	types.Named("tokens", types.NewSet(types.S)).
		Description("its parts split on - _ . / : and white space, in lower case, empty ones left out"),
)

// builtins holds the functions of one engine (the type classifier keeps
// compiled patterns between evaluations).
type builtins struct {
	types *typeClassifier
}

func newBuiltins() *builtins { return &builtins{types: newTypeClassifier()} }

type builtinFunc struct {
	decl *ast.Builtin
	opt  func(*rego.Rego)
}

func (b *builtins) all() []builtinFunc {
	fn := func(name, desc string, decl *types.Function) *rego.Function {
		return &rego.Function{Name: name, Description: desc, Decl: decl}
	}
	return append([]builtinFunc{
		{
			decl: &ast.Builtin{Name: tokensName, Decl: tokensDecl},
			opt: rego.Function1(fn(tokensName, "Splits a name into lower-case tokens on - _ . / : and white space.", tokensDecl),
				func(_ rego.BuiltinContext, s *ast.Term) (*ast.Term, error) {
					return tokens(s.Value)
				}),
		},
		{
			decl: &ast.Builtin{Name: typeCategoriesName, Decl: typeCategoriesDecl},
			opt:  b.types.option(),
		},
		{
			decl: &ast.Builtin{Name: whereName, Decl: whereDecl},
			opt: rego.Function3(fn(whereName, "Selects the objects whose member key has one of the values.", whereDecl),
				func(_ rego.BuiltinContext, items, key, values *ast.Term) (*ast.Term, error) {
					return where(items.Value, key.Value, values.Value)
				}),
		},
		{
			decl: &ast.Builtin{Name: distinctName, Decl: distinctDecl},
			opt: rego.Function2(fn(distinctName, "Collects the distinct values of a member of objects.", distinctDecl),
				func(_ rego.BuiltinContext, items, key *ast.Term) (*ast.Term, error) {
					return distinct(items.Value, key.Value)
				}),
		},
		{
			decl: &ast.Builtin{Name: taggedName, Decl: taggedDecl},
			opt: rego.Function3(fn(taggedName, "Selects the changes with a tag of the given keys and values, in any case.", taggedDecl),
				func(_ rego.BuiltinContext, items, keys, values *ast.Term) (*ast.Term, error) {
					return tagged(items.Value, keys.Value, values.Value)
				}),
		},
	}, contentBuiltins()...)
}

// options returns the rego options that declare and implement the functions.
func (b *builtins) options() []func(*rego.Rego) {
	var out []func(*rego.Rego)
	for _, f := range b.all() {
		out = append(out, f.opt)
	}
	return out
}

// tester returns the functions for OPA's test runner and the capabilities
// its compiler needs to know them.
func (b *builtins) tester() ([]*tester.Builtin, *ast.Capabilities) {
	caps := ast.CapabilitiesForThisVersion()
	var out []*tester.Builtin
	for _, f := range b.all() {
		out = append(out, &tester.Builtin{Decl: f.decl, Func: f.opt})
		caps.Builtins = append(caps.Builtins, f.decl)
	}
	return out, caps
}

// eachItem calls fn with every object of items, an array or a set; other
// elements are passed over, as a Rego ref into them would be undefined.
func eachItem(name string, items ast.Value, fn func(*ast.Term, ast.Object) error) error {
	visit := func(t *ast.Term) error {
		if obj, ok := t.Value.(ast.Object); ok {
			return fn(t, obj)
		}
		return nil
	}
	switch v := items.(type) {
	case *ast.Array:
		return v.Iter(visit)
	case ast.Set:
		return v.Iter(visit)
	}
	return fmt.Errorf("items is %s, want an array or a set", valueName(items))
}

// member returns a function that tells whether a term is one of values: an
// element of a set or an array, or a key of an object.
func member(name, arg string, values ast.Value) (func(*ast.Term) bool, error) {
	switch v := values.(type) {
	case ast.Set:
		return v.Contains, nil
	case ast.Object:
		return func(t *ast.Term) bool { return v.Get(t) != nil }, nil
	case *ast.Array:
		return func(t *ast.Term) bool { return v.Until(t.Equal) }, nil
	}
	return nil, fmt.Errorf("%s is %s, want a set, an array or an object", arg, valueName(values))
}

// anyOf tells whether t, or one of its elements when it is an array or a
// set, satisfies ok.
func anyOf(t *ast.Term, ok func(*ast.Term) bool) bool {
	switch v := t.Value.(type) {
	case *ast.Array:
		return v.Until(ok)
	case ast.Set:
		return v.Until(ok)
	}
	return ok(t)
}

func keyTerm(name string, key ast.Value) (*ast.Term, error) {
	if _, ok := key.(ast.String); !ok {
		return nil, fmt.Errorf("key is %s, want a string", valueName(key))
	}
	return ast.NewTerm(key), nil
}

// where implements stepgate.where(items, key, values).
func where(items, key, values ast.Value) (*ast.Term, error) {
	k, err := keyTerm(whereName, key)
	if err != nil {
		return nil, err
	}
	in, err := member(whereName, "values", values)
	if err != nil {
		return nil, err
	}
	var out []*ast.Term
	err = eachItem(whereName, items, func(t *ast.Term, obj ast.Object) error {
		if v := obj.Get(k); v != nil && anyOf(v, in) {
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ast.ArrayTerm(out...), nil
}

// distinct implements stepgate.distinct(items, key).
func distinct(items, key ast.Value) (*ast.Term, error) {
	k, err := keyTerm(distinctName, key)
	if err != nil {
		return nil, err
	}
	out := ast.NewSet()
	err = eachItem(distinctName, items, func(_ *ast.Term, obj ast.Object) error {
		v := obj.Get(k)
		if v == nil {
			return nil
		}
		anyOf(v, func(e *ast.Term) bool {
			out.Add(e)
			return false
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(out), nil
}

var tagsKey = ast.InternedTerm("tags")

// tagged implements stepgate.tagged(items, keys, values): items whose tags
// object has a key in keys with a value in values, both compared in lower
// case; a value also matches when one of its tokens (stepgate.tokens) is
// in values. The value of a tag may be a string or a list of strings (the input
// merges before and after into a list).
func tagged(items, keys, values ast.Value) (*ast.Term, error) {
	inKeys, err := member(taggedName, "keys", keys)
	if err != nil {
		return nil, err
	}
	inValues, err := member(taggedName, "values", values)
	if err != nil {
		return nil, err
	}
	// Lower-casing allocates: remember the answer for each distinct key
	// and value (a plan repeats the same few tags on every resource).
	lowerIn := func(in func(*ast.Term) bool) func(*ast.Term) bool {
		known := map[ast.String]bool{}
		return func(t *ast.Term) bool {
			s, ok := t.Value.(ast.String)
			if !ok {
				return false
			}
			ans, seen := known[s]
			if !seen {
				ans = in(ast.StringTerm(strings.ToLower(string(s))))
				known[s] = ans
			}
			return ans
		}
	}
	// A value matches whole or by one of its tokens, as workspace names
	// do: "prod-eu" is production, "product" is not.
	byToken := func(t *ast.Term) bool {
		if inValues(t) {
			return true
		}
		toks, err := tokens(t.Value)
		if err != nil {
			return false
		}
		return toks.Value.(ast.Set).Until(inValues)
	}
	keyOK, valueOK := lowerIn(inKeys), lowerIn(byToken)
	var out []*ast.Term
	err = eachItem(taggedName, items, func(t *ast.Term, obj ast.Object) error {
		tv := obj.Get(tagsKey)
		if tv == nil {
			return nil
		}
		tags, ok := tv.Value.(ast.Object)
		if ok && tags.Until(func(k, v *ast.Term) bool { return keyOK(k) && anyOf(v, valueOK) }) {
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ast.ArrayTerm(out...), nil
}

// tokens implements stepgate.tokens(s).
func tokens(s ast.Value) (*ast.Term, error) {
	str, ok := s.(ast.String)
	if !ok {
		return nil, fmt.Errorf("s is %s, want a string", valueName(s))
	}
	parts := strings.FieldsFunc(strings.ToLower(string(str)), func(r rune) bool {
		switch r {
		case '-', '_', '.', '/', ':':
			return true
		}
		return unicode.IsSpace(r)
	})
	terms := make([]*ast.Term, len(parts))
	for i, p := range parts {
		terms[i] = ast.StringTerm(p)
	}
	return ast.SetTerm(terms...), nil
}

// valueName names the type of a Rego value with its article: "an object",
// "a string".
func valueName(v ast.Value) string {
	n := ast.ValueName(v)
	if strings.ContainsRune("aeiou", rune(n[0])) {
		return "an " + n
	}
	return "a " + n
}
