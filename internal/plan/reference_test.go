package plan

import (
	stdjson "encoding/json"
	"fmt"
	"slices"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The implementations that the streaming masking and after_unknown walk
// replaced: they decode to Go values. They are kept as the reference that
// the streaming ones are checked against.

// refMaskJSON returns val with the values that sense marks replaced by Mask.
func refMaskJSON(val, sense jsontext.Value, masked *[]string) (stdjson.RawMessage, error) {
	if len(val) == 0 || val.Kind() == 'n' {
		return nil, nil
	}
	if len(sense) == 0 {
		return stdjson.RawMessage(val), nil
	}
	s, err := decodeAny(sense)
	if err != nil {
		return nil, fmt.Errorf("sensitive markers: %w", err)
	}
	v, err := decodeAny(val)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	out, err := stdjson.Marshal(refMask(v, s, "", masked))
	if err != nil {
		return nil, fmt.Errorf("encoding masked values: %w", err)
	}
	return out, nil
}

// refMask returns v with every value that sense marks true replaced by Mask,
// and appends the masked paths. sense mirrors the shape of v: true, or an
// object or array of further markers.
func refMask(v, sense any, path string, masked *[]string) any {
	switch s := sense.(type) {
	case bool:
		if s && v != nil {
			*masked = append(*masked, RootPath(path))
			return Mask
		}
	case map[string]any:
		if m, ok := v.(map[string]any); ok {
			for k, sub := range s {
				if cur, ok := m[k]; ok {
					m[k] = refMask(cur, sub, JoinKey(path, k), masked)
				}
			}
		}
	case []any:
		if a, ok := v.([]any); ok {
			for i := range min(len(s), len(a)) {
				a[i] = refMask(a[i], s[i], JoinIndex(path, i), masked)
			}
		}
	}
	return v
}

// refUnknownPaths decodes an after_unknown tree and appends its true paths.
func refUnknownPaths(raw jsontext.Value, out *[]string) error {
	var unknown any
	if err := json.Unmarshal(raw, &unknown); err != nil {
		return err
	}
	refTruePaths(unknown, "", out)
	return nil
}

// refTruePaths appends the path of every true leaf of a marker tree such as
// after_unknown.
func refTruePaths(v any, path string, out *[]string) {
	switch t := v.(type) {
	case bool:
		if t {
			*out = append(*out, RootPath(path))
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			refTruePaths(t[k], JoinKey(path, k), out)
		}
	case []any:
		for i, e := range t {
			refTruePaths(e, JoinIndex(path, i), out)
		}
	}
}
