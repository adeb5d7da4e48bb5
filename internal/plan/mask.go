package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// walker rewrites and walks the JSON values of one change at a time. It
// keeps its decoder, encoder and output buffer from one value to the next;
// the zero value is ready to use, and it is not safe for concurrent use.
type walker struct {
	dec jsontext.Decoder
	src bytes.Buffer // what dec reads
	enc jsontext.Encoder
	out bytes.Buffer
	// scratch holds an object member name in the after_unknown walk.
	scratch []byte
	// runs holds, for each object being walked in the after_unknown walk,
	// the members that added paths.
	runs  []run
	paths []string // the after_unknown paths of one change
}

// reset points the decoder at raw, a complete JSON value. Reading from a
// bytes.Buffer, the decoder parses raw in place and never writes to it.
func (w *walker) reset(raw []byte) {
	w.src = *bytes.NewBuffer(raw)
	w.dec.Reset(&w.src)
}

// end checks that nothing but white space follows the value read.
func (w *walker) end() error {
	if _, err := w.dec.ReadToken(); err != io.EOF {
		if err == nil {
			return errors.New("more data follows the value")
		}
		return err
	}
	return nil
}

// Encoder options that write strings as encoding/json writes them (with <, >,
// & and U+2028, U+2029 escaped): a masked value is written as the standard
// library wrote it when masking decoded values to Go values and back.
var maskedValueOpts = []jsontext.Options{jsontext.EscapeForHTML(true), jsontext.EscapeForJS(true)}

// maskJSON returns val with the values that sense marks replaced by Mask, and
// appends the paths masked (unsorted, possibly twice; the caller dedupes).
// Most values have no sensitive marker: they are passed on as they are,
// without being decoded. A value with a marker is rewritten token by token,
// compact, its members in document order.
func (w *walker) maskJSON(val, sense jsontext.Value, masked *[]string) (jsontext.Value, error) {
	if len(val) == 0 || val.Kind() == 'n' {
		return nil, nil
	}
	if len(sense) == 0 {
		return val, nil
	}
	w.reset(sense)
	m, err := parseMarker(&w.dec)
	if err == nil {
		err = w.end()
	}
	if err != nil {
		return nil, fmt.Errorf("sensitive markers: %w", err)
	}
	w.reset(val)
	w.out.Reset()
	w.enc.Reset(&w.out, maskedValueOpts...)
	if err = w.copyMasked(m, "", masked); err == nil {
		err = w.end()
	}
	if err != nil {
		var se *jsontext.SyntacticError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("values: %w", err)
		}
		return nil, fmt.Errorf("encoding masked values: %w", err)
	}
	// The encoder ends a top-level value with a newline.
	return bytes.Clone(bytes.TrimSuffix(w.out.Bytes(), []byte("\n"))), nil
}

// marker is a node of a tree of sensitive markers (before_sensitive,
// after_sensitive), which mirrors the shape of the value it marks: true, or
// an object or array of further markers. Only what marks something is kept:
// false, null, numbers, strings and containers that mark nothing are nil.
type marker struct {
	kind jsontext.Kind // 't', '{' or '['
	// For an object, the names of the members with a marker and their
	// markers; for an array, the marker of each element (nil for none).
	names []string
	subs  []*marker
	index map[string]int // names to subs, for an object with many
}

// indexFrom is how many marked members an object has before they are
// looked up in a map rather than in turn.
const indexFrom = 16

var markTrue = &marker{kind: 't'}

