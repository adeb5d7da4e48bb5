package gate

import (
	"errors"
	"net/http"

	"github.com/stepgate/stepgate/internal/api"
)

// Class is how every front end (the API, the people API, the pages)
// answers a refusal of the gate: an HTTP status, the API's error code,
// and the sentinel that decided it, which a front end words in its own
// way (the API with the error's own words, the pages with a sentence for
// a person).
type Class struct {
	Status   int
	Code     string
	Sentinel error
}

// classes, in the order they are tried: an error that wraps two
// sentinels (a break-glass refused to its requester wraps ErrSelfApproval
// and ErrBreakGlass) gets the class of the first.
var classes = []Class{
	{http.StatusBadRequest, api.CodeSavedPlan, ErrSavedPlan},
	{http.StatusBadRequest, api.CodeBadRequest, ErrBadRequest},
	{http.StatusForbidden, api.CodeForbidden, ErrSelfApproval},
	{http.StatusForbidden, api.CodeForbidden, ErrNotEligible},
	{http.StatusForbidden, api.CodeForbidden, ErrSelfReview},
	{http.StatusForbidden, api.CodeForbidden, ErrBreakGlass},
	{http.StatusUnauthorized, api.CodeUnauthorized, ErrUnauthorized},
	{http.StatusForbidden, api.CodeForbidden, ErrForbidden},
	{http.StatusNotFound, api.CodeNotFound, ErrNotFound},
	{http.StatusUnauthorized, api.CodeInvalidGrant, ErrInvalidGrant},
	{http.StatusTooManyRequests, api.CodeRateLimited, ErrLimited},
	{http.StatusConflict, api.CodeConflict, ErrConflict},
	{http.StatusConflict, api.CodeConflict, ErrNotPending},
}

// Classify returns the class of a refusal of the gate, or false for an
// error that refuses nothing (a failure of the store, the policy, the
// server), which a front end answers as its own failure.
func Classify(err error) (Class, bool) {
	for _, c := range classes {
		if errors.Is(err, c.Sentinel) {
			return c, true
		}
	}
	return Class{}, false
}
