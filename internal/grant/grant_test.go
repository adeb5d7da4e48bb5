package grant

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

const (
	testIssuer   = "https://stepgate.example.com"
	testAudience = "stepgate"
)

type testKey struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// newTestKey derives a key from a one-byte seed, so tests are repeatable;
// its kid is its RFC 7638 thumbprint, as the ring makes them.
func newTestKey(t *testing.T, seed byte) testKey {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: base64.RawURLEncoding.EncodeToString(tp), priv: priv, pub: pub}
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: "EdDSA", Use: "sig"}
}

func fullClaims() *Claims {
	return &Claims{
		Issuer:         testIssuer,
		Subject:        "chk_01JD4",
		Audience:       jwt.Audience{testAudience},
		IssuedAt:       jwt.NewNumericDate(t0),
		NotBefore:      jwt.NewNumericDate(t0),
		Expiry:         jwt.NewNumericDate(t0.Add(15 * time.Minute)),
		ID:             "grt_01JD5",
		PlanSHA256:     strings.Repeat("a", 64),
		PlanFileSHA256: strings.Repeat("b", 64),
		Workspace:      "billing-prod",
		Environment:    "production",
		Kind:           "terraform.apply",
		Pipeline:       map[string]string{"repository": "acme/infra", "run_id": "42"},
		Requester:      "ci-billing",
		Approvals: []Approval{
			{Subject: "alice", AAL: 3, AMR: []string{"hwk", "user"}, Time: t0.Add(-time.Minute).Unix()},
			{Subject: "bob", AAL: 2, AMR: []string{"otp"}, Time: t0.Add(-2 * time.Minute).Unix()},
		},
		Decision: "step_up",
		Rules:    []string{"prod.iam"},
		AAL:      2,
		AMR:      []string{"hwk", "otp", "user"},
	}
}

func wantExpect() Expect {
	return Expect{Issuer: testIssuer, Audience: testAudience, Workspace: "billing-prod", Now: t0.Add(time.Minute), Leeway: 30 * time.Second}
}

func mustSign(t *testing.T, k testKey, c *Claims) string {
	t.Helper()
	tok, err := Sign(k.kid, k.priv, c)
	if err != nil {
		t.Fatalf("Sign() = %v", err)
	}
	return tok
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawToken builds a compact JWS by hand, so tests can make any header the
// library would refuse to produce. sign gets the signing input.
func rawToken(t *testing.T, header, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	var h, c []byte
	if s, ok := header.(string); ok {
		h = []byte(s)
	} else {
		h = mustJSON(t, header)
	}
	if s, ok := claims.(string); ok {
		c = []byte(s)
	} else {
		c = mustJSON(t, claims)
	}
	input := b64(h) + "." + b64(c)
	return input + "." + b64(sign([]byte(input)))
}

func edSign(k testKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(k.priv, in) }
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := newTestKey(t, 1)
	c := fullClaims()
	tok := mustSign(t, k, c)
	got, err := Verify(context.Background(), tok, StaticKeys{k.jwk()}, wantExpect())
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("Verify(Sign(c)) mismatch (-want +got):\n%s", diff)
	}
}

func TestSignHeader(t *testing.T) {
	k := newTestKey(t, 1)
	tok := mustSign(t, k, fullClaims())
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("Sign() = %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"alg": "EdDSA", "kid": k.kid, "typ": "JWT"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sign() header mismatch (-want +got):\n%s", diff)
	}
}