// parseMarker reads a marker tree.
func parseMarker(dec *jsontext.Decoder) (*marker, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 't':
		return markTrue, nil
	case '{':
		var m *marker
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			k := name.String()
			sub, err := parseMarker(dec)
			if err != nil {
				return nil, err
			}
			if sub != nil {
				if m == nil {
					m = &marker{kind: '{'}
				}
				m.names = append(m.names, k)
				m.subs = append(m.subs, sub)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		if m != nil && len(m.names) >= indexFrom {
			m.index = make(map[string]int, len(m.names))
			for i, k := range m.names {
				m.index[k] = i
			}
		}
		return m, nil
	case '[':
		var m *marker
		for i := 0; dec.PeekKind() != ']'; i++ {
			sub, err := parseMarker(dec)
			if err != nil {
				return nil, err
			}
			if sub != nil {
				if m == nil {
					m = &marker{kind: '['}
				}
				for len(m.subs) < i {
					m.subs = append(m.subs, nil)
				}
				m.subs = append(m.subs, sub)
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, nil
}

// member returns the marker of the member named k.
func (m *marker) member(k string) *marker {
	if m.index != nil {
		if i, ok := m.index[k]; ok {
			return m.subs[i]
		}
		return nil
	}
	if i := slices.Index(m.names, k); i >= 0 {
		return m.subs[i]
	}
	return nil
}

// copyMasked copies the next value from the decoder to the encoder, with
// every non-null value that m marks true replaced by Mask; path is the
// value's path. A marker for a member or element that the value does not
// have, or of another shape than the value, masks nothing.
func (w *walker) copyMasked(m *marker, path string, masked *[]string) error {
	next := w.dec.PeekKind()
	switch {
	case m == nil || next == 0:
		// Nothing to mask here (or a syntax error, which ReadValue reports).
	case m.kind == 't' && next != 'n':
		if err := w.dec.SkipValue(); err != nil {
			return err
		}
		*masked = append(*masked, RootPath(path))
		return w.enc.WriteToken(jsontext.String(Mask))
	case m.kind == '{' && next == '{':
		if err := w.copyToken(); err != nil {
			return err
		}
		for w.dec.PeekKind() != '}' {
			name, err := w.dec.ReadToken()
			if err != nil {
				return err
			}
			k := name.String()
			if err := w.enc.WriteToken(name); err != nil {
				return err
			}
			sub, subPath := m.member(k), ""
			if sub != nil {
				subPath = JoinKey(path, k)
			}
			if err := w.copyMasked(sub, subPath, masked); err != nil {
				return err
			}
		}
		return w.copyToken()
	case m.kind == '[' && next == '[':
		if err := w.copyToken(); err != nil {
			return err
		}
		for i := 0; w.dec.PeekKind() != ']'; i++ {
			var sub *marker
			subPath := ""
			if i < len(m.subs) && m.subs[i] != nil {
				sub, subPath = m.subs[i], JoinIndex(path, i)
			}
			if err := w.copyMasked(sub, subPath, masked); err != nil {
				return err
			}
		}
		return w.copyToken()
	}
	v, err := w.dec.ReadValue()
	if err != nil {
		return err
	}
	return w.enc.WriteValue(v)
}

func (w *walker) copyToken() error {
	tok, err := w.dec.ReadToken()
	if err != nil {
		return err
	}
	return w.enc.WriteToken(tok)
}

// unknownPaths appends the path of every true leaf of a marker tree such as
// after_unknown, the members of each object in the order of their names
// (the order in which the tree decoded to Go maps was walked). A number that
// does not fit a float64 is an error, as it is when the tree is decoded to
// Go values.
func (w *walker) unknownPaths(raw jsontext.Value, out *[]string) error {
	w.reset(raw)
	tok, err := w.dec.ReadToken()
	if err != nil {
		return err
	}
	if err := w.truePaths(tok, "", out); err != nil {
		return err
	}
	return w.end()
}

// unknownPathList returns the paths of unknownPaths, nil for none.
func (w *walker) unknownPathList(raw jsontext.Value) ([]string, error) {
	w.paths = w.paths[:0]
	if err := w.unknownPaths(raw, &w.paths); err != nil || len(w.paths) == 0 {
		return nil, err
	}
	return slices.Clone(w.paths), nil
}

// truePaths appends the true leaves of the value whose first token, tok,
// has just been read; path is the value's path.
func (w *walker) truePaths(tok jsontext.Token, path string, out *[]string) error {
	switch tok.Kind() {
	case 't':
		*out = append(*out, RootPath(path))
	case '0':
		return checkFloat(tok)
	case '{':
		return w.objectTruePaths(path, out)
	case '[':
		for i := 0; w.dec.PeekKind() != ']'; i++ {
			tok, err := w.dec.ReadToken()
			if err != nil {
				return err
			}
			sub := ""
			if w.mayHoldTrue(tok) {
				sub = JoinIndex(path, i)
			}
			if err := w.truePaths(tok, sub, out); err != nil {
				return err
			}
		}
		_, err := w.dec.ReadToken()
		return err
	}
	return nil
}

// mayHoldTrue reports whether the value whose first token, tok, has just
// been read is true or an object or array with something in it: only then
// is its path built.
func (w *walker) mayHoldTrue(tok jsontext.Token) bool {
	switch tok.Kind() {
	case 't':
		return true
	case '{':
		return w.dec.PeekKind() != '}'
	case '[':
		return w.dec.PeekKind() != ']'
	}
	return false
}

// objectTruePaths walks the members of an object whose '{' has been read.
// The paths under each member are appended in document order; when the
// members that added paths are not in the order of their names, their runs
// of paths are then put in that order.
func (w *walker) objectTruePaths(path string, out *[]string) error {
	first := len(w.runs) // this object's runs follow those of its parents
	defer func() {
		clear(w.runs[first:])
		w.runs = w.runs[:first]
	}()
	sorted := true
	for w.dec.PeekKind() != '}' {
		raw, err := w.dec.ReadValue() // the member name, quoted
		if err != nil {
			return err
		}
		// Keep the name until the value's first token says it is needed.
		if w.scratch, err = jsontext.AppendUnquote(w.scratch[:0], raw); err != nil {
			return err
		}
		tok, err := w.dec.ReadToken()
		if err != nil {
			return err
		}
		name, sub := "", ""
		if w.mayHoldTrue(tok) {
			name = string(w.scratch)
			sub = JoinKey(path, name)
		}
		start := len(*out)
		if err := w.truePaths(tok, sub, out); err != nil {
			return err
		}
		if len(*out) > start {
			if len(w.runs) > first && w.runs[len(w.runs)-1].name > name {
				sorted = false
			}
			w.runs = append(w.runs, run{name, start, len(*out)})
		}
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return err
	}
	if sorted {
		return nil
	}
	runs := w.runs[first:]
	base := runs[0].start
	old := slices.Clone((*out)[base:])
	slices.SortFunc(runs, func(a, b run) int { return strings.Compare(a.name, b.name) })
	dst := (*out)[:base]
	for _, r := range runs {
		dst = append(dst, old[r.start-base:r.end-base]...)
	}
	return nil
}

// run is the paths that one member of an object added to the list of
// after_unknown paths.
type run struct {
	name       string
	start, end int // in the list
}

// checkFloat reports a number that does not fit a float64.
func checkFloat(tok jsontext.Token) error {
	s := tok.String()
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return fmt.Errorf("number %s: %w", s, errors.Unwrap(err))
	}
	return nil
}
