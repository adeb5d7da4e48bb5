package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

// memKeys is an in-memory KeyStore. Like a database, it hands out and takes
// in copies, so a caller changing a record it read changes nothing stored.
type memKeys struct {
	mu   sync.Mutex
	keys []*store.SigningKey
	err  error // returned by every call when set
}

func cloneKey(k *store.SigningKey) *store.SigningKey {
	c := *k
	c.PublicKey = slices.Clone(k.PublicKey)
	c.SealedKey = slices.Clone(k.SealedKey)
	return &c
}

func (m *memKeys) AddSigningKey(_ context.Context, k *store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for _, e := range m.keys {
		if e.ID == k.ID {
			return store.ErrConflict
		}
	}
	m.keys = append(m.keys, cloneKey(k))
	return nil
}

func (m *memKeys) ListSigningKeys(context.Context) ([]*store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	out := make([]*store.SigningKey, len(m.keys))
	for i, k := range m.keys {
		out[i] = cloneKey(k)
	}
	return out, nil
}

func (m *memKeys) UpdateSigningKey(_ context.Context, k *store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	for i, e := range m.keys {
		if e.ID == k.ID {
			m.keys[i] = cloneKey(k)
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memKeys) get(t *testing.T, kid string) *store.SigningKey {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.ID == kid {
			return cloneKey(k)
		}
	}
	t.Fatalf("no key %s in store", kid)
	return nil
}

var _ KeyStore = store.Tx(nil) // the real store satisfies KeyStore

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func TestThumbprintRFC8037(t *testing.T) {
	// RFC 8037 appendix A.2 and A.3.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(x)
	if err != nil {
		t.Fatalf("Thumbprint() = %v", err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("Thumbprint() = %s, want %s", got, want)
	}
	if _, err := Thumbprint(x[:31]); err == nil {
		t.Error("Thumbprint(31 bytes) = nil error")
	}
}

func TestRingEnsure(t *testing.T) {
	retired := func(t *testing.T, r *Ring, ks *memKeys) {
		if _, err := r.Ensure(context.Background(), ks); err != nil {
			t.Fatal(err)
		}
		all, _ := ks.ListSigningKeys(context.Background())
		for _, k := range all {
			k.RetiredAt = t0
			k.PublishEnd = t0.Add(time.Hour)
			ks.UpdateSigningKey(context.Background(), k)
		}
	}
	tests := []struct {
		name      string
		setup     func(t *testing.T, r *Ring, ks *memKeys)
		storeErr  error
		want      []bool // created, per call
		wantCount int
	}{
		{"ok/creates-first-key", nil, nil, []bool{true}, 1},
		{"ok/idempotent", nil, nil, []bool{true, false, false}, 1},
		{"ok/all-retired-creates-one", retired, nil, []bool{true, false}, 2},
		{"fail/store-error", nil, errors.New("db down"), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(testMaster(t, 1), func() time.Time { return t0 })
			ks := &memKeys{}
			if tt.setup != nil {
				tt.setup(t, r, ks)
			}
			if tt.storeErr != nil {
				ks.err = tt.storeErr
				if _, err := r.Ensure(context.Background(), ks); !errors.Is(err, tt.storeErr) {
					t.Fatalf("Ensure() = %v, want %v", err, tt.storeErr)
				}
				return
			}
			var got []bool
			for range tt.want {
				created, err := r.Ensure(context.Background(), ks)
				if err != nil {
					t.Fatalf("Ensure() = %v", err)
				}
				got = append(got, created)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Ensure() created mismatch (-want +got):\n%s", diff)
			}
			if n := len(ks.keys); n != tt.wantCount {
				t.Errorf("store has %d keys, want %d", n, tt.wantCount)
			}
			if _, _, err := r.Signer(context.Background(), ks); err != nil {
				t.Errorf("Signer() after Ensure() = %v", err)
			}
		})
	}
}

func TestRingRotate(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: t0}
	m := testMaster(t, 1)
	r := NewRing(m, clock.Now)
	ks := &memKeys{}
	if _, err := r.Ensure(ctx, ks); err != nil {
		t.Fatal(err)
	}
	kid1, signer1, err := r.Signer(ctx, ks)
	if err != nil {
		t.Fatalf("Signer() = %v", err)
	}
	priv1 := signer1.(ed25519.PrivateKey)
	msg := []byte("a grant signed before rotation")
	sig1 := ed25519.Sign(priv1, msg)

	clock.Advance(time.Hour)
	rotatedAt := clock.Now()
	const ttl = 15 * time.Minute
	k2, err := r.Rotate(ctx, ks, ttl)
	if err != nil {
		t.Fatalf("Rotate() = %v", err)
	}
	if k2.SealedKey != nil {
		t.Error("Rotate() returned the sealed key")
	}
	kid2, signer2, err := r.Signer(ctx, ks)
	if err != nil {
		t.Fatalf("Signer() after Rotate() = %v", err)
	}
	priv2 := signer2.(ed25519.PrivateKey)
	if kid2 == kid1 || kid2 != k2.ID || bytes.Equal(priv1, priv2) {
		t.Fatalf("Signer() after Rotate() = %s, want the new key %s (old %s)", kid2, k2.ID, kid1)
	}

	old := ks.get(t, kid1)
	wantOld := &store.SigningKey{
		ID:         kid1,
		Algorithm:  "EdDSA",
		PublicKey:  old.PublicKey,
		SealedKey:  old.SealedKey,
		CreatedAt:  t0,
		RetiredAt:  rotatedAt,
		PublishEnd: rotatedAt.Add(ttl + 5*time.Minute),
	}
	if diff := cmp.Diff(wantOld, old); diff != "" {
		t.Errorf("retired key mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(rotatedAt, ks.get(t, kid2).CreatedAt); diff != "" {
		t.Errorf("new key CreatedAt mismatch (-want +got):\n%s", diff)
	}

	jwksAt := []struct {
		name string
		at   time.Time
		want []string
	}{
		{"ok/at-rotation-both", rotatedAt, []string{kid2, kid1}},
		{"ok/grant-ttl-later-both", rotatedAt.Add(ttl), []string{kid2, kid1}},
		{"ok/just-before-publish-end-both", rotatedAt.Add(ttl + 5*time.Minute - time.Second), []string{kid2, kid1}},
		{"fail/at-publish-end-old-gone", rotatedAt.Add(ttl + 5*time.Minute), []string{kid2}},
		{"fail/day-later-old-gone", rotatedAt.Add(24 * time.Hour), []string{kid2}},
	}
	for _, tt := range jwksAt {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(m, func() time.Time { return tt.at })
			set, err := r.JWKS(ctx, ks)
			if err != nil {
				t.Fatalf("JWKS() = %v", err)
			}
			var got []string
			for _, k := range set.Keys {
				got = append(got, k.KeyID)
				if k.Algorithm != "EdDSA" || k.Use != "sig" || !k.IsPublic() || !k.Valid() {
					t.Errorf("JWKS() key %s = alg %q use %q public %v valid %v", k.KeyID, k.Algorithm, k.Use, k.IsPublic(), k.Valid())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("JWKS() kids mismatch (-want +got):\n%s", diff)
			}
		})
	}

	// A grant the old key signed still verifies with what the JWKS serves.
	set, err := r.JWKS(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	pubs := set.Key(kid1)
	if len(pubs) != 1 {
		t.Fatalf("JWKS().Key(old) = %d keys, want 1", len(pubs))
	}
	if !ed25519.Verify(pubs[0].Key.(ed25519.PublicKey), msg, sig1) {
		t.Error("old signature does not verify with the published old key")
	}

	// Rotating again retires the second key and leaves the first as it was.
	clock.Advance(time.Minute)
	if _, err := r.Rotate(ctx, ks, ttl); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantOld, ks.get(t, kid1)); diff != "" {
		t.Errorf("second rotation changed the first retired key (-want +got):\n%s", diff)
	}
	if got := ks.get(t, kid2).RetiredAt; !got.Equal(clock.Now()) {
		t.Errorf("second key RetiredAt = %v, want %v", got, clock.Now())
	}
}

