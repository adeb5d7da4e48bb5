package gate

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// Every refusal of an approval, a grant use, a sign-in or a change to a
// person's factors is written to the audit log, naming who tried what and
// why it was refused. The gate writes the refusals it decides itself
// (Record, Consume) in the same transaction as it reads the check, and
// marks their errors (Audited) so that the front ends do not write them
// twice; the front ends write the ones they decide before calling the gate
// (a plan digest that differs, a step-up too weak or too old, no session)
// with AuditRefusal.

// Actions a refusal can be of.
const (
	ActionApproval   = "approval"   // approving or rejecting a check
	ActionGrant      = "grant"      // using a grant
	ActionSignIn     = "signin"     // signing in
	ActionEnrollment = "enrollment" // using an enrollment link
	ActionFactor     = "factor"     // adding, renaming or removing a factor
	ActionBreakGlass = "breakglass" // breaking the glass, or reviewing it
	// ActionIntegration: a request of an integration (an HCP Terraform run
	// task).
	ActionIntegration = "integration"
)

// refusalTypes are the audit event types of refused actions.
var refusalTypes = map[string]string{
	ActionApproval:    audit.ApprovalRefused,
	ActionGrant:       audit.GrantRefused,
	ActionSignIn:      audit.SignInRefused,
	ActionEnrollment:  audit.EnrollmentRefused,
	ActionFactor:      audit.FactorRefused,
	ActionBreakGlass:  audit.BreakGlassRefused,
	ActionIntegration: audit.IntegrationRefused,
}

// Refusal is one refused attempt.
type Refusal struct {
	Action string // one of the Action constants
	// Actor is who tried: a person's name, a token's name, or "anonymous"
	// when nobody was authenticated.
	Actor string
	// Subject is what it was tried on: a check id, "user:ID"...
	Subject string
	// Method is how: totp, webauthn, oidc, or the route.
	Method string
	// Reason says why it was refused, in words.
	Reason string
	// Status is the HTTP status the attempt was answered with.
	Status int
	// Source is the client's address, as far as the front end can tell.
	// Refusals of anonymous attempts are audited per action and source at
	// most once a minute, with the count (anyone who can reach the server
	// can be refused, and a flood must not become a flood of audit writes).
	Source string
}

// maxRefusalReason caps the reason kept, in bytes.
const maxRefusalReason = 500

// AuditRefusal writes a refusal to the audit log. A refusal that cannot be
// written is logged: the attempt is refused all the same.
func (s *Service) AuditRefusal(ctx context.Context, r Refusal) {
	typ, ok := refusalTypes[r.Action]
	if !ok {
		typ = audit.ApprovalRefused
	}
	refused := 1
	if r.Actor == "" {
		n, ok := s.anonymous.shouldAudit("anonymous:" + r.Action + ":" + r.Source)
		if !ok {
			return
		}
		r.Actor, refused = "anonymous", n
	}
	data := map[string]any{"reason": truncate(r.Reason, maxRefusalReason)}
	if refused > 1 {
		data["refused"] = refused
	}
	if r.Source != "" {
		data["source"] = r.Source
	}
	if r.Method != "" {
		data["method"] = r.Method
	}
	if r.Status != 0 {
		data["status"] = r.Status
	}
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		return tx.AppendAudit(ctx, s.event(s.now().UTC(), typ, r.Actor, r.Subject, data))
	})
	if err != nil {
		s.log.ErrorContext(ctx, "auditing a refusal failed", "action", r.Action, "actor", r.Actor, "subject", r.Subject, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// audited is a refusal the gate has already written to the audit log.
type audited struct{ error }

func (a audited) Unwrap() error { return a.error }

// Audited reports whether err is a refusal already in the audit log, which
// a front end must not write again.
func Audited(err error) bool {
	var a audited
	return errors.As(err, &a)
}
