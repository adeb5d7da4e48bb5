package webauthn

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	lib "github.com/go-webauthn/webauthn/webauthn"

	"github.com/stepgate/stepgate/internal/store"
)

// BeginRegistration starts adding a passkey for user: a discoverable
// credential (resident key required), user verification preferred, no
// attestation, excluding the passkeys in existing so that an authenticator
// is not registered twice. It returns the options for
// navigator.credentials.create() and the session blob for
// FinishRegistration.
func (w *WebAuthn) BeginRegistration(user User, existing []*store.Credential) (options json.RawMessage, sess []byte, err error) {
	lu, err := newLibUser(user, existing)
	if err != nil {
		return nil, nil, err
	}
	creation, sd, err := w.lib.BeginRegistration(lu,
		lib.WithExclusions(descriptors(lu.creds)),
		lib.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		lib.WithConveyancePreference(protocol.PreferNoAttestation),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("beginning passkey registration for %s: %w", user.ID, err)
	}
	if options, err = marshalOptions(creation); err != nil {
		return nil, nil, err
	}
	if sess, err = w.encodeSession(ceremonyRegistration, sd, ""); err != nil {
		return nil, nil, err
	}
	return options, sess, nil
}

// FinishRegistration verifies the browser's response (the JSON of the
// PublicKeyCredential, body) and returns the credential to add: ID is
// CredentialID of the credential id, Data the library's credential record
// (public key, AAGUID, flags with UV and backup bits, transports,
// attestation) as JSON. Nothing is saved; credential ids are unique across
// users, so the caller's insert must fail on a taken id.
func (w *WebAuthn) FinishRegistration(user User, sess []byte, body []byte, name string) (*store.Credential, error) {
	s, err := w.decodeSession(ceremonyRegistration, sess)
	if err != nil {
		return nil, err
	}
	lu, err := newLibUser(user, nil)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, invalid(err)
	}
	lc, err := w.lib.CreateCredential(lu, s.Data, parsed)
	if err != nil {
		return nil, invalid(err)
	}
	data, err := json.Marshal(lc)
	if err != nil {
		return nil, fmt.Errorf("encoding webauthn credential: %w", err)
	}
	return &store.Credential{
		ID:        CredentialID(lc.ID),
		UserID:    user.ID,
		Kind:      store.KindWebAuthn,
		Name:      name,
		Data:      data,
		SignCount: lc.Authenticator.SignCount,
		CreatedAt: w.now(),
	}, nil
}

// BeginLogin starts a usernameless sign-in with a discoverable credential
// (user verification preferred). It returns the options for
// navigator.credentials.get() and the session blob for FinishLogin.
func (w *WebAuthn) BeginLogin() (options json.RawMessage, sess []byte, err error) {
	assertion, sd, err := w.lib.BeginDiscoverableLogin(lib.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, nil, fmt.Errorf("beginning passkey sign-in: %w", err)
	}
	if options, err = marshalOptions(assertion); err != nil {
		return nil, nil, err
	}
	if sess, err = w.encodeSession(ceremonyLogin, sd, ""); err != nil {
		return nil, nil, err
	}
	return options, sess, nil
}

// LookupFunc finds the owner of a credential at sign-in, from the credential
// id and the user handle the authenticator returned (the user id). It
// returns that user and their credentials, read for update.
type LookupFunc func(credentialID, userHandle []byte) (User, []*store.Credential, error)

// FinishLogin verifies a sign-in response and returns who signed in, with
// which credential (updated in place: sign count, flags, LastUsedAt) and at
// which assurance level (3 with user verification, else 2). An error of
// lookup is returned wrapped as it is.
func (w *WebAuthn) FinishLogin(sess []byte, body []byte, lookup LookupFunc) (userID string, cred *store.Credential, level int, err error) {
	s, err := w.decodeSession(ceremonyLogin, sess)
	if err != nil {
		return "", nil, 0, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return "", nil, 0, invalid(err)
	}
	var (
		user      User
		creds     []*store.Credential
		lookupErr error
	)
	handler := func(rawID, userHandle []byte) (lib.User, error) {
		u, cs, err := lookup(rawID, userHandle)
		if err != nil {
			lookupErr = fmt.Errorf("looking up passkey %s: %w", CredentialID(rawID), err)
			return nil, lookupErr
		}
		if subtle.ConstantTimeCompare([]byte(u.ID), userHandle) != 1 {
			return nil, errors.New("user handle is not the owner's id")
		}
		lu, err := newLibUser(u, cs)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		user, creds = u, cs
		return lu, nil
	}
	_, lc, err := w.lib.ValidatePasskeyLogin(handler, s.Data, parsed)
	if lookupErr != nil {
		return "", nil, 0, lookupErr
	}
	if err != nil {
		return "", nil, 0, invalid(err)
	}
	r, err := checkAssertion(creds, lc, parsed)
	if err != nil {
		return "", nil, 0, err
	}
	if cred, err = w.apply(r); err != nil {
		return "", nil, 0, err
	}
	return user.ID, cred, aal(r.uv), nil
}

// approvalContext starts every approval challenge: it separates approval
// signatures from any other use of the key, and versions the format.
const approvalContext = "stepgate approval v1"