func TestRingRotateErrors(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		err  error
	}{
		{"fail/zero-ttl", 0, nil},
		{"fail/negative-ttl", -time.Minute, nil},
		{"fail/store-error", time.Minute, errors.New("db down")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRing(testMaster(t, 1), func() time.Time { return t0 })
			ks := &memKeys{err: tt.err}
			_, err := r.Rotate(context.Background(), ks, tt.ttl)
			if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("Rotate() = %v, want an error", err)
			}
			if len(ks.keys) != 0 {
				t.Errorf("Rotate() failed but stored %d keys", len(ks.keys))
			}
		})
	}
}

func TestRingSealedKeyIsNotRaw(t *testing.T) {
	ctx := context.Background()
	m := testMaster(t, 1)
	r := NewRing(m, func() time.Time { return t0 })
	ks := &memKeys{}
	if _, err := r.Ensure(ctx, ks); err != nil {
		t.Fatal(err)
	}
	kid, signer, err := r.Signer(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	priv := signer.(ed25519.PrivateKey)
	k := ks.get(t, kid)
	seed := priv.Seed()
	for _, secret := range [][]byte{seed, priv, seed[:16], seed[16:]} {
		if bytes.Contains(k.SealedKey, secret) {
			t.Fatalf("stored SealedKey contains raw private key material")
		}
	}
	if got, want := len(k.SealedKey), 1+12+ed25519.SeedSize+16; got != want {
		t.Errorf("len(SealedKey) = %d, want %d", got, want)
	}
	if diff := cmp.Diff([]byte(priv.Public().(ed25519.PublicKey)), k.PublicKey); diff != "" {
		t.Errorf("stored PublicKey mismatch (-want +got):\n%s", diff)
	}
	wantKid, err := Thumbprint(k.PublicKey)
	if err != nil || kid != wantKid {
		t.Errorf("kid = %s, want thumbprint %s (%v)", kid, wantKid, err)
	}
	// Sealed under the master with the kid as aad.
	got, err := m.Open(k.SealedKey, []byte(kid))
	if err != nil {
		t.Fatalf("Open(SealedKey, kid) = %v", err)
	}
	if !bytes.Equal(got, seed) {
		t.Error("SealedKey does not open to the seed")
	}
	if _, err := m.Open(k.SealedKey, []byte("another-kid")); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open(SealedKey, another kid) = %v, want ErrDecrypt", err)
	}
}

