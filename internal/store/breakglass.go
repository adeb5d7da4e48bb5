package store

import (
	"context"
	"time"
)

// BreakGlass is a pipeline's request for the emergency path on one check,
// and, once a person used it, who did, and the review that must follow.
type BreakGlass struct {
	CheckID string
	// Reason is why the pipeline asked (an incident reference...).
	Reason string
	// DenyRules are the deny rules the request overrides: empty when the
	// policy's decision was step_up.
	DenyRules   []string
	RequestedAt time.Time
	// Subject is the person who broke the glass; empty until then.
	Subject    string
	ApprovalID string
	UsedAt     time.Time
	// ReviewDueAt is when another person must have acknowledged it.
	ReviewDueAt time.Time
	Reviewer    string
	ReviewNote  string
	ReviewedAt  time.Time
	// RemindedAt is when an overdue review was last announced.
	RemindedAt time.Time
}

// BreakGlassTx keeps break-glass requests and their reviews.
type BreakGlassTx interface {
	// CreateBreakGlass records a request; ErrConflict when the check has
	// one, ErrNotFound when the check does not exist.
	CreateBreakGlass(ctx context.Context, b *BreakGlass) error
	// GetBreakGlass returns a check's request; ErrNotFound if none.
	GetBreakGlass(ctx context.Context, checkID string) (*BreakGlass, error)
	// UpdateBreakGlass writes every field of b back; ErrNotFound if the
	// check has no request.
	UpdateBreakGlass(ctx context.Context, b *BreakGlass) error
	// ListBreakGlassUsed lists the requests a person used, oldest use
	// first: only those not reviewed yet when unreviewed is set. At most
	// limit of them (positive).
	ListBreakGlassUsed(ctx context.Context, unreviewed bool, limit int) ([]*BreakGlass, error)
	// ListBreakGlassReviewed lists the reviewed uses, the newest review
	// first, at most limit of them (positive).
	ListBreakGlassReviewed(ctx context.Context, limit int) ([]*BreakGlass, error)
}
