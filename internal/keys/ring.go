package keys

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stepgate/stepgate/internal/store"
)

// JOSE algorithms of grant-signing keys.
const (
	// AlgEdDSA is Ed25519 (RFC 8037): the default.
	AlgEdDSA = "EdDSA"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256 on an RSA 3072 key: what
	// cloud workload identity federation accepts (AWS STS, Google Cloud,
	// Azure), none of which accepts EdDSA.
	AlgRS256 = "RS256"
)

// Algorithm is the default algorithm of new keys.
const Algorithm = AlgEdDSA

// rsaBits is the size of the RSA keys the ring creates; minRSABits is the
// smallest it opens or publishes.
const (
	rsaBits    = 3072
	minRSABits = 2048
)

// CheckAlgorithm returns an error unless alg is one the ring can create
// keys for (EdDSA or RS256).
func CheckAlgorithm(alg string) error {
	switch alg {
	case AlgEdDSA, AlgRS256:
		return nil
	}
	return fmt.Errorf("signing algorithm %q is not %s or %s", alg, AlgEdDSA, AlgRS256)
}

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

// Ring manages grant-signing keys, Ed25519 (EdDSA) or RSA 3072 (RS256):
// private keys sealed under Master (aad = the kid), kid = RFC 7638 JWK
// thumbprint (base64url SHA-256). The ring's algorithm (WithAlgorithm) is
// that of the keys Ensure and Rotate create; keys of either algorithm sign
// and are published, so rotating from one algorithm to the other keeps the
// grants the old key signed verifiable until they expire.
//
// Ring keeps no state of its own: every call reads the store it is given,
// so several replicas sharing a database agree on the keys. Run Ensure and
// Rotate inside a transaction.
type Ring struct {
	master *Master
	now    func() time.Time
	alg    string
}

// Option configures a Ring.
type Option func(*Ring)

// WithAlgorithm sets the algorithm of the keys the ring creates: EdDSA
// (the default, also for "") or RS256. Ensure and Rotate fail for any other
// value (see CheckAlgorithm).
func WithAlgorithm(alg string) Option {
	return func(r *Ring) {
		if alg != "" {
			r.alg = alg
		}
	}
}

