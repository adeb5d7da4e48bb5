package gate

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
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

// TestCounts attacks the refusal of a proof that could not count: the
// pages and the people API refuse it (nothing recorded) by this rule.
func TestCounts(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &api.Check{ID: "chk_1", Requester: "alice", Assessment: &policy.Assessment{Decision: policy.StepUp, Requirements: &policy.Requirements{Approvals: 1, AAL: 3, MaxAge: 300, Methods: []string{"hwk"}}}}
	for _, tc := range []struct {
		name string
		p    Proof
		weak bool
	}{
		{"a fresh passkey with user verification", Proof{Subject: "bob", AAL: 3, AMR: []string{"hwk", "user"}, AuthTime: now}, false},
		{"too low a level", Proof{Subject: "bob", AAL: 2, AMR: []string{"hwk"}, AuthTime: now}, true},
		{"a method the check does not accept", Proof{Subject: "bob", AAL: 3, AMR: []string{"otp"}, AuthTime: now}, true},
		{"older than max_age", Proof{Subject: "bob", AAL: 3, AMR: []string{"hwk"}, AuthTime: now.Add(-301 * time.Second)}, true},
		{"from the future", Proof{Subject: "bob", AAL: 3, AMR: []string{"hwk"}, AuthTime: now.Add(2 * time.Minute)}, true},
		{"the requester's own", Proof{Subject: "Alice", AAL: 3, AMR: []string{"hwk"}, AuthTime: now}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Counts(c, &tc.p, now)
			if weak := errors.Is(err, ErrWeakProof); weak != tc.weak {
				t.Fatalf("Counts = %v; want weak %v", err, tc.weak)
			}
			if tc.weak {
				if cl, _ := Classify(err); cl.Status != http.StatusForbidden {
					t.Fatalf("a weak proof is classified %+v, not forbidden", cl)
				}
			}
		})
	}
}
