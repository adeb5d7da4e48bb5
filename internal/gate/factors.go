package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// People is the people's side of the gate: it verifies the proofs people
// give with their factors (a TOTP code, a passkey's assertion over a
// check) for an approval, a break-glass or a sign-in, and starts the
// sessions of a sign-in (signin.go). It owns the rules of a factor: each is read
// for update and written back whatever the result, so that single use,
// the failure counter and the sign count hold, and every failure is
// audited (credential.totp_failure, credential.sign_count) in the same
// transaction. The front ends keep only what is theirs: the ceremony
// state of a browser, the per-address back-off, and the words of a
// refusal.
type People struct {
	svc *Service // audits the refusals of no factor (AuditRefusal)
	st  txRunner
	wa  *webauthn.WebAuthn
	tp  *totp.TOTP
	now func() time.Time
	// audited, when set, is told of each audit event written, so that a
	// front end does not write the refusal a second time.
	audited func(ctx context.Context, typ string)
}

// NewPeople returns the people's side of svc over st. audited may be nil.
func NewPeople(svc *Service, st txRunner, wa *webauthn.WebAuthn, tp *totp.TOTP, now func() time.Time, audited func(ctx context.Context, typ string)) *People {
	return &People{svc: svc, st: st, wa: wa, tp: tp, now: now, audited: audited}
}

// TOTPMeets reports whether a TOTP code can meet req: its level is
// enough, and the check accepts its method.
func TOTPMeets(req *policy.Requirements) bool {
	if req.AAL > totp.AAL {
		return false
	}
	return len(req.Methods) == 0 || slices.ContainsFunc(totp.AMR, func(m string) bool { return slices.Contains(req.Methods, m) })
}

// Audit appends an event of the people's side (actor, subject, data) to
// the audit log in tx, stamped with the clock of f.
func (f *People) Audit(ctx context.Context, tx store.Tx, typ, actor, subject string, data map[string]any) error {
	e := &audit.Event{Time: f.now().UTC(), Type: typ, Actor: actor, Subject: subject}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encoding audit event %s: %w", typ, err)
		}
		e.Data = b
	}
	if err := tx.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("appending audit event %s: %w", typ, err)
	}
	if f.audited != nil {
		f.audited(ctx, typ)
	}
	return nil
}

// VerifyTOTP checks a code against u's TOTP factors in a transaction of
// its own, which commits whatever the result: a code spent on an approval
// that is then refused stays spent, which is the safe way round. detail
// is added to the audit event of a failure ("during", "check"). refused
// is totp.ErrInvalid, ErrReused or ErrLocked; err a failure of the store.
func (f *People) VerifyTOTP(ctx context.Context, u *store.User, code string, detail map[string]any) (cred *store.Credential, refused, err error) {
	err = f.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		cred, refused, err = f.VerifyTOTPIn(ctx, tx, u, code, detail)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("verifying totp: %w", err)
	}
	return cred, refused, nil
}

// VerifyTOTPIn is VerifyTOTP in tx (a sign-in starts the session in the
// same transaction). Each factor is read with GetCredentialForUpdate and
// written back whatever the result. The first factor that accepts the
// code wins and the others are left as they were; when none does, each
// failure is counted and audited.
func (f *People) VerifyTOTPIn(ctx context.Context, tx store.Tx, u *store.User, code string, detail map[string]any) (cred *store.Credential, refused, err error) {
	// Locked in the order every other writer of factors locks them (by
	// id), so that two requests for one person cannot deadlock.
	totps, err := LockedCredentials(ctx, tx, u.ID, store.KindTOTP)
	if err != nil {
		return nil, nil, err
	}
	var failed []*store.Credential
	var errs []error
	for _, c := range totps {
		verr := f.tp.Verify(c, code)
		if verr == nil {
			if err := tx.UpdateCredential(ctx, c); err != nil {
				return nil, nil, err
			}
			return c, nil, nil
		}
		if !errors.Is(verr, totp.ErrInvalid) && !errors.Is(verr, totp.ErrReused) && !errors.Is(verr, totp.ErrLocked) {
			return nil, nil, fmt.Errorf("verifying totp code: %w", verr)
		}
		failed, errs = append(failed, c), append(errs, verr)
	}
	if len(failed) == 0 {
		return nil, totp.ErrInvalid, nil // no TOTP factor: the same answer as a wrong code
	}
	for i, c := range failed {
		if err := tx.UpdateCredential(ctx, c); err != nil {
			return nil, nil, err
		}
		data := map[string]any{"credential": c.ID, "error": errs[i].Error(), "failures": c.Failures}
		for k, v := range detail {
			data[k] = v
		}
		if err := f.Audit(ctx, tx, audit.CredentialTOTPFailure, u.Name, "user:"+u.ID, data); err != nil {
			return nil, nil, err
		}
	}
	for _, want := range []error{totp.ErrReused, totp.ErrLocked} {
		for _, e := range errs {
			if errors.Is(e, want) {
				return nil, want, nil
			}
		}
	}
	return nil, totp.ErrInvalid, nil
}

