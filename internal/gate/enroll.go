package gate

import (
	"context"
	"errors"
	"fmt"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// Why a single-use record (a ceremony, an enrollment link) was refused,
// as the audit log says it (ceremony.refused).
const (
	ReasonReplayed = "replayed: this ceremony was already used"
	ReasonExpired  = "expired"
)

// Enroll saves cred, the first factor of u, uses up the enrollment link
// whose hash is given, and signs u in with the session newSession makes
// (ending the session old), in one transaction; user.enrolled,
// credential.added and user.signed_in are written with it. The link is
// used once, atomically: of two finishes with one link (a passkey and a
// code, or the same one twice), one wins; the other is refused (refused
// is store.ErrUsed or store.ErrExpired, with the link as stored in e for
// its words) and audited (ceremony.refused), and the transaction
// commits. The link and a factor just made prove little: the session
// starts at aal 1, whatever the factor; approving asks for a new proof.
func (p *People) Enroll(ctx context.Context, hash []byte, u *store.User, cred *store.Credential, old []byte, newSession NewSession) (e *store.Enrollment, refused, err error) {
	err = p.st.InTx(ctx, func(tx store.Tx) error {
		used, err := tx.UseEnrollment(ctx, hash, p.now().UTC())
		if errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) {
			e, refused = used, err
			reason := ReasonExpired
			if errors.Is(err, store.ErrUsed) {
				reason = ReasonReplayed
			}
			return p.Audit(ctx, tx, audit.CeremonyRefused, u.Name, "user:"+u.ID, map[string]any{
				"purpose": "enrollment", "reason": reason, "credential": cred.ID, "kind": cred.Kind,
			})
		}
		if err != nil {
			return fmt.Errorf("using enrollment: %w", err)
		}
		if err := p.AddFactorIn(ctx, tx, u, cred); err != nil {
			return err
		}
		if err := p.Audit(ctx, tx, audit.UserEnrolled, u.Name, "user:"+u.ID, map[string]any{"credential": cred.ID, "kind": cred.Kind}); err != nil {
			return err
		}
		return p.StartSession(ctx, tx, u, newSession(u.ID, 1, []string{}), old, map[string]any{"credential": cred.ID, "kind": cred.Kind})
	})
	if err != nil {
		return nil, nil, err
	}
	return e, refused, nil
}

// RefuseCeremony audits a refused finish of a ceremony (a passkey's, a
// TOTP set-up's, a provider's login, used twice or too late):
// ceremony.refused by actor on subject, in a transaction of its own.
func (p *People) RefuseCeremony(ctx context.Context, actor, subject string, data map[string]any) error {
	return p.st.InTx(ctx, func(tx store.Tx) error {
		return p.Audit(ctx, tx, audit.CeremonyRefused, actor, subject, data)
	})
}
