package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/store"
)

// Sign-in: the evidence of a factor becomes a session in the transaction
// that verifies it, and the sign-in is audited (user.signed_in) with it.
// The front end makes the session (it keeps the secret the browser
// holds) and says which one the browser had, which ends (no session
// fixation).

// NewSession makes the session of a sign-in of person userID at level
// aal with methods amr.
type NewSession func(userID string, aal int, amr []string) *store.Session

var (
	// ErrUnknownPasskey refuses a passkey that is nobody's.
	ErrUnknownPasskey = errors.New("this passkey is not registered")
	// ErrAccountDisabled refuses a sign-in of a disabled account.
	ErrAccountDisabled = errors.New("the account is disabled")
)

// StartSession creates s in tx, ends the session old (when not nil) and
// records the sign-in: data, with the session's aal and amr.
func (p *People) StartSession(ctx context.Context, tx store.Tx, u *store.User, s *store.Session, old []byte, data map[string]any) error {
	if old != nil {
		if err := tx.DeleteSession(ctx, old); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := tx.CreateSession(ctx, s); err != nil {
		return err
	}
	data["aal"], data["amr"] = s.AAL, s.AMR
	return p.Audit(ctx, tx, audit.UserSignedIn, u.Name, "user:"+u.ID, data)
}

// SignInTOTP signs name in with a TOTP code: the code is verified
// (VerifyTOTPIn) and the session made by newSession started, in one
// transaction that commits whatever the result. refused is
// totp.ErrInvalid, ErrReused or ErrLocked; a name that is nobody's, or a
// disabled person's, is refused as a wrong code is (the answer does not
// tell them apart) and audited here (a wrong code of a person is audited
// with their factor). displayName is the name as the audit log keeps it;
// source the client's address.
func (p *People) SignInTOTP(ctx context.Context, name, displayName, source, code string, old []byte, newSession NewSession) (refused, err error) {
	nobody := "" // why a sign-in as nobody who may sign in was refused
	err = p.st.InTx(ctx, func(tx store.Tx) error {
		u, err := tx.GetUserByName(ctx, ident.Key(name))
		switch {
		case errors.Is(err, store.ErrNotFound):
			refused, nobody = totp.ErrInvalid, "no such person"
			return nil
		case err == nil && !u.DisabledAt.IsZero():
			refused, nobody = totp.ErrInvalid, "the person is disabled"
			return nil
		}
		if err != nil {
			return err
		}
		cred, verr, err := p.VerifyTOTPIn(ctx, tx, u, code, map[string]any{"during": "sign-in"})
		if err != nil {
			return err
		}
		if verr != nil {
			refused = verr
			return nil
		}
		return p.StartSession(ctx, tx, u, newSession(u.ID, totp.AAL, totp.AMR), old, map[string]any{"credential": cred.ID, "kind": cred.Kind})
	})
	if err != nil {
		return nil, fmt.Errorf("signing in with totp: %w", err)
	}
	if nobody != "" {
		// Nobody was authenticated: the name is what a stranger typed, so
		// the refusal is anonymous (audited per source at most once a
		// minute, with the count), the name its subject.
		p.svc.AuditRefusal(ctx, Refusal{Action: ActionSignIn, Subject: "user:" + displayName, Method: "totp", Reason: nobody, Status: http.StatusUnauthorized, Source: source})
	}
	return refused, nil
}

// SignInPasskey verifies a usernameless passkey assertion (the ceremony
// state sess, the browser's answer body) and starts the session made by
// newSession for its owner. The owner and their passkeys are read for
// update, and the one used is written back (sign count, last use) with
// the new session, in one transaction; a sign count that did not move
// forward is audited (the transaction commits) and refused. refused is
// ErrUnknownPasskey, ErrAccountDisabled or a refusal of the webauthn
// package (IsPasskeyRefusal).
func (p *People) SignInPasskey(ctx context.Context, sess, body, old []byte, newSession NewSession) (refused, err error) {
	err = p.st.InTx(ctx, func(tx store.Tx) error {
		var owner *store.User
		var presented string
		lookup := func(credentialID, _ []byte) (webauthn.User, []*store.Credential, error) {
			presented = webauthn.CredentialID(credentialID)
			cred, err := tx.GetCredential(ctx, presented)
			if err != nil {
				return webauthn.User{}, nil, err
			}
			u, err := tx.GetUser(ctx, cred.UserID)
			if err != nil {
				return webauthn.User{}, nil, err
			}
			if !u.DisabledAt.IsZero() {
				return webauthn.User{}, nil, ErrAccountDisabled
			}
			creds, err := LockedCredentials(ctx, tx, u.ID, store.KindWebAuthn)
			if err != nil {
				return webauthn.User{}, nil, err
			}
			owner = u
			return webauthn.User{ID: u.ID, Name: u.Name, DisplayName: u.Name}, creds, nil
		}
		_, cred, aal, err := p.wa.FinishLogin(sess, body, lookup)
		switch {
		case errors.Is(err, store.ErrNotFound):
			refused = fmt.Errorf("%w: %w", ErrUnknownPasskey, err)
			return nil
		case errors.Is(err, ErrAccountDisabled):
			refused = ErrAccountDisabled
			return nil
		case err != nil:
			if !IsPasskeyRefusal(err) {
				return err
			}
			refused = err
			if errors.Is(err, webauthn.ErrCloned) && owner != nil {
				return p.Audit(ctx, tx, audit.CredentialSignCount, owner.Name, "user:"+owner.ID, map[string]any{"credential": presented, "during": "sign-in"})
			}
			return nil
		}
		if err := tx.UpdateCredential(ctx, cred); err != nil {
			return err
		}
		return p.StartSession(ctx, tx, owner, newSession(owner.ID, aal, webauthn.AMR(aal)), old, map[string]any{"credential": cred.ID, "kind": cred.Kind})
	})
	if err != nil {
		return nil, fmt.Errorf("signing in with a passkey: %w", err)
	}
	return refused, nil
}

// SetGroups replaces u's groups in tx with groups, those of an ID token
// of issuer iss (server.oidc's groups claim), and audits it: user.groups,
// by "oidc". A sign-in through the provider on the pages calls it in the
// transaction of the sign-in.
func SetGroups(ctx context.Context, tx store.Tx, now time.Time, u *store.User, groups []string, iss string) error {
	u.Groups = groups
	if err := tx.UpdateUser(ctx, u); err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any{"groups": groups, "iss": iss})
	if err != nil {
		return fmt.Errorf("encoding audit event %s: %w", audit.UserGroups, err)
	}
	if err := tx.AppendAudit(ctx, &audit.Event{Time: now.UTC(), Type: audit.UserGroups, Actor: "oidc", Subject: "user:" + u.Name, Data: data}); err != nil {
		return fmt.Errorf("appending audit event %s: %w", audit.UserGroups, err)
	}
	return nil
}

