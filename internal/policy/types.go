package policy

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gobwas/glob"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// The built-in function stepgate.type_categories classifies resource types
// against the configured type patterns (sensitive_types, stateful_types):
//
//	stepgate.type_categories({"identity": ["aws_iam_*", ...], ...}, {"aws_iam_role", ...})
//	  == {"aws_iam_role": {"identity"}}
//
// Its first argument maps a category to a list of patterns: a pattern with a
// * is a glob matched like glob.match(p, null, type) (no delimiters: * also
// crosses dots, colons and slashes), any other is compared whole. The
// second is the set (or list) of types to classify. The answer maps each
// type that matches at least one pattern to the set of its categories.
//
// Written in Rego, this was most of the cost of evaluating the default
// policy: every evaluation split 224 patterns into exact ones and globs and
// tried each glob on each type of the plan. Here the patterns are compiled
// once per distinct pattern set (the rules read the same configuration
// every time, and a test's `with` override is simply another set) and
// every type's categories are remembered, so an evaluation costs a lookup
// per type. The arguments are the patterns themselves, not a name for
// them, so rules and Rego tests that override the configuration see their
// own patterns.
const typeCategoriesName = "stepgate.type_categories"

var typeCategoriesDecl = types.NewFunction(
	types.Args(
		types.Named("patterns", types.NewObject(nil, types.NewDynamicProperty(types.S, types.NewArray(nil, types.S)))).
			Description("category to type patterns"),
		types.Named("types", types.NewAny(types.NewSet(types.S), types.NewArray(nil, types.S))).
			Description("the resource types to classify"),
	),
	types.Named("categories", types.NewObject(nil, types.NewDynamicProperty(types.S, types.NewSet(types.S)))).
		Description("each type that matches a pattern, with the set of its categories"),
)

// Bounds of the caches: a configuration is one pattern set, and Rego tests
// add a few; plans rarely hold more than a few hundred types. Past a bound
// a cache starts again empty rather than grow.
const (
	maxPatternSets = 64
	maxTypesPerSet = 1 << 14
)

// typeClassifier holds the compiled pattern sets of one engine.
type typeClassifier struct {
	mu   sync.Mutex
	sets map[int][]*patternSet // by the patterns term's hash
	n    int
}

func newTypeClassifier() *typeClassifier {
	return &typeClassifier{sets: map[int][]*patternSet{}}
}

// patternSet is one compiled patterns argument.
type patternSet struct {
	key   ast.Value // the argument, to tell apart sets whose hashes collide
	exact map[string][]string
	globs []categoryGlob

	mu    sync.RWMutex
	known map[string]*ast.Term // type -> set of categories; nil value: none
}

type categoryGlob struct {
	category string
	g        *glob.Pattern
}

// option returns the rego option that declares and implements the
// function.
func (tc *typeClassifier) option() func(*rego.Rego) {
	return rego.Function2(&rego.Function{
		Name:        typeCategoriesName,
		Description: "Classifies resource types against category patterns (exact names and * globs).",
		Decl:        typeCategoriesDecl,
	}, func(_ rego.BuiltinContext, patterns, typs *ast.Term) (*ast.Term, error) {
		return tc.classify(patterns.Value, typs.Value)
	})
}

func (tc *typeClassifier) classify(patterns, typs ast.Value) (*ast.Term, error) {
	set, err := tc.compiled(patterns)
	if err != nil {
		return nil, err
	}
	out := ast.NewObject()
	add := func(t *ast.Term) error {
		s, ok := t.Value.(ast.String)
		if !ok {
			return fmt.Errorf("a type is %s, want a string", valueName(t.Value))
		}
		if cats := set.categories(string(s)); cats != nil {
			out.Insert(t, cats)
		}
		return nil
	}
	switch v := typs.(type) {
	case ast.Set:
		err = v.Iter(add)
	case *ast.Array:
		err = v.Iter(add)
	default:
		err = fmt.Errorf("types is %s, want a set or an array of strings", valueName(typs))
	}
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(out), nil
}

// compiled returns the compiled form of a patterns argument, compiling it
// the first time it is seen.
func (tc *typeClassifier) compiled(patterns ast.Value) (*patternSet, error) {
	h := patterns.Hash()
	tc.mu.Lock()
	for _, s := range tc.sets[h] {
		if s.key.Compare(patterns) == 0 {
			tc.mu.Unlock()
			return s, nil
		}
	}
	tc.mu.Unlock()
	s, err := compilePatterns(patterns)
	if err != nil {
		return nil, err
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.n >= maxPatternSets {
		clear(tc.sets)
		tc.n = 0
	}
	tc.sets[h] = append(tc.sets[h], s)
	tc.n++
	return s, nil
}

func compilePatterns(patterns ast.Value) (*patternSet, error) {
	obj, ok := patterns.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("patterns is %s, want an object of category to list of patterns", valueName(patterns))
	}
	s := &patternSet{key: patterns, exact: map[string][]string{}, known: map[string]*ast.Term{}}
	err := obj.Iter(func(k, v *ast.Term) error {
		cat, ok := k.Value.(ast.String)
		if !ok {
			return fmt.Errorf("a category is %s, want a string", valueName(k.Value))
		}
		list, ok := v.Value.(*ast.Array)
		if !ok {
			return fmt.Errorf("the patterns of %q are %s, want an array of strings", string(cat), valueName(v.Value))
		}
		return list.Iter(func(t *ast.Term) error {
			p, ok := t.Value.(ast.String)
			if !ok {
				return fmt.Errorf("a pattern of %q is %s, want a string", string(cat), valueName(t.Value))
			}
			if !strings.Contains(string(p), "*") {
				s.exact[string(p)] = append(s.exact[string(p)], string(cat))
				return nil
			}
			g, err := glob.Compile(string(p))
			if err != nil {
				return fmt.Errorf("pattern %q of %q: %w", string(p), string(cat), err)
			}
			s.globs = append(s.globs, categoryGlob{category: string(cat), g: g})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkTypePattern says whether a type pattern compiles.
func checkTypePattern(p string) error {
	if !strings.Contains(p, "*") {
		return nil
	}
	if _, err := glob.Compile(p); err != nil {
		return fmt.Errorf("pattern %q is not a valid glob: %w", p, err)
	}
	return nil
}

// categories returns the set of a type's categories, nil when it has none.
func (s *patternSet) categories(t string) *ast.Term {
	s.mu.RLock()
	cats, seen := s.known[t]
	s.mu.RUnlock()
	if seen {
		return cats
	}
	names := slices.Clone(s.exact[t])
	for _, g := range s.globs {
		if !slices.Contains(names, g.category) && g.g.Match(t) {
			names = append(names, g.category)
		}
	}
	if len(names) > 0 {
		terms := make([]*ast.Term, len(names))
		for i, n := range names {
			terms[i] = ast.StringTerm(n)
		}
		cats = ast.SetTerm(terms...)
	}
	s.mu.Lock()
	if len(s.known) >= maxTypesPerSet {
		clear(s.known)
	}
	s.known[t] = cats
	s.mu.Unlock()
	return cats
}
