package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// evalExpr evaluates one Rego expression with stepgate's functions and
// returns its value as Rego text, or the evaluation error.
func evalExpr(t *testing.T, expr string) (string, error) {
	t.Helper()
	opts := append(newBuiltins().options(),
		rego.Query("x := "+expr),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
		rego.GenerateJSON(keepTerms),
	)
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		return "", err
	}
	if len(rs) != 1 {
		return "", nil // undefined
	}
	return rs[0].Bindings["x"].(*ast.Term).String(), nil
}

func TestBuiltinFunctions(t *testing.T) {
	const changes = `[
		{"address": "a", "type": "aws_iam_role", "action": "delete", "containers": ["rg-prod"], "tags": {"environment": ["Prod"]}},
		{"address": "b", "type": "aws_s3_bucket", "action": "create", "containers": [], "tags": {"Env": ["dev", "PRODUCTION"]}},
		{"address": "c", "type": "aws_iam_role", "action": "replace", "containers": ["rg-dev", "rg-prod"], "tags": {}},
		{"address": "d", "action": "update"},
		"not an object",
		{"address": "e", "type": "aws_instance", "action": "update", "tags": {"stage": "live", "tier": 3}}
	]`
	for _, tt := range []struct {
		name, expr, want string
	}{
		// stepgate.where: order kept, sets, arrays and object keys as values.
		{"where/set", `[c.address | some c in stepgate.where(` + changes + `, "action", {"delete", "replace"})]`, `["a", "c"]`},
		{"where/array", `[c.address | some c in stepgate.where(` + changes + `, "type", ["aws_s3_bucket"])]`, `["b"]`},
		{"where/object-keys", `[c.address | some c in stepgate.where(` + changes + `, "type", {"aws_iam_role": 1})]`, `["a", "c"]`},
		{"where/list-member-any-element", `[c.address | some c in stepgate.where(` + changes + `, "containers", {"rg-prod"})]`, `["a", "c"]`},
		{"where/none", `stepgate.where(` + changes + `, "type", set())`, `[]`},
		{"where/missing-member", `[c.address | some c in stepgate.where(` + changes + `, "mode", {"managed"})]`, `[]`},
		{"where/set-items", `[c.address | some c in stepgate.where({{"address": "x", "k": 1}, {"address": "y", "k": 2}}, "k", {2})]`, `["y"]`},
		{"where/exact-not-case", `stepgate.where([{"t": "A"}], "t", {"a"})`, `[]`},

		// stepgate.distinct: elements of list members, missing ones skipped.
		{"distinct/types", `stepgate.distinct(` + changes + `, "type")`, `{"aws_iam_role", "aws_instance", "aws_s3_bucket"}`},
		{"distinct/lists", `stepgate.distinct(` + changes + `, "containers")`, `{"rg-dev", "rg-prod"}`},
		{"distinct/empty", `stepgate.distinct([], "type")`, `set()`},

		// stepgate.tagged: keys and values in any case, a value may be a
		// string or a list; non-string values never match.
		{"tagged", `[c.address | some c in stepgate.tagged(` + changes + `, {"environment", "env", "stage", "tier"}, {"prod", "production", "live"})]`, `["a", "b", "e"]`},
		{"tagged/key-not-wanted", `stepgate.tagged(` + changes + `, {"owner"}, {"prod"})`, `[]`},
		{"tagged/value-not-wanted", `[c.address | some c in stepgate.tagged(` + changes + `, {"env"}, {"staging"})]`, `[]`},
		{"tagged/number-value", `stepgate.tagged(` + changes + `, {"tier"}, {"3"})`, `[]`},

		// stepgate.tokens: the separators of names, lower case, no empties.
		{"tokens", `stepgate.tokens("RG-Billing_prod.eu/west:1  x")`, `{"1", "billing", "eu", "prod", "rg", "west", "x"}`},
		{"tokens/only-separators", `stepgate.tokens("--__")`, `set()`},
		{"tokens/empty", `stepgate.tokens("")`, `set()`},
		{"tokens/product-is-not-prod", `"prod" in stepgate.tokens("product-catalog")`, `false`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := evalExpr(t, tt.expr)
			if err != nil {
				t.Fatalf("%s: %v", tt.expr, err)
			}
			if got != tt.want {
				t.Errorf("%s\n got %s\nwant %s", tt.expr, got, tt.want)
			}
		})
	}
}

// Wrong arguments are evaluation errors naming the function and the
// argument: with strict builtin errors, a policy that misuses them fails
// closed instead of seeing an empty selection.
func TestBuiltinFunctionErrors(t *testing.T) {
	for _, tt := range []struct {
		name, expr, want string
	}{
		{"where/items", `stepgate.where(input.x, "type", {"a"})`, "stepgate.where: items is a string, want an array or a set"},
		{"where/key", `stepgate.where([], input.n, {"a"})`, "stepgate.where: key is a number, want a string"},
		{"where/values", `stepgate.where([], "type", input.x)`, "stepgate.where: values is a string, want a set, an array or an object"},
		{"distinct/items", `stepgate.distinct(input.o, "type")`, "stepgate.distinct: items is an object, want an array or a set"},
		{"tagged/keys", `stepgate.tagged([], input.x, {"prod"})`, "stepgate.tagged: keys is a string, want a set, an array or an object"},
		{"tokens", `stepgate.tokens(input.n)`, "stepgate.tokens: s is a number, want a string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := append(newBuiltins().options(),
				rego.Query("x := "+tt.expr),
				rego.StrictBuiltinErrors(true),
				rego.SetRegoVersion(ast.RegoV1),
				rego.Input(map[string]any{"x": "text", "n": 1, "o": map[string]any{}}),
			)
			_, err := rego.New(opts...).Eval(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error %v, want one containing %q", tt.expr, err, tt.want)
			}
		})
	}
}
