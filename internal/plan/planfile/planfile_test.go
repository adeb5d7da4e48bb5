package planfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// readJSON reads a plan JSON of testdata as the server does: through
// plan.Decode, with Collect's hook.
func readJSON(t *testing.T, name string) *JSONPlan {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return decodeJSON(t, f)
}

func decodeJSON(t *testing.T, r io.Reader) *JSONPlan {
	t.Helper()
	hook, jp := Collect()
	p, err := plan.Decode(r, plan.Options{Raw: hook}, nil)
	if err != nil {
		t.Fatalf("plan.Decode: %v", err)
	}
	jp.Done(p)
	return jp
}

func readSaved(t *testing.T, name string) *Plan {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".tfplan"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Read(bytes.NewReader(b), Options{})
	if err != nil {
		t.Fatalf("Read(%s) = %v", name, err)
	}
	return p
}

// TestCompare pairs plan JSON with saved plans, all written by the real
// Terraform 1.11.4 (generate.sh) and OpenTofu 1.10.6.
func TestCompare(t *testing.T) {
	for _, tt := range []struct {
		name, json, saved, want string
	}{
		{"ok/create", "create_x_a", "create_x_a", ""},
		{"ok/update", "update_x", "update_x", ""},
		{"ok/replace", "replace_x", "replace_x", ""},
		{"ok/destroy", "destroy", "destroy", ""},
		{"ok/unknown-and-sensitive", "unknown_sensitive", "unknown_sensitive", ""},
		{"ok/opentofu-1.10.6", "opentofu-1.10.6/create", "opentofu-1.10.6/create", ""},
		// Only one attribute value differs: input "a" against "b".
		{"fail/one-value", "create_x_a", "create_x_b", "terraform_data.x: after.input differs"},
		{"fail/one-value-reversed", "create_x_b", "create_x_a", "terraform_data.x: after.input differs"},
		// The same addresses and actions, a sensitive value differs (the
		// JSON carries it in clear; it is compared before masking).
		{"fail/sensitive-value", "unknown_sensitive", "unknown_sensitive_other", "terraform_data.a: after.input differs"},
		{"fail/extra-resource-in-saved-plan", "create_x_a", "create_x_a_y", "terraform_data.y: create in the saved plan, not in the JSON"},
		{"fail/extra-resource-in-json", "create_x_a_y", "create_x_a", "terraform_data.y: create in the JSON, not in the saved plan"},
		{"fail/update-vs-replace", "update_x", "replace_x", "terraform_data.x: action update in the JSON, replace in the saved plan"},
		{"fail/replace-vs-delete", "replace_x", "destroy", "terraform_data.keep: action no-op in the JSON, delete in the saved plan"},
		{"fail/create-vs-replace", "create_x_a", "replace_x", "terraform_data.x: action create in the JSON, replace in the saved plan"},
		// A JSON from another plan of other resources.
		{"fail/other-plan", "opentofu-1.10.6/create", "create_x_a", "terraform_data.billing_rg: create in the JSON, not in the saved plan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Compare(readJSON(t, tt.json), readSaved(t, tt.saved))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Compare(%s, %s) = %v, want nil", tt.json, tt.saved, err)
				}
				return
			}
			var me *MismatchError
			if !errors.As(err, &me) || !errors.Is(err, ErrMismatch) {
				t.Fatalf("Compare(%s, %s) = %v, want a *MismatchError", tt.json, tt.saved, err)
			}
			if got := me.Address + ": " + me.What; got != tt.want {
				t.Errorf("Compare(%s, %s) = %q, want %q", tt.json, tt.saved, got, tt.want)
			}
		})
	}
}

