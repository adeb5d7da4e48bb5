package secret

import (
	"fmt"
	"testing"
)

// BenchmarkOpen is the cost of opening one version: the data key under the
// master key, then the value under the data key.
func BenchmarkOpen(b *testing.B) {
	st, _ := openStore(b)
	defer st.Close()
	s := New(st, master(b, 1), nil)
	if _, err := s.Put(b.Context(), "a", "*", "", make([]byte, 4096), "bench"); err != nil {
		b.Fatal(err)
	}
	v, err := st.GetSecret(b.Context(), "a")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		val, err := s.Open(v)
		if err != nil {
			b.Fatal(err)
		}
		clear(val)
	}
}

// BenchmarkRotateMaster re-seals 1000 data keys on SQLite per iteration.
func BenchmarkRotateMaster(b *testing.B) {
	st, _ := openStore(b)
	defer st.Close()
	keysByte := byte(1)
	s := New(st, master(b, keysByte), nil)
	for i := range 1000 {
		if _, err := s.Put(b.Context(), fmt.Sprintf("s/%d", i), "*", "", []byte("v"), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		prev := master(b, keysByte)
		keysByte++
		r := New(st, master(b, keysByte).WithPrevious(prev), nil)
		if n, err := r.RotateMaster(b.Context(), "bench"); err != nil || n != 1000 {
			b.Fatalf("RotateMaster() = %d, %v", n, err)
		}
	}
}
