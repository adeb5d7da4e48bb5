package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
)

// Sentinel errors every backend returns, checked with errors.Is.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable: the database cannot record anything now (unreachable,
	// timed out, read-only, full). Callers fail closed and answer 503.
	ErrUnavailable = errors.New("store: unavailable")
)

// CheckState is where a check is in its life.
type CheckState string

const (
	StateAllowed  CheckState = "allowed"  // the policy allowed it; a grant was issued
	StatePending  CheckState = "pending"  // waiting for people
	StateApproved CheckState = "approved" // the requirements hold; a grant was issued
	StateRejected CheckState = "rejected" // a person said no
	StateDenied   CheckState = "denied"   // the policy said no
	StateExpired  CheckState = "expired"  // nobody decided in time
	StateConsumed CheckState = "consumed" // its grant was used
)

// Terminal reports whether nothing more can happen to a check in s.
func (s CheckState) Terminal() bool {
	return s == StateRejected || s == StateDenied || s == StateExpired || s == StateConsumed
}

// Check is one operation submitted to the server, with its assessment.
type Check struct {
	ID          string `json:"id"`
	State       CheckState
	Kind        string
	Workspace   string
	Environment string
	// PlanSHA256 is the digest of the JSON plan; PlanFileSHA256 that of the
	// saved binary plan, when the pipeline sent one.
	PlanSHA256     string
	PlanFileSHA256 string
	// Requester is who asked, from what was authenticated only: the person
	// who owns the API token, else the token's name; for a CI token, the
	// person its verified claims are linked to, else its rule's name.
	Requester string
	TokenID   string
	// Pipeline is the pipeline's identity from a CI token's verified claims
	// (repository, ref, run id, run URL...); nil for an API token.
	Pipeline map[string]string
	// PipelineUnverified is what the request said of the pipeline
	// (pipeline.* parameters): a claim, shown as such, never identity.
	PipelineUnverified map[string]string
	// Assessment is the policy's answer as JSON (policy.Assessment).
	Assessment json.RawMessage
	// ResumeKey identifies the inputs, so that asking again with the same
	// ones finds the same pending check.
	ResumeKey string
	CreatedAt time.Time
	UpdatedAt time.Time
	ExpiresAt time.Time // when a pending check expires
	// GrantID is the jti of the grant issued for the check, if any. The grant
	// itself is not stored: Ed25519 signatures are deterministic, so it is
	// signed again from these fields when the pipeline asks for it.
	GrantID        string
	GrantIssuedAt  time.Time
	GrantExpiresAt time.Time
	ConsumedAt     time.Time
	// Outcome of the apply, once reported.
	OutcomeExitCode   *int
	OutcomeDurationMS int64
	OutcomeAt         time.Time
}

// HistoryQuery says whose history CheckHistory reads.
type HistoryQuery struct {
	Workspace string
	Requester string
	// PlanSHA256 is the plan of the new check (empty: no plan).
	PlanSHA256 string
	// Since is where the requester's recent checks are counted from; Now
	// is when grants count as expired.
	Since, Now time.Time
}

// History is what came before a new check.
type History struct {
	// LastAppliedAt and LastAppliedBy: the workspace's check whose grant
	// was used last (zero: none).
	LastAppliedAt time.Time
	LastAppliedBy string
	// RequesterApplied: the requester used a grant of this workspace.
	RequesterApplied bool
	// RequesterChecks: checks of the requester created at or after Since.
	RequesterChecks int
	// PlanApprovedThenExpired: a check of this plan and workspace was
	// approved and its grant expired before Now, unused.
	PlanApprovedThenExpired bool
}

// Approval is one person's signed yes or no on a check.
type Approval struct {
	ID       string
	CheckID  string
	Subject  string // the person
	Approved bool   // false: a rejection
	Reason   string
	AMR      []string  // how they proved who they are (RFC 8176 values)
	AAL      int       // the level that proof reached
	AuthTime time.Time // when they made that proof
	// Evidence is what the proof was (a WebAuthn assertion...), as JSON.
	Evidence  json.RawMessage
	CreatedAt time.Time
}

