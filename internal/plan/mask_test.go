package plan

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

func TestMaskJSON(t *testing.T) {
	const m = `"(sensitive value)"`
	for _, tt := range []struct {
		name, val, sense string
		want             string // "" for a nil result
		paths            []string
		// sameAsRef: the reference implementation writes the same bytes
		// (it does whenever the value's keys are sorted).
		sameAsRef bool
	}{
		{name: "no-markers", val: `{"b": 1, "a": 2}`, sense: ``, want: `{"b": 1, "a": 2}`, sameAsRef: true},
		{name: "null-value", val: `null`, sense: `true`, want: ``, sameAsRef: true},
		{name: "no-value", val: ``, sense: `true`, want: ``, sameAsRef: true},
		{name: "root-true-on-object", val: `{"a":{"b":[1,2]}}`, sense: `true`, want: m, paths: []string{"(root)"}, sameAsRef: true},
		{name: "root-true-on-string", val: `"s3cret"`, sense: `true`, want: m, paths: []string{"(root)"}, sameAsRef: true},
		{name: "root-false", val: `{"a":1}`, sense: `false`, want: `{"a":1}`, sameAsRef: true},
		{name: "true-on-null-member", val: `{"a":null,"b":"x"}`, sense: `{"a":true,"b":true}`, want: `{"a":null,"b":` + m + `}`, paths: []string{"b"}, sameAsRef: true},
		{name: "true-on-object-member", val: `{"a":{"x":1,"y":[2]},"b":3}`, sense: `{"a":true}`, want: `{"a":` + m + `,"b":3}`, paths: []string{"a"}, sameAsRef: true},
		{name: "true-on-array-member", val: `{"a":[{"x":1}],"b":3}`, sense: `{"a":true}`, want: `{"a":` + m + `,"b":3}`, paths: []string{"a"}, sameAsRef: true},
		{name: "true-on-empty-containers", val: `{"a":{},"b":[],"c":""}`, sense: `{"a":true,"b":true,"c":true}`, want: `{"a":` + m + `,"b":` + m + `,"c":` + m + `}`, paths: []string{"a", "b", "c"}, sameAsRef: true},
		{
			name: "nested", val: `{"a":{"b":"x","c":1,"d":{"e":[{"f":"g","h":"i"}]}},"z":true}`,
			sense: `{"a":{"b":true,"d":{"e":[{"f":true}]}}}`,
			want:  `{"a":{"b":` + m + `,"c":1,"d":{"e":[{"f":` + m + `,"h":"i"}]}},"z":true}`,
			paths: []string{"a.b", "a.d.e[0].f"}, sameAsRef: true,
		},
		{name: "markers-shorter-than-array", val: `[1,2,3]`, sense: `[true]`, want: `[` + m + `,2,3]`, paths: []string{"[0]"}, sameAsRef: true},
		{name: "markers-longer-than-array", val: `[1]`, sense: `[false,true,true]`, want: `[1]`, sameAsRef: true},
		{name: "array-gaps", val: `["a","b","c","d"]`, sense: `[false,{},true,null,true]`, want: `["a","b",` + m + `,"d"]`, paths: []string{"[2]"}, sameAsRef: true},
		{name: "nested-arrays", val: `{"l":[[1,2],[3,4]]}`, sense: `{"l":[[],[false,true]]}`, want: `{"l":[[1,2],[3,` + m + `]]}`, paths: []string{"l[1][1]"}, sameAsRef: true},
		{name: "missing-key", val: `{"a":1}`, sense: `{"b":true,"c":{"d":true}}`, want: `{"a":1}`, sameAsRef: true},
		{name: "object-marker-on-array", val: `{"a":[1,2]}`, sense: `{"a":{"0":true}}`, want: `{"a":[1,2]}`, sameAsRef: true},
		{name: "array-marker-on-object", val: `{"a":{"x":1}}`, sense: `{"a":[true]}`, want: `{"a":{"x":1}}`, sameAsRef: true},
		{name: "object-marker-on-string", val: `{"a":"x"}`, sense: `{"a":{"b":true}}`, want: `{"a":"x"}`, sameAsRef: true},
		{name: "non-bool-markers", val: `{"a":"x","b":"y","c":"z","d":"w"}`, sense: `{"a":"yes","b":1,"c":null,"d":"true"}`, want: `{"a":"x","b":"y","c":"z","d":"w"}`, sameAsRef: true},
		{
			name:  "unicode-and-escaped-keys",
			val:   `{"":1,"a b":2,"a.b":3,"caf\u00e9":4,"q\"":5,"x":6,"\u65e5\u672c":7}`,
			sense: `{"":true,"a\u0020b":true,"a.b":true,"café":true,"q\"":true,"日本":true}`,
			want:  `{"":` + m + `,"a b":` + m + `,"a.b":` + m + `,"café":` + m + `,"q\"":` + m + `,"x":6,"日本":` + m + `}`,
			paths: []string{`[""]`, `["a b"]`, `["a.b"]`, `["q\""]`, "café", "日本"}, sameAsRef: true,
		},
		{
			name: "numbers-byte-for-byte",
			val:  `{"a":1e400,"b":12345678901234567890,"c":-0,"d":1.50E+10,"e":0.1000,"f":-1e-400,"s":"pw"}`, sense: `{"s":true}`,
			want:  `{"a":1e400,"b":12345678901234567890,"c":-0,"d":1.50E+10,"e":0.1000,"f":-1e-400,"s":` + m + `}`,
			paths: []string{"s"}, sameAsRef: true,
		},
		{
			name: "strings-escaped-as-encoding-json",
			val:  `{"h":"<a href=\"x\">&</a>","j":"\u2028\u2029","c":"\u0001\t\n\/\u00e9","p":"pw"}`, sense: `{"p":true}`,
			want:  `{"h":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e","j":"\u2028\u2029","c":"\u0001\t\n/é","p":` + m + `}`,
			paths: []string{"p"},
		},
		{
			name:  "many-marked-members",
			val:   `{"k00":0,"k01":1,"k02":2,"k03":3,"k04":4,"k05":5,"k06":6,"k07":7,"k08":8,"k09":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17}`,
			sense: `{"k17":true,"k16":true,"k15":false,"k14":true,"k13":true,"k12":true,"k11":true,"k10":true,"k09":true,"k08":true,"k07":true,"k06":true,"k05":true,"k04":true,"k03":true,"k02":true,"k01":true,"k00":{},"zz":true}`,
			want:  `{"k00":0,"k01":` + m + `,"k02":` + m + `,"k03":` + m + `,"k04":` + m + `,"k05":` + m + `,"k06":` + m + `,"k07":` + m + `,"k08":` + m + `,"k09":` + m + `,"k10":` + m + `,"k11":` + m + `,"k12":` + m + `,"k13":` + m + `,"k14":` + m + `,"k15":15,"k16":` + m + `,"k17":` + m + `}`,
			paths: []string{"k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12", "k13", "k14", "k16", "k17"}, sameAsRef: true,
		},
		{name: "white-space", val: " {\n  \"a\" : [ 1 , 2 ] ,\n  \"b\" : \"x\"\n}\n", sense: ` { "b" : true } `, want: `{"a":[1,2],"b":` + m + `}`, paths: []string{"b"}, sameAsRef: true},
		{name: "markers-mark-nothing", val: `{"b":[1],"a":{"x":"y"}}`, sense: `{"true_name":false}`, want: `{"b":[1],"a":{"x":"y"}}`},
		// The members stay in the order of the document; the reference
		// sorted them. Terraform writes them sorted.
		{name: "document-order", val: `{"b":1,"a":2}`, sense: `{"a":true}`, want: `{"b":1,"a":` + m + `}`, paths: []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w walker
			var paths []string
			got, err := w.maskJSON(jsontext.Value(tt.val), jsontext.Value(tt.sense), &paths)
			if err != nil {
				t.Fatalf("maskJSON: %v", err)
			}
			if tt.want == "" && got != nil || string(got) != tt.want {
				t.Errorf("maskJSON = %#q, want %#q", got, tt.want)
			}
			slices.Sort(paths)
			if diff := cmp.Diff(tt.paths, paths); diff != "" {
				t.Errorf("masked paths (-want +got):\n%s", diff)
			}
			var refPaths []string
			ref, err := refMaskJSON(jsontext.Value(tt.val), jsontext.Value(tt.sense), &refPaths)
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			slices.Sort(refPaths)
			if diff := cmp.Diff(refPaths, paths); diff != "" {
				t.Errorf("masked paths differ from the reference's (-ref +got):\n%s", diff)
			}
			if tt.sameAsRef && !bytes.Equal(got, ref) {
				t.Errorf("maskJSON = %#q, the reference wrote %#q", got, ref)
			}
			sameValue(t, got, ref)
		})
	}
}

