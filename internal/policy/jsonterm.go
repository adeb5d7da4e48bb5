package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
)

// termBuilder turns JSON text into Rego terms directly, without building Go
// values first. The JSON was validated when the plan was read. Object keys
// and short strings repeat across thousands of resources ("tags", "us-east-1",
// "t3.small"): they are interned, so each is held once. Terms are never
// changed after they are built, so sharing them is safe.
type termBuilder struct {
	interned map[string]*ast.Term
}

func newTermBuilder() *termBuilder {
	return &termBuilder{interned: map[string]*ast.Term{}}
}

const maxInterned = 64 // bytes; longer strings are rarely repeated

func (b *termBuilder) str(s []byte) *ast.Term {
	if len(s) > maxInterned {
		return ast.StringTerm(string(s))
	}
	if t, ok := b.interned[string(s)]; ok { // no allocation for the lookup
		return t
	}
	t := ast.StringTerm(string(s))
	b.interned[string(s)] = t
	return t
}

// build returns the term of one JSON value; nil or empty input is null.
func (b *termBuilder) build(data []byte) (*ast.Term, error) {
	return b.buildSelected(data, nil)
}

type jsonParser struct {
	b    *termBuilder
	data []byte
	pos  int
	buf  []byte
}

// topLevel is what parsing does with the members of a top-level object
// besides building them.
type topLevel struct {
	// keep, when set, says which members to build; the others are
	// skipped.
	keep func(key []byte) bool
	// share, when set, is the before value an after value is parsed
	// against (see buildPair).
	share *sharing
	// spans, when set, records where the value of each member lies in
	// the data.
	spans map[string][2]int
}

// parse builds the term of all of p.data: one JSON value and nothing after
// it. top, when set, applies to the members of a top-level object.
func (p *jsonParser) parse(top *topLevel) (*ast.Term, error) {
	var t *ast.Term
	var err error
	if p.space(); top != nil && p.pos < len(p.data) && p.data[p.pos] == '{' {
		t, err = p.object(top)
	} else {
		t, err = p.value()
	}
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.data) {
		return nil, fmt.Errorf("unexpected data at offset %d of a value", p.pos)
	}
	return t, nil
}

func (p *jsonParser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) fail(what string) error {
	return fmt.Errorf("invalid JSON value at offset %d: %s", p.pos, what)
}

func (p *jsonParser) value() (*ast.Term, error) {
	p.space()
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(nil)
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return p.b.str(s), nil
	case c == 't' && p.literal("true"):
		return ast.InternedTerm(true), nil
	case c == 'f' && p.literal("false"):
		return ast.InternedTerm(false), nil
	case c == 'n' && p.literal("null"):
		return nullTerm, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, p.fail("unexpected character")
}

func (p *jsonParser) literal(lit string) bool {
	if len(p.data)-p.pos >= len(lit) && string(p.data[p.pos:p.pos+len(lit)]) == lit {
		p.pos += len(lit)
		return true
	}
	return false
}

func (p *jsonParser) number() (*ast.Term, error) {
	start := p.pos
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			p.pos++
			continue
		}
		break
	}
	s := p.data[start:p.pos]
	if len(s) <= 4 {
		if n, err := strconv.Atoi(string(s)); err == nil {
			return ast.InternedTerm(n), nil
		}
	}
	if !json.Valid(s) {
		return nil, p.fail("bad number")
	}
	// A number whose exponent is out of OPA's range (1e100000) would make
	// evaluating it cost without bound; OPA refuses it in JSON input too.
	n, err := ast.NumberChecked(string(s))
	if err != nil {
		return nil, fmt.Errorf("%w: number %.40s at offset %d: %w", ErrInput, s, start, err)
	}
	return ast.NewTerm(n), nil
}

// string returns the contents of a JSON string, unescaped. The slice is
// valid until the next call.
func (p *jsonParser) string() ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '"':
			s := p.data[start:p.pos]
			p.pos++
			return s, nil
		case '\\':
			return p.escapedString(start)
		}
		p.pos++
	}
	return nil, p.fail("unterminated string")
}

func (p *jsonParser) escapedString(start int) ([]byte, error) {
	end := p.pos
	for end < len(p.data) {
		if p.data[end] == '\\' {
			end += 2
			continue
		}
		if p.data[end] == '"' {
			break
		}
		end++
	}
	if end >= len(p.data) {
		return nil, p.fail("unterminated string")
	}
	var err error
	p.buf, err = jsontext.AppendUnquote(p.buf[:0], p.data[start-1:end+1])
	if err != nil || !utf8.Valid(p.buf) {
		return nil, p.fail("bad string escape")
	}
	p.pos = end + 1
	return p.buf, nil
}