func TestSignRefuses(t *testing.T) {
	k := newTestKey(t, 1)
	tests := []struct {
		name   string
		kid    string
		key    ed25519.PrivateKey
		mutate func(c *Claims)
		want   string
	}{
		{"ok/minimal", k.kid, k.priv, func(c *Claims) {
			*c = Claims{Issuer: "i", Subject: "s", Audience: jwt.Audience{"a"}, Expiry: c.Expiry, ID: "j", Decision: "allow"}
		}, ""},
		{"fail/missing-iss", k.kid, k.priv, func(c *Claims) { c.Issuer = "" }, "missing issuer (iss)"},
		{"fail/missing-sub", k.kid, k.priv, func(c *Claims) { c.Subject = "" }, "missing subject (sub)"},
		{"fail/missing-aud", k.kid, k.priv, func(c *Claims) { c.Audience = nil }, "missing audience (aud)"},
		{"fail/empty-aud-value", k.kid, k.priv, func(c *Claims) { c.Audience = jwt.Audience{""} }, "empty audience"},
		{"fail/missing-exp", k.kid, k.priv, func(c *Claims) { c.Expiry = nil }, "missing expiry (exp)"},
		{"fail/missing-jti", k.kid, k.priv, func(c *Claims) { c.ID = "" }, "missing id (jti)"},
		{"fail/iat-after-exp", k.kid, k.priv, func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(t0.Add(time.Hour)) }, "after expiry"},
		{"fail/nbf-after-exp", k.kid, k.priv, func(c *Claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(time.Hour)) }, "after expiry"},
		{"fail/decision-deny", k.kid, k.priv, func(c *Claims) { c.Decision = "deny" }, `decision "deny"`},
		{"fail/decision-empty", k.kid, k.priv, func(c *Claims) { c.Decision = "" }, `decision ""`},
		{"fail/no-kid", "", k.priv, nil, "missing key id"},
		{"fail/short-key", k.kid, k.priv[:32], nil, "not an Ed25519 private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fullClaims()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			tok, err := Sign(tt.kid, tt.key, c)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Sign() = %v", err)
				}
				if _, err := Verify(context.Background(), tok, StaticKeys{k.jwk()}, Expect{Issuer: "i", Audience: "a", Now: t0}); err != nil {
					t.Errorf("Verify(minimal) = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign() = %q, %v; want error containing %q", tok, err, tt.want)
			}
			if tok != "" {
				t.Errorf("Sign() returned a token with an error")
			}
		})
	}
	if _, err := Sign(k.kid, k.priv, nil); err == nil {
		t.Error("Sign(nil claims) = nil error")
	}
}

