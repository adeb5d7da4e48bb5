package webauthn

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

// authenticator is a software passkey following WebAuthn Level 3: an ES256
// (P-256) key, attestation "none", client data and authenticator data built
// by hand, as a browser and an authenticator would.
type authenticator struct {
	rpID   string
	origin string // the origin the "browser" puts in client data
	key    *ecdsa.PrivateKey
	credID []byte
	aaguid []byte
	handle []byte // user handle, learnt at registration
	count  uint32 // last sign count
	step   uint32 // sign count increment per assertion; 0 for counter-less
	uv     bool   // verifies the user
	backup bool   // backup eligible and backed up (a synced passkey)
}

func newAuthenticator(t *testing.T) *authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("ecdsa.GenerateKey() = %v", err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &authenticator{
		rpID:   testRPID,
		origin: testOrigin,
		key:    key,
		credID: id,
		aaguid: []byte("stepgate-test-ag"), // 16 bytes
		step:   1,
		uv:     true,
	}
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// options is the part of navigator.credentials options the authenticator reads.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

func parseOptions(t *testing.T, raw json.RawMessage) options {
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

func (a *authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(struct {
		Type        string `json:"type"`
		Challenge   string `json:"challenge"`
		Origin      string `json:"origin"`
		CrossOrigin bool   `json:"crossOrigin"`
	}{typ, challenge, a.origin, false})
	return b
}

// authData is rpIdHash || flags || signCount || attestedCredentialData.
func (a *authenticator) authData(flags byte, attested []byte) []byte {
	flags |= flagUP
	if a.uv {
		flags |= flagUV
	}
	if a.backup {
		flags |= flagBE | flagBS
	}
	h := sha256.Sum256([]byte(a.rpID))
	b := append(h[:], flags)
	b = binary.BigEndian.AppendUint32(b, a.count)
	return append(b, attested...)
}

// coseKey is the credential public key as a COSE_Key (EC2, ES256, P-256).
func (a *authenticator) coseKey(t *testing.T) []byte {
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

// create answers navigator.credentials.create(options).
func (a *authenticator) create(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	o := parseOptions(t, raw)
	handle, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("decoding user.id %q: %v", o.PublicKey.User.ID, err)
	}
	a.handle = handle
	cd := a.clientData("webauthn.create", o.PublicKey.Challenge)
	attested := append([]byte(nil), a.aaguid...)
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(a.credID)))
	attested = append(attested, a.credID...)
	attested = append(attested, a.coseKey(t)...)
	obj, err := webauthncbor.Marshal(map[string]any{
		"fmt":      "none",
		"attStmt":  map[string]any{},
		"authData": a.authData(flagAT, attested),
	})
	if err != nil {
		t.Fatalf("encoding attestation object: %v", err)
	}
	return mustJSON(t, map[string]any{
		"id":                      b64(a.credID),
		"rawId":                   b64(a.credID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(cd),
			"attestationObject": b64(obj),
			"transports":        []string{"internal", "hybrid"},
		},
	})
}

// get answers navigator.credentials.get(options).
func (a *authenticator) get(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	return a.sign(t, parseOptions(t, raw).PublicKey.Challenge)
}

// sign makes an assertion over challenge (base64url, as in the options).
func (a *authenticator) sign(t *testing.T, challenge string) []byte {
	t.Helper()
	a.count += a.step
	cd := a.clientData("webauthn.get", challenge)
	ad := a.authData(0, nil)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatalf("ecdsa.SignASN1() = %v", err)
	}
	return mustJSON(t, map[string]any{
		"id":                      b64(a.credID),
		"rawId":                   b64(a.credID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64(cd),
			"authenticatorData": b64(ad),
			"signature":         b64(sig),
			"userHandle":        b64(a.handle),
		},
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal() = %v", err)
	}
	return b
}
