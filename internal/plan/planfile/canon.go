package planfile

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math/big"
	"slices"
	"strings"
)

// Sum is the digest of one value in canonical form. Both sides of a
// comparison, msgpack from the saved plan and JSON from `show -json`, are
// reduced to it:
//
//	null     H("n")            unknown  H("u")
//	true     H("t")            false    H("f")
//	number   H("#" + n)        string   H("s" + text)
//	list     H("[" + count + the elements' sums)   (lists, sets, tuples)
//	object   H("{" + count + for each key in byte order: len, key, sum)
//
// where H is SHA-256, counts and lengths are uvarints, and n is the exact
// rational value (big.Rat's RatString) of a number that cty writes to
// msgpack as an integer or a float64. A number cty writes as a string (one
// that fits neither exactly) is the string of its digits, which is also
// the text `show -json` writes for it. Objects and maps are alike, as are
// lists, sets and tuples: the JSON does not tell them apart.
type Sum [sha256.Size]byte

var (
	sumNull    = leafSum("n", "")
	sumUnknown = leafSum("u", "")
	sumTrue    = leafSum("t", "")
	sumFalse   = leafSum("f", "")
)

func leafSum(tag, text string) Sum {
	h := sha256.New()
	h.Write([]byte(tag))
	h.Write([]byte(text))
	var s Sum
	h.Sum(s[:0])
	return s
}

func stringSum(b []byte) Sum {
	h := sha256.New()
	h.Write([]byte{'s'})
	h.Write(b)
	var s Sum
	h.Sum(s[:0])
	return s
}

func numberSum(r *big.Rat) Sum { return leafSum("#", r.RatString()) }

// listHasher sums a list as its elements come.
type listHasher struct {
	h hash.Hash
	n uint64
}

func (l *listHasher) add(s Sum) { l.h.Write(s[:]); l.n++ }

func (l *listHasher) sum() Sum {
	// The count is hashed last, which is as unambiguous as first.
	var b [binary.MaxVarintLen64 + 1]byte
	b[0] = ']'
	n := binary.PutUvarint(b[1:], l.n)
	l.h.Write(b[:1+n])
	var s Sum
	l.h.Sum(s[:0])
	return s
}

func newList() *listHasher {
	h := sha256.New()
	h.Write([]byte{'['})
	return &listHasher{h: h}
}

// member is one key of an object with the sum of its value.
type member struct {
	key string
	sum Sum
}

// objectSum sums an object's members, sorting them by key. Keys must be
// distinct.
func objectSum(ms []member) Sum {
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) })
	h := sha256.New()
	var b [binary.MaxVarintLen64]byte
	h.Write([]byte{'{'})
	h.Write(b[:binary.PutUvarint(b[:], uint64(len(ms)))])
	for _, m := range ms {
		h.Write(b[:binary.PutUvarint(b[:], uint64(len(m.key)))])
		h.Write([]byte(m.key))
		h.Write(m.sum[:])
	}
	var s Sum
	h.Sum(s[:0])
	return s
}

// Digest is a resource's value (its before or after) reduced to sums: one
// per top-level attribute when the value is an object, as resource values
// are, else one for the whole value (null, or wholly unknown).
type Digest struct {
	// Attrs holds the sum of each attribute; nil when the value is not an
	// object.
	Attrs map[string]Sum
	// Whole is the sum of a value that is not an object.
	Whole Sum
}

func objectDigest(ms []member) Digest {
	d := Digest{Attrs: make(map[string]Sum, len(ms))}
	for _, m := range ms {
		d.Attrs[m.key] = m.sum
	}
	return d
}

// maxExponent bounds the decimal exponent of a JSON number that is turned
// into a big.Rat: past it a number is neither an int64 nor an exact
// float64, and its text stands for it (so a hostile 1e999999999 costs
// nothing).
const maxExponent = 400

// jsonNumberSum sums the text of a JSON number as cty would have written
// the same number to msgpack: an int64 or an exact float64 by value, any
// other as its text.
func jsonNumberSum(text []byte) Sum {
	if exp, ok := decimalExponent(text); ok && exp <= maxExponent && exp >= -maxExponent && len(text) <= 1024 {
		var r big.Rat
		if _, ok := r.SetString(string(text)); ok {
			if r.IsInt() && r.Num().IsInt64() {
				return numberSum(&r)
			}
			if _, exact := r.Float64(); exact {
				return numberSum(&r)
			}
		}
	}
	return stringSum(text)
}

// decimalExponent returns the magnitude, in powers of ten, of a JSON
// number's text: its exponent plus its digits before the point.
func decimalExponent(text []byte) (int, bool) {
	mant, exp := text, 0
	if i := strings.IndexAny(string(text), "eE"); i >= 0 {
		mant = text[:i]
		e := text[i+1:]
		neg := false
		if len(e) > 0 && (e[0] == '+' || e[0] == '-') {
			neg = e[0] == '-'
			e = e[1:]
		}
		if len(e) == 0 || len(e) > 6 {
			return 0, false
		}
		for _, c := range e {
			if c < '0' || c > '9' {
				return 0, false
			}
			exp = exp*10 + int(c-'0')
		}
		if neg {
			exp = -exp
		}
	}
	intDigits := len(mant)
	if i := strings.IndexByte(string(mant), '.'); i >= 0 {
		intDigits = i
	}
	return exp + intDigits, true
}
