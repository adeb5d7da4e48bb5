package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stepgate/stepgate/internal/store"
)

// Algorithm is the JOSE algorithm of every key in the ring.
const Algorithm = "EdDSA"

// publishGrace is how long a retired key stays in the JWKS beyond the
// longest lifetime of a grant it signed: room for clock skew and for
// verifiers that fetched the JWKS a little late.
const publishGrace = 5 * time.Minute

// ErrNoSigningKey is returned when the ring has no key that may sign (none
// was created, or all are retired). Ensure creates one.
var ErrNoSigningKey = errors.New("keys: no signing key")

// KeyStore is what Ring needs of the store (store.Tx satisfies it).
type KeyStore interface {
	AddSigningKey(ctx context.Context, k *store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]*store.SigningKey, error)
	UpdateSigningKey(ctx context.Context, k *store.SigningKey) error
}

// Ring manages Ed25519 grant-signing keys: private keys sealed under Master
// (aad = the kid), kid = RFC 7638 JWK thumbprint (base64url SHA-256).
//
// Ring keeps no state of its own: every call reads the store it is given,
// so several replicas sharing a database agree on the keys. Run Ensure and
// Rotate inside a transaction.
type Ring struct {
	master *Master
	now    func() time.Time
}

// NewRing returns a Ring sealing keys under m. now is the clock; nil means
// time.Now.
func NewRing(m *Master, now func() time.Time) *Ring {
	if now == nil {
		now = time.Now
	}
	return &Ring{master: m, now: now}
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key,
// base64url (no padding) of its SHA-256: the kid of that key.
func Thumbprint(pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("computing key thumbprint: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// Ensure creates a signing key when the ring has none that may sign. It
// reports whether it created one.
func (r *Ring) Ensure(ctx context.Context, ks KeyStore) (created bool, err error) {
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("listing signing keys: %w", err)
	}
	if current(all) != nil {
		return false, nil
	}
	if _, err := r.create(ctx, ks, r.stamp()); err != nil {
		return false, err
	}
	return true, nil
}

// Rotate creates a new key, which signs from now on, and retires every key
// that was signing: RetiredAt = now, PublishEnd = now + grantTTL + 5 minutes,
// so the grants they signed still verify until they expire. grantTTL is the
// longest lifetime of a grant. The key returned has no SealedKey.
func (r *Ring) Rotate(ctx context.Context, ks KeyStore, grantTTL time.Duration) (*store.SigningKey, error) {
	if grantTTL <= 0 {
		return nil, fmt.Errorf("rotating signing keys: grant TTL %v is not positive", grantTTL)
	}
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	now := r.stamp()
	// Add the new key first: if the store is not transactional, there is
	// never a moment without a key that may sign.
	k, err := r.create(ctx, ks, now)
	if err != nil {
		return nil, err
	}
	for _, old := range all {
		if !old.RetiredAt.IsZero() || old.ID == k.ID {
			continue
		}
		upd := *old
		upd.RetiredAt = now
		upd.PublishEnd = now.Add(grantTTL + publishGrace)
		if err := ks.UpdateSigningKey(ctx, &upd); err != nil {
			return nil, fmt.Errorf("retiring signing key %s: %w", old.ID, err)
		}
	}
	return withoutSecret(k), nil
}

// Signer returns the newest key that is not retired, opened: the private key
// exists in clear only in the memory returned. It returns ErrNoSigningKey
// when there is none.
func (r *Ring) Signer(ctx context.Context, ks KeyStore) (kid string, key ed25519.PrivateKey, err error) {
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("listing signing keys: %w", err)
	}
	k := current(all)
	if k == nil {
		return "", nil, ErrNoSigningKey
	}
	if k.Algorithm != Algorithm {
		return "", nil, fmt.Errorf("signing key %s has algorithm %q, want %s", k.ID, k.Algorithm, Algorithm)
	}
	seed, err := r.master.Open(k.SealedKey, []byte(k.ID))
	defer clear(seed)
	if err != nil {
		return "", nil, fmt.Errorf("opening signing key %s: %w", k.ID, err)
	}
	if len(seed) != ed25519.SeedSize {
		return "", nil, fmt.Errorf("opening signing key %s: sealed key is not an Ed25519 seed", k.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	// The record must be self-consistent: the sealed key belongs to the
	// stored public key, and the kid is that key's thumbprint.
	pub := priv.Public().(ed25519.PublicKey)
	if subtle.ConstantTimeCompare(pub, k.PublicKey) != 1 {
		clear(priv)
		return "", nil, fmt.Errorf("signing key %s: sealed private key does not match the stored public key", k.ID)
	}
	if tp, err := Thumbprint(pub); err != nil || tp != k.ID {
		clear(priv)
		return "", nil, fmt.Errorf("signing key %s: id is not the thumbprint of its public key", k.ID)
	}
	return k.ID, priv, nil
}

// JWKS returns the public keys to publish: those whose PublishEnd is zero or
// after now, newest first, each with alg EdDSA, use sig and its kid.
func (r *Ring) JWKS(ctx context.Context, ks KeyStore) (jose.JSONWebKeySet, error) {
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("listing signing keys: %w", err)
	}
	now := r.now()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range newestFirst(all) {
		if !k.PublishEnd.IsZero() && !k.PublishEnd.After(now) {
			continue
		}
		if k.Algorithm != Algorithm || len(k.PublicKey) != ed25519.PublicKeySize {
			return jose.JSONWebKeySet{}, fmt.Errorf("signing key %s is not an Ed25519 key", k.ID)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       ed25519.PublicKey(slices.Clone(k.PublicKey)),
			KeyID:     k.ID,
			Algorithm: Algorithm,
			Use:       "sig",
		})
	}
	return set, nil
}

// List returns every key, newest first, for `stepgate keys list`. The sealed
// private keys are left out (SealedKey is nil).
func (r *Ring) List(ctx context.Context, ks KeyStore) ([]*store.SigningKey, error) {
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	out := newestFirst(all)
	for i, k := range out {
		out[i] = withoutSecret(k)
	}
	return out, nil
}

// create generates, seals and stores a new key.
func (r *Ring) create(ctx context.Context, ks KeyStore, now time.Time) (*store.SigningKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	defer clear(priv)
	pub := slices.Clone(priv.Public().(ed25519.PublicKey))
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	sealed, err := r.master.Seal(seed, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("sealing signing key %s: %w", kid, err)
	}
	k := &store.SigningKey{
		ID:        kid,
		Algorithm: Algorithm,
		PublicKey: pub,
		SealedKey: sealed,
		CreatedAt: now,
	}
	if err := ks.AddSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("storing signing key %s: %w", kid, err)
	}
	return k, nil
}

// stamp is now, in UTC, to the microsecond (what every backend keeps), with
// no monotonic reading.
func (r *Ring) stamp() time.Time { return r.now().UTC().Truncate(time.Microsecond) }

// current is the newest key that is not retired, or nil.
func current(all []*store.SigningKey) *store.SigningKey {
	for _, k := range newestFirst(all) {
		if k.RetiredAt.IsZero() {
			return k
		}
	}
	return nil
}

// newestFirst sorts a copy of the slice by CreatedAt, newest first; equal
// times (two replicas creating a key at once) are ordered by kid so every
// replica picks the same one.
func newestFirst(all []*store.SigningKey) []*store.SigningKey {
	out := slices.Clone(all)
	slices.SortStableFunc(out, func(a, b *store.SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

func withoutSecret(k *store.SigningKey) *store.SigningKey {
	c := *k
	c.PublicKey = slices.Clone(k.PublicKey)
	c.SealedKey = nil
	return &c
}
