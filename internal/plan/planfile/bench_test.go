package planfile

import (
	"bytes"
	"os"
	"testing"

	"github.com/stepgate/stepgate/internal/plan"
)

// BenchmarkBind reads a plan JSON with the JSON side collected, reads the
// saved plan and compares them: what a check with a saved plan adds. Set
// STEPGATE_BENCH_PLAN to the path of a PLAN.json with PLAN.tfplan beside
// it (a large plan from generate.sh's terraform_data, for instance); it
// uses create_x_a otherwise.
func BenchmarkBind(b *testing.B) {
	base := os.Getenv("STEPGATE_BENCH_PLAN")
	if base == "" {
		base = "testdata/create_x_a"
	}
	js, err := os.ReadFile(base + ".json")
	if err != nil {
		b.Fatal(err)
	}
	saved, err := os.ReadFile(base + ".tfplan")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(js) + len(saved)))
	b.ReportAllocs()
	for b.Loop() {
		hook, jp := Collect()
		p, err := plan.Decode(bytes.NewReader(js), plan.Options{Raw: hook}, nil)
		if err != nil {
			b.Fatal(err)
		}
		jp.Done(p)
		sp, err := Read(bytes.NewReader(saved), Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := Compare(jp, sp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeOnly is the plan JSON read as a check without a saved
// plan reads it, for comparison with BenchmarkBind.
func BenchmarkDecodeOnly(b *testing.B) {
	base := os.Getenv("STEPGATE_BENCH_PLAN")
	if base == "" {
		base = "testdata/create_x_a"
	}
	js, err := os.ReadFile(base + ".json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.Decode(bytes.NewReader(js), plan.Options{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
