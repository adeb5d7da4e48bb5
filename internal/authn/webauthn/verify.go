package webauthn

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/stepgate/stepgate/internal/store"
)

// clientData is the part of clientDataJSON that VerifyStoredAssertion reads.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
	TopOrigin   string `json:"topOrigin"`
}

// VerifyStoredAssertion checks approval evidence again, long after the
// ceremony (stepgate audit verify): that a was made by cred, for this relying
// party and origin, over the challenge of checkID, planDigest and nonce, with
// a valid signature over authenticatorData || SHA-256(clientDataJSON) by the
// credential's public key; and that what a claims (user verification, AAL,
// AMR) is what the signed flags say. Sign counts are not checked: they only
// matter at the time of the ceremony. Every failure wraps ErrInvalid.
func (w *WebAuthn) VerifyStoredAssertion(cred *store.Credential, a *Assertion, checkID, planDigest, nonce string) error {
	if err := w.verifyStored(cred, a, checkID, planDigest, nonce); err != nil {
		return fmt.Errorf("%w: stored assertion: %w", ErrInvalid, err)
	}
	return nil
}

func (w *WebAuthn) verifyStored(cred *store.Credential, a *Assertion, checkID, planDigest, nonce string) error {
	if cred == nil || a == nil {
		return errors.New("missing credential or assertion")
	}
	if cred.Kind != store.KindWebAuthn {
		return fmt.Errorf("credential %s is a %s factor", cred.ID, cred.Kind)
	}
	lc, err := decodeCredential(cred)
	if err != nil {
		return err
	}
	if !bytes.Equal(a.CredentialID, lc.ID) {
		return fmt.Errorf("made by credential %s, not %s", CredentialID(a.CredentialID), cred.ID)
	}

	challenge, err := ApprovalChallenge(checkID, planDigest, nonce)
	if err != nil {
		return err
	}
	var cd clientData
	if err := json.Unmarshal(a.ClientDataJSON, &cd); err != nil {
		return fmt.Errorf("decoding client data: %w", err)
	}
	if cd.Type != string(protocol.AssertCeremony) {
		return fmt.Errorf("client data type %q, want %q", cd.Type, protocol.AssertCeremony)
	}
	got, err := base64.RawURLEncoding.DecodeString(cd.Challenge)
	if err != nil || !bytes.Equal(got, challenge) {
		return errors.New("challenge is not that of this check, plan digest and nonce")
	}
	if !strings.EqualFold(cd.Origin, w.origin) || cd.CrossOrigin || cd.TopOrigin != "" {
		return fmt.Errorf("client data origin %q (cross-origin %t), want %q", cd.Origin, cd.CrossOrigin, w.origin)
	}

	var ad protocol.AuthenticatorData
	if err := ad.Unmarshal(a.AuthenticatorData); err != nil {
		return fmt.Errorf("decoding authenticator data: %w", err)
	}
	rpIDHash := sha256.Sum256([]byte(w.rpID))
	if !bytes.Equal(ad.RPIDHash, rpIDHash[:]) {
		return errors.New("authenticator data is for another relying party")
	}
	if !ad.Flags.HasUserPresent() {
		return errors.New("user was not present")
	}
	uv := ad.Flags.HasUserVerified()
	if a.UserVerified != uv || a.AAL != aal(uv) || !slices.Equal(a.AMR, amr(uv)) {
		return fmt.Errorf("claims user verified %t, aal %d, amr %v; the signed flags say user verified %t", a.UserVerified, a.AAL, a.AMR, uv)
	}

	key, err := webauthncose.ParsePublicKey(lc.PublicKey)
	if err != nil {
		return fmt.Errorf("parsing public key of %s: %w", cred.ID, err)
	}
	clientDataHash := sha256.Sum256(a.ClientDataJSON)
	signed := slices.Concat(a.AuthenticatorData, clientDataHash[:])
	ok, err := webauthncose.VerifySignature(key, signed, a.Signature)
	if err != nil {
		return fmt.Errorf("verifying signature with the key of %s: %w", cred.ID, err)
	}
	if !ok {
		return fmt.Errorf("signature does not verify with the key of %s", cred.ID)
	}
	return nil
}