func TestRingSigner(t *testing.T) {
	ctx := context.Background()
	m := testMaster(t, 1)
	tests := []struct {
		name    string
		mutate  func(ks *memKeys) // applied after two keys exist, newest last
		master  *Master
		wantErr error // nil: ok; errAny: any error
	}{
		{"ok/newest", nil, m, nil},
		{"fail/no-keys", func(ks *memKeys) { ks.keys = nil }, m, ErrNoSigningKey},
		{"fail/all-retired", func(ks *memKeys) {
			for _, k := range ks.keys {
				k.RetiredAt = t0
			}
		}, m, ErrNoSigningKey},
		{"fail/wrong-master", nil, testMaster(t, 2), ErrDecrypt},
		{"fail/sealed-key-swapped", func(ks *memKeys) {
			ks.keys[1].SealedKey = ks.keys[0].SealedKey
		}, m, ErrDecrypt},
		{"fail/public-key-swapped", func(ks *memKeys) {
			ks.keys[1].PublicKey = ks.keys[0].PublicKey
		}, m, errAny},
		{"fail/algorithm", func(ks *memKeys) { ks.keys[1].Algorithm = "RS256" }, m, errAny},
		{"fail/store-error", func(ks *memKeys) { ks.err = errStore }, m, errStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: t0}
			ks := &memKeys{}
			r := NewRing(m, clock.Now)
			if _, err := r.Ensure(ctx, ks); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
			newest, err := r.create(ctx, ks, clock.Now()) // a second, newer current key
			if err != nil {
				t.Fatal(err)
			}
			if tt.mutate != nil {
				tt.mutate(ks)
			}
			kid, priv, err := NewRing(tt.master, clock.Now).Signer(ctx, ks)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Signer() = %v", err)
			case tt.wantErr == nil:
				if kid != newest.ID {
					t.Errorf("Signer() kid = %s, want newest %s", kid, newest.ID)
				}
				if !bytes.Equal(priv.Public().(ed25519.PublicKey), newest.PublicKey) {
					t.Error("Signer() key does not match the stored public key")
				}
			case tt.wantErr == errAny && err == nil, tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Signer() = %s, %v; want error %v", kid, err, tt.wantErr)
			}
			if err != nil && priv != nil {
				t.Error("Signer() returned a key with an error")
			}
		})
	}
}

var (
	errAny   = errors.New("any error")
	errStore = errors.New("db down")
)

func TestRingList(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: t0}
	r := NewRing(testMaster(t, 1), clock.Now)
	ks := &memKeys{}
	if _, err := r.Ensure(ctx, ks); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	k2, err := r.Rotate(ctx, ks, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.List(ctx, ks)
	if err != nil {
		t.Fatalf("List() = %v", err)
	}
	k1 := ks.keys[0]
	want := []*store.SigningKey{
		{ID: k2.ID, Algorithm: "EdDSA", PublicKey: k2.PublicKey, CreatedAt: t0.Add(time.Hour)},
		{ID: k1.ID, Algorithm: "EdDSA", PublicKey: k1.PublicKey, CreatedAt: t0,
			RetiredAt: t0.Add(time.Hour), PublishEnd: t0.Add(time.Hour + 15*time.Minute)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List() mismatch (-want +got):\n%s", diff)
	}
	if len(ks.keys[0].SealedKey) == 0 {
		t.Error("List() removed the sealed key from the store")
	}
}

func TestRingJWKSJSON(t *testing.T) {
	ctx := context.Background()
	r := NewRing(testMaster(t, 1), func() time.Time { return t0 })
	ks := &memKeys{}
	if _, err := r.Ensure(ctx, ks); err != nil {
		t.Fatal(err)
	}
	set, err := r.JWKS(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	k := ks.keys[0]
	want := `{"keys":[{"use":"sig","kty":"OKP","kid":"` + k.ID + `","crv":"Ed25519","alg":"EdDSA","x":"` +
		base64.RawURLEncoding.EncodeToString(k.PublicKey) + `"}]}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("JWKS JSON mismatch (-want +got):\n%s", diff)
	}
	var back jose.JSONWebKeySet
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("parsing JWKS JSON: %v", err)
	}
	if len(back.Keys) != 1 || !back.Keys[0].IsPublic() {
		t.Errorf("JWKS JSON does not round-trip to one public key: %+v", back)
	}
	t.Run("ok/empty-is-array", func(t *testing.T) {
		set, err := r.JWKS(ctx, &memKeys{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(set)
		if diff := cmp.Diff(`{"keys":[]}`, string(b)); diff != "" {
			t.Errorf("empty JWKS JSON mismatch (-want +got):\n%s", diff)
		}
	})
}
