package keys

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestResealSigningKeys(t *testing.T) {
	ctx := context.Background()
	ks := &memKeys{}
	oldKey, newKey := byteMaster(t, 1), byteMaster(t, 2)
	if _, err := NewRing(oldKey, time.Now).Ensure(ctx, ks); err != nil {
		t.Fatal(err)
	}
	// The new key alone cannot sign with what the old one sealed.
	if _, _, err := NewRing(newKey, time.Now).Signer(ctx, ks); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Signer() with the new key alone = %v, want ErrDecrypt", err)
	}
	n, err := NewRing(newKey.WithPrevious(oldKey), time.Now).Reseal(ctx, ks)
	if err != nil || n != 1 {
		t.Fatalf("Reseal() = %d, %v, want 1", n, err)
	}
	if _, _, err := NewRing(newKey, time.Now).Signer(ctx, ks); err != nil {
		t.Fatalf("Signer() with the new key alone after Reseal = %v", err)
	}
	if _, _, err := NewRing(oldKey, time.Now).Signer(ctx, ks); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Signer() with the old key after Reseal = %v, want ErrDecrypt", err)
	}
}
