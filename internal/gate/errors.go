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
)