func TestMaskJSONBadInput(t *testing.T) {
	for _, tt := range []struct{ name, val, sense, want string }{
		{"truncated-value", `{"a":`, `{"a":true}`, "values:"},
		{"invalid-value", `{"a":tru}`, `{"a":true}`, "values:"},
		{"truncated-markers", `{"a":1}`, `{"a":tr`, "sensitive markers:"},
		{"invalid-markers", `{"a":1}`, `{"a" true}`, "sensitive markers:"},
		{"trailing-value", `{"a":1} {}`, `{"a":true}`, "values:"},
		{"trailing-markers", `{"a":1}`, `{"a":true}]`, "sensitive markers:"},
		{"duplicate-key-value", `{"a":1,"a":2}`, `{"a":true}`, "values:"},
		{"duplicate-key-markers", `{"a":1}`, `{"a":true,"a":false}`, "sensitive markers:"},
		{"invalid-utf8", "{\"a\":\"\xff\"}", `{"a":false}`, "values:"},
		{"unmatched", `{"a":[1}`, `{"a":[true]}`, "values:"},
		{"skipped-invalid", `{"a":[1,}`, `{"a":true}`, "values:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w walker
			var paths []string
			got, err := w.maskJSON(jsontext.Value(tt.val), jsontext.Value(tt.sense), &paths)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("maskJSON = %#q, %v; want an error mentioning %q", got, err, tt.want)
			}
		})
	}
}

