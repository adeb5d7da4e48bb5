package testenv

import (
	"testing"
)

// fakeT records how a test ended, without ending the real one.
type fakeT struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Fatalf(format string, a ...any) { f.failed, f.msg = true, format }
func (f *fakeT) Skip(a ...any)                  { f.skipped = true }

func TestMissingFailsInCIAndSkipsElsewhere(t *testing.T) {
	for _, tt := range []struct {
		ci         string
		fail, skip bool
	}{
		{"true", true, false},
		{"1", true, false},
		{"", false, true},
		{"false", false, true},
	} {
		t.Setenv("CI", tt.ci)
		f := &fakeT{}
		Missing(f, "no widget")
		if f.failed != tt.fail || f.skipped != tt.skip {
			t.Errorf("CI=%q: failed %v skipped %v, want %v %v", tt.ci, f.failed, f.skipped, tt.fail, tt.skip)
		}
	}
}
