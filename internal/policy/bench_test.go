package policy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