// PasskeyProof is a passkey ceremony over a check to finish: the
// ceremony's state kept by the front end, the browser's answer, and what
// the challenge covered.
type PasskeyProof struct {
	Session    []byte // the ceremony state of BeginApproval
	Body       []byte // the browser's assertion
	CheckID    string
	PlanDigest string
	RequireUV  bool
	// During names the act in the audit event of a cloned passkey
	// ("approval", "break-glass").
	During string
}

// VerifyPasskey verifies u's assertion over a check in a transaction of
// its own: u's passkeys are read for update and the one used written back
// (sign count, flags); a sign count that did not move forward is audited
// (credential.sign_count) and the transaction commits. A signature spent
// on a refused approval stays spent. refused is the webauthn package's
// refusal (ErrCloned, ErrUserVerification, ErrSession, ErrExpired,
// ErrChallenge, ErrInvalid); err a failure of the store.
func (f *People) VerifyPasskey(ctx context.Context, u *store.User, p *PasskeyProof) (as *webauthn.Assertion, refused, err error) {
	err = f.st.InTx(ctx, func(tx store.Tx) error {
		creds, err := LockedCredentials(ctx, tx, u.ID, store.KindWebAuthn)
		if err != nil {
			return err
		}
		a, cred, err := f.wa.FinishApproval(webauthn.User{ID: u.ID, Name: u.Name, DisplayName: u.Name}, creds, p.Session, p.Body, p.CheckID, p.PlanDigest, p.RequireUV)
		if err != nil {
			if !IsPasskeyRefusal(err) {
				return err
			}
			refused = err
			if errors.Is(err, webauthn.ErrCloned) {
				return f.Audit(ctx, tx, audit.CredentialSignCount, u.Name, "user:"+u.ID, map[string]any{"during": p.During, "check": p.CheckID, "error": err.Error()})
			}
			return nil
		}
		as = a
		return tx.UpdateCredential(ctx, cred)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("verifying passkey for %s: %w", p.During, err)
	}
	return as, refused, nil
}

// IsPasskeyRefusal reports whether err of the webauthn package refuses
// the person's answer (rather than a failure of the server).
func IsPasskeyRefusal(err error) bool {
	for _, e := range []error{webauthn.ErrCloned, webauthn.ErrUserVerification, webauthn.ErrSession, webauthn.ErrExpired, webauthn.ErrChallenge, webauthn.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// LockedCredentials reads a person's factors of kind ("": all of them)
// for update, in id order, skipping any removed meanwhile: the order every
// writer of factors locks them in.
func LockedCredentials(ctx context.Context, tx store.Tx, userID string, kind store.CredentialKind) ([]*store.Credential, error) {
	all, err := tx.ListCredentials(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("listing factors of %s: %w", userID, err)
	}
	slices.SortFunc(all, func(a, b *store.Credential) int { return strings.Compare(a.ID, b.ID) })
	var out []*store.Credential
	for _, c := range all {
		if kind != "" && c.Kind != kind {
			continue
		}
		c, err := tx.GetCredentialForUpdate(ctx, c.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
