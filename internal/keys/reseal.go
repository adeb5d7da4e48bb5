package keys

import (
	"context"
	"fmt"
)

// Reseal seals the private half of every grant-signing key again under
// the current master key (the ring's master, opening with its previous
// keys too: Master.WithPrevious), for a master key rotation. Keys the JWKS
// no longer publishes are skipped: they never sign again. It returns how
// many keys it re-sealed. Run it in a transaction.
func (r *Ring) Reseal(ctx context.Context, ks KeyStore) (int, error) {
	all, err := ks.ListSigningKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing signing keys: %w", err)
	}
	now := r.now()
	n := 0
	for _, k := range all {
		if !k.PublishEnd.IsZero() && now.After(k.PublishEnd) {
			continue
		}
		plain, err := r.master.Open(k.SealedKey, []byte(k.ID))
		if err != nil {
			return n, fmt.Errorf("opening signing key %s: %w", k.ID, err)
		}
		sealed, err := r.master.Seal(plain, []byte(k.ID))
		clear(plain)
		if err != nil {
			return n, fmt.Errorf("re-sealing signing key %s: %w", k.ID, err)
		}
		upd := *k
		upd.SealedKey = sealed
		if err := ks.UpdateSigningKey(ctx, &upd); err != nil {
			return n, fmt.Errorf("re-sealing signing key %s: %w", k.ID, err)
		}
		n++
	}
	return n, nil
}
