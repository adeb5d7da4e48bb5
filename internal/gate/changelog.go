package gate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/stepgate/stepgate/internal/plan"
)

// MaxReviewChanges caps the changes kept for the review page; the policy
// sees them all, and the page says how many were left out.
const MaxReviewChanges = 5000

// What the server keeps of a plan for the review page is bounded, whatever
// the plan's size: the policy saw every value, and the plan's digest
// covers them all, so a large value is kept as a marker that names its size
// and digest (two different values still read as different).
const (
	// MaxKeptValue is the largest attribute value kept as it is.
	MaxKeptValue = 16 << 10
	// MaxStoredChange bounds the before and after of one change kept.
	MaxStoredChange = 64 << 10
	// MaxStoredChanges bounds all the changes kept of one check; the
	// changes past it are counted as left out.
	MaxStoredChanges = 32 << 20
)

// changeLog keeps the changes of a plan, as JSON, for the review page.
type changeLog struct {
	changes []json.RawMessage
	size    int
	dropped int
}

func (l *changeLog) add(c *plan.Change) {
	if len(l.changes) >= MaxReviewChanges {
		l.dropped++
		return
	}
	if len(c.Before)+len(c.After) > MaxStoredChange {
		k := *c
		k.Before, k.After = keepable(c.Before), keepable(c.After)
		c = &k
	}
	b, err := json.Marshal(c)
	if err != nil || l.size+len(b) > MaxStoredChanges {
		l.dropped++
		return
	}
	l.size += len(b)
	l.changes = append(l.changes, b)
}

// keepable is a change's values with every top-level attribute larger than
// MaxKeptValue replaced by a marker, and, while the whole is still larger
// than half of MaxStoredChange, the largest attributes too. Values that are
// not an object are kept whole when small, else replaced.
func keepable(v json.RawMessage) json.RawMessage {
	if len(v) <= MaxStoredChange/2 {
		return v
	}
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(v, &attrs); err != nil {
		return marker(v)
	}
	size := 0
	for k, a := range attrs {
		if len(a) > MaxKeptValue {
			attrs[k] = marker(a)
		}
		size += len(k) + len(attrs[k]) + 4
	}
	for size > MaxStoredChange/2 {
		big, n := "", 0
		for k, a := range attrs {
			if len(a) > n && !bytes.HasPrefix(a, []byte(`"(not kept: `)) {
				big, n = k, len(a)
			}
		}
		if big == "" {
			break
		}
		m := marker(attrs[big])
		size -= n - len(m)
		attrs[big] = m
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		return marker(v)
	}
	return b
}

// marker stands for a value that is not kept: its size and digest.
func marker(v json.RawMessage) json.RawMessage {
	sum := sha256.Sum256(v)
	b, _ := json.Marshal(fmt.Sprintf("(not kept: %d bytes, sha256 %s)", len(v), hex.EncodeToString(sum[:8])))
	return b
}

// json writes what Review reads back (Changes). The changes are already
// JSON: they are joined as they are rather than encoded a second time.
func (l *changeLog) json() json.RawMessage {
	n := 32
	for _, c := range l.changes {
		n += len(c) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"changes":[`...)
	for i, c := range l.changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c...)
	}
	b = append(b, ']')
	if l.dropped > 0 {
		b = append(b, `,"dropped":`...)
		b = strconv.AppendInt(b, int64(l.dropped), 10)
	}
	return append(b, '}')
}
