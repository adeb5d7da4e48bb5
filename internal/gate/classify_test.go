package gate

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stepgate/stepgate/internal/api"
)

// TestClassify pins the one mapping of the gate's refusals that the API
// and the pages share, and which sentinel wins when an error wraps two.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		code     string
		sentinel error
	}{
		{"self approval is forbidden, not a bad request", fmt.Errorf("recording: %w", ErrSelfApproval), http.StatusForbidden, api.CodeForbidden, ErrSelfApproval},
		{"a bare not-eligible is forbidden, not a failure", ErrNotEligible, http.StatusForbidden, api.CodeForbidden, ErrNotEligible},
		{"break-glass only", errBreakGlassOnly, http.StatusForbidden, api.CodeForbidden, ErrNotEligible},
		{"break-glass by its requester", fmt.Errorf("%w: %w", ErrSelfApproval, ErrBreakGlass), http.StatusForbidden, api.CodeForbidden, ErrSelfApproval},
		{"break-glass out of its group", fmt.Errorf("%w: %w: x", ErrNotEligible, ErrBreakGlass), http.StatusForbidden, api.CodeForbidden, ErrNotEligible},
		{"break-glass asked for wrongly", fmt.Errorf("%w: %w: off", ErrBadRequest, ErrBreakGlass), http.StatusBadRequest, api.CodeBadRequest, ErrBadRequest},
		{"break-glass refused", fmt.Errorf("%w: not enabled", ErrBreakGlass), http.StatusForbidden, api.CodeForbidden, ErrBreakGlass},
		{"self review", ErrSelfReview, http.StatusForbidden, api.CodeForbidden, ErrSelfReview},
		{"not pending", fmt.Errorf("%w: chk is approved", ErrNotPending), http.StatusConflict, api.CodeConflict, ErrNotPending},
		{"conflict", fmt.Errorf("%w: reviewed", ErrConflict), http.StatusConflict, api.CodeConflict, ErrConflict},
		{"not found", fmt.Errorf("%w: no check", ErrNotFound), http.StatusNotFound, api.CodeNotFound, ErrNotFound},
		{"saved plan before bad request", ErrSavedPlan, http.StatusBadRequest, api.CodeSavedPlan, ErrSavedPlan},
		{"unauthorized", ErrUnauthorized, http.StatusUnauthorized, api.CodeUnauthorized, ErrUnauthorized},
		{"invalid grant", ErrInvalidGrant, http.StatusUnauthorized, api.CodeInvalidGrant, ErrInvalidGrant},
		{"limited", ErrLimited, http.StatusTooManyRequests, api.CodeRateLimited, ErrLimited},
		{"forbidden", fmt.Errorf("%w: token", ErrForbidden), http.StatusForbidden, api.CodeForbidden, ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, ok := Classify(tc.err)
			if !ok || cl.Status != tc.status || cl.Code != tc.code || cl.Sentinel != tc.sentinel {
				t.Fatalf("Classify(%v) = %+v, %v; want %d %s %v", tc.err, cl, ok, tc.status, tc.code, tc.sentinel)
			}
		})
	}
	if cl, ok := Classify(errors.New("disk full")); ok {
		t.Fatalf("a failure of the server was classified as a refusal: %+v", cl)
	}
}