// TestCompareEditedJSON edits the JSON of a real plan the way an attacker
// would, leaving the saved plan as Terraform wrote it.
func TestCompareEditedJSON(t *testing.T) {
	for _, tt := range []struct {
		name, json, old, new, want string
	}{
		{"fail/unknown-claimed-known", "unknown_sensitive",
			`"after_unknown": {
          "id": true,
          "input": true,`, `"after_unknown": {
          "id": true,`,
			"terraform_data.b: after.input is in the saved plan only"},
		{"fail/known-claimed-unknown", "create_x_a",
			`"after_unknown": {
          "id": true,`, `"after_unknown": {
          "id": true,
          "input": true,`,
			"terraform_data.x: after.input differs (unknown in the JSON, known in the saved plan)"},
		{"fail/sensitive-secret-swapped", "unknown_sensitive", `"hunter2"`, `"letmein"`,
			"terraform_data.a: after.input differs"},
		{"fail/number", "unknown_sensitive", `"ratio": 0.5`, `"ratio": 0.25`, "terraform_data.a: after.input differs"},
		{"fail/big-number", "unknown_sensitive", `12345678901234567890`, `12345678901234567891`, "terraform_data.a: after.input differs"},
		{"fail/list-order", "unknown_sensitive", `80,
              443`, `443,
              80`, "terraform_data.a: after.input differs"},
		{"fail/before", "update_x", `"input": "a",
          "output": "a"`, `"input": "z",
          "output": "a"`, "terraform_data.x: before.input differs"},
		{"fail/provider", "create_x_a", `"provider_name": "terraform.io/builtin/terraform"`, `"provider_name": "registry.terraform.io/hashicorp/null"`,
			`terraform_data.x: provider "registry.terraform.io/hashicorp/null" in the JSON, "terraform.io/builtin/terraform" in the saved plan`},
		{"fail/deposed", "create_x_a", `"address": "terraform_data.x",`, `"address": "terraform_data.x", "deposed": "abcd1234",`,
			"terraform_data.x (deposed object abcd1234): create in the JSON, not in the saved plan"},
		// A number written another way is the same number.
		{"ok/number-spelling", "unknown_sensitive", `"ratio": 0.5`, `"ratio": 5e-1`, ""},
		// A no-op's values are not applied, and not compared.
		{"ok/no-op-values", "update_x", `"input": "same",`, `"input": "other",`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.json+".json"))
			if err != nil {
				t.Fatal(err)
			}
			// Edited in resource_changes, what stepgate reads, not in
			// planned_values before it.
			doc := pretty(t, b)
			i := strings.Index(doc, `"resource_changes"`)
			head, edited := doc[:i], doc[i:]
			if !strings.Contains(edited, tt.old) {
				t.Fatalf("%s has no %q in resource_changes", tt.json, tt.old)
			}
			edited = head + strings.Replace(edited, tt.old, tt.new, 1)
			err = Compare(decodeJSON(t, strings.NewReader(edited)), readSaved(t, tt.json))
			got := ""
			if err != nil {
				var me *MismatchError
				if !errors.As(err, &me) {
					t.Fatalf("Compare = %v, want a *MismatchError", err)
				}
				got = me.Address + ": " + me.What
			}
			if got != tt.want {
				t.Errorf("Compare(edited %s) = %q, want %q", tt.json, got, tt.want)
			}
		})
	}
}

// pretty indents a JSON document the way the edits above are written.
func pretty(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := jsonIndent(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestReadGolden pins what Read makes of every saved plan: addresses,
// actions, attributes and the first bytes of their sums. A change in the
// canonical form shows here.
func TestReadGolden(t *testing.T) {
	names, err := filepath.Glob("testdata/*.tfplan")
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, "testdata/opentofu-1.10.6/create.tfplan")
	for _, path := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(path, "testdata/"), ".tfplan")
		t.Run(name, func(t *testing.T) {
			got := describe(readSaved(t, name))
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Read(%s) mismatch (-want +got):\n%s", name, diff)
			}
		})
	}
}

func describe(p *Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "format %d, written by %s, %d bytes, sha256 %s\n", p.FormatVersion, p.ToolVersion, p.Size, p.SHA256)
	for _, c := range p.Changes {
		fmt.Fprintf(&b, "%s %s provider=%s importing=%t\n", c.key(), strings.Join(c.Actions, ","), c.Provider, c.Importing)
		if c.noOp() {
			continue
		}
		for _, side := range []struct {
			name string
			d    Digest
		}{{"before", c.Before}, {"after", c.After}} {
			if side.d.Attrs == nil {
				fmt.Fprintf(&b, "  %s %s %x\n", side.name, side.d.kind(), side.d.Whole[:6])
				continue
			}
			keys := make([]string, 0, len(side.d.Attrs))
			for k := range side.d.Attrs {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				s := side.d.Attrs[k]
				note := ""
				switch s {
				case sumNull:
					note = " null"
				case sumUnknown:
					note = " unknown"
				}
				fmt.Fprintf(&b, "  %s.%s %x%s\n", side.name, k, s[:6], note)
			}
		}
	}
	return b.String()
}

