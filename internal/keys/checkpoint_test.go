package keys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// memCheckpointKeys is an in-memory CheckpointKeyStore.
type memCheckpointKeys struct{ keys []*store.CheckpointKey }

func (m *memCheckpointKeys) AddCheckpointKey(_ context.Context, k *store.CheckpointKey) error {
	c := *k
	m.keys = append(m.keys, &c)
	return nil
}

func (m *memCheckpointKeys) ListCheckpointKeys(context.Context) ([]*store.CheckpointKey, error) {
	return m.keys, nil
}

func TestCheckpointKeys(t *testing.T) {
	ctx := t.Context()
	now := func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
	ck := NewCheckpointKeys(testMaster(t, 1), now)
	ks := &memCheckpointKeys{}
	if _, err := ck.Signer(ctx, ks); !errors.Is(err, ErrNoCheckpointKey) {
		t.Fatalf("Signer(no key) = %v, want ErrNoCheckpointKey", err)
	}
	kid, err := ck.Ensure(ctx, ks)
	if err != nil || kid == "" {
		t.Fatalf("Ensure() = %q, %v; want a new key", kid, err)
	}
	if again, err := ck.Ensure(ctx, ks); err != nil || again != "" || len(ks.keys) != 1 {
		t.Fatalf("Ensure() again = %q, %v (%d keys); want no new key", again, err, len(ks.keys))
	}
	k, err := ck.Signer(ctx, ks)
	if err != nil || k.ID != kid {
		t.Fatalf("Signer() = %v, %v; want key %s", k, err, kid)
	}
	if string(k.Private.Public().(ed25519.PublicKey)) != string(ks.keys[0].PublicKey) {
		t.Error("the opened key does not match the stored public key")
	}

	// A key added by someone who holds the database but not the master key:
	// sealed under another master, or a grant-signing key's blob (sealed
	// with its bare kid) moved into the checkpoint table. Neither is trusted.
	forged := &memCheckpointKeys{}
	if _, err := NewCheckpointKeys(testMaster(t, 2), now).Ensure(ctx, forged); err != nil {
		t.Fatal(err)
	}
	ks.keys = append(ks.keys, forged.keys[0])
	grants := &memKeys{}
	ring := NewRing(testMaster(t, 1), now)
	if _, err := ring.Ensure(ctx, grants); err != nil {
		t.Fatal(err)
	}
	g := grants.keys[0]
	ks.keys = append(ks.keys, &store.CheckpointKey{ID: g.ID, PublicKey: g.PublicKey, SealedKey: g.SealedKey, CreatedAt: g.CreatedAt})

	trusted, untrusted, err := ck.Trusted(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	if len(trusted) != 1 || trusted[kid] == nil {
		t.Errorf("Trusted() = %v, want only %s", trusted, kid)
	}
	for _, id := range []string{forged.keys[0].ID, g.ID} {
		if !errors.Is(untrusted[id], ErrDecrypt) {
			t.Errorf("Trusted(): key %s untrusted for %v, want ErrDecrypt", id, untrusted[id])
		}
	}
}

// TestCheckpointSignerSkipsForgedKeys: a newer key row that does not open
// under the master key is passed over, not used nor a reason to stop.
func TestCheckpointSignerSkipsForgedKeys(t *testing.T) {
	ctx := t.Context()
	ck := NewCheckpointKeys(testMaster(t, 1), func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) })
	ks := &memCheckpointKeys{}
	kid, err := ck.Ensure(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	forged := &memCheckpointKeys{}
	later := NewCheckpointKeys(testMaster(t, 2), func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) })
	if _, err := later.Ensure(ctx, forged); err != nil {
		t.Fatal(err)
	}
	ks.keys = append(ks.keys, forged.keys[0])
	k, err := ck.Signer(ctx, ks)
	if err != nil || k.ID != kid {
		t.Fatalf("Signer() = %v, %v; want the genuine key %s", k, err, kid)
	}
	ks.keys = ks.keys[1:]
	if _, err := ck.Signer(ctx, ks); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Signer(only a forged key) = %v, want ErrDecrypt", err)
	}
}
