package planfile

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a value, in msgpack and in JSON alike.
// cty values of real resources nest a few dozen levels at most.
const maxDepth = 128

// The msgpack extension types cty writes for unknown values: 0 (with a
// body of at most one byte) for a wholly unknown value, 0x0c for one with
// refinements (its body, at most 1 KiB, says what is known of it).
const (
	extUnknown        = 0x00
	extUnknownRefined = 0x0c
	maxRefinement     = 1024
)

// mpReader decodes one msgpack-encoded cty value into its Sum, without
// building it. It needs no schema: cty objects and maps are msgpack maps
// with string keys, lists, sets and tuples are arrays, and a dynamically
// typed value is a two-element array whose first element is binary (the
// JSON of its type), which nothing else is.
type mpReader struct {
	b   []byte
	off int
}

func (r *mpReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: msgpack value at byte %d: %s", ErrInvalid, r.off, fmt.Sprintf(format, args...))
}

func (r *mpReader) need(n uint64) error {
	if n > uint64(len(r.b)-r.off) {
		return r.fail("%d bytes announced, %d left", n, len(r.b)-r.off)
	}
	return nil
}

func (r *mpReader) byte() (byte, error) {
	if err := r.need(1); err != nil {
		return 0, err
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *mpReader) take(n uint64) ([]byte, error) {
	if err := r.need(n); err != nil {
		return nil, err
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *mpReader) uint(size int) (uint64, error) {
	b, err := r.take(uint64(size))
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

// digestValue reads a whole DynamicValue: a resource's before or after.
func digestValue(b []byte) (Digest, error) {
	if len(b) == 0 {
		// A change with no value on this side (before of a create).
		return Digest{Whole: sumNull}, nil
	}
	r := &mpReader{b: b}
	ms, s, err := r.value(0, true)
	if err == errUnknown {
		s, err = sumUnknown, nil
	}
	if err != nil {
		return Digest{}, err
	}
	if r.off != len(r.b) {
		return Digest{}, r.fail("%d bytes follow the value", len(r.b)-r.off)
	}
	if ms != nil {
		return objectDigest(ms), nil
	}
	return Digest{Whole: s}, nil
}

// value reads one value. At the top (top is true), an object's members are
// returned rather than summed, for a Digest.
func (r *mpReader) value(depth int, top bool) ([]member, Sum, error) {
	if depth > maxDepth {
		return nil, Sum{}, r.fail("nested deeper than %d", maxDepth)
	}
	c, err := r.byte()
	if err != nil {
		return nil, Sum{}, err
	}
	switch {
	case c <= 0x7f: // positive fixint
		return nil, numberSum(new(big.Rat).SetInt64(int64(c))), nil
	case c >= 0xe0: // negative fixint
		return nil, numberSum(new(big.Rat).SetInt64(int64(int8(c)))), nil
	case c >= 0x80 && c <= 0x8f:
		return r.mapBody(uint64(c&0x0f), depth, top)
	case c >= 0x90 && c <= 0x9f:
		return r.arrayBody(uint64(c&0x0f), depth, top)
	case c >= 0xa0 && c <= 0xbf:
		s, err := r.str(uint64(c & 0x1f))
		return nil, s, err
	}
	switch c {
	case 0xc0:
		return nil, sumNull, nil
	case 0xc2:
		return nil, sumFalse, nil
	case 0xc3:
		return nil, sumTrue, nil
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8..64
		v, err := r.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, Sum{}, err
		}
		return nil, numberSum(new(big.Rat).SetInt(new(big.Int).SetUint64(v))), nil
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8..64
		size := 1 << (c - 0xd0)
		v, err := r.uint(size)
		if err != nil {
			return nil, Sum{}, err
		}
		shift := 64 - 8*size
		i := int64(v<<shift) >> shift // sign-extend
		return nil, numberSum(new(big.Rat).SetInt64(i)), nil
	case 0xca: // float32
		v, err := r.uint(4)
		if err != nil {
			return nil, Sum{}, err
		}
		s, err := r.float(float64(math.Float32frombits(uint32(v))))
		return nil, s, err
	case 0xcb: // float64
		v, err := r.uint(8)
		if err != nil {
			return nil, Sum{}, err
		}
		s, err := r.float(math.Float64frombits(v))
		return nil, s, err
	case 0xd9, 0xda, 0xdb: // str 8..32
		n, err := r.uint(1 << (c - 0xd9))
		if err != nil {
			return nil, Sum{}, err
		}
		s, err := r.str(n)
		return nil, s, err
	case 0xdc, 0xdd: // array 16, 32
		n, err := r.uint(2 << (c - 0xdc))
		if err != nil {
			return nil, Sum{}, err
		}
		return r.arrayBody(n, depth, top)
	case 0xde, 0xdf: // map 16, 32
		n, err := r.uint(2 << (c - 0xde))
		if err != nil {
			return nil, Sum{}, err
		}
		return r.mapBody(n, depth, top)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16
		return nil, Sum{}, r.ext(1 << (c - 0xd4))
	case 0xc7, 0xc8, 0xc9: // ext 8..32
		n, err := r.uint(1 << (c - 0xc7))
		if err != nil {
			return nil, Sum{}, err
		}
		return nil, Sum{}, r.ext(n)
	case 0xc4, 0xc5, 0xc6:
		return nil, Sum{}, r.fail("binary data where cty writes none (outside a dynamic value's type)")
	}
	return nil, Sum{}, r.fail("byte 0x%02x starts no msgpack value", c)
}

// ext reads the body of an extension: only cty's unknown values are known.
// Its sum is sumUnknown; a nil error says so.
func (r *mpReader) ext(n uint64) error {
	t, err := r.byte()
	if err != nil {
		return err
	}
	if err := r.need(n); err != nil {
		return err
	}
	switch {
	case n <= 1:
		// cty reads any extension of at most one byte as wholly unknown.
	case int8(t) == extUnknownRefined && n <= maxRefinement:
		// Refinements (not null, a prefix, bounds) narrow an unknown value;
		// the JSON says only that it is unknown.
	default:
		return r.fail("extension type %d of %d bytes is not a cty unknown value", int8(t), n)
	}
	r.off += int(n)
	return errUnknown
}

// errUnknown is how ext tells value that it read an unknown value.
var errUnknown = fmt.Errorf("unknown value")

func (r *mpReader) float(f float64) (Sum, error) {
	switch {
	case math.IsNaN(f):
		return Sum{}, r.fail("NaN is not a cty number")
	case math.IsInf(f, 1):
		return leafSum("#", "+inf"), nil
	case math.IsInf(f, -1):
		return leafSum("#", "-inf"), nil
	}
	return numberSum(new(big.Rat).SetFloat64(f)), nil
}

func (r *mpReader) str(n uint64) (Sum, error) {
	b, err := r.take(n)
	if err != nil {
		return Sum{}, err
	}
	if !utf8.Valid(b) {
		return Sum{}, r.fail("a string is not valid UTF-8")
	}
	return stringSum(b), nil
}

// element reads a value inside a collection: an unknown one sums as such.
func (r *mpReader) element(depth int) (Sum, error) {
	_, s, err := r.value(depth, false)
	if err == errUnknown {
		return sumUnknown, nil
	}
	return s, err
}

func (r *mpReader) arrayBody(n uint64, depth int, top bool) ([]member, Sum, error) {
	// Every element takes at least one byte: a count past what is left is
	// a lie, refused before anything is allocated for it.
	if err := r.need(n); err != nil {
		return nil, Sum{}, err
	}
	if n == 2 && r.off < len(r.b) && r.b[r.off] >= 0xc4 && r.b[r.off] <= 0xc6 {
		return r.dynamic(depth, top)
	}
	l := newList()
	for range n {
		s, err := r.element(depth + 1)
		if err != nil {
			return nil, Sum{}, err
		}
		l.add(s)
	}
	return nil, l.sum(), nil
}

// dynamic reads a dynamically typed value: [type JSON as binary, value].
// The type is not compared (the JSON has none); the value is.
func (r *mpReader) dynamic(depth int, top bool) ([]member, Sum, error) {
	c, _ := r.byte()
	n, err := r.uint(1 << (c - 0xc4))
	if err != nil {
		return nil, Sum{}, err
	}
	if _, err := r.take(n); err != nil {
		return nil, Sum{}, err
	}
	ms, s, err := r.value(depth+1, top)
	if err == errUnknown {
		return nil, sumUnknown, nil
	}
	return ms, s, err
}

func (r *mpReader) mapBody(n uint64, depth int, top bool) ([]member, Sum, error) {
	if err := r.need(2 * n); err != nil { // a key and a value, a byte each at least
		return nil, Sum{}, err
	}
	ms := make([]member, 0, n)
	seen := make(map[string]struct{}, n)
	for range n {
		c, err := r.byte()
		if err != nil {
			return nil, Sum{}, err
		}
		var kl uint64
		switch {
		case c >= 0xa0 && c <= 0xbf:
			kl = uint64(c & 0x1f)
		case c >= 0xd9 && c <= 0xdb:
			if kl, err = r.uint(1 << (c - 0xd9)); err != nil {
				return nil, Sum{}, err
			}
		default:
			r.off--
			return nil, Sum{}, r.fail("a map key is not a string")
		}
		k, err := r.take(kl)
		if err != nil {
			return nil, Sum{}, err
		}
		if !utf8.Valid(k) {
			return nil, Sum{}, r.fail("a map key is not valid UTF-8")
		}
		key := string(k)
		if _, dup := seen[key]; dup {
			return nil, Sum{}, r.fail("key %q appears twice", key)
		}
		seen[key] = struct{}{}
		s, err := r.element(depth + 1)
		if err != nil {
			return nil, Sum{}, err
		}
		ms = append(ms, member{key: key, sum: s})
	}
	if top {
		return ms, Sum{}, nil
	}
	return nil, objectSum(ms), nil
}
