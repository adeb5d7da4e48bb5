package plan

import (
	"os"
	"testing"
)

// BenchmarkDecode streams the plan named by $STEPGATE_BENCH_PLAN, such as one
// written by `go run ./bench/plangen -changes 20000 -o /tmp/big.json`.
func BenchmarkDecode(b *testing.B) {
	path := os.Getenv("STEPGATE_BENCH_PLAN")
	if path == "" {
		b.Skip("set STEPGATE_BENCH_PLAN to a plan JSON file (e.g. from go run ./bench/plangen -changes 20000 -o /tmp/big.json) to run this benchmark")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		_, err = Decode(f, Options{}, func(*Change) error { return nil })
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}