// Token is an API token of a pipeline. Only a hash of the secret is kept.
type Token struct {
	ID         string
	Name       string
	Hash       []byte   // SHA-256 of the secret part
	Workspaces []string // glob patterns; empty means any workspace
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while the token is valid
	LastUsedAt time.Time
	// OwnerID is the ID of the person the token acts for: the requester of
	// its checks, who may never approve them. Empty for a pipeline's token.
	OwnerID string
}

// SigningKey is one grant-signing key. The private key is sealed under the
// master key (AES-256-GCM) before it reaches the store.
type SigningKey struct {
	ID         string // the kid
	Algorithm  string // EdDSA or RS256
	PublicKey  []byte
	SealedKey  []byte
	CreatedAt  time.Time
	RetiredAt  time.Time // zero while it signs; set when a newer key takes over
	PublishEnd time.Time // zero while published; the JWKS drops it after this
}

// Tx is what can be done inside one transaction.
type Tx interface {
	CreateCheck(ctx context.Context, c *Check) error
	GetCheck(ctx context.Context, id string) (*Check, error)
	// GetCheckForUpdate reads a check and locks it until the transaction ends.
	GetCheckForUpdate(ctx context.Context, id string) (*Check, error)
	UpdateCheck(ctx context.Context, c *Check) error
	// FindPendingCheck returns the newest pending check with this resume key.
	FindPendingCheck(ctx context.Context, resumeKey string) (*Check, error)
	// FindResumableCheck returns the newest check with this resume key that
	// is pending, allowed or approved: one whose grant is not used yet.
	FindResumableCheck(ctx context.Context, resumeKey string) (*Check, error)
	// ExpiredChecks lists pending checks whose ExpiresAt is before t.
	ExpiredChecks(ctx context.Context, t time.Time, limit int) ([]*Check, error)
	// CheckHistory reads what the policy knows of the past at a new check
	// (input.history), in one statement over indexed columns.
	CheckHistory(ctx context.Context, q HistoryQuery) (*History, error)

	AddApproval(ctx context.Context, a *Approval) error
	ListApprovals(ctx context.Context, checkID string) ([]*Approval, error)

	CreateToken(ctx context.Context, t *Token) error
	GetToken(ctx context.Context, id string) (*Token, error)
	ListTokens(ctx context.Context) ([]*Token, error)
	UpdateToken(ctx context.Context, t *Token) error

	AddSigningKey(ctx context.Context, k *SigningKey) error
	ListSigningKeys(ctx context.Context) ([]*SigningKey, error)
	UpdateSigningKey(ctx context.Context, k *SigningKey) error

	// AppendAudit sets e.Seq, e.PrevHash and e.Hash (with audit.Seal) and
	// stores it. Appends are serialized across every process sharing the
	// database.
	AppendAudit(ctx context.Context, e *audit.Event) error
	// ListAudit returns events with Seq > afterSeq, oldest first, at most
	// limit of them.
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*audit.Event, error)
	PeopleTx
	NonceTx
	SettingsTx
	CheckpointTx
	CeremonyTx
	GrantTx
	SecretTx
	BreakGlassTx
	RunTaskTx
	GitHubTx
}

// Store is a database.
type Store interface {
	Tx
	// InTx runs fn in a transaction, committed when fn returns nil.
	InTx(ctx context.Context, fn func(tx Tx) error) error
	// NotifyCheck tells every waiter, in this process and in other processes
	// sharing the database, that a check changed.
	NotifyCheck(ctx context.Context, id string) error
	// WatchChecks delivers the ids of checks that changed until ctx ends.
	WatchChecks(ctx context.Context) (<-chan string, error)
	Ping(ctx context.Context) error
	Close() error
}
