package policy

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// Functions that read what a change does from its values: the built-in
// rules identity.escalation and network.exposure call them. They parse and
// normalise; which actions, principals and ports count is decided by the
// Rego that calls them.

const (
	policyStatementsName = "stepgate.policy_statements"
	portRangesName       = "stepgate.port_ranges"
)

var (
	policyStatementsDecl = types.NewFunction(
		types.Args(types.Named("document", types.A).Description("an IAM-style policy document: a JSON string or an object")),
		types.Named("statements", types.A).
			Description("its statements, normalised (see docs/policy.md), or null when the document cannot be read"),
	)
	portRangesDecl = types.NewFunction(
		types.Args(types.Named("ports", types.A).Description(`a port, a range or a list of them: 22, "22", "80-85", "1000/2000", "22, 443", "*", "any"`)),
		types.Named("ranges", types.NewArray(nil, types.NewArray(nil, types.N))).
			Description("the [low, high] ranges it covers; every port ([0, 65535]) for *, any, all and what cannot be read"),
	)
)

func contentBuiltins() []builtinFunc {
	fn := func(name, desc string, decl *types.Function) *rego.Function {
		return &rego.Function{Name: name, Description: desc, Decl: decl}
	}
	return append(selectBuiltins(), []builtinFunc{
		ingressBuiltin(),
		{
			decl: &ast.Builtin{Name: policyStatementsName, Decl: policyStatementsDecl},
			opt: rego.Function1(fn(policyStatementsName, "Reads the statements of an IAM-style policy document.", policyStatementsDecl),
				func(_ rego.BuiltinContext, doc *ast.Term) (*ast.Term, error) {
					return policyStatements(doc.Value), nil
				}),
		},
		{
			decl: &ast.Builtin{Name: portRangesName, Decl: portRangesDecl},
			opt: rego.Function1(fn(portRangesName, "Reads a port, a port range or a list of them.", portRangesDecl),
				func(_ rego.BuiltinContext, ports *ast.Term) (*ast.Term, error) {
					return portRanges(ports.Value), nil
				}),
		},
	}...)
}

// policyDoc is the shape of an IAM policy document (AWS, Alibaba RAM) or a
// Google IAM policy (bindings).
type policyDoc struct {
	Statement json.RawMessage `json:"Statement"`
	Bindings  []struct {
		Role    string   `json:"role"`
		Members []string `json:"members"`
	} `json:"bindings"`
}

type policyStatement struct {
	Effect       string          `json:"Effect"`
	Action       json.RawMessage `json:"Action"`
	NotAction    json.RawMessage `json:"NotAction"`
	Resource     json.RawMessage `json:"Resource"`
	NotResource  json.RawMessage `json:"NotResource"`
	Principal    json.RawMessage `json:"Principal"`
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	Condition    map[string]map[string]json.RawMessage
}

