package webauthn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	lib "github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

const (
	testRPID   = "stepgate.example"
	testOrigin = "https://stepgate.example"
	testCheck  = "chk_0123456789abcdef"
	testPlan   = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

var (
	alice = User{ID: "usr_alice", Name: "alice", DisplayName: "Alice Liddell"}
	bob   = User{ID: "usr_bob", Name: "bob"}
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newRP(t *testing.T) (*WebAuthn, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)}
	w, err := New(testRPID, testOrigin, "stepgate", c.now)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return w, c
}

// register runs a registration ceremony of a for u.
func register(t *testing.T, w *WebAuthn, a *authenticator, u User, existing ...*store.Credential) *store.Credential {
	t.Helper()
	opts, sess, err := w.BeginRegistration(u, existing)
	if err != nil {
		t.Fatalf("BeginRegistration() = %v", err)
	}
	cred, err := w.FinishRegistration(u, sess, a.create(t, opts), "laptop")
	if err != nil {
		t.Fatalf("FinishRegistration() = %v", err)
	}
	return cred
}

func TestNew(t *testing.T) {
	for _, o := range []string{"stepgate.example", "https://stepgate.example/path", "ftp://stepgate.example", "https://", "https://stepgate.example?x=1"} {
		if _, err := New(testRPID, o, "stepgate", time.Now); err == nil {
			t.Errorf("New(origin %q) = nil error, want an error", o)
		}
	}
	if _, err := New("not a domain!", testOrigin, "stepgate", time.Now); err == nil {
		t.Error("New(bad rp id) = nil error, want an error")
	}
	w, err := New(testRPID, testOrigin+"/", "stepgate", time.Now)
	if err != nil || w.origin != testOrigin {
		t.Errorf("New(origin with a slash) = %v, origin %q; want nil, %q", err, w.origin, testOrigin)
	}
}