// shared returns before's term for key when after's value is the same
// JSON text, and parses it otherwise.
func (p *jsonParser) shared(s *sharing, key *ast.Term) (*ast.Term, error) {
	p.space()
	start := p.pos
	if span, ok := s.spans[string(key.Value.(ast.String))]; ok {
		if err := p.skip(); err != nil {
			return nil, err
		}
		if string(p.data[start:p.pos]) == string(s.raw[span[0]:span[1]]) {
			if t := s.obj.Get(key); t != nil {
				return t, nil
			}
		}
		p.pos = start
	}
	return p.value()
}

func (p *jsonParser) array() (*ast.Term, error) {
	p.pos++
	var elems []*ast.Term
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return emptyArray, nil
	}
	for {
		t, err := p.value()
		if err != nil {
			return nil, err
		}
		elems = append(elems, t)
		p.space()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return ast.ArrayTerm(elems...), nil
		default:
			return nil, p.fail("want , or ]")
		}
	}
}

// object builds an object; top is set for a top-level one only.
func (p *jsonParser) object(top *topLevel) (*ast.Term, error) {
	p.pos++
	var items [][2]*ast.Term
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return emptyObject, nil
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("want an object key")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		kept := top == nil || top.keep == nil || top.keep(k)
		var key *ast.Term
		if kept {
			key = p.b.str(k)
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("want :")
		}
		p.pos++
		var v *ast.Term
		switch {
		case !kept:
			err = p.skip()
		case top != nil && top.share != nil:
			v, err = p.shared(top.share, key)
		case top != nil && top.spans != nil:
			p.space()
			start := p.pos
			if v, err = p.value(); err == nil {
				top.spans[string(key.Value.(ast.String))] = [2]int{start, p.pos}
			}
		default:
			v, err = p.value()
		}
		if err != nil {
			return nil, err
		}
		if kept {
			items = append(items, [2]*ast.Term{key, v})
		}
		p.space()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			if len(items) == 0 {
				return emptyObject, nil
			}
			return ast.ObjectTerm(items...), nil
		default:
			return nil, p.fail("want , or }")
		}
	}
}

// buildSelected builds the term of one JSON value like build, except that
// of a top-level object only the members whose key keep accepts are built
// (all of them when keep is nil).
func (b *termBuilder) buildSelected(data []byte, keep func(key []byte) bool) (*ast.Term, error) {
	if len(data) == 0 {
		return nullTerm, nil
	}
	p := jsonParser{b: b, data: data}
	return p.parse(&topLevel{keep: keep})
}

// buildPair builds the before and after terms of a change. Where an
// attribute of after is byte-for-byte the one of before (most attributes of
// an update), after shares before's term instead of holding a copy.
func (b *termBuilder) buildPair(before, after []byte) (bt, at *ast.Term, err error) {
	if len(before) == 0 || len(after) == 0 {
		if bt, err = b.build(before); err != nil {
			return nil, nil, err
		}
		at, err = b.build(after)
		return bt, at, err
	}
	spans := map[string][2]int{}
	p := jsonParser{b: b, data: before}
	if bt, err = p.parse(&topLevel{spans: spans}); err != nil {
		return nil, nil, err
	}
	obj, ok := bt.Value.(ast.Object)
	if !ok {
		at, err = b.build(after)
		return bt, at, err
	}
	p = jsonParser{b: b, data: after}
	if at, err = p.parse(&topLevel{share: &sharing{raw: before, spans: spans, obj: obj}}); err != nil {
		return nil, nil, err
	}
	return bt, at, nil
}

// sharing is what the parser of an after value may reuse from before.
type sharing struct {
	raw   []byte
	spans map[string][2]int // where each top-level value of before lies in raw
	obj   ast.Object
}

// skip moves past one JSON value without building it.
func (p *jsonParser) skip() error {
	p.space()
	if p.pos >= len(p.data) {
		return p.fail("unexpected end")
	}
	switch p.data[p.pos] {
	case '"':
		return p.skipString()
	case '{', '[':
		depth := 0
		for p.pos < len(p.data) {
			switch p.data[p.pos] {
			case '"':
				if err := p.skipString(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					p.pos++
					return nil
				}
			}
			p.pos++
		}
		return p.fail("unterminated value")
	}
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return nil
		}
		p.pos++
	}
	return nil
}

func (p *jsonParser) skipString() error {
	p.pos++
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case '\\':
			p.pos += 2
			continue
		case '"':
			p.pos++
			return nil
		}
		p.pos++
	}
	return p.fail("unterminated string")
}

// topMembers returns the members of a top-level JSON object as raw text,
// in order, without building them; nil for anything else.
func topMembers(data []byte) (keys []string, vals [][]byte) {
	p := jsonParser{data: data}
	p.space()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, nil
	}
	p.pos++
	for {
		p.space()
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			return keys, vals
		}
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, nil
		}
		k, err := p.string()
		if err != nil {
			return nil, nil
		}
		key := string(k)
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, nil
		}
		p.pos++
		p.space()
		start := p.pos
		if p.skip() != nil {
			return nil, nil
		}
		keys, vals = append(keys, key), append(vals, data[start:p.pos])
		p.space()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
		}
	}
}
