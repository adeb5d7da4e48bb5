package keys

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// CheckpointKeyStore is what the checkpoint keys need of the store
// (store.Tx satisfies it).
type CheckpointKeyStore interface {
	AddCheckpointKey(ctx context.Context, k *store.CheckpointKey) error
	ListCheckpointKeys(ctx context.Context) ([]*store.CheckpointKey, error)
}

// ErrNoCheckpointKey is returned when there is no checkpoint key yet;
// EnsureCheckpointKey creates one.
var ErrNoCheckpointKey = errors.New("keys: no checkpoint key")

// checkpointAAD is the associated data a checkpoint key is sealed with: it
// names the purpose, so that no other sealed key (a grant-signing key is
// sealed with its bare kid) opens as a checkpoint key, and the reverse.
func checkpointAAD(kid string) []byte { return []byte("stepgate audit checkpoint key\n" + kid) }

// CheckpointKeys are the Ed25519 keys that sign audit checkpoints, sealed
// under the master key as the grant-signing keys are (same Master, an
// associated data of their own), kept in the store's checkpoint key table
// and never published in the JWKS. Like Ring, it keeps no state: every call
// reads the store it is given.
type CheckpointKeys struct {
	master *Master
	now    func() time.Time
}

// NewCheckpointKeys returns the checkpoint keys sealed under m; now nil
// means time.Now.
func NewCheckpointKeys(m *Master, now func() time.Time) *CheckpointKeys {
	if now == nil {
		now = time.Now
	}
	return &CheckpointKeys{master: m, now: now}
}

// CheckpointKey is an opened checkpoint key.
type CheckpointKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// Ensure creates a checkpoint key when there is none, and returns the kid
// of the one created ("" when one existed). Run it in a transaction.
func (c *CheckpointKeys) Ensure(ctx context.Context, ks CheckpointKeyStore) (created string, err error) {
	all, err := ks.ListCheckpointKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("listing checkpoint keys: %w", err)
	}
	if len(all) > 0 {
		return "", nil
	}
	kid, pub, seed, err := newEd25519()
	defer clear(seed)
	if err != nil {
		return "", err
	}
	sealed, err := c.master.Seal(seed, checkpointAAD(kid))
	if err != nil {
		return "", fmt.Errorf("sealing checkpoint key %s: %w", kid, err)
	}
	k := &store.CheckpointKey{ID: kid, PublicKey: pub, SealedKey: sealed, CreatedAt: c.now().UTC().Truncate(time.Microsecond)}
	if err := ks.AddCheckpointKey(ctx, k); err != nil {
		return "", fmt.Errorf("storing checkpoint key %s: %w", kid, err)
	}
	return kid, nil
}

// Signer opens the newest checkpoint key that opens under the master key
// (a row someone added to the database without it is passed over). The
// private key is in clear only in the memory returned: clear it after use.
func (c *CheckpointKeys) Signer(ctx context.Context, ks CheckpointKeyStore) (*CheckpointKey, error) {
	all, err := ks.ListCheckpointKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing checkpoint keys: %w", err)
	}
	if len(all) == 0 {
		return nil, ErrNoCheckpointKey
	}
	all = slices.Clone(all)
	slices.SortFunc(all, func(a, b *store.CheckpointKey) int {
		if d := b.CreatedAt.Compare(a.CreatedAt); d != 0 {
			return d
		}
		return cmp.Compare(b.ID, a.ID)
	})
	var first error
	for _, k := range all {
		priv, err := c.open(k)
		if err == nil {
			return &CheckpointKey{ID: k.ID, Private: priv}, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// Trusted returns the public keys of the checkpoint keys that prove
// themselves: the sealed half opens under the master key, matches the
// stored public key, and the kid is its thumbprint. A key someone added to
// the database without the master key fails, and is returned in untrusted
// with the reason.
func (c *CheckpointKeys) Trusted(ctx context.Context, ks CheckpointKeyStore) (trusted map[string]ed25519.PublicKey, untrusted map[string]error, err error) {
	all, err := ks.ListCheckpointKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("listing checkpoint keys: %w", err)
	}
	trusted, untrusted = map[string]ed25519.PublicKey{}, map[string]error{}
	for _, k := range all {
		priv, err := c.open(k)
		if err != nil {
			untrusted[k.ID] = err
			continue
		}
		trusted[k.ID] = slices.Clone(priv.Public().(ed25519.PublicKey))
		clear(priv)
	}
	return trusted, untrusted, nil
}

// open unseals a checkpoint key and checks the record is self-consistent.
func (c *CheckpointKeys) open(k *store.CheckpointKey) (ed25519.PrivateKey, error) {
	seed, err := c.master.Open(k.SealedKey, checkpointAAD(k.ID))
	defer clear(seed)
	if err != nil {
		return nil, fmt.Errorf("opening checkpoint key %s: %w", k.ID, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("opening checkpoint key %s: sealed key is not an Ed25519 seed", k.ID)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	if subtle.ConstantTimeCompare(pub, k.PublicKey) != 1 {
		clear(priv)
		return nil, fmt.Errorf("checkpoint key %s: sealed private key does not match the stored public key", k.ID)
	}
	if tp, err := Thumbprint(pub); err != nil || tp != k.ID {
		clear(priv)
		return nil, fmt.Errorf("checkpoint key %s: id is not the thumbprint of its public key", k.ID)
	}
	return priv, nil
}

// CheckpointKeyResealer is what re-sealing checkpoint keys needs of the
// store (store.Tx satisfies it).
type CheckpointKeyResealer interface {
	ListCheckpointKeys(ctx context.Context) ([]*store.CheckpointKey, error)
	ResealCheckpointKey(ctx context.Context, id string, sealed []byte) error
}

// Reseal seals every checkpoint key again under the current master key
// (opening with its previous keys too: Master.WithPrevious), for a master
// key rotation: a server holding the new key alone must still be able to
// sign checkpoints, and audit verify to trust them. It returns how many
// keys it re-sealed. Run it in a transaction.
func (c *CheckpointKeys) Reseal(ctx context.Context, ks CheckpointKeyResealer) (int, error) {
	all, err := ks.ListCheckpointKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing checkpoint keys: %w", err)
	}
	n := 0
	for _, k := range all {
		seed, err := c.master.Open(k.SealedKey, checkpointAAD(k.ID))
		if err != nil {
			return n, fmt.Errorf("opening checkpoint key %s: %w", k.ID, err)
		}
		sealed, err := c.master.Seal(seed, checkpointAAD(k.ID))
		clear(seed)
		if err != nil {
			return n, fmt.Errorf("re-sealing checkpoint key %s: %w", k.ID, err)
		}
		if err := ks.ResealCheckpointKey(ctx, k.ID, sealed); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