func TestUnknownPaths(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{name: "root-true", in: `true`, want: []string{"(root)"}},
		{name: "root-false", in: `false`},
		{name: "empty", in: `{}`},
		{name: "no-true-leaf", in: `{"a":false,"b":{},"c":[],"d":[{}],"e":null,"f":"true","g":1}`},
		{name: "flat-sorted", in: `{"arn":true,"id":true,"name":false}`, want: []string{"arn", "id"}},
		{
			name: "nested", in: `{"b":true,"a":{"y":true,"x":[false,true,{"z":true}]}}`,
			want: []string{"a.x[1]", "a.x[2].z", "a.y", "b"},
		},
		{
			// Sorted by name, not by path: "a" < "a b" < "b", though the path
			// ["a b"] sorts before a.c.
			name: "sorted-by-name", in: `{"b":true,"a b":true,"a":{"c":true}}`,
			want: []string{"a.c", `["a b"]`, "b"},
		},
		{
			name: "escaped-keys-sorted-unescaped", in: `{"\u00e9":true,"z":true,"\u0041":true,"a\"":true}`,
			want: []string{"A", `["a\""]`, "z", "é"},
		},
		{
			name: "indices-in-order", in: `[false,false,false,false,false,false,false,false,false,false,true,false,true]`,
			want: []string{"[10]", "[12]"},
		},
		{name: "array-of-objects", in: `{"l":[{"b":true,"a":true},{"c":[true]}]}`, want: []string{"l[0].a", "l[0].b", "l[1].c[0]"}},
		{name: "empty-name", in: `{"":true,"a":{"":true}}`, want: []string{`[""]`, `a[""]`}},
		{name: "large-integer", in: `{"n":12345678901234567890,"t":true}`, want: []string{"t"}},
		{name: "tiny-number", in: `{"n":1e-400,"t":true}`, want: []string{"t"}},
		{name: "number-overflow", in: `{"n":1e400,"t":true}`, err: true},
		{name: "number-overflow-in-array", in: `[true,-1e400]`, err: true},
		{name: "truncated", in: `{"a":true`, err: true},
		{name: "invalid", in: `{"a":tru}`, err: true},
		{name: "trailing", in: `{"a":true} x`, err: true},
		{name: "duplicate-key", in: `{"a":true,"a":true}`, err: true},
		{name: "empty-input", in: ``, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w walker
			var got []string
			err := w.unknownPaths(jsontext.Value(tt.in), &got)
			if (err != nil) != tt.err {
				t.Fatalf("unknownPaths error = %v, want error %t", err, tt.err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			var ref []string
			if err := refUnknownPaths(jsontext.Value(tt.in), &ref); err != nil {
				t.Fatalf("reference: %v", err)
			}
			if diff := cmp.Diff(ref, got); diff != "" {
				t.Errorf("paths differ from the reference's (-ref +got):\n%s", diff)
			}
		})
	}
}

// TestWalkerReuse checks that one walker gives the same results when used
// for many values in a row, as the decoder uses it.
func TestWalkerReuse(t *testing.T) {
	var w walker
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		val, sense := randomValue(r, 4), randomValue(r, 4)
		if r.IntN(3) == 0 {
			sense = mirrorMarkers(r, val, 4)
		}
		checkMaskAgainstRef(t, &w, []byte(val), []byte(sense))
		checkUnknownAgainstRef(t, &w, []byte(sense))
		if t.Failed() {
			t.Fatalf("after %d values: value %s, markers %s", i, val, sense)
		}
	}
}