// rezip rewrites a saved plan of testdata with its tfplan entry edited.
func rezip(t *testing.T, name string, edit func([]byte) []byte) []byte {
	t.Helper()
	src, err := zip.OpenReader(filepath.Join("testdata", name+".tfplan"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range src.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "tfplan" {
			b = edit(b)
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zipOf(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, name := range slices.Sorted(mapsKeys(entries)) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func mapsKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestReadRefuses feeds Read what is not a saved plan it may trust; each
// fails closed with an error that says why.
func TestReadRefuses(t *testing.T) {
	// The real tfplan of create_x_a starts with version 3 (08 03).
	setVersion := func(v byte) func([]byte) []byte {
		return func(b []byte) []byte {
			if b[0] != 0x08 || b[1] != 0x03 {
				t.Fatalf("tfplan starts % x, want 08 03", b[:2])
			}
			b = bytes.Clone(b)
			b[1] = v
			return b
		}
	}
	setTool := func(v string) func([]byte) []byte {
		return func(b []byte) []byte {
			i := bytes.Index(b, []byte("\x72\x061.11.4"))
			if i < 0 {
				t.Fatal("no terraform_version 1.11.4 in tfplan")
			}
			out := append(bytes.Clone(b[:i]), 0x72, byte(len(v)))
			out = append(out, v...)
			return append(out, b[i+8:]...)
		}
	}
	appendField := func(f ...byte) func([]byte) []byte {
		return func(b []byte) []byte { return append(bytes.Clone(b), f...) }
	}
	deep := bytes.Repeat([]byte{0x91}, 500)     // [[[[...
	deepChange := []byte{0x6a, 0x01, 'x', 0x4a} // addr "x", change:
	mp := append(bytes.Clone(deep), 0xc0)
	dv := append(append([]byte{0x0a}, protoLen(len(mp))...), mp...) // DynamicValue{msgpack}
	inner := append(append([]byte{0x08, 0x01, 0x12}, protoLen(len(dv))...), dv...)
	deepChange = append(deepChange, protoLen(len(inner))...)
	deepChange = append(deepChange, inner...)
	for _, tt := range []struct {
		name string
		in   []byte
		opts Options
		err  error
		want string
	}{
		{"fail/empty", nil, Options{}, ErrInvalid, "empty"},
		{"fail/json", []byte(`{"format_version":"1.2"}`), Options{}, ErrInvalid, "not a zip archive"},
		{"fail/no-tfplan", zipOf(t, map[string][]byte{"tfstate": []byte("{}")}), Options{}, ErrInvalid, "no tfplan entry"},
		{"fail/two-tfplans", twoEntries(t), Options{}, ErrInvalid, "two tfplan entries"},
		{"fail/version-4", rezip(t, "create_x_a", setVersion(4)), Options{}, ErrUnsupported, `tfplan format version 4, written by version "1.11.4"`},
		{"fail/version-2", rezip(t, "create_x_a", setVersion(2)), Options{}, ErrUnsupported, `format version 2`},
		{"fail/terraform-2", rezip(t, "create_x_a", setTool("2.0.0")), Options{}, ErrUnsupported, `written by version "2.0.0"`},
		{"fail/tool-not-a-version", rezip(t, "create_x_a", setTool("banana")), Options{}, ErrUnsupported, `written by version "banana"`},
		{"fail/unknown-field", rezip(t, "create_x_a", appendField(0xc8, 0x03, 0x01)), Options{}, ErrUnsupported, `field 57, unknown to this stepgate (written by version "1.11.4")`},
		{"fail/unknown-change-field", rezip(t, "create_x_a", func(b []byte) []byte {
			return append(bytes.Clone(b), 0x1a, 0x05, 0x6a, 0x01, 'y', 0x78, 0x01) // a change with field 15
		}), Options{}, ErrUnsupported, `resource change has field 15, unknown to this stepgate (written by version "1.11.4")`},
		{"fail/truncated", rezip(t, "create_x_a", func(b []byte) []byte { return b[:len(b)/2] }), Options{}, ErrInvalid, "truncated"},
		{"fail/file-too-large", mustRead(t, "create_x_a"), Options{MaxFileBytes: 100}, ErrTooLarge, "more than 100 bytes"},
		// A zip bomb: 64 MiB of zeros compress to a few KiB.
		{"fail/zip-bomb", zipOf(t, map[string][]byte{"tfplan": make([]byte, 64<<20)}), Options{MaxEntryBytes: 1 << 20}, ErrTooLarge, "decompressed"},
		{"fail/field-too-large", rezip(t, "create_x_a", func(b []byte) []byte {
			return append(bytes.Clone(b), append([]byte{0x1a, 0x80, 0x80, 0x80, 0x40}, 0)...) // 128 MiB announced
		}), Options{}, ErrTooLarge, "field 3 is 134217728 bytes"},
		{"fail/deep-nesting", rezip(t, "create_x_a", func(b []byte) []byte {
			return append(append(bytes.Clone(b), 0x1a), append(protoLen(len(deepChange)), deepChange...)...)
		}), Options{}, ErrInvalid, "nested deeper than 128"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Read(bytes.NewReader(tt.in), tt.opts)
			if err == nil {
				t.Fatalf("Read = %+v, want an error", p)
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read = %v, want %v with %q", err, tt.err, tt.want)
			}
		})
	}
}

func protoLen(n int) []byte {
	var b []byte
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".tfplan"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzReadPlanfile feeds Read hostile saved plans, and the tfplan reader
// hostile protocol buffers directly (a zip's CRC keeps most mutations from
// getting that far). Neither may panic, and every error is one of the
// package's.
func FuzzReadPlanfile(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.tfplan")
	names = append(names, "testdata/opentofu-1.10.6/create.tfplan")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range zr.File {
			if e.Name == "tfplan" {
				rc, _ := e.Open()
				tp, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(tp)
			}
		}
	}
	opts := Options{MaxFileBytes: 1 << 20, MaxEntryBytes: 4 << 20, MaxFieldBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Read(bytes.NewReader(b), opts)
		checkErr(t, err)
		_, err = readTFPlan(bufioReader(b), opts)
		checkErr(t, err)
	})
}

func checkErr(t *testing.T, err error) {
	if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v is none of the package's", err)
	}
}

func twoEntries(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for range 2 {
		w, err := zw.Create("tfplan")
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte{0x08, 0x03})
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func jsonIndent(w *bytes.Buffer, b []byte) error { return json.Indent(w, b, "", "  ") }

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
