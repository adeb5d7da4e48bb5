package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
	"go.yaml.in/yaml/v3"
)

// unknownField is how yaml.v3 words a key no struct field takes.
var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type .+$`)

// explain rewrites the errors of decoding doc into root in the words of the
// file: an unknown key is named by its path (plan.max_sise), with the
// closest known key at that place suggested; a Go type is never named.
func explain(doc []byte, root reflect.Type, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var n yaml.Node
	if yaml.Unmarshal(doc, &n) != nil {
		return err
	}
	var out []error
	for _, e := range te.Errors {
		m := unknownField.FindStringSubmatch(e)
		if m == nil {
			out = append(out, errors.New(e))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		path, known := locate(&n, root, line, m[2])
		if path == "" {
			path = m[2]
		}
		msg := fmt.Sprintf("line %d: unknown key %s", line, path)
		if s := closest(m[2], known); s != "" {
			if i := strings.LastIndexByte(path, '.'); i >= 0 {
				s = path[:i+1] + s
			}
			msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		out = append(out, errors.New(msg))
	}
	return errors.Join(out...)
}

// locate finds the key named key on line line of the document, and returns
// its dotted path and the keys the struct at that place knows.
func locate(n *yaml.Node, t reflect.Type, line int, key string) (string, []string) {
	var walk func(n *yaml.Node, t reflect.Type, prefix string) (string, []string, bool)
	walk = func(n *yaml.Node, t reflect.Type, prefix string) (string, []string, bool) {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p, k, ok := walk(c, t, prefix); ok {
					return p, k, true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				path := k.Value
				if prefix != "" {
					path = prefix + "." + k.Value
				}
				if k.Line == line && k.Value == key {
					return path, fieldNames(t), true
				}
				if p, kn, ok := walk(v, child(t, k.Value), path); ok {
					return p, kn, true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				var elem reflect.Type
				if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
					elem = t.Elem()
				}
				if p, k, ok := walk(c, elem, fmt.Sprintf("%s[%d]", prefix, i)); ok {
					return p, k, true
				}
			}
		}
		return "", nil, false
	}
	p, k, _ := walk(n, t, "")
	return p, k
}

// child is the type of the value at key under t: a struct's field by its
// yaml name, or a map's values.
func child(t reflect.Type, key string) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if yamlName(f) == key {
				return f.Type
			}
			if f.Anonymous && strings.Contains(f.Tag.Get("yaml"), "inline") {
				if c := child(f.Type, key); c != nil {
					return c
				}
			}
		}
	}
	return nil
}

// fieldNames are the keys a struct type takes.
func fieldNames(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && strings.Contains(f.Tag.Get("yaml"), "inline") {
			out = append(out, fieldNames(f.Type)...)
			continue
		}
		if name := yamlName(f); name != "" && name != "-" && f.IsExported() {
			out = append(out, name)
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// closest is the known key nearest to key, if one is near enough to be what
// was meant.
func closest(key string, known []string) string {
	best, dist := "", 0
	for _, k := range known {
		d := levenshtein.ComputeDistance(strings.ToLower(key), k)
		if best == "" || d < dist {
			best, dist = k, d
		}
	}
	if best == "" || dist > max(2, len(key)/3) {
		return ""
	}
	return best
}
