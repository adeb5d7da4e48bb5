package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test rule.
type TestResult = tester.Result

// RunTests runs the Rego unit tests (rules named test_*) in users' modules,
// compiled together with the built-in policy and with the configuration as
// data.stepgate.config, exactly as `stepgate eval` would see them. With
// builtin set, the built-in policy's own tests run too.
func RunTests(ctx context.Context, cfg Config, user []Module, builtin bool, filter string) ([]*TestResult, error) {
	parsed, store, err := load(cfg, append(BuiltinModules(builtin), user...))
	if err != nil {
		return nil, err
	}
	// The compiler must know stepgate's own built-in functions: the runner
	// adds them to its own compiler only.
	funcs, caps := newBuiltins().tester()
	compiler := ast.NewCompiler().WithCapabilities(caps).WithEnablePrintStatements(true)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		AddCustomBuiltins(funcs).
		SetStore(store).
		SetTimeout(30 * time.Second).
		RaiseBuiltinErrors(true).
		SetDefaultRegoVersion(ast.RegoV1)
	if filter != "" {
		runner = runner.Filter(filter)
	}
	ch, err := runner.Run(ctx, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	var results []*TestResult
	for r := range ch {
		results = append(results, r)
	}
	return results, nil
}
