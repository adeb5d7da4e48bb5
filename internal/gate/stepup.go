package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/store"
)

// Approvals proven by a factor: the factor is verified in a transaction
// of its own that commits whatever follows (a code or a signature spent
// on a refused approval stays spent, which is the safe way round), then
// the answer goes to Record or BreakGlass, which check every rule again
// under the check's lock.

// ErrWeakProof refuses an approval whose proof cannot count for the check
// (its level, methods or age): Record would keep it without counting it,
// so it is refused before, and nothing is recorded.
var ErrWeakProof = fmt.Errorf("%w: this proof cannot count for the check", ErrForbidden)

// Counts refuses (ErrWeakProof) an approval by p of check c (as Review
// shows it) that could not count at now.
func Counts(c *api.Check, p *Proof, now time.Time) error {
	if Qualifies(c.Assessment.Requirements, c.Requester, &store.Approval{Subject: p.Subject, Approved: true, AAL: p.AAL, AMR: p.AMR, AuthTime: p.AuthTime}, now) {
		return nil
	}
	return fmt.Errorf("%w: level %d (%s)", ErrWeakProof, p.AAL, strings.Join(p.AMR, ", "))
}

// PlanDigest is the plan digest an approval signature covers: the digest
// of the plan shown, or "none" for an operation without a plan
// (secret.read), since the challenge needs a non-empty value.
func PlanDigest(c *api.Check) string {
	if c.PlanSHA256 == "" {
		return "none"
	}
	return c.PlanSHA256
}

// personProof is the proof of u's approval of a check.
func personProof(u *store.User, amr []string, aal int, at time.Time, evidence json.RawMessage) *Proof {
	return &Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true, AMR: amr, AAL: aal, AuthTime: at, Evidence: evidence}
}

// ApproveTOTP records u's approval of check c proven by a TOTP code, the
// step-up whatever the age of u's session. verified says the code was
// accepted (whatever Record then says); refused is the code's refusal
// (totp.ErrInvalid, ErrReused, ErrLocked), nothing recorded; err a
// refusal of Record or a failure.
func (p *People) ApproveTOTP(ctx context.Context, c *api.Check, u *store.User, code string) (verified bool, refused, err error) {
	cred, refused, err := p.VerifyTOTP(ctx, u, code, map[string]any{"during": "approval", "check": c.ID})
	if err != nil || refused != nil {
		return false, refused, err
	}
	b, err := json.Marshal(map[string]string{"method": "totp", "credential": cred.ID})
	if err != nil {
		return true, nil, fmt.Errorf("encoding evidence: %w", err)
	}
	_, err = p.svc.Record(ctx, c.ID, personProof(u, totp.AMR, totp.AAL, p.now().UTC(), b))
	return true, nil, err
}

// ApprovePasskey records u's approval of check c proven by a passkey
// assertion over it (pp), the assertion kept as evidence with the nonce
// of its challenge. refused is the passkey's refusal (IsPasskeyRefusal),
// nothing recorded; err ErrWeakProof (the assertion reached too low a
// level for c), a refusal of Record or a failure. as is the verified
// assertion, for the words of ErrWeakProof.
func (p *People) ApprovePasskey(ctx context.Context, c *api.Check, u *store.User, pp *PasskeyProof, nonce string) (as *webauthn.Assertion, refused, err error) {
	as, proof, refused, err := p.passkeyProof(ctx, c, u, pp, nonce, "approval")
	if err != nil || refused != nil {
		return as, refused, err
	}
	if err := Counts(c, proof, proof.AuthTime); err != nil {
		return as, nil, err
	}
	_, err = p.svc.Record(ctx, c.ID, proof)
	return as, nil, err
}

// BreakGlassPasskey breaks the glass on check c for u with a passkey
// assertion over it (pp), user verification required. refused is the
// passkey's refusal, nothing recorded; err a refusal of BreakGlass or a
// failure.
func (p *People) BreakGlassPasskey(ctx context.Context, c *api.Check, u *store.User, pp *PasskeyProof, nonce string) (refused, err error) {
	pp.RequireUV = true
	_, proof, refused, err := p.passkeyProof(ctx, c, u, pp, nonce, "break-glass")
	if err != nil || refused != nil {
		return refused, err
	}
	_, err = p.svc.BreakGlass(ctx, c.ID, proof)
	return nil, err
}

// passkeyProof verifies pp, u's assertion over check c made during an
// approval or a break-glass (during), and is the proof it makes, made
// now. refused is the passkey's refusal; as is set once verified.
func (p *People) passkeyProof(ctx context.Context, c *api.Check, u *store.User, pp *PasskeyProof, nonce, during string) (as *webauthn.Assertion, proof *Proof, refused, err error) {
	pp.CheckID, pp.PlanDigest, pp.During = c.ID, PlanDigest(c), during
	as, refused, err = p.VerifyPasskey(ctx, u, pp)
	if err != nil || refused != nil {
		return nil, nil, refused, err
	}
	evidence, err := PasskeyEvidence(as, pp.CheckID, pp.PlanDigest, nonce)
	if err != nil {
		return as, nil, nil, err
	}
	return as, personProof(u, as.AMR, as.AAL, p.now().UTC(), evidence), nil, nil
}

// PasskeyEvidence is what is stored with a passkey approval: the
// Assertion's fields as they are (so the evidence decodes as a
// webauthn.Assertion), with what VerifyStoredAssertion needs besides them:
// the nonce, and the check and plan digest the challenge covered.
func PasskeyEvidence(as *webauthn.Assertion, checkID, digest, nonce string) (json.RawMessage, error) {
	b, err := json.Marshal(as)
	if err != nil {
		return nil, fmt.Errorf("encoding assertion: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encoding assertion: %w", err)
	}
	for k, v := range map[string]string{"method": "webauthn", "check_id": checkID, "plan_digest": digest, "nonce": nonce} {
		m[k], _ = json.Marshal(v)
	}
	return json.Marshal(m)
}
