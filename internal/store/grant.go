package store

import "context"

// GrantTx keeps which approvals a check's grant carries.
type GrantTx interface {
	// SetGrantApprovals records the approvals (their ids, of this check)
	// that counted when the check's grant was issued. It is called once,
	// when the grant is issued; ErrConflict if it was already called for
	// the check, ErrNotFound if the check or an approval does not exist.
	SetGrantApprovals(ctx context.Context, checkID string, approvalIDs []string) error
	// GrantApprovals returns the ids SetGrantApprovals recorded for the
	// check, sorted; none for a check whose grant was issued without
	// approvals (or before they were recorded).
	GrantApprovals(ctx context.Context, checkID string) ([]string, error)
}