func TestVerify(t *testing.T) {
	k := newTestKey(t, 1)
	k2 := newTestKey(t, 2)
	attacker := newTestKey(t, 9)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := StaticKeys{k.jwk(), k2.jwk()}
	hdr := map[string]any{"alg": "EdDSA", "kid": k.kid, "typ": "JWT"}
	with := func(extra map[string]any) map[string]any {
		h := map[string]any{}
		for n, v := range hdr {
			h[n] = v
		}
		for n, v := range extra {
			if v == nil {
				delete(h, n)
			} else {
				h[n] = v
			}
		}
		return h
	}
	claims := func(mutate func(c *Claims)) *Claims {
		c := fullClaims()
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	signed := func(mutate func(c *Claims)) string { return mustSign(t, k, claims(mutate)) }
	// claimsMap is the claims as a JSON object, to drop members Sign insists on.
	claimsMap := func(drop ...string) map[string]any {
		var m map[string]any
		json.Unmarshal(mustJSON(t, fullClaims()), &m)
		for _, d := range drop {
			delete(m, d)
		}
		return m
	}
	valid := signed(nil)
	parts := strings.Split(valid, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])

	tests := []struct {
		name    string
		token   string
		keys    KeySource
		expect  func(e *Expect)
		wantErr error // nil: ok
	}{
		{"ok/valid", valid, keys, nil, nil},
		{"ok/second-key-in-set", mustSign(t, k2, fullClaims()), keys, nil, nil},
		{"ok/leeway-covers-just-expired", valid, keys, func(e *Expect) { e.Now = t0.Add(15*time.Minute + 29*time.Second) }, nil},
		{"ok/leeway-covers-nbf-just-ahead", valid, keys, func(e *Expect) { e.Now = t0.Add(-29 * time.Second) }, nil},
		{"ok/workspace-not-checked", signed(func(c *Claims) { c.Workspace = "other" }), keys, func(e *Expect) { e.Workspace = "" }, nil},
		{"ok/aud-one-of-many", signed(func(c *Claims) { c.Audience = jwt.Audience{"sts.amazonaws.com", testAudience} }), keys, nil, nil},
		{"ok/aud-as-string", rawToken(t, hdr, func() map[string]any { m := claimsMap(); m["aud"] = testAudience; return m }(), edSign(k)), keys, nil, nil},
		{"ok/no-iat-no-nbf", signed(func(c *Claims) { c.IssuedAt, c.NotBefore = nil, nil }), keys, nil, nil},
		{"ok/typ-case-insensitive", rawToken(t, with(map[string]any{"typ": "jwt"}), fullClaims(), edSign(k)), keys, nil, nil},

		// Algorithms.
		{"fail/alg-none", rawToken(t, with(map[string]any{"alg": "none"}), fullClaims(), func([]byte) []byte { return nil }), keys, nil, ErrAlgorithm},
		{"fail/alg-None-case", rawToken(t, with(map[string]any{"alg": "None"}), fullClaims(), func([]byte) []byte { return nil }), keys, nil, ErrAlgorithm},
		{"fail/alg-missing", rawToken(t, with(map[string]any{"alg": nil}), fullClaims(), edSign(k)), keys, nil, ErrAlgorithm},
		{"fail/alg-eddsa-lowercase", rawToken(t, with(map[string]any{"alg": "eddsa"}), fullClaims(), edSign(k)), keys, nil, ErrAlgorithm},
		{"fail/alg-not-a-string", rawToken(t, with(map[string]any{"alg": []string{"EdDSA"}}), fullClaims(), edSign(k)), keys, nil, ErrAlgorithm},
		{"fail/alg-HS256-public-key-as-secret", rawToken(t, with(map[string]any{"alg": "HS256"}), fullClaims(), func(in []byte) []byte {
			m := hmac.New(sha256.New, k.pub) // the classic confusion: the public key, known to all, as HMAC secret
			m.Write(in)
			return m.Sum(nil)
		}), keys, nil, ErrAlgorithm},
		{"fail/alg-HS256-via-go-jose", func() string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(k.pub)}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Signed(s).Claims(fullClaims()).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(), keys, nil, ErrAlgorithm},
		// RS256 is accepted (grant_rs256_test.go), but only with an RSA key:
		// the Ed25519 key under this kid does not verify an RS256 grant.
		{"fail/alg-RS256-ed25519-key-under-kid", rawToken(t, with(map[string]any{"alg": "RS256"}), fullClaims(), func(in []byte) []byte {
			h := sha256.Sum256(in)
			s, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h[:])
			if err != nil {
				t.Fatal(err)
			}
			return s
		}), StaticKeys{k.jwk()}, nil, ErrUnknownKey},
		{"fail/duplicate-alg", rawToken(t, `{"alg":"none","alg":"EdDSA","kid":"`+k.kid+`","typ":"JWT"}`, fullClaims(), edSign(k)), keys, nil, ErrMalformed},

		// Keys the token brings itself.
		{"fail/jwk-header-attacker-key", rawToken(t, map[string]any{"alg": "EdDSA", "kid": attacker.kid, "typ": "JWT", "jwk": attacker.jwk()}, fullClaims(), edSign(attacker)), keys, nil, ErrMalformed},
		{"fail/jwk-header-attacker-key-real-kid", rawToken(t, with(map[string]any{"jwk": attacker.jwk()}), fullClaims(), edSign(attacker)), keys, nil, ErrMalformed},
		{"fail/jwk-header-attacker-key-via-go-jose", func() string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: attacker.priv}, &jose.SignerOptions{EmbedJWK: true})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Signed(s).Claims(fullClaims()).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(), keys, nil, ErrMalformed},
		{"fail/jku-header", rawToken(t, with(map[string]any{"jku": "https://attacker.example/jwks.json"}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/x5u-header", rawToken(t, with(map[string]any{"x5u": "https://attacker.example/cert.pem"}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/x5c-header", rawToken(t, with(map[string]any{"x5c": []string{"MIIB"}}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/crit-header", rawToken(t, with(map[string]any{"crit": []string{"exp"}, "exp": 1}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/b64-false", rawToken(t, with(map[string]any{"b64": false, "crit": []string{"b64"}}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},

		// Key lookup and signature.
		{"fail/unknown-kid", rawToken(t, with(map[string]any{"kid": attacker.kid}), fullClaims(), edSign(attacker)), keys, nil, ErrUnknownKey},
		{"fail/empty-key-source", valid, StaticKeys{}, nil, ErrUnknownKey},
		{"fail/missing-kid", rawToken(t, with(map[string]any{"kid": nil}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/kid-not-a-string", rawToken(t, with(map[string]any{"kid": 7}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/key-with-kid-is-rsa", valid, StaticKeys{{Key: &rsaKey.PublicKey, KeyID: k.kid}}, nil, ErrUnknownKey},
		{"fail/key-with-kid-says-RS256", valid, StaticKeys{{Key: k.pub, KeyID: k.kid, Algorithm: "RS256"}}, nil, ErrUnknownKey},
		{"fail/key-with-kid-is-for-encryption", valid, StaticKeys{{Key: k.pub, KeyID: k.kid, Use: "enc"}}, nil, ErrUnknownKey},
		{"fail/flipped-signature-byte", func() string {
			s := bytes.Clone(sig)
			s[10] ^= 0x01
			return parts[0] + "." + parts[1] + "." + b64(s)
		}(), keys, nil, ErrSignature},
		{"fail/signature-of-other-token", parts[0] + "." + strings.Split(signed(func(c *Claims) { c.Workspace = "x" }), ".")[1] + "." + parts[2], keys, nil, ErrSignature},
		{"fail/attacker-signs-with-real-kid", rawToken(t, hdr, fullClaims(), edSign(attacker)), keys, nil, ErrSignature},
		{"fail/other-ring-key-under-this-kid", rawToken(t, hdr, fullClaims(), edSign(k2)), keys, nil, ErrSignature},
		{"fail/empty-signature", parts[0] + "." + parts[1] + ".", keys, nil, ErrSignature},

		// Shape.
		{"fail/empty", "", keys, nil, ErrMalformed},
		{"fail/two-parts", parts[0] + "." + parts[1], keys, nil, ErrMalformed},
		{"fail/four-parts", valid + ".x", keys, nil, ErrMalformed},
		{"fail/json-serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, keys, nil, ErrMalformed},
		{"fail/header-not-base64", "!!!." + parts[1] + "." + parts[2], keys, nil, ErrMalformed},
		{"fail/header-not-json", b64([]byte("alg=EdDSA")) + "." + parts[1] + "." + parts[2], keys, nil, ErrMalformed},
		{"fail/header-trailing-data", rawToken(t, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":"JWT"}{}`, fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/typ-missing", rawToken(t, with(map[string]any{"typ": nil}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/typ-other", rawToken(t, with(map[string]any{"typ": "dpop+jwt"}), fullClaims(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/too-large", rawToken(t, hdr, claims(func(c *Claims) { c.Rules = []string{strings.Repeat("r", 70<<10)} }), edSign(k)), keys, nil, ErrMalformed},
		{"fail/payload-not-json", rawToken(t, hdr, "not json", edSign(k)), keys, nil, ErrMalformed},
		{"fail/payload-array", rawToken(t, hdr, "[1]", edSign(k)), keys, nil, ErrMalformed},
		{"fail/payload-duplicate-claim", rawToken(t, hdr, `{"iss":"`+testIssuer+`","iss":"x"}`, edSign(k)), keys, nil, ErrMalformed},
		{"fail/exp-not-a-number", rawToken(t, hdr, func() map[string]any { m := claimsMap(); m["exp"] = "tomorrow"; return m }(), edSign(k)), keys, nil, ErrMalformed},

		// Claims, each missing or wrong in a token signed by the right key.
		{"fail/missing-jti", rawToken(t, hdr, claimsMap("jti"), edSign(k)), keys, nil, ErrMalformed},
		{"fail/missing-exp", rawToken(t, hdr, claimsMap("exp"), edSign(k)), keys, nil, ErrMalformed},
		{"fail/missing-iss", rawToken(t, hdr, claimsMap("iss"), edSign(k)), keys, nil, ErrMalformed},
		{"fail/missing-sub", rawToken(t, hdr, claimsMap("sub"), edSign(k)), keys, nil, ErrMalformed},
		{"fail/missing-aud", rawToken(t, hdr, claimsMap("aud"), edSign(k)), keys, nil, ErrMalformed},
		{"fail/decision-deny", rawToken(t, hdr, func() map[string]any { m := claimsMap(); m["decision"] = "deny"; return m }(), edSign(k)), keys, nil, ErrMalformed},
		{"fail/expired", valid, keys, func(e *Expect) { e.Now = t0.Add(time.Hour) }, ErrExpired},
		{"fail/expired-past-leeway", valid, keys, func(e *Expect) { e.Now = t0.Add(15*time.Minute + 30*time.Second) }, ErrExpired},
		{"fail/at-exp-no-leeway", valid, keys, func(e *Expect) { e.Now, e.Leeway = t0.Add(15*time.Minute), 0 }, ErrExpired},
		{"fail/negative-leeway-is-zero", valid, keys, func(e *Expect) { e.Now, e.Leeway = t0.Add(15*time.Minute), -time.Hour }, ErrExpired},
		{"fail/nbf-in-future", signed(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(t0.Add(5 * time.Minute)) }), keys, nil, ErrNotYetValid},
		{"fail/iat-in-future", signed(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(t0.Add(5 * time.Minute)) }), keys, nil, ErrNotYetValid},
		{"fail/before-nbf-past-leeway", valid, keys, func(e *Expect) { e.Now = t0.Add(-31 * time.Second) }, ErrNotYetValid},
		{"fail/wrong-iss", signed(func(c *Claims) { c.Issuer = "https://evil.example.com" }), keys, nil, ErrIssuer},
		{"fail/wrong-iss-expected", valid, keys, func(e *Expect) { e.Issuer = "https://other.example.com" }, ErrIssuer},
		{"fail/wrong-aud", signed(func(c *Claims) { c.Audience = jwt.Audience{"sts.amazonaws.com"} }), keys, nil, ErrAudience},
		{"fail/aud-prefix", signed(func(c *Claims) { c.Audience = jwt.Audience{testAudience + "-x"} }), keys, nil, ErrAudience},
		{"fail/wrong-workspace", signed(func(c *Claims) { c.Workspace = "billing-dev" }), keys, nil, ErrWorkspace},
		{"fail/empty-workspace", signed(func(c *Claims) { c.Workspace = "" }), keys, nil, ErrWorkspace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := wantExpect()
			if tt.expect != nil {
				tt.expect(&want)
			}
			got, err := Verify(context.Background(), tt.token, tt.keys, want)
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
			for _, other := range []error{ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrSignature, ErrExpired, ErrNotYetValid, ErrIssuer, ErrAudience, ErrWorkspace} {
				if other != tt.wantErr && errors.Is(err, other) {
					t.Errorf("Verify() = %v is also %v", err, other)
				}
			}
			if got != nil {
				t.Errorf("Verify() returned claims with an error")
			}
			if strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Errorf("Verify() error repeats the token")
			}
		})
	}
}

func TestVerifyMessages(t *testing.T) {
	k := newTestKey(t, 1)
	keys := StaticKeys{k.jwk()}
	valid := mustSign(t, k, fullClaims())
	tests := []struct {
		name   string
		token  string
		expect func(e *Expect)
		want   string
	}{
		{"fail/expired", valid, func(e *Expect) { e.Now, e.Leeway = t0.Add(30*time.Minute), 0 }, "grant expired at 2026-11-30T10:15:00Z (15m ago)"},
		{"fail/expired-odd", valid, func(e *Expect) { e.Now = t0.Add(2*time.Hour + 15*time.Minute + 5*time.Second) }, "grant expired at 2026-11-30T10:15:00Z (2h0m5s ago)"},
		{"fail/expired-hour", valid, func(e *Expect) { e.Now = t0.Add(time.Hour + 15*time.Minute) }, "grant expired at 2026-11-30T10:15:00Z (1h ago)"},
		{"fail/not-yet", mustSign(t, k, func() *Claims {
			c := fullClaims()
			c.NotBefore = jwt.NewNumericDate(t0.Add(10 * time.Minute))
			return c
		}()), nil, "grant not valid before 2026-11-30T10:10:00Z (in 9m)"},
		{"fail/issuer", valid, func(e *Expect) { e.Issuer = "https://x" }, `grant issued by "https://stepgate.example.com", want "https://x"`},
		{"fail/audience", valid, func(e *Expect) { e.Audience = "aws" }, `grant is for audience ["stepgate"], not "aws"`},
		{"fail/workspace", valid, func(e *Expect) { e.Workspace = "web-prod" }, `grant is for workspace "billing-prod", not "web-prod"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := wantExpect()
			if tt.expect != nil {
				tt.expect(&want)
			}
			_, err := Verify(context.Background(), tt.token, keys, want)
			if err == nil {
				t.Fatal("Verify() = nil error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("Verify() error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

type failingKeys struct{ err error }

func (f failingKeys) Keys(context.Context, string) ([]jose.JSONWebKey, error) { return nil, f.err }

// countingKeys records whether it was asked, to show what Verify refuses
// before it looks a key up.
type countingKeys struct {
	mu    sync.Mutex
	asked int
	StaticKeys
}

func (c *countingKeys) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	c.mu.Lock()
	c.asked++
	c.mu.Unlock()
	return c.StaticKeys.Keys(ctx, kid)
}

func TestVerifyKeySource(t *testing.T) {
	k := newTestKey(t, 1)
	valid := mustSign(t, k, fullClaims())
	t.Run("fail/source-error-is-not-a-verdict", func(t *testing.T) {
		down := errors.New("jwks down")
		_, err := Verify(context.Background(), valid, failingKeys{down}, wantExpect())
		if !errors.Is(err, down) {
			t.Fatalf("Verify() = %v, want %v", err, down)
		}
		if errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrSignature) {
			t.Errorf("Verify() = %v classified as a bad grant", err)
		}
	})
	t.Run("fail/refused-header-never-looks-up-key", func(t *testing.T) {
		ks := &countingKeys{StaticKeys: StaticKeys{k.jwk()}}
		tok := rawToken(t, map[string]any{"alg": "HS256", "kid": k.kid, "typ": "JWT"}, fullClaims(), func([]byte) []byte { return []byte("x") })
		if _, err := Verify(context.Background(), tok, ks, wantExpect()); !errors.Is(err, ErrAlgorithm) {
			t.Fatalf("Verify() = %v, want ErrAlgorithm", err)
		}
		if ks.asked != 0 {
			t.Errorf("key source asked %d times, want 0", ks.asked)
		}
	})
	t.Run("fail/bad-expect", func(t *testing.T) {
		for _, e := range []Expect{
			{Audience: testAudience, Now: t0},
			{Issuer: testIssuer, Now: t0},
			{Issuer: testIssuer, Audience: testAudience},
		} {
			if _, err := Verify(context.Background(), valid, StaticKeys{k.jwk()}, e); err == nil {
				t.Errorf("Verify(%+v) = nil error", e)
			}
		}
		if _, err := Verify(context.Background(), valid, nil, wantExpect()); err == nil {
			t.Error("Verify(nil keys) = nil error")
		}
	})
}

func TestHuman(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{15 * time.Minute, "15m"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{time.Hour + time.Minute, "1h1m"},
		{45*time.Second + 400*time.Millisecond, "45s"},
		{0, "0s"},
	}
	for _, tt := range tests {
		if got := human(tt.d); got != tt.want {
			t.Errorf("human(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}
