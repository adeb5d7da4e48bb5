package gate

import "errors"

// Errors the API maps to status codes; check them with errors.Is.
var (
	ErrBadRequest   = errors.New("bad request")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrSelfApproval: the requester may not approve a check that needs the
	// approval of others.
	ErrSelfApproval = errors.New("the requester cannot approve their own check")
	// ErrNotPending: the check is no longer waiting for people.
	ErrNotPending = errors.New("check is not pending")
	// ErrNotEligible: the person is not among the approvers the
	// requirements name (by default the group "approvers", and admins).
	ErrNotEligible = errors.New("not an eligible approver")
	// ErrBreakGlass: break-glass is refused: not enabled, not asked for,
	// not allowed over a deny rule, or its proof is not a fresh passkey
	// with user verification. Wrapped with the precise reason.
	ErrBreakGlass = errors.New("break-glass refused")
	// ErrSelfReview: the person who broke the glass (or asked for it)
	// cannot acknowledge its review.
	ErrSelfReview = errors.New("a break-glass is reviewed by another person")
)
