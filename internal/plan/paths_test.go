package plan

import (
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

// refReplacePaths is how replace_paths were read before, and are still
// read when they are not lists of strings and numbers: decoded to Go values
// and formatted.
var refReplacePaths = decodeReplacePaths

func TestReplacePaths(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []string
		err      bool
	}{
		{name: "empty", in: `[]`},
		{name: "attributes", in: `[["tags","Name"],["keepers"]]`, want: []string{"tags.Name", "keepers"}},
		{name: "indices", in: `[["ebs_block_device",0,"volume_id"],["l",12,3]]`, want: []string{"ebs_block_device[0].volume_id", "l[12][3]"}},
		{name: "quoted-keys", in: `[["tags","a.b"],["m",""],["x y"],["caf\u00e9"]]`, want: []string{`tags["a.b"]`, `m[""]`, `["x y"]`, "café"}},
		{name: "null-and-empty", in: `[null,[]]`, want: []string{"(root)", "(root)"}},
		{name: "fraction-and-exponent", in: `[["l",1.9],["l",2e0],["l",-0]]`, want: []string{"l[1]", "l[2]", "l[0]"}},
		{name: "bool-step", in: `[["a",true,false]]`, want: []string{"a.true.false"}},
		{name: "null-step", in: `[["a",null]]`, want: []string{"a.<nil>"}},
		{name: "object-step", in: `[["a",{"b":1}]]`, want: []string{`a["map[b:1]"]`}},
		{name: "number-overflow", in: `[["a",1e400]]`, err: true},
		{name: "not-a-list", in: `{"a":1}`, err: true},
		{name: "path-not-a-list", in: `["a"]`, err: true},
		{name: "trailing", in: `[["a"]] [`, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w walker
			got, err := w.replacePaths(jsontext.Value(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("replacePaths = %q, %v; want error %t", got, err, tt.err)
			}
			ref, refErr := refReplacePaths(jsontext.Value(tt.in))
			if (refErr != nil) != (err != nil) {
				t.Fatalf("replacePaths error = %v, the reference's %v", err, refErr)
			}
			if err != nil {
				if err.Error() != refErr.Error() {
					t.Errorf("replacePaths error = %v, the reference's %v", err, refErr)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(ref, got); diff != "" {
				t.Errorf("paths differ from the reference's (-ref +got):\n%s", diff)
			}
		})
	}
}

func FuzzReplacePaths(f *testing.F) {
	f.Add([]byte(`[["tags","Name"],["l",0,"x"],null,[]]`))
	f.Add([]byte(`[["a",1.5e3,true,null,{"b":[1]}]]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var w walker
		got, err := w.replacePaths(raw)
		ref, refErr := refReplacePaths(raw)
		if (err != nil) != (refErr != nil) || err != nil && err.Error() != refErr.Error() {
			t.Fatalf("replacePaths(%#q) error = %v, the reference's %v", raw, err, refErr)
		}
		if !cmp.Equal(got, ref) {
			t.Errorf("replacePaths(%#q) = %q, the reference's %q", raw, got, ref)
		}
	})
}

func TestNeedsBrackets(t *testing.T) {
	for _, k := range []string{"", "a", "a.b", "[", "]", `"`, " ", "café", "a\tb", "\xff.", "日本 語", "a_b-c"} {
		var want bool
		for _, r := range k {
			switch r {
			case '.', '[', ']', '"', ' ':
				want = true
			}
		}
		if got := needsBrackets(k); got != want {
			t.Errorf("needsBrackets(%q) = %t, want %t", k, got, want)
		}
	}
}