func TestRegistration(t *testing.T) {
	w, c := newRP(t)
	first := newAuthenticator(t)
	existing := register(t, w, first, alice)

	a := newAuthenticator(t)
	a.backup = true
	opts, sess, err := w.BeginRegistration(alice, []*store.Credential{existing, {ID: "totp_x", Kind: store.KindTOTP, UserID: alice.ID}})
	if err != nil {
		t.Fatalf("BeginRegistration() = %v", err)
	}
	var o struct {
		PublicKey struct {
			RP   struct{ ID, Name string }
			User struct {
				ID          string `json:"id"`
				Name        string `json:"name"`
				DisplayName string `json:"displayName"`
			}
			AuthenticatorSelection struct {
				ResidentKey        string `json:"residentKey"`
				RequireResidentKey bool   `json:"requireResidentKey"`
				UserVerification   string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Attestation        string `json:"attestation"`
			ExcludeCredentials []struct {
				ID string `json:"id"`
			} `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatalf("decoding options: %v", err)
	}
	p := o.PublicKey
	if p.RP.ID != testRPID || p.RP.Name != "stepgate" || p.User.ID != b64([]byte(alice.ID)) || p.User.Name != "alice" || p.User.DisplayName != "Alice Liddell" {
		t.Errorf("options rp/user = %+v %+v", p.RP, p.User)
	}
	if s := p.AuthenticatorSelection; s.ResidentKey != "required" || !s.RequireResidentKey || s.UserVerification != "preferred" {
		t.Errorf("options authenticatorSelection = %+v, want resident key required, user verification preferred", s)
	}
	if p.Attestation != "none" {
		t.Errorf("options attestation = %q, want none", p.Attestation)
	}
	if len(p.ExcludeCredentials) != 1 || p.ExcludeCredentials[0].ID != existing.ID {
		t.Errorf("options excludeCredentials = %+v, want [%s]", p.ExcludeCredentials, existing.ID)
	}

	c.advance(time.Minute)
	cred, err := w.FinishRegistration(alice, sess, a.create(t, opts), "phone")
	if err != nil {
		t.Fatalf("FinishRegistration() = %v", err)
	}
	want := &store.Credential{
		ID:        b64(a.credID),
		UserID:    alice.ID,
		Kind:      store.KindWebAuthn,
		Name:      "phone",
		SignCount: 0,
		CreatedAt: c.now(),
	}
	got := *cred
	got.Data = nil
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("FinishRegistration() mismatch (-want +got):\n%s", diff)
	}
	var lc lib.Credential
	if err := json.Unmarshal(cred.Data, &lc); err != nil {
		t.Fatalf("decoding Data: %v", err)
	}
	if !bytes.Equal(lc.ID, a.credID) || !bytes.Equal(lc.PublicKey, a.coseKey(t)) || !bytes.Equal(lc.Authenticator.AAGUID, a.aaguid) {
		t.Errorf("Data id/public key/AAGUID differ from the authenticator's")
	}
	if f := lc.Flags; !f.UserPresent || !f.UserVerified || !f.BackupEligible || !f.BackupState {
		t.Errorf("Data flags = %+v, want UP, UV, BE, BS", f)
	}
	if lc.AttestationFormat != "none" || lc.AttestationType != "none" {
		t.Errorf("Data attestation = %q/%q, want none/none", lc.AttestationFormat, lc.AttestationType)
	}
	if len(lc.Transport) != 2 || lc.Transport[0] != "internal" {
		t.Errorf("Data transports = %v, want [internal hybrid]", lc.Transport)
	}
}

func TestRegistrationRefused(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte)
		wantErr error
	}{
		{"fail/wrong-origin", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			a.origin = "https://evil.example"
			return alice, sess
		}, ErrInvalid},
		{"fail/wrong-rp-id", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			a.rpID = "evil.example"
			return alice, sess
		}, ErrInvalid},
		{"fail/other-user", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			return bob, sess
		}, ErrInvalid},
		{"fail/expired", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			c.advance(SessionTTL)
			return alice, sess
		}, ErrExpired},
		{"fail/login-session", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			_, s, err := w.BeginLogin()
			if err != nil {
				t.Fatalf("BeginLogin() = %v", err)
			}
			return alice, s
		}, ErrSession},
		{"fail/garbage-session", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			return alice, []byte("{")
		}, ErrSession},
		{"fail/another-ceremony's-challenge", func(t *testing.T, w *WebAuthn, c *clock, a *authenticator, sess []byte) (User, []byte) {
			_, other, err := w.BeginRegistration(alice, nil)
			if err != nil {
				t.Fatalf("BeginRegistration() = %v", err)
			}
			return alice, other
		}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, c := newRP(t)
			a := newAuthenticator(t)
			opts, sess, err := w.BeginRegistration(alice, nil)
			if err != nil {
				t.Fatalf("BeginRegistration() = %v", err)
			}
			u, sess := tt.mutate(t, w, c, a, sess)
			cred, err := w.FinishRegistration(u, sess, a.create(t, opts), "phone")
			if !errors.Is(err, tt.wantErr) || cred != nil {
				t.Errorf("FinishRegistration() = %v, %v; want nil, %v", cred, err, tt.wantErr)
			}
		})
	}
}

// lookupOf returns a LookupFunc over fixed users and credentials.
func lookupOf(users map[string]User, creds ...*store.Credential) LookupFunc {
	return func(credentialID, userHandle []byte) (User, []*store.Credential, error) {
		for _, c := range creds {
			if c.ID == CredentialID(credentialID) {
				var mine []*store.Credential
				for _, o := range creds {
					if o.UserID == c.UserID {
						mine = append(mine, o)
					}
				}
				return users[c.UserID], mine, nil
			}
		}
		return User{}, nil, store.ErrNotFound
	}
}

func TestLogin(t *testing.T) {
	for _, uv := range []bool{true, false} {
		w, c := newRP(t)
		a := newAuthenticator(t)
		cred := register(t, w, a, alice)
		a.uv = uv
		c.advance(time.Hour)

		opts, sess, err := w.BeginLogin()
		if err != nil {
			t.Fatalf("BeginLogin() = %v", err)
		}
		var o struct {
			PublicKey struct {
				RPID             string            `json:"rpId"`
				UserVerification string            `json:"userVerification"`
				AllowCredentials []json.RawMessage `json:"allowCredentials"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &o); err != nil {
			t.Fatalf("decoding options: %v", err)
		}
		if o.PublicKey.RPID != testRPID || o.PublicKey.UserVerification != "preferred" || len(o.PublicKey.AllowCredentials) != 0 {
			t.Errorf("BeginLogin() options = %s, want rp id, uv preferred, no allowCredentials (discoverable)", opts)
		}
		userID, got, level, err := w.FinishLogin(sess, a.get(t, opts), lookupOf(map[string]User{alice.ID: alice}, cred))
		if err != nil {
			t.Fatalf("FinishLogin(uv %t) = %v", uv, err)
		}
		wantLevel := map[bool]int{true: 3, false: 2}[uv]
		if userID != alice.ID || got != cred || level != wantLevel {
			t.Errorf("FinishLogin(uv %t) = %q, %p, %d; want %q, %p, %d", uv, userID, got, level, alice.ID, cred, wantLevel)
		}
		if cred.SignCount != 1 || !cred.LastUsedAt.Equal(c.now()) {
			t.Errorf("after FinishLogin: SignCount %d, LastUsedAt %v; want 1, %v", cred.SignCount, cred.LastUsedAt, c.now())
		}
	}
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(a *authenticator, cred *store.Credential) LookupFunc
		wantErr error
	}{
		{"fail/wrong-origin", func(a *authenticator, cred *store.Credential) LookupFunc {
			a.origin = "https://stepgate.example.evil.example"
			return nil
		}, ErrInvalid},
		{"fail/unknown-credential", func(a *authenticator, cred *store.Credential) LookupFunc {
			return lookupOf(nil)
		}, store.ErrNotFound},
		{"fail/user-handle-of-someone-else", func(a *authenticator, cred *store.Credential) LookupFunc {
			a.handle = []byte(bob.ID)
			return nil
		}, ErrInvalid},
		{"fail/cloned", func(a *authenticator, cred *store.Credential) LookupFunc {
			cred.SignCount = 7
			a.count = 6 // presents 7 again
			return nil
		}, ErrCloned},
		{"fail/counter-went-backwards", func(a *authenticator, cred *store.Credential) LookupFunc {
			cred.SignCount = 7
			a.count = 2
			return nil
		}, ErrCloned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := newRP(t)
			a := newAuthenticator(t)
			cred := register(t, w, a, alice)
			lookup := tt.mutate(a, cred)
			if lookup == nil {
				lookup = lookupOf(map[string]User{alice.ID: alice, bob.ID: bob}, cred)
			}
			before := *cred
			opts, sess, err := w.BeginLogin()
			if err != nil {
				t.Fatalf("BeginLogin() = %v", err)
			}
			userID, got, level, err := w.FinishLogin(sess, a.get(t, opts), lookup)
			if !errors.Is(err, tt.wantErr) || userID != "" || got != nil || level != 0 {
				t.Errorf("FinishLogin() = %q, %v, %d, %v; want error %v", userID, got, level, err, tt.wantErr)
			}
			if diff := cmp.Diff(&before, cred); diff != "" {
				t.Errorf("a refused sign-in changed the credential (-before +after):\n%s", diff)
			}
		})
	}
}

