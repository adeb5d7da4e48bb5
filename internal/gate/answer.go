package gate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// The rules of a person's answer that every way of giving one (the web
// pages, the people API) shares. Record enforces them under the check's
// lock; the helpers below let a front end refuse early, before it asks
// for a step-up that could not count.

// DefaultStepUpAge is the max_age of a step-up for a check without one: a
// step-up is always fresh.
const DefaultStepUpAge = 5 * time.Minute

// StepUpAge is how old the authentication of an approval of a check with
// these requirements may be: its max_age, or DefaultStepUpAge.
func StepUpAge(req *policy.Requirements) time.Duration {
	if req.MaxAge > 0 {
		return time.Duration(req.MaxAge) * time.Second
	}
	return DefaultStepUpAge
}

// MaxReasonLength caps a rejection's reason, in characters.
const MaxReasonLength = 1000

// CleanReason is a rejection's reason as it is recorded: without the
// spaces around it, cut to MaxReasonLength characters.
func CleanReason(s string) string {
	s = strings.TrimSpace(s)
	if rs := []rune(s); len(rs) > MaxReasonLength {
		s = string(rs[:MaxReasonLength])
	}
	return s
}

// ClampAAL is the aal a proof records for an authentication that reached
// level l: within 1 to 3, which Record accepts.
func ClampAAL(l int) int { return min(max(l, 1), 3) }

// MayApprove reports, before any step-up, whether p may approve check c
// (as Review shows it): ErrNotPending when c no longer waits for people,
// ErrSelfApproval when p asked for it and others must approve,
// ErrNotEligible when p is not among its approvers. Record checks it all
// again under the check's lock.
func MayApprove(c *api.Check, p *Proof) error {
	if !AwaitsPeople(c) {
		return ErrNotPending
	}
	if c.Assessment.Decision != policy.StepUp {
		return errBreakGlassOnly
	}
	return refusal(c.Assessment.Requirements, c.Requester, p)
}

// AwaitsPeople reports whether check c (as Review shows it) still waits
// for people to answer it: pending, with requirements.
func AwaitsPeople(c *api.Check) bool {
	return c.State == string(store.StatePending) && c.Assessment != nil && c.Assessment.Requirements != nil
}

// errBreakGlassOnly refuses an approval of a check the policy denied,
// which waits for a break-glass only (breakglass.go).
var errBreakGlassOnly = fmt.Errorf("%w: the policy denied this check; only a break-glass may satisfy it", ErrNotEligible)

// refusal is why p may not answer a check of requester with requirements
// req, or nil: ErrSelfApproval or ErrNotEligible.
func refusal(req *policy.Requirements, requester string, p *Proof) error {
	switch {
	case p.Approved && req.Approvals > 0 && ident.Same(p.Subject, requester):
		return ErrSelfApproval
	case !Eligible(req, requester, p):
		return ErrNotEligible
	}
	return nil
}

// OIDCEvidence is what is stored with an answer proven by an ID token of
// the organisation's OpenID Connect provider.
func OIDCEvidence(id *oidc.Identity) json.RawMessage {
	b, err := json.Marshal(map[string]any{
		"method": "oidc", "iss": id.Issuer, "sub": id.Subject, "acr": id.ACR, "amr": id.AMR,
		"auth_time": id.AuthTime.Unix(), "jti": id.JTI,
	})
	if err != nil {
		panic(fmt.Sprintf("encoding evidence: %v", err)) // strings and a number always encode
	}
	return b
}
