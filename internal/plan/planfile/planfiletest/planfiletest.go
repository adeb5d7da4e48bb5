// Package planfiletest writes saved plans for tests.
package planfiletest

import (
	"archive/zip"
	"bytes"
	bin "encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
)

// WriteFor writes, at path, a saved plan that describes the same
// changes as the plan JSON at jsonPath, as `terraform plan -out` would
// have: the tfplan protocol buffers (format version 3) with each change's
// values encoded as msgpack. It stands in for Terraform where the plan's
// providers (aws...) cannot be run here; the tests of the saved plan reader
// itself use plans written by the real Terraform and OpenTofu
// (internal/plan/planfile/testdata).
func WriteFor(t testing.TB, jsonPath, path string) {
	t.Helper()
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TerraformVersion string `json:"terraform_version"`
		ResourceChanges  []struct {
			Address         string `json:"address"`
			PreviousAddress string `json:"previous_address"`
			Deposed         string `json:"deposed"`
			ProviderName    string `json:"provider_name"`
			Change          struct {
				Actions      []string        `json:"actions"`
				Before       json.RawMessage `json:"before"`
				After        json.RawMessage `json:"after"`
				AfterUnknown json.RawMessage `json:"after_unknown"`
				Importing    json.RawMessage `json:"importing"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	actions := map[string]uint64{"no-op": 0, "create": 1, "read": 2, "update": 3, "delete": 5, "delete,create": 6, "create,delete": 7, "forget": 8}
	var plan []byte
	plan = pbVarint(plan, 1, 3)
	for _, rc := range doc.ResourceChanges {
		act, ok := actions[strings.Join(rc.Change.Actions, ",")]
		if !ok {
			t.Fatalf("%s: actions %v", rc.Address, rc.Change.Actions)
		}
		var ch []byte
		ch = pbVarint(ch, 1, act)
		before := mpJSON(t, rc.Change.Before, nil)
		after := mpJSON(t, rc.Change.After, decodeAny(t, rc.Change.AfterUnknown))
		switch act {
		case 0:
			ch = pbBytes(ch, 2, pbBytes(nil, 1, before))
		case 1:
			ch = pbBytes(ch, 2, pbBytes(nil, 1, after))
		case 5, 8:
			ch = pbBytes(ch, 2, pbBytes(nil, 1, before))
		default:
			ch = pbBytes(ch, 2, pbBytes(nil, 1, before))
			ch = pbBytes(ch, 2, pbBytes(nil, 1, after))
		}
		if len(rc.Change.Importing) > 0 && string(rc.Change.Importing) != "null" {
			ch = pbBytes(ch, 5, nil)
		}
		var ric []byte
		ric = pbBytes(ric, 13, []byte(rc.Address))
		if rc.PreviousAddress != "" {
			ric = pbBytes(ric, 14, []byte(rc.PreviousAddress))
		}
		if rc.Deposed != "" {
			ric = pbBytes(ric, 7, []byte(rc.Deposed))
		}
		ric = pbBytes(ric, 8, []byte(`provider["`+rc.ProviderName+`"]`))
		ric = pbBytes(ric, 9, ch)
		plan = pbBytes(plan, 3, ric)
	}
	plan = pbBytes(plan, 14, []byte(doc.TerraformVersion))
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, e := range []struct {
		name string
		body []byte
	}{{"tfplan", plan}, {"tfstate", []byte("{}")}} {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pbVarint(b []byte, num, v uint64) []byte {
	b = bin.AppendUvarint(b, num<<3)
	return bin.AppendUvarint(b, v)
}

func pbBytes(b []byte, num uint64, v []byte) []byte {
	b = bin.AppendUvarint(b, num<<3|2)
	b = bin.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func decodeAny(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// mpJSON encodes a JSON value as cty's msgpack would, with unknown marking
// where after_unknown says the value is unknown.
func mpJSON(t testing.TB, raw json.RawMessage, unknown any) []byte {
	t.Helper()
	return mpValue(t, nil, decodeAny(t, raw), unknown)
}

func mpValue(t testing.TB, b []byte, v, unknown any) []byte {
	if unknown == true {
		return append(b, 0xd4, 0, 0)
	}
	switch v := v.(type) {
	case nil:
		return append(b, 0xc0)
	case bool:
		if v {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case string:
		return mpString(b, v)
	case json.Number:
		var r big.Rat
		if _, ok := r.SetString(v.String()); !ok {
			t.Fatalf("number %s", v)
		}
		if r.IsInt() && r.Num().IsInt64() {
			return bin.BigEndian.AppendUint64(append(b, 0xd3), uint64(r.Num().Int64()))
		}
		if f, exact := r.Float64(); exact {
			return bin.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
		}
		return mpString(b, v.String())
	case []any:
		ul, _ := unknown.([]any)
		b = bin.BigEndian.AppendUint32(append(b, 0xdd), uint32(len(v)))
		for i, e := range v {
			var u any
			if i < len(ul) {
				u = ul[i]
			}
			b = mpValue(t, b, e, u)
		}
		return b
	case map[string]any:
		um, _ := unknown.(map[string]any)
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		for k, u := range um {
			if _, ok := v[k]; !ok && u == true {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		b = bin.BigEndian.AppendUint32(append(b, 0xdf), uint32(len(keys)))
		for _, k := range keys {
			b = mpString(b, k)
			b = mpValue(t, b, v[k], um[k])
		}
		return b
	}
	t.Fatalf("JSON value %T", v)
	return nil
}

func mpString(b []byte, s string) []byte {
	b = bin.BigEndian.AppendUint32(append(b, 0xdb), uint32(len(s)))
	return append(b, s...)
}
