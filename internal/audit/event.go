package audit

import (
	"encoding/json"
	"time"
)

// Event types.
const (
	CheckCreated   = "check.created"
	CheckAllowed   = "check.allowed"
	CheckDenied    = "check.denied"
	CheckPending   = "check.pending"
	CheckApproval  = "check.approval"
	CheckRejection = "check.rejection"
	CheckApproved  = "check.approved"
	CheckExpired   = "check.expired"
	GrantIssued    = "grant.issued"
	GrantConsumed  = "grant.consumed"
	GrantRefused   = "grant.refused"
	// Refusals of what people try: an approval or rejection, a sign-in, an
	// enrollment link's use, a change to their factors.
	ApprovalRefused   = "approval.refused"
	SignInRefused     = "signin.refused"
	EnrollmentRefused = "enrollment.refused"
	FactorRefused     = "factor.refused"
	ApplyOutcome      = "apply.outcome"
	TokenCreated      = "token.created"
	TokenRevoked      = "token.revoked"
	KeyRotated        = "key.rotated"
	// CheckLimited: a new check refused for the caller's rate or pending
	// limits (429); audited at most once a minute per caller, with the
	// number of refusals it stands for.
	CheckLimited = "check.limited"
)

// Event is one entry of the hash-chained log. Seq, PrevHash and Hash are set
// by the store when it appends the event (with Seal), under a lock that
// serializes appends across every server sharing the database.
type Event struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Type     string          `json:"type"`
	Actor    string          `json:"actor"`
	Subject  string          `json:"subject"`
	Data     json.RawMessage `json:"data,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}