// sameValue fails unless a and b are the same JSON value (or both nil).
func sameValue(t *testing.T, a, b []byte) {
	t.Helper()
	va, err := decodeAny(a)
	if err != nil {
		t.Fatalf("decoding %#q: %v", a, err)
	}
	vb, err := decodeAny(b)
	if err != nil {
		t.Fatalf("decoding %#q: %v", b, err)
	}
	if diff := cmp.Diff(vb, va); diff != "" {
		t.Errorf("values differ (-reference +got):\n%s", diff)
	}
}

// sortMembers rewrites a valid JSON value with the members of each object
// sorted by name, every token otherwise as written.
func sortMembers(t testing.TB, raw []byte) []byte {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	var walk func() []byte
	walk = func() []byte {
		switch dec.PeekKind() {
		case '{':
			_, _ = dec.ReadToken()
			type member struct {
				name string
				val  []byte
			}
			var ms []member
			for dec.PeekKind() != '}' {
				name, err := dec.ReadToken()
				if err != nil {
					t.Fatal(err)
				}
				k := name.String()
				ms = append(ms, member{k, walk()})
			}
			_, _ = dec.ReadToken()
			slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.name, b.name) })
			b := []byte{'{'}
			for i, m := range ms {
				if i > 0 {
					b = append(b, ',')
				}
				b, _ = jsontext.AppendQuote(b, m.name)
				b = append(append(b, ':'), m.val...)
			}
			return append(b, '}')
		case '[':
			_, _ = dec.ReadToken()
			b := []byte{'['}
			for i := 0; dec.PeekKind() != ']'; i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, walk()...)
			}
			_, _ = dec.ReadToken()
			return append(b, ']')
		}
		v, err := dec.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(v)
	}
	return walk()
}

// checkMaskAgainstRef checks maskJSON against the reference on valid JSON:
// the same paths, the same value, and the same bytes once the members of the
// value are sorted (as the reference wrote them).
func checkMaskAgainstRef(t *testing.T, w *walker, val, sense []byte) {
	t.Helper()
	var paths, refPaths []string
	got, err := w.maskJSON(val, sense, &paths)
	if err != nil {
		t.Fatalf("maskJSON(%#q, %#q): %v", val, sense, err)
	}
	ref, err := refMaskJSON(val, sense, &refPaths)
	if err != nil {
		t.Fatalf("reference(%#q, %#q): %v", val, sense, err)
	}
	slices.Sort(paths)
	slices.Sort(refPaths)
	if !slices.Equal(paths, refPaths) {
		t.Errorf("maskJSON(%#q, %#q) masked %q, the reference %q", val, sense, paths, refPaths)
	}
	sameValue(t, got, ref)
	if len(sense) == 0 || len(val) == 0 || jsontext.Value(val).Kind() == 'n' {
		return // passed on as is
	}
	paths = paths[:0]
	sorted, err := w.maskJSON(sortMembers(t, val), sense, &paths)
	if err != nil {
		t.Fatalf("maskJSON(sorted %#q, %#q): %v", val, sense, err)
	}
	if !bytes.Equal(sorted, ref) {
		t.Errorf("maskJSON(sorted %#q, %#q) = %#q, the reference wrote %#q", val, sense, sorted, ref)
	}
}

func checkUnknownAgainstRef(t *testing.T, w *walker, raw []byte) {
	t.Helper()
	var got, ref []string
	err := w.unknownPaths(raw, &got)
	refErr := refUnknownPaths(raw, &ref)
	if (err != nil) != (refErr != nil) {
		t.Fatalf("unknownPaths(%#q) error = %v, the reference's %v", raw, err, refErr)
	}
	if err == nil && !slices.Equal(got, ref) {
		t.Errorf("unknownPaths(%#q) = %q, the reference's %q", raw, got, ref)
	}
}

var randomNames = []string{"a", "b", "id", "tags", "", "a b", "a.b", "q\"", "caf\u00e9", "\u65e5", "Z", "true", "<x>"}

var randomScalars = []string{`true`, `false`, `null`, `0`, `-0`, `1.5e3`, `12345678901234567890`, `1e400`, `1e-400`, `"s"`, `"\u00e9\/\n<&>"`, `""`, `"\u2028"`}