// approve runs an approval ceremony and returns its results.
func approve(t *testing.T, w *WebAuthn, a *authenticator, creds []*store.Credential, requireUV bool) (*Assertion, *store.Credential, string, error) {
	t.Helper()
	opts, sess, nonce, err := w.BeginApproval(alice, creds, testCheck, testPlan)
	if err != nil {
		t.Fatalf("BeginApproval() = %v", err)
	}
	as, cred, err := w.FinishApproval(alice, creds, sess, a.get(t, opts), testCheck, testPlan, requireUV)
	return as, cred, nonce, err
}

func TestApproval(t *testing.T) {
	t.Run("ok/uv", func(t *testing.T) {
		w, c := newRP(t)
		a := newAuthenticator(t)
		cred := register(t, w, a, alice)
		other := register(t, w, newAuthenticator(t), alice)
		c.advance(time.Hour)

		opts, sess, nonce, err := w.BeginApproval(alice, []*store.Credential{other, cred}, testCheck, testPlan)
		if err != nil {
			t.Fatalf("BeginApproval() = %v", err)
		}
		challenge, err := ApprovalChallenge(testCheck, testPlan, nonce)
		if err != nil {
			t.Fatalf("ApprovalChallenge() = %v", err)
		}
		o := parseOptions(t, opts)
		if o.PublicKey.Challenge != b64(challenge) {
			t.Errorf("options challenge = %s, want ApprovalChallenge() %s", o.PublicKey.Challenge, b64(challenge))
		}
		var allow struct {
			PublicKey struct {
				AllowCredentials []struct{ ID string } `json:"allowCredentials"`
			} `json:"publicKey"`
		}
		json.Unmarshal(opts, &allow)
		if len(allow.PublicKey.AllowCredentials) != 2 {
			t.Errorf("options allowCredentials = %+v, want both passkeys of alice", allow.PublicKey.AllowCredentials)
		}
		if n, err := base64.RawURLEncoding.DecodeString(nonce); err != nil || len(n) != 32 {
			t.Errorf("nonce %q is not 32 random bytes, base64url", nonce)
		}

		as, got, err := w.FinishApproval(alice, []*store.Credential{other, cred}, sess, a.get(t, opts), testCheck, testPlan, true)
		if err != nil {
			t.Fatalf("FinishApproval() = %v", err)
		}
		if got != cred || cred.SignCount != 1 || !cred.LastUsedAt.Equal(c.now()) {
			t.Errorf("FinishApproval() credential %p (SignCount %d, LastUsedAt %v), want %p updated", got, cred.SignCount, cred.LastUsedAt, cred)
		}
		if !bytes.Equal(as.CredentialID, a.credID) || !as.UserVerified || as.AAL != 3 || !slices.Equal(as.AMR, []string{"hwk", "user", "mfa"}) {
			t.Errorf("FinishApproval() = %+v, want alice's passkey, UV, aal 3, amr [hwk user]", as)
		}
		if len(as.AuthenticatorData) != 37 || len(as.Signature) == 0 || !bytes.Contains(as.ClientDataJSON, []byte(b64(challenge))) {
			t.Errorf("FinishApproval() raw evidence incomplete: %+v", as)
		}
		if err := w.VerifyStoredAssertion(cred, as, testCheck, testPlan, nonce); err != nil {
			t.Errorf("VerifyStoredAssertion() = %v", err)
		}
	})
	t.Run("ok/without-uv", func(t *testing.T) {
		w, _ := newRP(t)
		a := newAuthenticator(t)
		cred := register(t, w, a, alice)
		a.uv = false
		as, _, nonce, err := approve(t, w, a, []*store.Credential{cred}, false)
		if err != nil {
			t.Fatalf("FinishApproval() = %v", err)
		}
		if as.UserVerified || as.AAL != 2 || !slices.Equal(as.AMR, []string{"hwk", "user"}) {
			t.Errorf("FinishApproval() = %+v, want no UV, aal 2, amr [hwk]", as)
		}
		if err := w.VerifyStoredAssertion(cred, as, testCheck, testPlan, nonce); err != nil {
			t.Errorf("VerifyStoredAssertion() = %v", err)
		}
	})
	t.Run("ok/counter-less", func(t *testing.T) {
		w, _ := newRP(t)
		a := newAuthenticator(t)
		a.step = 0 // synced passkeys report 0 every time
		cred := register(t, w, a, alice)
		for i := range 3 {
			if _, _, _, err := approve(t, w, a, []*store.Credential{cred}, true); err != nil {
				t.Fatalf("approval #%d with sign count 0: %v", i+1, err)
			}
		}
	})
}

