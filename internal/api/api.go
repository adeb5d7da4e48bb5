package api

import (
	"time"

	"github.com/stepgate/stepgate/internal/assessment"
)

// Paths and query parameters of the API.
const (
	PathChecks        = "/v1/checks"
	PathConsume       = "/v1/grants/consume"
	PathJWKS          = "/.well-known/jwks.json"
	PathDiscovery     = "/.well-known/openid-configuration"
	ParamKind         = "kind"
	ParamWorkspace    = "workspace"
	ParamEnvironment  = "environment"
	ParamPlanFileHash = "plan_file_sha256"
	// ParamPipelinePrefix prefixes the pipeline's identity, one parameter
	// per field: pipeline.repository=acme/infra&pipeline.run_id=42.
	ParamPipelinePrefix = "pipeline."
	ParamTimeout        = "timeout"
	// The parts of a multipart POST /v1/checks, in this order.
	PartPlan     = "plan"
	PartPlanFile = "plan_file"
	// ParamSecret names a secret the operation would release, repeatable:
	// secret=billing/db, or secret=ENV=billing/db to have it in $ENV.
	ParamSecret = "secret"
	// ParamBreakGlass=true asks for break-glass on the new check, with
	// ParamBreakGlassReason saying why (at least 20 characters).
	ParamBreakGlass       = "break_glass"
	ParamBreakGlassReason = "break_glass_reason"
	// PathRelease exchanges a grant for the secrets its check names.
	PathRelease = "/v1/secrets/release"
)

// POST /v1/checks?kind=K&workspace=W&environment=E&plan_file_sha256=H&pipeline.x=y
// with the plan document itself as the body (Content-Type: application/json;
// the output of `terraform show -json`). The server reads it with the same
// strict reader as `stepgate eval`, computes its sha256, and assesses it.
// An operation without a plan (kind=secret.read) sends an empty body.
//
// With a saved plan, the body is multipart/form-data (Content-Type
// multipart/form-data; boundary=...) with the part PartPlan (the JSON) first
// and the part PartPlanFile (the saved plan, terraform plan -out) second.
// The server verifies that they describe the same changes, and binds the
// check to the sha256 of the saved plan it received; a mismatch answers 400
// with the code CodeSavedPlan.
//
// It answers 201 with a Check, or 200 with the pending Check it resumed when
// the same token asked with the same inputs before.

// Check states, as the API names them (store.CheckState has the same
// values).
const (
	StateAllowed  = "allowed"  // the policy allowed it; a grant was issued
	StatePending  = "pending"  // waiting for people
	StateApproved = "approved" // the requirements hold; a grant was issued
	StateRejected = "rejected" // a person said no
	StateDenied   = "denied"   // the policy said no
	StateExpired  = "expired"  // nobody decided in time
	StateConsumed = "consumed" // its grant was used
)

