// Package webauthntest is a software passkey for tests that drive the
// WebAuthn ceremonies of the web side through HTTP: it answers the options
// of a begin request with what a browser and an authenticator would send
// to the finish request.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator is a software passkey following WebAuthn Level 3: an
// ES256 (P-256) key, attestation "none", client data and authenticator
// data built by hand.
type Authenticator struct {
	RPID   string
	Origin string // the origin the "browser" puts in client data
	// Step is the sign count increment per assertion; 0 for a
	// counter-less (synced) passkey, whose count stays 0.
	Step uint32
	// UV: the authenticator verifies the user (PIN, biometrics).
	UV bool
	// Backup: backup eligible and backed up (a synced passkey).
	Backup bool

	key    *ecdsa.PrivateKey
	credID []byte
	handle []byte // user handle, learnt at registration
	count  uint32
}

// New returns a passkey for rpID used from origin, verifying the user and
// counting signatures.
func New(t testing.TB, rpID, origin string) *Authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("ecdsa.GenerateKey() = %v", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return &Authenticator{RPID: rpID, Origin: origin, Step: 1, UV: true, key: key, credID: id}
}

// CredentialID is the credential id, base64url as the store keys it.
func (a *Authenticator) CredentialID() string { return b64(a.credID) }

const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

func parseOptions(t testing.TB, raw []byte) options {
	t.Helper()
	var o options
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("decoding options %s: %v", raw, err)
	}
	if o.PublicKey.Challenge == "" {
		t.Fatalf("options %s have no challenge", raw)
	}
	return o
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, challenge, a.Origin, false})
	return b
}

// authData is rpIdHash || flags || signCount || attestedCredentialData.
func (a *Authenticator) authData(flags byte, attested []byte) []byte {
	flags |= flagUP
	if a.UV {
		flags |= flagUV
	}
	if a.Backup {
		flags |= flagBE | flagBS
	}
	h := sha256.Sum256([]byte(a.RPID))
	b := append(h[:], flags)
	b = binary.BigEndian.AppendUint32(b, a.count)
	return append(b, attested...)
}

func (a *Authenticator) coseKey(t testing.TB) []byte {
	t.Helper()
	pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatalf("PublicKey.Bytes() = %v", err)
	}
	b, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:]})
	if err != nil {
		t.Fatalf("encoding COSE key: %v", err)
	}
	return b
}

// Create answers navigator.credentials.create(options): the credential a
// registration's finish carries.
func (a *Authenticator) Create(t testing.TB, rawOptions []byte) json.RawMessage {
	t.Helper()
	o := parseOptions(t, rawOptions)
	handle, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("decoding user.id %q: %v", o.PublicKey.User.ID, err)
	}
	a.handle = handle
	cd := a.clientData("webauthn.create", o.PublicKey.Challenge)
	attested := []byte("stepgate-test-ag") // the AAGUID, 16 bytes
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(a.credID)))
	attested = append(attested, a.credID...)
	attested = append(attested, a.coseKey(t)...)
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(flagAT, attested)})
	if err != nil {
		t.Fatalf("encoding attestation object: %v", err)
	}
	return mustJSON(t, map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64(cd), "attestationObject": b64(obj), "transports": []string{"internal", "hybrid"},
		},
	})
}

// Get answers navigator.credentials.get(options): the assertion a
// sign-in's or an approval's finish carries.
func (a *Authenticator) Get(t testing.TB, rawOptions []byte) json.RawMessage {
	t.Helper()
	challenge := parseOptions(t, rawOptions).PublicKey.Challenge
	a.count += a.Step
	cd := a.clientData("webauthn.get", challenge)
	ad := a.authData(0, nil)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatalf("ecdsa.SignASN1() = %v", err)
	}
	return mustJSON(t, map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON": b64(cd), "authenticatorData": b64(ad), "signature": b64(sig), "userHandle": b64(a.handle),
		},
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal() = %v", err)
	}
	return b
}
