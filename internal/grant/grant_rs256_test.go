package grant

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

type rsaTestKey struct {
	kid  string
	priv *rsa.PrivateKey
}

var (
	rsaKeysOnce sync.Once
	rsaKeys     [2]*rsa.PrivateKey
	rsaKeysErr  error
)

// newRSATestKey returns one of two RSA 2048 keys (generated once per run),
// its kid the RFC 7638 thumbprint.
func newRSATestKey(t *testing.T, i int) rsaTestKey {
	t.Helper()
	rsaKeysOnce.Do(func() {
		for j := range rsaKeys {
			if rsaKeys[j], rsaKeysErr = rsa.GenerateKey(rand.Reader, 2048); rsaKeysErr != nil {
				return
			}
		}
	})
	if rsaKeysErr != nil {
		t.Fatal(rsaKeysErr)
	}
	priv := rsaKeys[i]
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return rsaTestKey{kid: base64.RawURLEncoding.EncodeToString(tp), priv: priv}
}

func (k rsaTestKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"}
}

func rsSign(priv *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		s, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, h[:])
		if err != nil {
			panic(err)
		}
		return s
	}
}

func TestSignRS256(t *testing.T) {
	r := newRSATestKey(t, 0)
	tok, err := Sign(r.kid, r.priv, fullClaims())
	if err != nil {
		t.Fatalf("Sign() = %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var hdr map[string]any
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatal(err)
	}
	if len(hdr) != 3 || hdr["alg"] != "RS256" || hdr["kid"] != r.kid || hdr["typ"] != "JWT" {
		t.Errorf("header = %v, want exactly alg RS256, kid, typ JWT", hdr)
	}
	got, err := Verify(context.Background(), tok, StaticKeys{r.jwk()}, wantExpect())
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if got.Workspace != "billing-prod" || got.AAL != 2 || got.PlanSHA256 != strings.Repeat("a", 64) {
		t.Errorf("Verify() claims = %+v", got)
	}
	if alg, err := Algorithm(r.priv); err != nil || alg != "RS256" {
		t.Errorf("Algorithm(RSA) = %q, %v", alg, err)
	}
	if alg, err := Algorithm(newTestKey(t, 1).priv); err != nil || alg != "EdDSA" {
		t.Errorf("Algorithm(Ed25519) = %q, %v", alg, err)
	}
}

func TestSignRefusesKeys(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]crypto.Signer{
		"rsa-1024":   small,
		"ecdsa-p256": ec,
		"nil-rsa":    (*rsa.PrivateKey)(nil),
		"nil":        nil,
	} {
		if tok, err := Sign("kid", key, fullClaims()); err == nil {
			t.Errorf("Sign(%s) = %s, want an error", name, tok)
		}
	}
}

