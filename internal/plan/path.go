package plan

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// replacePaths reads replace_paths, a list of paths each written as a list
// of steps, and formats each path with formatPath. A list of lists of
// strings and numbers (as Terraform writes it) is read token by token; any
// other is decoded to Go values as before, for the same paths and errors.
func (w *walker) replacePaths(raw jsontext.Value) ([]string, error) {
	if paths, ok := w.simpleReplacePaths(raw); ok {
		return paths, nil
	}
	return decodeReplacePaths(raw)
}

// decodeReplacePaths reads replace_paths of any shape by decoding them to
// Go values.
func decodeReplacePaths(raw jsontext.Value) ([]string, error) {
	var steps [][]any
	if err := json.Unmarshal(raw, &steps); err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range steps {
		paths = append(paths, formatPath(p))
	}
	return paths, nil
}

// simpleReplacePaths formats replace_paths made of null and lists of
// strings and of numbers that fit a float64 (that formatPath gets as
// float64); it reports false for anything else.
func (w *walker) simpleReplacePaths(raw jsontext.Value) ([]string, bool) {
	w.reset(raw)
	if tok, err := w.dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, false
	}
	var paths []string
	for w.dec.PeekKind() != ']' {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return nil, false
		}
		switch tok.Kind() {
		case 'n':
			paths = append(paths, RootPath(""))
			continue
		case '[':
		default:
			return nil, false
		}
		path := ""
		for w.dec.PeekKind() != ']' {
			tok, err := w.dec.ReadToken()
			if err != nil {
				return nil, false
			}
			switch tok.Kind() {
			case '"':
				path = JoinKey(path, tok.String())
			case '0':
				f, err := strconv.ParseFloat(tok.String(), 64)
				if err != nil {
					return nil, false
				}
				path = JoinIndex(path, int(f))
			default:
				return nil, false
			}
		}
		if _, err := w.dec.ReadToken(); err != nil {
			return nil, false
		}
		paths = append(paths, RootPath(path))
	}
	if _, err := w.dec.ReadToken(); err != nil || w.end() != nil {
		return nil, false
	}
	return paths, true
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
	if key == "" || needsBrackets(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// needsBrackets reports whether key holds a dot, a bracket, a quote or a
// space (strings.ContainsAny(key, ".[]\" "), without its set built anew
// for every key).
func needsBrackets(key string) bool {
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '.', '[', ']', '"', ' ':
			return true
		}
	}
	return false
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
