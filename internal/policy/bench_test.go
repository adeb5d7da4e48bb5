package policy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/stepgate/stepgate/internal/plan"
)

// benchPlan returns a large realistic plan: $STEPGATE_BENCH_PLAN, or one of
// 20,000 changes written by bench/plangen.
func benchPlan(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("STEPGATE_BENCH_PLAN"); p != "" {
		return p
	}
	p := filepath.Join(b.TempDir(), "big.json")
	cmd := exec.Command("go", "run", "../../bench/plangen", "-changes", "20000", "-o", p)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("plangen: %v\n%s", err, out)
	}
	return p
}

// BenchmarkAssess measures the whole of `stepgate eval` but the process:
// stream the plan, build the input, evaluate the built-in policy.
func BenchmarkAssess(b *testing.B) {
	path := benchPlan(b)
	e := newEngine(b)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		in := streamInput(b, e, path)
		if _, err := e.Evaluate(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures reading alone.
func BenchmarkDecode(b *testing.B) {
	path := benchPlan(b)
	e := newEngine(b)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		streamInput(b, e, path)
	}
}

// streamInput reads the plan at path into an input as `stepgate eval` does:
// decoding and building the input overlap (Input.Stream).
func streamInput(b *testing.B, e *Engine, path string) *Input {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	in := e.NewInput(Operation{Kind: "terraform.apply", Workspace: "billing-prod"})
	visit, done := in.Stream()
	p, err := plan.Decode(f, plan.Options{}, visit)
	if derr := done(); err == nil {
		err = derr
	}
	if err != nil {
		b.Fatal(err)
	}
	in.SetPlan(p)
	return in
}

// BenchmarkRules measures the evaluation of each rule of the built-in
// policy on its own (with the rules it depends on), the input built once:
// where the evaluation time goes.
func BenchmarkRules(b *testing.B) {
	path := benchPlan(b)
	in := streamInput(b, newEngine(b), path).value()
	parsed, store, err := load(DefaultConfig(), BuiltinModules(false))
	if err != nil {
		b.Fatal(err)
	}
	for _, rule := range []string{
		"lib.destructive", "lib.change_addresses", "lib.prod_tagged", "lib.prod_named",
		"lib.production_containers", "lib.prod_contained", "lib.plan_types", "lib.sensitive_changes",
		"rules.builtin.stateful_destroyed", "lib.production_reasons", "rules.builtin.escalations",
		"rules.builtin.openings", "rules.builtin.exposures", "rules.builtin.removals", "rules.builtin.flagged",
		"rules.builtin.sensitive", "rules.builtin.counted_changes", "rules.builtin.findings",
	} {
		opts := append(newBuiltins().options(),
			rego.Query("x := data.stepgate."+rule),
			rego.Store(store),
			rego.SetRegoVersion(ast.RegoV1),
			rego.GenerateJSON(keepTerms),
		)
		for _, m := range parsed {
			opts = append(opts, rego.ParsedModule(m))
		}
		q, err := rego.New(opts...).PrepareForEval(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(rule, func(b *testing.B) {
			for b.Loop() {
				if _, err := q.Eval(context.Background(), rego.EvalParsedInput(in)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