func TestVerifyRS256(t *testing.T) {
	r := newRSATestKey(t, 0)
	r2 := newRSATestKey(t, 1)
	ed := newTestKey(t, 1)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallKey := rsaTestKey{priv: small, kid: "small"}
	mixed := StaticKeys{ed.jwk(), r.jwk()} // an Ed25519 key and an RSA key, as during a rotation
	hdr := map[string]any{"alg": "RS256", "kid": r.kid, "typ": "JWT"}
	with := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "RS256", "kid": r.kid, "typ": "JWT"}
		for n, v := range extra {
			h[n] = v
		}
		return h
	}
	valid := func() string {
		tok, err := Sign(r.kid, r.priv, fullClaims())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	parts := strings.Split(valid, ".")
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: &r.priv.PublicKey})
	nBytes := r.priv.PublicKey.N.Bytes()

	tests := []struct {
		name    string
		token   string
		keys    KeySource
		wantErr error
	}{
		{"ok/rs256", valid, mixed, nil},
		{"ok/rs256-jwk-without-alg", valid, StaticKeys{{Key: &r.priv.PublicKey, KeyID: r.kid}}, nil},
		{"ok/eddsa-in-mixed-set", mustSign(t, ed, fullClaims()), mixed, nil},
		{"ok/rs256-by-hand", rawToken(t, hdr, fullClaims(), rsSign(r.priv)), mixed, nil},

		// Key type and alg must agree.
		{"fail/rs256-ed25519-key-under-kid", rawToken(t, hdr, fullClaims(), rsSign(r.priv)), StaticKeys{{Key: ed.pub, KeyID: r.kid, Algorithm: "RS256"}}, ErrUnknownKey},
		{"fail/eddsa-header-rsa-key-under-kid", rawToken(t, with(map[string]any{"alg": "EdDSA"}), fullClaims(), rsSign(r.priv)), mixed, ErrUnknownKey},
		{"fail/rsa-key-labelled-EdDSA", valid, StaticKeys{{Key: &r.priv.PublicKey, KeyID: r.kid, Algorithm: "EdDSA"}}, ErrUnknownKey},
		{"fail/rsa-key-labelled-PS256", valid, StaticKeys{{Key: &r.priv.PublicKey, KeyID: r.kid, Algorithm: "PS256"}}, ErrUnknownKey},
		{"fail/rsa-key-for-encryption", valid, StaticKeys{{Key: &r.priv.PublicKey, KeyID: r.kid, Use: "enc"}}, ErrUnknownKey},
		{"fail/rsa-1024", rawToken(t, map[string]any{"alg": "RS256", "kid": "small", "typ": "JWT"}, fullClaims(), rsSign(small)), StaticKeys{{Key: &small.PublicKey, KeyID: smallKey.kid, Algorithm: "RS256"}}, ErrUnknownKey},

		// Other algorithms of the RSA family, and confusions with the RSA key.
		{"fail/alg-PS256", rawToken(t, with(map[string]any{"alg": "PS256"}), fullClaims(), func(in []byte) []byte {
			h := sha256.Sum256(in)
			s, _ := rsa.SignPSS(rand.Reader, r.priv, crypto.SHA256, h[:], nil)
			return s
		}), mixed, ErrAlgorithm},
		{"fail/alg-RS512", rawToken(t, with(map[string]any{"alg": "RS512"}), fullClaims(), func(in []byte) []byte {
			h := sha512.Sum512(in)
			s, _ := rsa.SignPKCS1v15(rand.Reader, r.priv, crypto.SHA512, h[:])
			return s
		}), mixed, ErrAlgorithm},
		{"fail/alg-rs256-lowercase", rawToken(t, with(map[string]any{"alg": "rs256"}), fullClaims(), rsSign(r.priv)), mixed, ErrAlgorithm},
		{"fail/alg-ES256", rawToken(t, with(map[string]any{"alg": "ES256"}), fullClaims(), rsSign(r.priv)), mixed, ErrAlgorithm},
		{"fail/alg-none", rawToken(t, with(map[string]any{"alg": "none"}), fullClaims(), func([]byte) []byte { return nil }), mixed, ErrAlgorithm},
		{"fail/alg-HS256-rsa-jwk-as-secret", rawToken(t, with(map[string]any{"alg": "HS256"}), fullClaims(), func(in []byte) []byte {
			m := hmac.New(sha256.New, pubJWK)
			m.Write(in)
			return m.Sum(nil)
		}), mixed, ErrAlgorithm},
		{"fail/alg-HS256-rsa-modulus-as-secret", rawToken(t, with(map[string]any{"alg": "HS256"}), fullClaims(), func(in []byte) []byte {
			m := hmac.New(sha256.New, nBytes)
			m.Write(in)
			return m.Sum(nil)
		}), mixed, ErrAlgorithm},

		// Keys the token brings itself.
		{"fail/jwk-header-attacker-rsa-key", rawToken(t, with(map[string]any{"kid": r2.kid, "jwk": r2.jwk()}), fullClaims(), rsSign(r2.priv)), mixed, ErrMalformed},
		{"fail/jwk-header-via-go-jose", func() string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: r2.priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := s.Sign([]byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := jws.CompactSerialize()
			return tok
		}(), mixed, ErrMalformed},
		{"fail/x5c-header", rawToken(t, with(map[string]any{"x5c": []string{"MIIB"}}), fullClaims(), rsSign(r.priv)), mixed, ErrMalformed},

		// Signatures.
		{"fail/other-rsa-key-under-kid", rawToken(t, hdr, fullClaims(), rsSign(r2.priv)), mixed, ErrSignature},
		{"fail/signature-of-other-claims", parts[0] + "." + b64([]byte(`{"iss":"x"}`)) + "." + parts[2], mixed, ErrSignature},
		{"fail/truncated-signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4], mixed, ErrSignature},
		{"fail/empty-signature", parts[0] + "." + parts[1] + ".", mixed, ErrSignature},
		{"fail/unknown-kid", rawToken(t, with(map[string]any{"kid": r2.kid}), fullClaims(), rsSign(r2.priv)), mixed, ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(context.Background(), tt.token, tt.keys, wantExpect())
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify() = %v", err)
				}
				if got == nil || got.ID != "grt_01JD5" {
					t.Errorf("Verify() claims = %+v", got)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify() = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Error("Verify() returned claims with an error")
			}
		})
	}
}