// Check is a check as the API shows it.
type Check struct {
	ID             string `json:"id"`
	State          string `json:"state"`
	Kind           string `json:"kind"`
	Workspace      string `json:"workspace"`
	Environment    string `json:"environment,omitempty"`
	PlanSHA256     string `json:"plan_sha256"`
	PlanFileSHA256 string `json:"plan_file_sha256,omitempty"`
	// Requester is who asked, from what was authenticated: the person
	// owning the API token, else its name; the person a CI token's verified
	// claims are linked to, else its rule's name.
	Requester string `json:"requester"`
	// Pipeline is the pipeline's identity from a CI token's verified
	// claims; absent for an API token.
	Pipeline map[string]string `json:"pipeline,omitempty"`
	// PipelineUnverified is what the request said of its pipeline (the
	// pipeline.* parameters): a claim nobody checked, never an identity.
	PipelineUnverified map[string]string `json:"pipeline_unverified,omitempty"`
	// Secrets are the secrets the check's grant would release.
	Secrets    []CheckSecret          `json:"secrets,omitempty"`
	Assessment *assessment.Assessment `json:"assessment"`
	// ReviewURL is where people approve a pending check.
	ReviewURL string     `json:"review_url,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	Approvals []Approval `json:"approvals"`
	// Grant is the signed grant (a compact JWS), present when the check is
	// allowed or approved and the caller is the pipeline that asked.
	Grant          string     `json:"grant,omitempty"`
	GrantID        string     `json:"grant_id,omitempty"`
	GrantExpiresAt *time.Time `json:"grant_expires_at,omitempty"`
	// Resumed is true when this answer is a pending check asked for before.
	Resumed bool `json:"resumed,omitempty"`
	// BreakGlass is the check's break-glass request, its use and its
	// review; absent when the pipeline did not ask for break-glass.
	BreakGlass *BreakGlass `json:"break_glass,omitempty"`
}

// BreakGlass is a check's break-glass request (stepgate check
// --break-glass), and once a person used it, who did and its review.
type BreakGlass struct {
	Reason string `json:"reason"`
	// DenyRules are the deny rules of the policy the request overrides
	// (break_glass.allow_deny_rules); empty for a step-up.
	DenyRules   []string   `json:"deny_rules,omitempty"`
	RequestedAt time.Time  `json:"requested_at"`
	UsedBy      string     `json:"used_by,omitempty"`
	UsedAt      *time.Time `json:"used_at,omitempty"`
	ReviewDueAt *time.Time `json:"review_due_at,omitempty"`
	ReviewedBy  string     `json:"reviewed_by,omitempty"`
	ReviewedAt  *time.Time `json:"reviewed_at,omitempty"`
	ReviewNote  string     `json:"review_note,omitempty"`
	// Overdue is true when the review is late.
	Overdue bool `json:"overdue,omitempty"`
	// ReviewURL is the review queue.
	ReviewURL string `json:"review_url,omitempty"`
}

// Approval is one person's answer on a check.
type Approval struct {
	Subject   string    `json:"subject"`
	Approved  bool      `json:"approved"`
	Reason    string    `json:"reason,omitempty"`
	AMR       []string  `json:"amr"`
	AAL       int       `json:"aal"`
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	// Withdrawn, on a pending check, says why this approval no longer
	// counts whatever its proof: its person is now "disabled", "not
	// eligible" (no longer in the groups the check needs) or has "no
	// account".
	Withdrawn string `json:"withdrawn,omitempty"`
}

// GET /v1/checks/{id} answers the Check.
//
// GET /v1/checks/{id}/wait?timeout=30s waits until the check is no longer
// pending or the timeout (at most 60s) passes, then answers the Check.

// ConsumeRequest is the body of POST /v1/grants/consume: the grant is used
// once, here; a second use is refused with 409.
type ConsumeRequest struct {
	Grant string `json:"grant"`
}

// ConsumeResponse answers a consumed grant.
type ConsumeResponse struct {
	CheckID    string    `json:"check_id"`
	GrantID    string    `json:"grant_id"`
	ConsumedAt time.Time `json:"consumed_at"`
}

// OutcomeRequest is the body of POST /v1/checks/{id}/outcome: how the
// command run under a grant ended. It answers 204.
type OutcomeRequest struct {
	GrantID    string `json:"grant_id"`
	ExitCode   int    `json:"exit_code"`
	DurationMS int64  `json:"duration_ms"`
}

// Error is the body of every error answer.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong, safely: no internal detail.
type ErrorBody struct {
	// Code is one of the Code* constants.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeBadRequest   = "bad_request"   // 400: the request or the plan is wrong
	CodeUnauthorized = "unauthorized"  // 401: no valid token
	CodeForbidden    = "forbidden"     // 403: the token may not ask for this workspace
	CodeNotFound     = "not_found"     // 404
	CodeConflict     = "conflict"      // 409: already consumed, not approved...
	CodeTooLarge     = "too_large"     // 413
	CodeInvalidGrant = "invalid_grant" // 401 on consume: bad signature, expired...
	CodeInternal     = "internal"      // 500: stepgate could not decide
	CodeUnavailable  = "unavailable"   // 503: the store cannot be reached
	CodeRateLimited  = "rate_limited"  // 429: over the token's rate or pending limit; see Retry-After
)

// CodeSavedPlan (400): the saved plan does not match the plan JSON, cannot
// be read, or was named (plan_file_sha256) but not sent.
const CodeSavedPlan = "saved_plan_refused"
