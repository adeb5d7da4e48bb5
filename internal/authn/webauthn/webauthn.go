package webauthn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	lib "github.com/go-webauthn/webauthn/webauthn"

	"github.com/stepgate/stepgate/internal/store"
)

// SessionTTL is how long a ceremony may take from Begin to Finish.
const SessionTTL = 5 * time.Minute

// Assurance levels of a passkey assertion (DESIGN.md "Assurance levels").
const (
	AALWithoutUV = 2
	AALWithUV    = 3
)

var (
	// ErrInvalid is returned (wrapping the library's error, whose text is
	// for logs, not for people) when a response does not verify: bad
	// signature, wrong origin, RP ID or challenge, unknown credential...
	ErrInvalid = errors.New("webauthn: invalid response")
	// ErrSession is returned for a session blob that is not one this package
	// made for this ceremony.
	ErrSession = errors.New("webauthn: invalid ceremony session")
	// ErrExpired is returned when Finish comes more than SessionTTL after Begin.
	ErrExpired = errors.New("webauthn: ceremony expired")
	// ErrChallenge is returned when an approval session was begun for another
	// check or plan digest than the one being approved.
	ErrChallenge = errors.New("webauthn: challenge does not cover this check and plan")
	// ErrUserVerification is returned when user verification was required and
	// the authenticator did not verify the user.
	ErrUserVerification = errors.New("webauthn: user verification required")
	// ErrCloned is returned when the sign count did not increase: the key may
	// have been copied. The caller audits it.
	ErrCloned = errors.New("webauthn: sign count did not increase (possible cloned authenticator)")
	// ErrNoCredentials is returned by BeginApproval for a user without a passkey.
	ErrNoCredentials = errors.New("webauthn: no passkey")
)

// User is the person of a ceremony. ID is stepgate's user id; it is also the
// WebAuthn user handle, so it must be 1 to 64 bytes.
type User struct {
	ID          string
	Name        string // what the person signs in with
	DisplayName string // shown by the authenticator; Name when empty
}

// WebAuthn runs the ceremonies of one relying party. It is safe for
// concurrent use.
type WebAuthn struct {
	lib    *lib.WebAuthn
	rpID   string
	origin string
	now    func() time.Time
}

// New returns a relying party rpID (the effective domain, "stepgate.example")
// accepting responses from rpOrigin only ("https://stepgate.example"), shown to
// people as rpName.
func New(rpID, rpOrigin, rpName string, now func() time.Time) (*WebAuthn, error) {
	u, err := url.Parse(rpOrigin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("webauthn: origin %q is not a scheme://host[:port] origin", rpOrigin)
	}
	// Browsers send the origin without a trailing slash.
	rpOrigin = u.Scheme + "://" + u.Host
	// The library would check expiry on the wall clock (time.Now); sessions
	// expire on ours instead (decodeSession), so its check stays off.
	timeout := lib.TimeoutConfig{Timeout: SessionTTL, TimeoutUVD: SessionTTL}
	l, err := lib.New(&lib.Config{
		RPID:                  rpID,
		RPDisplayName:         rpName,
		RPOrigins:             []string{rpOrigin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		Timeouts: lib.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("configuring webauthn relying party %q: %w", rpID, err)
	}
	return &WebAuthn{lib: l, rpID: rpID, origin: rpOrigin, now: now}, nil
}

// CredentialID is the store.Credential ID of a WebAuthn credential id:
// base64url without padding, as in the credential's JSON "id".
func CredentialID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// libUser is a User with its passkeys, as the library wants it.
type libUser struct {
	u     User
	creds []lib.Credential
}

func (l *libUser) WebAuthnID() []byte   { return []byte(l.u.ID) }
func (l *libUser) WebAuthnName() string { return l.u.Name }
func (l *libUser) WebAuthnDisplayName() string {
	if l.u.DisplayName == "" {
		return l.u.Name
	}
	return l.u.DisplayName
}
func (l *libUser) WebAuthnCredentials() []lib.Credential { return l.creds }

// newLibUser checks u and decodes its passkeys among creds (other kinds of
// factor are skipped; a passkey of someone else is an error).
func newLibUser(u User, creds []*store.Credential) (*libUser, error) {
	if u.ID == "" || len(u.ID) > 64 {
		return nil, fmt.Errorf("webauthn: user id %q must be 1 to 64 bytes", u.ID)
	}
	l := &libUser{u: u}
	for _, c := range creds {
		if c.Kind != store.KindWebAuthn {
			continue
		}
		if c.UserID != u.ID {
			return nil, fmt.Errorf("webauthn: credential %s belongs to user %s, not %s", c.ID, c.UserID, u.ID)
		}
		lc, err := decodeCredential(c)
		if err != nil {
			return nil, err
		}
		l.creds = append(l.creds, *lc)
	}
	return l, nil
}

// decodeCredential returns the library's credential stored in c.Data, with
// c's sign count (the column is the one that is kept current).
func decodeCredential(c *store.Credential) (*lib.Credential, error) {
	var lc lib.Credential
	if err := json.Unmarshal(c.Data, &lc); err != nil {
		return nil, fmt.Errorf("decoding webauthn credential %s: %w", c.ID, err)
	}
	if CredentialID(lc.ID) != c.ID || len(lc.PublicKey) == 0 {
		return nil, fmt.Errorf("webauthn: credential %s: data does not match its id or has no public key", c.ID)
	}
	lc.Authenticator.SignCount = c.SignCount
	lc.Authenticator.CloneWarning = false
	return &lc, nil
}

func descriptors(creds []lib.Credential) []protocol.CredentialDescriptor {
	d := make([]protocol.CredentialDescriptor, 0, len(creds))
	for i := range creds {
		d = append(d, creds[i].Descriptor())
	}
	return d
}

// Ceremonies, recorded in the session blob so that one cannot finish another.
const (
	ceremonyRegistration = "registration"
	ceremonyLogin        = "login"
	ceremonyApproval     = "approval"
)

// session is the blob kept by the caller between Begin and Finish.
type session struct {
	V        int             `json:"v"`
	Ceremony string          `json:"ceremony"`
	Expires  time.Time       `json:"expires"`
	Nonce    string          `json:"nonce,omitempty"` // approval only
	Data     lib.SessionData `json:"data"`
}

func (w *WebAuthn) encodeSession(ceremony string, d *lib.SessionData, nonce string) ([]byte, error) {
	b, err := json.Marshal(session{V: 1, Ceremony: ceremony, Expires: w.now().Add(SessionTTL), Nonce: nonce, Data: *d})
	if err != nil {
		return nil, fmt.Errorf("encoding webauthn %s session: %w", ceremony, err)
	}
	return b, nil
}

func (w *WebAuthn) decodeSession(ceremony string, b []byte) (*session, error) {
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSession, err)
	}
	if s.V != 1 || s.Ceremony != ceremony || s.Data.Challenge == "" {
		return nil, fmt.Errorf("%w: it is not for %s", ErrSession, ceremony)
	}
	if !w.now().Before(s.Expires) {
		return nil, ErrExpired
	}
	return &s, nil
}

