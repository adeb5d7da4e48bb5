package plan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// mask returns v with every value that sense marks true replaced by Mask,
// and appends the masked paths. sense mirrors the shape of v: true, or an
// object or array of further markers.
func mask(v, sense any, path string, masked *[]string) any {
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
					m[k] = mask(cur, sub, JoinKey(path, k), masked)
				}
			}
		}
	case []any:
		if a, ok := v.([]any); ok {
			for i := range min(len(s), len(a)) {
				a[i] = mask(a[i], s[i], JoinIndex(path, i), masked)
			}
		}
	}
	return v
}

// truePaths appends the path of every true leaf of a marker tree such as
// after_unknown.
func truePaths(v any, path string, out *[]string) {
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
			truePaths(t[k], JoinKey(path, k), out)
		}
	case []any:
		for i, e := range t {
			truePaths(e, JoinIndex(path, i), out)
		}
	}
}

// formatPath writes a replace_paths step list as a path string.
func formatPath(steps []any) string {
	path := ""
	for _, s := range steps {
		switch v := s.(type) {
		case string:
			path = JoinKey(path, v)
		case float64:
			path = JoinIndex(path, int(v))
		default:
			path = JoinKey(path, fmt.Sprint(v))
		}
	}
	return RootPath(path)
}

// JoinKey is the path of attribute or map key key under path: dots for
// attributes, ["key"] for a key that is empty or holds a dot, a bracket,
// a quote or a space. Paths in a Change (AfterUnknown, SensitivePaths,
// ReplacePaths) are built with JoinKey, JoinIndex and RootPath.
func JoinKey(path, key string) string {
	if strings.ContainsAny(key, ".[]\" ") || key == "" {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// JoinIndex is the path of element i of the list at path.
func JoinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// RootPath names the whole value "(root)" rather than the empty string.
func RootPath(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