// randomValue writes a random JSON value, its members in random order.
func randomValue(r *rand.Rand, depth int) string {
	switch n := r.IntN(10); {
	case depth == 0 || n < 4:
		return randomScalars[r.IntN(len(randomScalars))]
	case n < 7:
		names := slices.Clone(randomNames)
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		names = names[:r.IntN(5)]
		var b strings.Builder
		b.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				b.WriteByte(',')
			}
			q, _ := jsontext.AppendQuote(nil, k)
			fmt.Fprintf(&b, "%s:%s", q, randomValue(r, depth-1))
		}
		b.WriteByte('}')
		return b.String()
	default:
		var b strings.Builder
		b.WriteByte('[')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(randomValue(r, depth-1))
		}
		b.WriteByte(']')
		return b.String()
	}
}

// mirrorMarkers writes random markers of about the shape of val.
func mirrorMarkers(r *rand.Rand, val string, depth int) string {
	v, err := decodeAny([]byte(val))
	if err != nil {
		panic(err)
	}
	var mirror func(v any, depth int) string
	mirror = func(v any, depth int) string {
		if depth == 0 || r.IntN(4) == 0 {
			return []string{"true", "false", "{}", "[]", "null", `"x"`}[r.IntN(6)]
		}
		switch t := v.(type) {
		case map[string]any:
			var b strings.Builder
			b.WriteByte('{')
			keys := slices.Sorted(maps.Keys(t))
			r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			i := 0
			for _, k := range keys {
				e := t[k]
				if r.IntN(3) == 0 {
					continue
				}
				if i > 0 {
					b.WriteByte(',')
				}
				i++
				q, _ := jsontext.AppendQuote(nil, k)
				fmt.Fprintf(&b, "%s:%s", q, mirror(e, depth-1))
			}
			if r.IntN(3) == 0 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"missing":true`)
			}
			b.WriteByte('}')
			return b.String()
		case []any:
			var b strings.Builder
			b.WriteByte('[')
			for i := range len(t) + r.IntN(3) - 1 {
				if i > 0 {
					b.WriteByte(',')
				}
				var e any
				if i < len(t) {
					e = t[i]
				}
				b.WriteString(mirror(e, depth-1))
			}
			b.WriteByte(']')
			return b.String()
		}
		return []string{"true", "false"}[r.IntN(2)]
	}
	return mirror(v, depth)
}

func addMaskSeeds(f *testing.F) {
	f.Add([]byte(`{"a":{"b":"x","c":[1,2]},"d":null}`), []byte(`{"a":{"b":true,"c":[false,true]},"d":true}`))
	f.Add([]byte(`{"b":1,"a":{"y":2,"x":3}}`), []byte(`{"a":{"x":true}}`))
	f.Add([]byte(`[1,[2,3],{"k":"v"}]`), []byte(`[true,[false,true,true],{"k":true}]`))
	f.Add([]byte(`{"n":1e400,"m":12345678901234567890,"s":"<\u00e9>"}`), []byte(`true`))
	f.Add([]byte(`{"caf\u00e9":"x","a.b":"y"}`), []byte(`{"café":true,"a.b":{}}`))
}

// FuzzMaskJSON checks the streaming masking against the reference on any
// pair of valid JSON values, and that it never panics on invalid ones.
func FuzzMaskJSON(f *testing.F) {
	addMaskSeeds(f)
	f.Fuzz(func(t *testing.T, val, sense []byte) {
		var w walker
		var paths []string
		_, err := w.maskJSON(val, sense, &paths)
		valid := (len(val) == 0 || jsontext.Value(val).IsValid()) && (len(sense) == 0 || jsontext.Value(sense).IsValid())
		if !valid {
			return // an error or not, as long as there is no panic
		}
		if err != nil {
			t.Fatalf("maskJSON(%#q, %#q): %v", val, sense, err)
		}
		checkMaskAgainstRef(t, &w, val, sense)
	})
}

// FuzzUnknownPaths checks the after_unknown walk against the reference.
func FuzzUnknownPaths(f *testing.F) {
	f.Add([]byte(`{"b":true,"a":{"y":true,"x":[false,true,{"z":true}]}}`))
	f.Add([]byte(`{"\u00e9":true,"z":[true],"a b":{"":true},"n":1e400}`))
	f.Add([]byte(`[true,false,null,1,"x",{},[]]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var w walker
		var got []string
		err := w.unknownPaths(raw, &got)
		if !jsontext.Value(raw).IsValid() {
			if err == nil {
				t.Errorf("unknownPaths(%#q) read invalid JSON", raw)
			}
			return
		}
		checkUnknownAgainstRef(t, &w, raw)
	})
}
