package audit

import (
	"encoding/json"
	"slices"
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
	// CheckpointKeyCreated records the creation of the key that signs
	// audit checkpoints.
	CheckpointKeyCreated = "audit.checkpoint_key_created"
	// CheckLimited: a new check refused for the caller's rate or pending
	// limits (429); audited at most once a minute per caller, with the
	// number of refusals it stands for.
	CheckLimited = "check.limited"
)

// Event types of refusals and withdrawals on the people's side.
const (
	// CheckApprovalsWithdrawn: when a check's approvals were counted, some
	// did not count because their people were disabled or no longer
	// eligible (data: not_counted, by person).
	CheckApprovalsWithdrawn = "check.approvals_withdrawn"
	// CeremonyRefused is a refused finish of a ceremony on the web (a
	// passkey registration, sign-in or approval, a TOTP set-up, a sign-in
	// at the identity provider, an enrollment link): replayed, expired, or
	// begun for another session, person or check.
	CeremonyRefused = "ceremony.refused"
	// CredentialRefused is a refused change of a person's factors (adding
	// or removing one without a fresh step-up).
	CredentialRefused = "credential.refused"
)

// Event types of the integrations with where pipelines run
// (internal/integrations/...).
const (
	// IntegrationRefused: a request of a system stepgate gates from its
	// side (an HCP Terraform run task, a GitHub App delivery) was refused:
	// no or a wrong signature, a callback or plan URL on a host not
	// allowed, a plan that changed between two stages of a run. Its data
	// says why.
	IntegrationRefused = "integration.refused"
	// DeploymentReviewed: stepgate answered a GitHub deployment protection
	// rule (data: state approved or rejected, run, environment, checks).
	DeploymentReviewed = "deployment.reviewed"
)

// CheckRefused is an operation refused before any check was recorded, such
// as a saved plan that does not match its plan JSON. Its subject is
// "workspace:NAME"; its data says who asked, with which plans, and why.
const CheckRefused = "check.refused"

// Event types of people and their factors.
const (
	UserCreated       = "user.created"
	UserDisabled      = "user.disabled"
	UserEnabled       = "user.enabled"
	UserGroups        = "user.groups"
	UserLinked        = "user.linked"
	EnrollmentCreated = "enrollment.created"
	UserEnrolled      = "user.enrolled"
	UserSignedIn      = "user.signed_in"
	CredentialAdded   = "credential.added"
	CredentialRenamed = "credential.renamed"
	CredentialRemoved = "credential.removed"
	// CredentialTOTPFailure is a wrong, reused or locked-out TOTP code.
	CredentialTOTPFailure = "credential.totp_failure"
	// CredentialSignCount is a WebAuthn sign count that did not go
	// forward: a cloned authenticator, or a replay.
	CredentialSignCount = "credential.sign_count_refused"
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

// Event types of the secrets stepgate keeps (package secret). No event
// carries a value: they name secrets, versions, master key ids and grants.
const (
	SecretWritten  = "secret.written"  // a new version was put
	SecretRemoved  = "secret.removed"  // a tombstone was written
	SecretResealed = "secret.resealed" // data keys were re-sealed under a new master key
	SecretReleased = "secret.released" // a grant was exchanged for values
	SecretRefused  = "secret.refused"  // a check naming secrets, or a release, was refused
)

// Event types of break-glass (docs/people.md): the emergency path on which
// one person of the break-glass group satisfies a check alone with a fresh
// passkey, and the review another person must give afterwards.
const (
	// BreakGlassRequested: a pipeline asked for break-glass on a new check
	// (data: reason, deny_rules overridden).
	BreakGlassRequested = "breakglass.requested"
	// BreakGlassUsed: a person broke the glass; the check is approved and
	// its short-lived grant issued (data: reason, approval, aal, amr,
	// auth_time, grant_id, grant_expires_at, review_due_at).
	BreakGlassUsed = "breakglass.used"
	// BreakGlassRefused: a request for break-glass, a use of it or a
	// review of it was refused (data: reason).
	BreakGlassRefused = "breakglass.refused"
	// BreakGlassReviewed: another person acknowledged a use (data: note,
	// late).
	BreakGlassReviewed = "breakglass.reviewed"
)

// BreakGlassTypes are the event types `stepgate audit export --break-glass`
// keeps.
var BreakGlassTypes = []string{BreakGlassRequested, BreakGlassUsed, BreakGlassRefused, BreakGlassReviewed}

// IsBreakGlass reports whether e is an event of break-glass: one of
// BreakGlassTypes, or the approval and grant a break-glass made (data
// break_glass: true).
func IsBreakGlass(e *Event) bool {
	if slices.Contains(BreakGlassTypes, e.Type) {
		return true
	}
	var d struct {
		BreakGlass bool `json:"break_glass"`
	}
	return len(e.Data) > 0 && json.Unmarshal(e.Data, &d) == nil && d.BreakGlass
}