// ApprovalChallenge is the challenge of an approval ceremony:
// SHA-256("stepgate approval v1\n" + checkID + "\n" + planDigest + "\n" +
// nonce). The parts must be non-empty and free of newlines, so that no two
// triples give the same input.
func ApprovalChallenge(checkID, planDigest, nonce string) ([]byte, error) {
	for _, p := range []struct{ name, v string }{{"check id", checkID}, {"plan digest", planDigest}, {"nonce", nonce}} {
		if p.v == "" || strings.ContainsAny(p.v, "\r\n") {
			return nil, fmt.Errorf("webauthn: approval %s %q must be non-empty, on one line", p.name, p.v)
		}
	}
	sum := sha256.Sum256([]byte(approvalContext + "\n" + checkID + "\n" + planDigest + "\n" + nonce))
	return sum[:], nil
}

// BeginApproval starts the step-up that approves checkID with the plan
// whose digest planDigest was shown: an assertion by one of user's passkeys
// among creds, whose challenge is ApprovalChallenge(checkID, planDigest,
// nonce) with a new random nonce. It returns the options for
// navigator.credentials.get(), the session blob for FinishApproval, and the
// nonce, which the caller stores with the approval for VerifyStoredAssertion.
func (w *WebAuthn) BeginApproval(user User, creds []*store.Credential, checkID, planDigest string) (options json.RawMessage, sess []byte, nonce string, err error) {
	lu, err := newLibUser(user, creds)
	if err != nil {
		return nil, nil, "", err
	}
	if len(lu.creds) == 0 {
		return nil, nil, "", ErrNoCredentials
	}
	n := make([]byte, 32)
	if _, err := rand.Read(n); err != nil {
		return nil, nil, "", fmt.Errorf("generating approval nonce: %w", err)
	}
	nonce = base64.RawURLEncoding.EncodeToString(n)
	challenge, err := ApprovalChallenge(checkID, planDigest, nonce)
	if err != nil {
		return nil, nil, "", err
	}
	assertion, sd, err := w.lib.BeginLogin(lu,
		lib.WithChallenge(challenge),
		lib.WithUserVerification(protocol.VerificationPreferred),
	)
	if err != nil {
		return nil, nil, "", fmt.Errorf("beginning approval of check %s: %w", checkID, err)
	}
	if options, err = marshalOptions(assertion); err != nil {
		return nil, nil, "", err
	}
	if sess, err = w.encodeSession(ceremonyApproval, sd, nonce); err != nil {
		return nil, nil, "", err
	}
	return options, sess, nonce, nil
}

// Assertion is the evidence of an approval, stored with it: the raw bytes
// the authenticator signed and the signature, with what they prove.
type Assertion struct {
	CredentialID      []byte   `json:"credential_id"`
	AuthenticatorData []byte   `json:"authenticator_data"`
	ClientDataJSON    []byte   `json:"client_data_json"`
	Signature         []byte   `json:"signature"`
	UserVerified      bool     `json:"user_verified"`
	AAL               int      `json:"aal"`
	AMR               []string `json:"amr"`
}

// FinishApproval verifies the approval assertion in body against the
// challenge of checkID and planDigest (recomputed here: a session begun for
// another check or plan is refused with ErrChallenge), by one of user's
// passkeys among creds. With requireUV (aal 3), an assertion without user
// verification is refused (ErrUserVerification). A sign count that did not
// increase is refused (ErrCloned). On success the credential used is updated
// in place (sign count, flags, LastUsedAt) and returned with the Assertion to
// store.
func (w *WebAuthn) FinishApproval(user User, creds []*store.Credential, sess []byte, body []byte, checkID, planDigest string, requireUV bool) (*Assertion, *store.Credential, error) {
	s, err := w.decodeSession(ceremonyApproval, sess)
	if err != nil {
		return nil, nil, err
	}
	challenge, err := ApprovalChallenge(checkID, planDigest, s.Nonce)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrChallenge, err)
	}
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(challenge)), []byte(s.Data.Challenge)) != 1 {
		return nil, nil, ErrChallenge
	}
	lu, err := newLibUser(user, creds)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, nil, invalid(err)
	}
	lc, err := w.lib.ValidateLogin(lu, s.Data, parsed)
	if err != nil {
		return nil, nil, invalid(err)
	}
	r, err := checkAssertion(creds, lc, parsed)
	if err != nil {
		return nil, nil, err
	}
	if requireUV && !r.uv {
		return nil, nil, ErrUserVerification
	}
	cred, err := w.apply(r)
	if err != nil {
		return nil, nil, err
	}
	raw := parsed.Raw.AssertionResponse
	return &Assertion{
		CredentialID:      append([]byte(nil), parsed.RawID...),
		AuthenticatorData: append([]byte(nil), raw.AuthenticatorData...),
		ClientDataJSON:    append([]byte(nil), raw.ClientDataJSON...),
		Signature:         append([]byte(nil), raw.Signature...),
		UserVerified:      r.uv,
		AAL:               aal(r.uv),
		AMR:               amr(r.uv),
	}, cred, nil
}
