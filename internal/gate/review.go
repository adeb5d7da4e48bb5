package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/store"
)

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