func TestApprovalRefused(t *testing.T) {
	type env struct {
		w     *WebAuthn
		c     *clock
		a     *authenticator
		cred  *store.Credential
		creds []*store.Credential
	}
	tests := []struct {
		name    string
		setup   func(e *env) // before the credential is snapshot
		run     func(t *testing.T, e *env) error
		wantErr error
		updates bool // a first approval succeeds and updates the credential
	}{
		{name: "fail/uv-required", run: func(t *testing.T, e *env) error {
			e.a.uv = false
			_, _, _, err := approve(t, e.w, e.a, e.creds, true)
			return err
		}, wantErr: ErrUserVerification},
		{name: "fail/other-check-id", run: func(t *testing.T, e *env) error {
			opts, sess, _, err := e.w.BeginApproval(alice, e.creds, testCheck, testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			_, _, err = e.w.FinishApproval(alice, e.creds, sess, e.a.get(t, opts), "chk_other", testPlan, false)
			return err
		}, wantErr: ErrChallenge},
		{name: "fail/other-plan-digest", run: func(t *testing.T, e *env) error {
			opts, sess, _, err := e.w.BeginApproval(alice, e.creds, testCheck, testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			_, _, err = e.w.FinishApproval(alice, e.creds, sess, e.a.get(t, opts), testCheck, "sha256:00", false)
			return err
		}, wantErr: ErrChallenge},
		{name: "fail/signed-for-another-check", run: func(t *testing.T, e *env) error {
			optsA, _, _, err := e.w.BeginApproval(alice, e.creds, "chk_a", testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			_, sessB, _, err := e.w.BeginApproval(alice, e.creds, "chk_b", testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			_, _, err = e.w.FinishApproval(alice, e.creds, sessB, e.a.get(t, optsA), "chk_b", testPlan, false)
			return err
		}, wantErr: ErrInvalid},
		{name: "fail/replayed-response", updates: true, wantErr: ErrInvalid, run: func(t *testing.T, e *env) error {
			opts, sess, _, err := e.w.BeginApproval(alice, e.creds, testCheck, testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			body := e.a.get(t, opts)
			if _, _, err := e.w.FinishApproval(alice, e.creds, sess, body, testCheck, testPlan, false); err != nil {
				t.Fatalf("FinishApproval() = %v", err)
			}
			_, sess2, _, err := e.w.BeginApproval(alice, e.creds, testCheck, testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			_, _, err = e.w.FinishApproval(alice, e.creds, sess2, body, testCheck, testPlan, false)
			return err
		}},
		{name: "fail/replayed-sign-count", updates: true, wantErr: ErrCloned, run: func(t *testing.T, e *env) error {
			if _, _, _, err := approve(t, e.w, e.a, e.creds, false); err != nil {
				t.Fatalf("first approval: %v", err)
			}
			e.a.count-- // a copy of the key presents the same count again
			_, _, _, err := approve(t, e.w, e.a, e.creds, false)
			return err
		}},
		{name: "fail/sign-count-backwards", wantErr: ErrCloned,
			setup: func(e *env) { e.cred.SignCount, e.a.count = 10, 3 },
			run: func(t *testing.T, e *env) error {
				_, _, _, err := approve(t, e.w, e.a, e.creds, false)
				return err
			}},
		{name: "fail/stored-count-with-zero-presented", wantErr: ErrCloned,
			setup: func(e *env) { e.cred.SignCount, e.a.step = 10, 0 },
			run: func(t *testing.T, e *env) error {
				_, _, _, err := approve(t, e.w, e.a, e.creds, false)
				return err
			}},
		{name: "fail/wrong-origin", run: func(t *testing.T, e *env) error {
			e.a.origin = "http://stepgate.example"
			_, _, _, err := approve(t, e.w, e.a, e.creds, false)
			return err
		}, wantErr: ErrInvalid},
		{name: "fail/wrong-rp-id", run: func(t *testing.T, e *env) error {
			e.a.rpID = "example"
			_, _, _, err := approve(t, e.w, e.a, e.creds, false)
			return err
		}, wantErr: ErrInvalid},
		{name: "fail/expired", run: func(t *testing.T, e *env) error {
			opts, sess, _, err := e.w.BeginApproval(alice, e.creds, testCheck, testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			e.c.advance(SessionTTL + time.Second)
			_, _, err = e.w.FinishApproval(alice, e.creds, sess, e.a.get(t, opts), testCheck, testPlan, false)
			return err
		}, wantErr: ErrExpired},
		{name: "fail/login-session", run: func(t *testing.T, e *env) error {
			opts, sess, err := e.w.BeginLogin()
			if err != nil {
				t.Fatalf("BeginLogin() = %v", err)
			}
			_, _, err = e.w.FinishApproval(alice, e.creds, sess, e.a.get(t, opts), testCheck, testPlan, false)
			return err
		}, wantErr: ErrSession},
		{name: "fail/another-user", run: func(t *testing.T, e *env) error {
			bobCred := register(t, e.w, newAuthenticator(t), bob)
			opts, sess, _, err := e.w.BeginApproval(bob, []*store.Credential{bobCred}, testCheck, testPlan)
			if err != nil {
				t.Fatalf("BeginApproval() = %v", err)
			}
			// Alice's passkey answers bob's ceremony.
			e.a.handle = []byte(bob.ID)
			_, _, err = e.w.FinishApproval(bob, []*store.Credential{bobCred}, sess, e.a.get(t, opts), testCheck, testPlan, false)
			return err
		}, wantErr: ErrInvalid},
		{name: "fail/no-passkey", run: func(t *testing.T, e *env) error {
			_, _, _, err := e.w.BeginApproval(alice, []*store.Credential{{ID: "totp_1", UserID: alice.ID, Kind: store.KindTOTP}}, testCheck, testPlan)
			return err
		}, wantErr: ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, c := newRP(t)
			a := newAuthenticator(t)
			cred := register(t, w, a, alice)
			e := &env{w: w, c: c, a: a, cred: cred, creds: []*store.Credential{cred}}
			if tt.setup != nil {
				tt.setup(e)
			}
			before := *cred
			err := tt.run(t, e)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("approval = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(&before, cred); !tt.updates && diff != "" {
				t.Errorf("a refused approval changed the credential (-before +after):\n%s", diff)
			}
		})
	}
}

func TestBeginApprovalArgs(t *testing.T) {
	w, _ := newRP(t)
	cred := register(t, w, newAuthenticator(t), alice)
	for _, args := range [][2]string{{"", testPlan}, {testCheck, ""}, {"chk\n1", testPlan}, {testCheck, "sha256:1\nchk_2"}} {
		if _, _, _, err := w.BeginApproval(alice, []*store.Credential{cred}, args[0], args[1]); err == nil {
			t.Errorf("BeginApproval(%q, %q) = nil error, want an error", args[0], args[1])
		}
	}
	if _, _, _, err := w.BeginApproval(bob, []*store.Credential{cred}, testCheck, testPlan); err == nil {
		t.Error("BeginApproval(bob, alice's passkey) = nil error, want an error")
	}
	if _, _, _, err := w.BeginApproval(User{ID: string(make([]byte, 65))}, nil, testCheck, testPlan); err == nil {
		t.Error("BeginApproval(user id of 65 bytes) = nil error, want an error")
	}
}

func TestApprovalChallenge(t *testing.T) {
	got, err := ApprovalChallenge("chk_1", "sha256:ab", "bm9uY2U")
	if err != nil {
		t.Fatalf("ApprovalChallenge() = %v", err)
	}
	// printf 'stepgate approval v1\nchk_1\nsha256:ab\nbm9uY2U' | sha256sum
	const want = "3LJ9WYOjawBlXEfNUCxj7pd8OYOt4NUjNie8AbfsseQ"
	if b64(got) != want {
		t.Errorf("ApprovalChallenge() = %s, want %s", b64(got), want)
	}
}

func TestVerifyStoredAssertion(t *testing.T) {
	w, _ := newRP(t)
	a := newAuthenticator(t)
	cred := register(t, w, a, alice)
	as, _, nonce, err := approve(t, w, a, []*store.Credential{cred}, true)
	if err != nil {
		t.Fatalf("approval: %v", err)
	}
	otherCred := register(t, w, newAuthenticator(t), alice)
	otherOrigin, err := New(testRPID, "https://other.example", "stepgate", time.Now)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	otherRP, err := New("other.example", testOrigin, "stepgate", time.Now)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}

	flip := func(field func(*Assertion) []byte, i int) func(*Assertion) {
		return func(a *Assertion) {
			b := field(a)
			if i < 0 {
				i += len(b)
			}
			b[i] ^= 0x01
		}
	}
	tests := []struct {
		name                   string
		w                      *WebAuthn
		cred                   *store.Credential
		mutate                 func(*Assertion)
		check, plan, nonceUsed string
	}{
		{name: "ok"},
		{name: "fail/flipped-signature-byte", mutate: flip(func(a *Assertion) []byte { return a.Signature }, 40)},
		{name: "fail/flipped-last-signature-byte", mutate: flip(func(a *Assertion) []byte { return a.Signature }, -1)},
		{name: "fail/flipped-authenticator-data-byte", mutate: flip(func(a *Assertion) []byte { return a.AuthenticatorData }, 36)},
		{name: "fail/flipped-rp-id-hash-byte", mutate: flip(func(a *Assertion) []byte { return a.AuthenticatorData }, 3)},
		{name: "fail/flipped-client-data-byte", mutate: func(a *Assertion) {
			i := bytes.Index(a.ClientDataJSON, []byte(`"challenge":"`)) + len(`"challenge":"`) + 5
			a.ClientDataJSON[i] ^= 0x01
		}},
		{name: "fail/client-data-reencoded", mutate: func(a *Assertion) {
			// Same fields, other bytes: only the signature can tell.
			a.ClientDataJSON = append(bytes.TrimSuffix(a.ClientDataJSON, []byte("}")), []byte(" }")...)
		}},
		{name: "fail/other-check-id", check: "chk_other"},
		{name: "fail/other-plan-digest", plan: "sha256:00"},
		{name: "fail/other-nonce", nonceUsed: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{name: "fail/other-credential", cred: otherCred},
		{name: "fail/other-origin", w: otherOrigin},
		{name: "fail/other-rp-id", w: otherRP},
		{name: "fail/claims-no-uv", mutate: func(a *Assertion) { a.UserVerified, a.AAL, a.AMR = false, 2, []string{"hwk"} }},
		{name: "fail/claims-other-aal", mutate: func(a *Assertion) { a.AAL = 2 }},
		{name: "fail/claims-other-amr", mutate: func(a *Assertion) { a.AMR = []string{"hwk", "user", "mfa", "pin"} }},
		{name: "fail/other-credential-id", mutate: flip(func(a *Assertion) []byte { return a.CredentialID }, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vw, vc := w, cred
			if tt.w != nil {
				vw = tt.w
			}
			if tt.cred != nil {
				vc = tt.cred
			}
			check, plan, n := testCheck, testPlan, nonce
			if tt.check != "" {
				check = tt.check
			}
			if tt.plan != "" {
				plan = tt.plan
			}
			if tt.nonceUsed != "" {
				n = tt.nonceUsed
			}
			in := &Assertion{
				CredentialID:      bytes.Clone(as.CredentialID),
				AuthenticatorData: bytes.Clone(as.AuthenticatorData),
				ClientDataJSON:    bytes.Clone(as.ClientDataJSON),
				Signature:         bytes.Clone(as.Signature),
				UserVerified:      as.UserVerified,
				AAL:               as.AAL,
				AMR:               slices.Clone(as.AMR),
			}
			if tt.mutate != nil {
				tt.mutate(in)
			}
			err := vw.VerifyStoredAssertion(vc, in, check, plan, n)
			if tt.name == "ok" {
				if err != nil {
					t.Errorf("VerifyStoredAssertion() = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("VerifyStoredAssertion() = %v, want ErrInvalid", err)
			}
		})
	}

	// The evidence survives a JSON round trip (how the caller stores it).
	b, err := json.Marshal(as)
	if err != nil {
		t.Fatalf("json.Marshal(Assertion) = %v", err)
	}
	var back Assertion
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal(Assertion) = %v", err)
	}
	if err := w.VerifyStoredAssertion(cred, &back, testCheck, testPlan, nonce); err != nil {
		t.Errorf("VerifyStoredAssertion(after JSON) = %v", err)
	}
}

func TestConcurrentCeremonies(t *testing.T) {
	w, _ := newRP(t)
	done := make(chan error)
	for range 8 {
		go func() {
			// The helpers may t.Fatalf (runtime.Goexit): the deferred send
			// still reports.
			err := errors.New("test helper failed")
			defer func() { done <- err }()
			a := newAuthenticator(t)
			var (
				opts json.RawMessage
				sess []byte
				cred *store.Credential
			)
			if opts, sess, err = w.BeginRegistration(alice, nil); err != nil {
				return
			}
			if cred, err = w.FinishRegistration(alice, sess, a.create(t, opts), "key"); err != nil {
				return
			}
			if opts, sess, _, err = w.BeginApproval(alice, []*store.Credential{cred}, testCheck, testPlan); err != nil {
				return
			}
			_, _, err = w.FinishApproval(alice, []*store.Credential{cred}, sess, a.get(t, opts), testCheck, testPlan, true)
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Errorf("concurrent ceremony: %v", err)
		}
	}
}

// A session started by a passkey records what the assertion proved, in
// the words the approval evidence uses.
func TestAMR(t *testing.T) {
	for _, tt := range []struct {
		level int
		want  []string
	}{
		{AALWithUV, []string{"hwk", "user", "mfa"}},
		{AALWithoutUV, []string{"hwk", "user"}},
	} {
		if got := AMR(tt.level); !slices.Equal(got, tt.want) {
			t.Errorf("AMR(%d) = %v, want %v", tt.level, got, tt.want)
		}
	}
}