// policyStatements implements stepgate.policy_statements. Each statement
// becomes
//
//	{"effect": "allow", "action_names": [...], "not_action": bool,
//	 "resources": [...], "not_resource": bool, "principals": [...],
//	 "not_principal": bool, "condition_keys": [...]}
//
// with the effect and condition keys in lower case, a single string and a
// list alike read as a list, and principals written "*" or "KIND:value"
// ("AWS:arn:aws:iam::123456789012:root", "Service:lambda.amazonaws.com").
// A Google policy's bindings become {"role": ..., "members": [...]}.
// A document that is not valid JSON, or not a policy, gives null.
func policyStatements(v ast.Value) *ast.Term {
	var raw []byte
	switch d := v.(type) {
	case ast.String:
		raw = []byte(d)
	case ast.Object:
		j, err := ast.JSON(d)
		if err != nil {
			return ast.NullTerm()
		}
		if raw, err = json.Marshal(j); err != nil {
			return ast.NullTerm()
		}
	default:
		return ast.NullTerm()
	}
	var doc policyDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return ast.NullTerm()
	}
	var out []*ast.Term
	for _, b := range doc.Bindings {
		out = append(out, ast.ObjectTerm(
			item("role", ast.StringTerm(b.Role)),
			item("members", strTerms(b.Members, false)),
		))
	}
	if len(doc.Statement) == 0 {
		if doc.Bindings == nil {
			return ast.NullTerm()
		}
		return ast.ArrayTerm(out...)
	}
	var stmts []policyStatement
	if err := json.Unmarshal(doc.Statement, &stmts); err != nil {
		var one policyStatement
		if err := json.Unmarshal(doc.Statement, &one); err != nil {
			return ast.NullTerm()
		}
		stmts = []policyStatement{one}
	}
	for _, s := range stmts {
		actions, ok1 := stringOrList(s.Action)
		notActions, ok2 := stringOrList(s.NotAction)
		resources, ok3 := stringOrList(s.Resource)
		notResources, ok4 := stringOrList(s.NotResource)
		principals, ok5 := principalList(s.Principal)
		notPrincipals, ok6 := principalList(s.NotPrincipal)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
			return ast.NullTerm()
		}
		var condKeys []string
		for _, m := range s.Condition {
			for k := range m {
				condKeys = append(condKeys, strings.ToLower(k))
			}
		}
		slices.Sort(condKeys)
		out = append(out, ast.ObjectTerm(
			item("effect", ast.StringTerm(strings.ToLower(s.Effect))),
			item("action_names", strTerms(append(actions, notActions...), false)),
			item("not_action", ast.BooleanTerm(s.NotAction != nil)),
			item("resources", strTerms(append(resources, notResources...), false)),
			item("not_resource", ast.BooleanTerm(s.NotResource != nil)),
			item("principals", strTerms(append(principals, notPrincipals...), false)),
			item("not_principal", ast.BooleanTerm(s.NotPrincipal != nil)),
			item("condition_keys", strTerms(condKeys, false)),
		))
	}
	return ast.ArrayTerm(out...)
}

func strTerms(ss []string, lower bool) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		if lower {
			s = strings.ToLower(s)
		}
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

// stringOrList reads "a" or ["a", "b"]; a missing member is an empty list.
func stringOrList(raw json.RawMessage) ([]string, bool) {
	if raw == nil || string(raw) == "null" {
		return nil, true
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many, true
	}
	return nil, false
}

// principalList reads "*" or {"AWS": "..." or [...], "Service": ...}.
func principalList(raw json.RawMessage) ([]string, bool) {
	if raw == nil || string(raw) == "null" {
		return nil, true
	}
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return []string{star}, true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	var out []string
	for kind, v := range m {
		vals, ok := stringOrList(v)
		if !ok {
			return nil, false
		}
		for _, p := range vals {
			if p == "*" {
				out = append(out, "*")
			} else {
				out = append(out, kind+":"+p)
			}
		}
	}
	slices.Sort(out)
	return out, true
}

var allPorts = ast.ArrayTerm(ast.ArrayTerm(ast.IntNumberTerm(0), ast.IntNumberTerm(65535)))

// portRanges implements stepgate.port_ranges.
func portRanges(v ast.Value) *ast.Term {
	var out []*ast.Term
	add := func(lo, hi int) {
		out = append(out, ast.ArrayTerm(ast.IntNumberTerm(lo), ast.IntNumberTerm(hi)))
	}
	var visit func(v ast.Value) bool
	visit = func(v ast.Value) bool {
		switch p := v.(type) {
		case ast.Number:
			n, ok := p.Int()
			if !ok {
				return false
			}
			add(n, n)
			return true
		case ast.String:
			for part := range strings.SplitSeq(string(p), ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				lo, hi, ok := parsePortRange(part)
				if !ok {
					return false
				}
				add(lo, hi)
			}
			return true
		case *ast.Array:
			ok := true
			p.Foreach(func(t *ast.Term) { ok = ok && visit(t.Value) })
			return ok
		case ast.Set:
			ok := true
			p.Foreach(func(t *ast.Term) { ok = ok && visit(t.Value) })
			return ok
		}
		return false
	}
	if !visit(v) {
		return allPorts
	}
	return ast.ArrayTerm(out...)
}

func parsePortRange(s string) (int, int, bool) {
	switch strings.ToLower(s) {
	case "*", "any", "all", "-1":
		return 0, 65535, true
	}
	sep := strings.IndexAny(s, "-/:")
	if sep < 0 {
		n, err := strconv.Atoi(s)
		return n, n, err == nil
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(s[:sep]))
	hi, err2 := strconv.Atoi(strings.TrimSpace(s[sep+1:]))
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi, true
}
