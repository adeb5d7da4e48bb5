package gate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/store"
)

// passkeyEvidence is what the web UI stores with a passkey approval: the
// assertion, and the check, plan digest and nonce its challenge covered.
type passkeyEvidence struct {
	webauthn.Assertion
	Method     string `json:"method"`
	CheckID    string `json:"check_id"`
	PlanDigest string `json:"plan_digest"`
	Nonce      string `json:"nonce"`
}

// EvidenceError names an approval whose stored proof does not verify.
type EvidenceError struct {
	CheckID, ApprovalID, Subject string
	Err                          error
}

func (e *EvidenceError) Error() string {
	return fmt.Sprintf("approval %s of %s on check %s: the stored passkey assertion does not verify: %v", e.ApprovalID, e.Subject, e.CheckID, e.Err)
}

func (e *EvidenceError) Unwrap() error { return e.Err }

// ApprovalDigest is the plan digest a passkey approval of c signs: the
// digest of its plan, or "none" for an operation without a plan
// (secret.read), since the challenge needs a non-empty value.
func ApprovalDigest(c *store.Check) string {
	if c.PlanSHA256 == "" {
		return "none"
	}
	return c.PlanSHA256
}

// evidenceStore is what VerifyEvidence reads: approvals, their checks and
// the credentials that made them.
type evidenceStore interface {
	ListApprovals(ctx context.Context, checkID string) ([]*store.Approval, error)
	GetCheck(ctx context.Context, id string) (*store.Check, error)
	GetCredential(ctx context.Context, id string) (*store.Credential, error)
}

// VerifyEvidence verifies again the passkey assertion stored with every
// approval of the given checks, against the credential's public key and the
// challenge recomputed from the check id, the plan digest STORED WITH THE
// CHECK (not the one the evidence names: evidence for another plan, or a
// check whose digest was edited afterwards, is reported) and the nonce. It
// returns how many it verified, and the first that fails as an
// *EvidenceError. Evidence that says it is a passkey assertion but does
// not parse is reported too, never skipped.
// verifier is called the first time a passkey approval is found: a log
// without one needs no relying-party settings.
func VerifyEvidence(ctx context.Context, st evidenceStore, verifier func() (*webauthn.WebAuthn, error), checkIDs []string) (int, error) {
	n := 0
	var wa *webauthn.WebAuthn
	for _, id := range checkIDs {
		aps, err := st.ListApprovals(ctx, id)
		if err != nil {
			return n, fmt.Errorf("reading approvals of %s: %w", id, err)
		}
		var c *store.Check
		for _, ap := range aps {
			var method struct {
				Method string `json:"method"`
			}
			if len(ap.Evidence) == 0 || json.Unmarshal(ap.Evidence, &method) != nil || method.Method != "webauthn" {
				continue // TOTP and rejections carry no signature to check
			}
			fail := func(err error) (int, error) {
				return n, &EvidenceError{CheckID: id, ApprovalID: ap.ID, Subject: ap.Subject, Err: err}
			}
			var ev passkeyEvidence
			if err := json.Unmarshal(ap.Evidence, &ev); err != nil {
				return fail(fmt.Errorf("the evidence does not parse: %w", err))
			}
			if ev.CheckID != id {
				return fail(fmt.Errorf("it was made for check %s", ev.CheckID))
			}
			if c == nil {
				if c, err = st.GetCheck(ctx, id); err != nil {
					return fail(fmt.Errorf("reading its check: %w", err))
				}
			}
			digest := ApprovalDigest(c)
			if ev.PlanDigest != digest {
				return fail(fmt.Errorf("it signed plan digest %q, but the check's plan digest is %q", ev.PlanDigest, digest))
			}
			if wa == nil {
				var err error
				if wa, err = verifier(); err != nil {
					return n, err
				}
			}
			cred, err := st.GetCredential(ctx, webauthn.CredentialID(ev.CredentialID))
			if err != nil {
				return fail(fmt.Errorf("credential: %w", err))
			}
			if err := wa.VerifyStoredAssertion(cred, &ev.Assertion, id, digest, ev.Nonce); err != nil {
				return fail(err)
			}
			n++
		}
	}
	return n, nil
}
