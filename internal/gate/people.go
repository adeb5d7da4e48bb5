package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/store"
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

// Changes is what the review page shows of a plan.
type Changes struct {
	Changes []plan.Change `json:"changes"`
	// Dropped counts the changes left out past MaxReviewChanges.
	Dropped int `json:"dropped,omitempty"`
}

// Review returns a check and its plan's changes for the review page (at
// most MaxReviewChanges of them: the assessment's summary has the totals).
func (s *Service) Review(ctx context.Context, id string) (*api.Check, []plan.Change, error) {
	v, err := s.ReviewCheck(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	raw, err := s.st.GetCheckChanges(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading changes of %s: %w", id, err)
	}
	var ch Changes
	if err := json.Unmarshal(raw, &ch); err != nil {
		return nil, nil, fmt.Errorf("decoding changes of %s: %w", id, err)
	}
	return v, ch.Changes, nil
}

// ReviewCheck is Review without the plan's changes: the check a person
// answers. It never carries a grant.
func (s *Service) ReviewCheck(ctx context.Context, id string) (*api.Check, error) {
	c, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, nil, c)
}

// Pending lists the checks waiting for people, newest first.
func (s *Service) Pending(ctx context.Context, limit int) ([]*api.Check, error) {
	cs, err := s.st.ListChecks(ctx, store.StatePending, limit)
	if err != nil {
		return nil, fmt.Errorf("listing pending checks: %w", err)
	}
	out := make([]*api.Check, 0, len(cs))
	now := s.now()
	for _, c := range cs {
		if !c.ExpiresAt.After(now) {
			continue
		}
		v, err := s.view(ctx, nil, c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// PageSize is how many pending checks a page of the review lists shows.
const PageSize = 50

// PendingPage returns page (from 1) of the pending checks, newest first,
// PageSize per page, and whether a later page has more. A check past its
// expiry (not yet marked expired) is left out.
func (s *Service) PendingPage(ctx context.Context, page int) ([]*api.Check, bool, error) {
	page = max(page, 1)
	cs, err := s.st.ListChecksPage(ctx, store.StatePending, (page-1)*PageSize, PageSize+1)
	if err != nil {
		return nil, false, fmt.Errorf("listing pending checks: %w", err)
	}
	more := len(cs) > PageSize
	if more {
		cs = cs[:PageSize]
	}
	out := make([]*api.Check, 0, len(cs))
	now := s.now()
	for _, c := range cs {
		if !c.ExpiresAt.After(now) {
			continue
		}
		v, err := s.view(ctx, nil, c)
		if err != nil {
			return nil, false, err
		}
		out = append(out, v)
	}
	return out, more, nil
}

// ParsePage reads a page number parameter: "" is 1.
func ParsePage(v string) (int, error) {
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, fmt.Errorf("%w: page %q is not a number from 1", ErrBadRequest, v)
	}
	return n, nil
}

// requester is who asked, from what was authenticated only: the person
// who owns the API token; for a CI token, the person its verified claims
// (system and actor) are linked to (`stepgate users link alice
// github:alice`); else the token's (or CI rule's) name. What a request
// says of its pipeline never counts here.
func (s *Service) requester(ctx context.Context, caller *Caller) string {
	if caller.Owner != "" {
		return caller.Owner
	}
	system, actor := ident.CISystem(caller.Pipeline["system"]), caller.Pipeline["actor"]
	if system == "" || actor == "" {
		return caller.Name
	}
	link, err := ident.Link(system + ":" + actor)
	if err != nil {
		return caller.Name
	}
	u, err := s.st.FindUserByLink(ctx, link)
	if err != nil || !u.DisabledAt.IsZero() {
		return caller.Name
	}
	return u.Name
}
