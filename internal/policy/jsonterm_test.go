package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stepgate/stepgate/internal/plan"
)

// reference converts JSON the slow, obviously right way: decode with the
// standard library, then OPA's own conversion.
func reference(t testing.TB, raw []byte) ast.Value {
	t.Helper()
	val, err := referenceErr(t, raw)
	if err != nil {
		t.Fatalf("InterfaceToValue: %v", err)
	}
	return val
}

// referenceErr is OPA's own conversion of JSON, which refuses what OPA
// cannot evaluate (numbers out of range).
func referenceErr(t testing.TB, raw []byte) (ast.Value, error) {
	t.Helper()
	if len(raw) == 0 {
		return ast.Null{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("reference decode: %v", err)
	}
	return ast.InterfaceToValue(v)
}

// TestTermBuilderMatchesReference builds the before and after values of
// every change of every real fixture and compares them with OPA's own
// conversion, shared attributes included.
func TestTermBuilderMatchesReference(t *testing.T) {
	files, err := filepath.Glob("../../testdata/plans/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	checked := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		b := newTermBuilder()
		_, _ = plan.Decode(f, plan.Options{}, func(c *plan.Change) error {
			bt, at, err := b.buildPair(c.Before, c.After)
			if err != nil {
				t.Errorf("%s %s: buildPair: %v", path, c.Address, err)
				return nil
			}
			if ast.Compare(bt.Value, reference(t, c.Before)) != 0 || ast.Compare(at.Value, reference(t, c.After)) != 0 {
				t.Errorf("%s %s: terms differ from the reference conversion", path, c.Address)
			}
			checked++
			return nil
		})
		f.Close()
	}
	if checked < 900 {
		t.Errorf("checked %d changes, want the 948 of the fixtures", checked)
	}
}

func TestTermBuilder(t *testing.T) {
	for _, tt := range []struct {
		name, in string
	}{
		{"ok/escapes", `{"s": "a\"b\\c\/d\u00e9\ud83d\ude00\n", "k\u0041": 1}`},
		{"ok/numbers", `[0, -1, 12345, 1.5, -2.5e10, 1E3, 123456789012345678901234567890]`},
		{"ok/nested", `{"a": [{"b": [[], {}, null, true, false]}], "": ""}`},
		{"ok/whitespace", " \n{ \"a\" :\t[ 1 , 2 ] } \r\n"},
		{"ok/long-string", `"` + strings.Repeat("x", 200) + `"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newTermBuilder().build([]byte(tt.in))
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			if want := reference(t, []byte(tt.in)); ast.Compare(got.Value, want) != 0 {
				t.Errorf("build(%s) = %v, want %v", tt.in, got, want)
			}
		})
	}
	for _, bad := range []string{`{"a": }`, `[1,`, `"unterminated`, `{"a" 1}`, `tru`, `{"a": 1} x`, `-`} {
		if _, err := newTermBuilder().build([]byte(bad)); err == nil {
			t.Errorf("build(%q) succeeded, want an error", bad)
		}
	}
}

func TestBuildPairShares(t *testing.T) {
	before := []byte(`{"a": {"x": [1, 2]}, "b": "s", "c": {"y": 1}}`)
	after := []byte(`{"a": {"x": [1, 2]}, "b": "t", "c": {"y": 2}, "d": 1}`)
	bt, at, err := newTermBuilder().buildPair(before, after)
	if err != nil {
		t.Fatal(err)
	}
	key := func(k string) *ast.Term { return ast.StringTerm(k) }
	if bt.Get(key("a")) != at.Get(key("a")) {
		t.Error("an unchanged attribute is held twice")
	}
	if bt.Get(key("c")) == at.Get(key("c")) {
		t.Error("a changed attribute is shared")
	}
	if ast.Compare(at.Value, reference(t, after)) != 0 || ast.Compare(bt.Value, reference(t, before)) != 0 {
		t.Errorf("shared build differs from the reference: %v / %v", bt, at)
	}
}

func FuzzTermBuilder(f *testing.F) {
	for _, s := range []string{`{"a": [1, "x", null]}`, `"\u00e9"`, `[{"b": {"c": 1.5e3}}]`, `{"a": 1, "b": 2}`} {
		f.Add([]byte(s), []byte(`{"a": 1, "b": {"c": 2}}`))
	}
	f.Fuzz(func(t *testing.T, after, before []byte) {
		if !jsontext.Value(after).IsValid() || !jsontext.Value(before).IsValid() {
			return // the plan reader only passes on valid JSON without duplicate keys
		}
		refBefore, errBefore := referenceErr(t, before)
		refAfter, errAfter := referenceErr(t, after)
		bt, at, err := newTermBuilder().buildPair(before, after)
		if errBefore != nil || errAfter != nil {
			// OPA refuses a value (a number out of range): so must the
			// builder, as bad input.
			if !errors.Is(err, ErrInput) {
				t.Fatalf("buildPair(%q, %q) = %v; OPA refuses it (%v, %v): want ErrInput", before, after, err, errBefore, errAfter)
			}
			return
		}
		if err != nil {
			t.Fatalf("buildPair on valid JSON: %v", err)
		}
		if ast.Compare(at.Value, refAfter) != 0 || ast.Compare(bt.Value, refBefore) != 0 {
			t.Errorf("buildPair(%q, %q) differs from the reference", before, after)
		}
	})
}