// SyncGroups is SetGroups in a transaction of its own, on the account as
// stored (the people API, whose bearer ID token carries the groups); u's
// groups are set when it commits.
func SyncGroups(ctx context.Context, st txRunner, now time.Time, u *store.User, groups []string, iss string) error {
	err := st.InTx(ctx, func(tx store.Tx) error {
		cur, err := tx.GetUser(ctx, u.ID)
		if err != nil {
			return err
		}
		return SetGroups(ctx, tx, now, cur, groups, iss)
	})
	if err != nil {
		return fmt.Errorf("keeping the groups of %s from the ID token: %w", u.Name, err)
	}
	u.Groups = groups
	return nil
}

// ErrNameTaken refuses to create, at a first sign-in through the
// organisation's provider, an account whose name is another account's.
var ErrNameTaken = fmt.Errorf("%w: an account of that name exists and is not linked to this identity", ErrConflict)

// SignInOIDC signs in the account linked (link) to the subject of an ID
// token of the organisation's provider, creating it at the first sign-in
// (user.created), and starts the session newSession makes, dated at the
// token's auth_time; with syncGroups, the token's groups replace the
// account's (user.groups). All in one transaction. refused is
// ErrNameTaken or ErrAccountDisabled.
func (p *People) SignInOIDC(ctx context.Context, id *oidc.Identity, link string, syncGroups bool, old []byte, newSession NewSession) (refused, err error) {
	err = p.st.InTx(ctx, func(tx store.Tx) error {
		now := p.now().UTC()
		u, err := tx.FindUserByLink(ctx, link)
		switch {
		case errors.Is(err, store.ErrNotFound):
			name := oidc.AccountName(id)
			if _, err := tx.GetUserByName(ctx, name); err == nil {
				refused = fmt.Errorf("%w: %s", ErrNameTaken, name)
				return nil
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			email := id.Email
			if len(email) > 254 || !strings.Contains(email, "@") {
				email = ""
			}
			u = &store.User{ID: newID("usr_"), Name: name, Email: email, Groups: id.Groups, Links: []string{link}, CreatedAt: now}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			if err := p.Audit(ctx, tx, audit.UserCreated, "oidc", "user:"+u.Name, map[string]any{"id": u.ID, "groups": u.Groups, "link": link, "iss": id.Issuer}); err != nil {
				return err
			}
		case err != nil:
			return err
		case !u.DisabledAt.IsZero():
			refused = ErrAccountDisabled
			return nil
		case syncGroups && !slices.Equal(u.Groups, id.Groups):
			if err := SetGroups(ctx, tx, p.now(), u, id.Groups, id.Issuer); err != nil {
				return err
			}
		}
		sess := newSession(u.ID, ClampAAL(id.Level), id.AMR)
		if !id.AuthTime.IsZero() {
			sess.AuthTime = id.AuthTime
		}
		return p.StartSession(ctx, tx, u, sess, old, map[string]any{"method": "oidc", "iss": id.Issuer, "sub": id.Subject, "acr": id.ACR})
	})
	if err != nil {
		return nil, fmt.Errorf("signing in with oidc: %w", err)
	}
	return refused, nil
}