func marshalOptions(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding webauthn options: %w", err)
	}
	return b, nil
}

func invalid(err error) error { return fmt.Errorf("%w: %w", ErrInvalid, err) }

// assertionResult is what FinishLogin and FinishApproval learn from a
// verified assertion.
type assertionResult struct {
	cred *store.Credential // the caller's record, not yet updated
	lib  *lib.Credential   // the library's updated record
	uv   bool
}

// checkAssertion finds the record of the verified credential lc among creds
// and refuses a sign count that did not increase.
func checkAssertion(creds []*store.Credential, lc *lib.Credential, parsed *protocol.ParsedCredentialAssertionData) (*assertionResult, error) {
	var sc *store.Credential
	for _, c := range creds {
		if c.Kind == store.KindWebAuthn && c.ID == CredentialID(lc.ID) {
			sc = c
			break
		}
	}
	if sc == nil || !bytes.Equal(lc.ID, parsed.RawID) {
		return nil, invalid(errors.New("credential not found"))
	}
	// The library flags a count that is not greater than the stored one,
	// unless both are 0 (authenticators without a counter).
	if lc.Authenticator.CloneWarning {
		return nil, fmt.Errorf("%w: credential %s: stored %d, presented %d",
			ErrCloned, sc.ID, sc.SignCount, parsed.Response.AuthenticatorData.Counter)
	}
	return &assertionResult{cred: sc, lib: lc, uv: parsed.Response.AuthenticatorData.Flags.HasUserVerified()}, nil
}

// apply records a successful assertion on the caller's credential.
func (w *WebAuthn) apply(r *assertionResult) (*store.Credential, error) {
	data, err := json.Marshal(r.lib)
	if err != nil {
		return nil, fmt.Errorf("encoding webauthn credential %s: %w", r.cred.ID, err)
	}
	r.cred.Data = data
	r.cred.SignCount = r.lib.Authenticator.SignCount
	r.cred.LastUsedAt = w.now()
	return r.cred, nil
}

func aal(uv bool) int {
	if uv {
		return AALWithUV
	}
	return AALWithoutUV
}

// AMR names the methods of an assertion that reached level (AALWithUV
// or AALWithoutUV), as amr does: what a session started by it records.
func AMR(level int) []string { return amr(level >= AALWithUV) }

// amr names the methods of an assertion (RFC 8176): a hardware-bound key
// ("hwk") that the person was present for ("user", which every assertion
// tests); with user verification (a PIN or biometric on the authenticator)
// it is also multi-factor ("mfa").
func amr(uv bool) []string {
	if uv {
		return []string{"hwk", "user", "mfa"}
	}
	return []string{"hwk", "user"}
}