// NewRing returns a Ring sealing keys under m. now is the clock; nil means
// time.Now.
func NewRing(m *Master, now func() time.Time, opts ...Option) *Ring {
	if now == nil {
		now = time.Now
	}
	r := &Ring{master: m, now: now, alg: Algorithm}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Algorithm is the algorithm of the keys the ring creates.
func (r *Ring) Algorithm() string { return r.alg }

// Key is an opened signing key.
type Key struct {
	ID        string        // the kid
	Algorithm string        // EdDSA or RS256
	Signer    crypto.Signer // ed25519.PrivateKey or *rsa.PrivateKey
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key,
// base64url (no padding) of its SHA-256: the kid of that key.
func Thumbprint(pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("computing key thumbprint: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	return jwkThumbprint(pub)
}

// KeyThumbprint is Thumbprint for an Ed25519 or RSA public key.
func KeyThumbprint(pub crypto.PublicKey) (string, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return Thumbprint(p)
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return "", errors.New("computing key thumbprint: empty RSA key")
		}
		return jwkThumbprint(p)
	}
	return "", fmt.Errorf("computing key thumbprint: unsupported key type %T", pub)
}

// jwkThumbprint is the RFC 7638 thumbprint of pub, base64url (no padding).
func jwkThumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// Ensure creates a signing key (of the ring's algorithm) when the ring has
// none that may sign. It reports whether it created one. A current key of
// another algorithm is kept: Rotate switches algorithms.
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

// Rotate creates a new key of the ring's algorithm (whatever that of the
// current key), which signs from now on, and retires every key
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
		if !old.RetiredAt.IsZero() { // all was read before k was added
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
// when there is none. The key is an ed25519.PrivateKey (EdDSA) or an
// *rsa.PrivateKey (RS256); SigningKey also names the algorithm.
func (r *Ring) Signer(ctx context.Context, ks KeyStore) (kid string, key crypto.Signer, err error) {
	k, err := r.SigningKey(ctx, ks)
	if err != nil {
		return "", nil, err
	}
	return k.ID, k.Signer, nil
}

// SigningKey is Signer returning the key with its algorithm.
func (r *Ring) SigningKey(ctx context.Context, ks KeyStore) (*Key, error) {
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing signing keys: %w", err)
	}
	k := current(all)
	if k == nil {
		return nil, ErrNoSigningKey
	}
	var priv crypto.Signer
	switch k.Algorithm {
	case AlgEdDSA:
		priv, err = r.openEd25519(k)
	case AlgRS256:
		priv, err = r.openRSA(k)
	default:
		err = unknownAlgorithm(k)
	}
	if err != nil {
		return nil, err
	}
	return &Key{ID: k.ID, Algorithm: k.Algorithm, Signer: priv}, nil
}

// unknownAlgorithm is the error of a stored key of neither algorithm.
func unknownAlgorithm(k *store.SigningKey) error {
	return fmt.Errorf("signing key %s has algorithm %q, want %s or %s", k.ID, k.Algorithm, AlgEdDSA, AlgRS256)
}

func (r *Ring) openEd25519(k *store.SigningKey) (ed25519.PrivateKey, error) {
	seed, err := r.master.Open(k.SealedKey, []byte(k.ID))
	defer clear(seed)
	if err != nil {
		return nil, fmt.Errorf("opening signing key %s: %w", k.ID, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("opening signing key %s: sealed key is not an Ed25519 seed", k.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	// The record must be self-consistent: the sealed key belongs to the
	// stored public key, and the kid is that key's thumbprint.
	pub := priv.Public().(ed25519.PublicKey)
	if subtle.ConstantTimeCompare(pub, k.PublicKey) != 1 {
		clear(priv)
		return nil, fmt.Errorf("signing key %s: sealed private key does not match the stored public key", k.ID)
	}
	if tp, err := Thumbprint(pub); err != nil || tp != k.ID {
		clear(priv)
		return nil, fmt.Errorf("signing key %s: id is not the thumbprint of its public key", k.ID)
	}
	return priv, nil
}

// openRSA opens an RS256 key: SealedKey seals the PKCS #8 DER of the
// private key, PublicKey is the PKIX DER of the public key.
func (r *Ring) openRSA(k *store.SigningKey) (*rsa.PrivateKey, error) {
	der, err := r.master.Open(k.SealedKey, []byte(k.ID))
	defer clear(der)
	if err != nil {
		return nil, fmt.Errorf("opening signing key %s: %w", k.ID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("opening signing key %s: sealed key is not a PKCS #8 key", k.ID)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("opening signing key %s: sealed key is not an RSA key", k.ID)
	}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("opening signing key %s: %w", k.ID, err)
	}
	pub, err := rsaPublic(k)
	if err != nil {
		return nil, err
	}
	if !priv.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("signing key %s: sealed private key does not match the stored public key", k.ID)
	}
	if tp, err := KeyThumbprint(pub); err != nil || tp != k.ID {
		return nil, fmt.Errorf("signing key %s: id is not the thumbprint of its public key", k.ID)
	}
	return priv, nil
}

// rsaPublic decodes the stored public key of an RS256 key.
func rsaPublic(k *store.SigningKey) (*rsa.PublicKey, error) {
	parsed, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: stored public key is not PKIX DER: %w", k.ID, err)
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: stored public key is not an RSA key", k.ID)
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("signing key %s: RSA key of %d bits, want at least %d", k.ID, pub.N.BitLen(), minRSABits)
	}
	return pub, nil
}

// publicKey decodes the stored public key of k by its algorithm.
func publicKey(k *store.SigningKey) (crypto.PublicKey, error) {
	switch k.Algorithm {
	case AlgEdDSA:
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signing key %s is not an Ed25519 key", k.ID)
		}
		return ed25519.PublicKey(slices.Clone(k.PublicKey)), nil
	case AlgRS256:
		return rsaPublic(k)
	}
	return nil, unknownAlgorithm(k)
}

// JWKS returns the public keys to publish: those whose PublishEnd is zero or
// after now, newest first, each with its alg (EdDSA or RS256), use sig and
// its kid.
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
		pub, err := publicKey(k)
		if err != nil {
			return jose.JSONWebKeySet{}, err
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       pub,
			KeyID:     k.ID,
			Algorithm: k.Algorithm,
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

// create generates, seals and stores a new key of the ring's algorithm.
func (r *Ring) create(ctx context.Context, ks KeyStore, now time.Time) (*store.SigningKey, error) {
	if err := CheckAlgorithm(r.alg); err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	var (
		kid    string
		pub    []byte
		secret []byte // what is sealed
		err    error
	)
	if r.alg == AlgRS256 {
		kid, pub, secret, err = newRSA()
	} else {
		kid, pub, secret, err = newEd25519()
	}
	defer clear(secret)
	if err != nil {
		return nil, err
	}
	sealed, err := r.master.Seal(secret, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("sealing signing key %s: %w", kid, err)
	}
	k := &store.SigningKey{
		ID:        kid,
		Algorithm: r.alg,
		PublicKey: pub,
		SealedKey: sealed,
		CreatedAt: now,
	}
	if err := ks.AddSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("storing signing key %s: %w", kid, err)
	}
	return k, nil
}

// newEd25519 returns the kid, public key and seed of a new Ed25519 key.
func newEd25519() (kid string, pub, seed []byte, err error) {
	seed = make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return "", nil, seed, fmt.Errorf("generating signing key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	defer clear(priv)
	pub = slices.Clone(priv.Public().(ed25519.PublicKey))
	kid, err = Thumbprint(pub)
	if err != nil {
		return "", nil, seed, err
	}
	return kid, pub, seed, nil
}

// newRSA returns the kid, PKIX DER public key and PKCS #8 DER private key
// of a new RSA 3072 key.
func newRSA() (kid string, pub, der []byte, err error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return "", nil, nil, fmt.Errorf("generating signing key: %w", err)
	}
	der, err = x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", nil, nil, fmt.Errorf("encoding signing key: %w", err)
	}
	pub, err = x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return "", nil, der, fmt.Errorf("encoding signing key: %w", err)
	}
	kid, err = KeyThumbprint(&priv.PublicKey)
	if err != nil {
		return "", nil, der, err
	}
	return kid, pub, der, nil
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
