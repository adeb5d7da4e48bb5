package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

func TestKeyThumbprintRFC7638(t *testing.T) {
	// RFC 7638 section 3.1.
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := KeyThumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatalf("KeyThumbprint() = %v", err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("KeyThumbprint() = %s, want %s", got, want)
	}
	for _, bad := range []crypto.PublicKey{nil, &rsa.PublicKey{}, []byte("x")} {
		if _, err := KeyThumbprint(bad); err == nil {
			t.Errorf("KeyThumbprint(%T) = nil error", bad)
		}
	}
}

func TestCheckAlgorithm(t *testing.T) {
	for _, ok := range []string{"EdDSA", "RS256"} {
		if err := CheckAlgorithm(ok); err != nil {
			t.Errorf("CheckAlgorithm(%s) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "rs256", "ES256", "PS256", "HS256", "none"} {
		if err := CheckAlgorithm(bad); err == nil {
			t.Errorf("CheckAlgorithm(%q) = nil", bad)
		}
	}
	if got := NewRing(testMaster(t, 1), nil, WithAlgorithm("")).Algorithm(); got != AlgEdDSA {
		t.Errorf("WithAlgorithm(\"\") = %s, want EdDSA", got)
	}
	ks := &memKeys{}
	if _, err := NewRing(testMaster(t, 1), nil, WithAlgorithm("ES256")).Ensure(context.Background(), ks); err == nil {
		t.Error("Ensure() with ES256 = nil error")
	}
	if len(ks.keys) != 0 {
		t.Error("Ensure() with ES256 stored a key")
	}
}

func TestRingRS256(t *testing.T) {
	ctx := context.Background()
	m := testMaster(t, 1)
	r := NewRing(m, func() time.Time { return t0 }, WithAlgorithm(AlgRS256))
	ks := &memKeys{}
	if created, err := r.Ensure(ctx, ks); err != nil || !created {
		t.Fatalf("Ensure() = %v, %v", created, err)
	}
	key, err := r.SigningKey(ctx, ks)
	if err != nil {
		t.Fatalf("SigningKey() = %v", err)
	}
	priv, ok := key.Signer.(*rsa.PrivateKey)
	if !ok || key.Algorithm != AlgRS256 {
		t.Fatalf("SigningKey() = %s %T, want RS256 *rsa.PrivateKey", key.Algorithm, key.Signer)
	}
	if bits := priv.N.BitLen(); bits != 3072 {
		t.Errorf("RSA key of %d bits, want 3072", bits)
	}
	kid, signer, err := r.Signer(ctx, ks)
	if err != nil || kid != key.ID || !priv.Equal(signer) {
		t.Errorf("Signer() = %s, %v; want the key of SigningKey()", kid, err)
	}

	k := ks.get(t, key.ID)
	if k.Algorithm != AlgRS256 {
		t.Errorf("stored Algorithm = %s", k.Algorithm)
	}
	if tp, err := KeyThumbprint(&priv.PublicKey); err != nil || tp != k.ID {
		t.Errorf("kid %s is not the thumbprint %s (%v)", k.ID, tp, err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if !bytes.Equal(pkix, k.PublicKey) {
		t.Error("stored PublicKey is not the PKIX DER of the key")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	for _, secret := range [][]byte{der, priv.D.Bytes(), priv.Primes[0].Bytes(), priv.Primes[1].Bytes()} {
		if bytes.Contains(k.SealedKey, secret) {
			t.Fatal("stored SealedKey contains raw private key material")
		}
	}

	// The key signs what its public key verifies.
	h := sha256.Sum256([]byte("a grant"))
	sig, err := key.Signer.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, h[:], sig); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}

	set, err := r.JWKS(ctx, ks)
	if err != nil {
		t.Fatalf("JWKS() = %v", err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS() has %d keys", len(set.Keys))
	}
	jwk := set.Keys[0]
	if jwk.KeyID != k.ID || jwk.Algorithm != "RS256" || jwk.Use != "sig" || !jwk.IsPublic() {
		t.Errorf("JWKS key = kid %s alg %s use %s public %v", jwk.KeyID, jwk.Algorithm, jwk.Use, jwk.IsPublic())
	}
	if pub, ok := jwk.Key.(*rsa.PublicKey); !ok || !pub.Equal(&priv.PublicKey) {
		t.Errorf("JWKS key = %T, want the RSA public key", jwk.Key)
	}
	b, err := jwk.MarshalJSON()
	if err != nil || !strings.Contains(string(b), `"kty":"RSA"`) || strings.Contains(string(b), `"d"`) {
		t.Errorf("JWKS key JSON = %s, %v", b, err)
	}
}

// TestRotateBetweenAlgorithms rotates EdDSA → RS256 → EdDSA: each key
// signs in turn, and the JWKS publishes every key still needed, each with
// its own alg.
func TestRotateBetweenAlgorithms(t *testing.T) {
	ctx := context.Background()
	m := testMaster(t, 1)
	clock := &fakeClock{t: t0}
	ks := &memKeys{}
	ed := NewRing(m, clock.Now)
	rs := NewRing(m, clock.Now, WithAlgorithm(AlgRS256))
	if _, err := ed.Ensure(ctx, ks); err != nil {
		t.Fatal(err)
	}
	// Ensure keeps a current key of another algorithm: switching is Rotate's.
	if created, err := rs.Ensure(ctx, ks); err != nil || created {
		t.Fatalf("Ensure() with an EdDSA key current = %v, %v; want nothing created", created, err)
	}
	k1, err := ed.SigningKey(ctx, ks)
	if err != nil || k1.Algorithm != AlgEdDSA {
		t.Fatalf("SigningKey() = %v, %v", k1, err)
	}
	if _, ok := k1.Signer.(ed25519.PrivateKey); !ok {
		t.Fatalf("EdDSA signer is %T", k1.Signer)
	}

	clock.Advance(time.Hour)
	k2, err := rs.Rotate(ctx, ks, 15*time.Minute)
	if err != nil {
		t.Fatalf("Rotate(RS256) = %v", err)
	}
	if k2.Algorithm != AlgRS256 || k2.SealedKey != nil {
		t.Errorf("Rotate() = %s, sealed %v", k2.Algorithm, k2.SealedKey != nil)
	}
	// Whatever ring reads the store signs with the current key.
	for _, r := range []*Ring{ed, rs} {
		cur, err := r.SigningKey(ctx, ks)
		if err != nil || cur.ID != k2.ID || cur.Algorithm != AlgRS256 {
			t.Fatalf("SigningKey() after rotation = %+v, %v; want %s", cur, err, k2.ID)
		}
	}
	wantJWKS := func(want ...string) {
		t.Helper()
		set, err := ed.JWKS(ctx, ks)
		if err != nil {
			t.Fatalf("JWKS() = %v", err)
		}
		var got []string
		for _, k := range set.Keys {
			got = append(got, k.KeyID+":"+k.Algorithm)
			switch k.Algorithm {
			case "EdDSA":
				if _, ok := k.Key.(ed25519.PublicKey); !ok {
					t.Errorf("EdDSA key %s is %T", k.KeyID, k.Key)
				}
			case "RS256":
				if _, ok := k.Key.(*rsa.PublicKey); !ok {
					t.Errorf("RS256 key %s is %T", k.KeyID, k.Key)
				}
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("JWKS() = %v, want %v", got, want)
		}
	}
	wantJWKS(k2.ID+":RS256", k1.ID+":EdDSA")

	clock.Advance(10 * time.Minute)
	k3, err := ed.Rotate(ctx, ks, 15*time.Minute)
	if err != nil || k3.Algorithm != AlgEdDSA {
		t.Fatalf("Rotate(EdDSA) = %v, %v", k3, err)
	}
	wantJWKS(k3.ID+":EdDSA", k2.ID+":RS256", k1.ID+":EdDSA")
	clock.Advance(15 * time.Minute) // k1's grants are gone
	wantJWKS(k3.ID+":EdDSA", k2.ID+":RS256")
	clock.Advance(20 * time.Minute)
	wantJWKS(k3.ID + ":EdDSA")
}

// TestRS256RecordTampering: a record whose parts do not belong together
// does not sign and is not published.
func TestRS256RecordTampering(t *testing.T) {
	ctx := context.Background()
	m := testMaster(t, 1)
	r := NewRing(m, func() time.Time { return t0 }, WithAlgorithm(AlgRS256))
	good := &memKeys{}
	if _, err := r.Ensure(ctx, good); err != nil {
		t.Fatal(err)
	}
	other := &memKeys{}
	if _, err := r.Ensure(ctx, other); err != nil {
		t.Fatal(err)
	}
	gk := good.keys[0]
	ok := other.keys[0]
	edPub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	tests := []struct {
		name     string
		mutate   func(k *store.SigningKey)
		jwksFail bool
	}{
		{"other-public-key", func(k *store.SigningKey) { k.PublicKey = ok.PublicKey }, false},
		{"other-sealed-key", func(k *store.SigningKey) { k.SealedKey = ok.SealedKey }, false},
		{"other-kid", func(k *store.SigningKey) { k.ID = ok.ID }, false},
		{"sealed-key-flipped", func(k *store.SigningKey) { k.SealedKey = bytes.Clone(k.SealedKey); k.SealedKey[20] ^= 1 }, false},
		{"public-key-garbage", func(k *store.SigningKey) { k.PublicKey = []byte("garbage") }, true},
		{"ed25519-public-key-labelled-RS256", func(k *store.SigningKey) { k.PublicKey = edPub }, true},
		{"labelled-EdDSA", func(k *store.SigningKey) { k.Algorithm = AlgEdDSA }, true},
		{"unknown-algorithm", func(k *store.SigningKey) { k.Algorithm = "PS256" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := cloneKey(gk)
			tt.mutate(k)
			ks := &memKeys{keys: []*store.SigningKey{k}}
			if kid, key, err := r.Signer(ctx, ks); err == nil || key != nil {
				t.Errorf("Signer() = %s, %T, %v; want an error and no key", kid, key, err)
			}
			if _, err := r.JWKS(ctx, ks); (err != nil) != tt.jwksFail {
				t.Errorf("JWKS() = %v, want error %v", err, tt.jwksFail)
			}
		})
	}
	// A well-formed record of a small RSA key is neither opened nor
	// published.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := KeyThumbprint(&small.PublicKey)
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	pub, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	sealed, err := m.Seal(der, []byte(kid))
	if err != nil {
		t.Fatal(err)
	}
	ks := &memKeys{keys: []*store.SigningKey{{ID: kid, Algorithm: AlgRS256, PublicKey: pub, SealedKey: sealed, CreatedAt: t0}}}
	if _, _, err := r.Signer(ctx, ks); err == nil {
		t.Error("Signer() with an RSA 1024 key = nil error")
	}
	if _, err := r.JWKS(ctx, ks); err == nil {
		t.Error("JWKS() with an RSA 1024 key = nil error")
	}
}
