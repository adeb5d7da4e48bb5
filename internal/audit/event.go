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
	ApplyOutcome   = "apply.outcome"
	TokenCreated   = "token.created"
	TokenRevoked   = "token.revoked"
	KeyRotated     = "key.rotated"
)

// CheckRefused is an operation refused before any check was recorded, such
// as a saved plan that does not match its plan JSON. Its subject is
// "workspace:NAME"; its data says who asked, with which plans, and why.
const CheckRefused = "check.refused"

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
