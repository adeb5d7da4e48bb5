package totp

import (
	"bytes"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/keys"
)

func TestReseal(t *testing.T) {
	old, c, oldKey := newTest(t)
	cred, seed := enroll(t, old, c)
	newKey, err := keys.NewMaster(bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := New(newKey.WithPrevious(oldKey), "stepgate test", c.now).Reseal(cred); err != nil || !ok {
		t.Fatalf("Reseal() = %v, %v, want true", ok, err)
	}
	c.advance(30 * time.Second)
	if err := New(newKey, "stepgate test", c.now).Verify(cred, code(seed, c.now())); err != nil {
		t.Fatalf("Verify() with the new key alone after Reseal = %v", err)
	}
	c.advance(30 * time.Second)
	if err := New(oldKey, "stepgate test", c.now).Verify(cred, code(seed, c.now())); err == nil {
		t.Fatalf("Verify() with the old key after Reseal = nil, want an error")
	}
}
