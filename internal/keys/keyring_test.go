package keys

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func byteMaster(t *testing.T, b byte) *Master {
	t.Helper()
	m, err := NewMaster(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMasterID(t *testing.T) {
	a, a2, b := byteMaster(t, 1), byteMaster(t, 1), byteMaster(t, 2)
	if a.ID() != a2.ID() {
		t.Errorf("ID() of one key = %s and %s, want the same", a.ID(), a2.ID())
	}
	if a.ID() == b.ID() {
		t.Errorf("ID() of two keys = %s for both, want different ids", a.ID())
	}
	if !strings.HasPrefix(a.ID(), "mk_") || len(a.ID()) != 3+16 {
		t.Errorf("ID() = %q, want mk_ and 16 hex digits", a.ID())
	}
	if strings.Contains(a.ID(), "0101") {
		t.Errorf("ID() = %q shows the key's bytes", a.ID())
	}
}

func TestMasterWithPrevious(t *testing.T) {
	oldKey, newKey, other := byteMaster(t, 1), byteMaster(t, 2), byteMaster(t, 3)
	sealedOld, err := oldKey.Seal([]byte("under old"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	ring := newKey.WithPrevious(oldKey, nil, newKey, oldKey)
	if got, want := ring.IDs(), []string{newKey.ID(), oldKey.ID()}; !equal(got, want) {
		t.Errorf("IDs() = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		name   string
		m      *Master
		sealed []byte
		aad    string
		ok     bool
	}{
		{"ok/old-data-opens-during-the-rotation", ring, sealedOld, "aad", true},
		{"fail/old-data-with-another-aad", ring, sealedOld, "other", false},
		{"fail/new-key-alone", newKey, sealedOld, "aad", false},
		{"fail/another-ring", other.WithPrevious(newKey), sealedOld, "aad", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := tt.m.Open(tt.sealed, []byte(tt.aad))
			if tt.ok && (err != nil || string(pt) != "under old") {
				t.Fatalf("Open() = %q, %v, want the plaintext", pt, err)
			}
			if !tt.ok && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open() = %q, %v, want ErrDecrypt", pt, err)
			}
		})
	}
	// The ring seals with the new key only.
	sealed, err := ring.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldKey.Open(sealed, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("the old key opened what the ring sealed: %v", err)
	}
	if _, err := newKey.Open(sealed, nil); err != nil {
		t.Errorf("the new key did not open what the ring sealed: %v", err)
	}
	// Key picks one key by id, which opens with that key only.
	k, err := ring.Key(oldKey.ID())
	if err != nil {
		t.Fatalf("Key(old) = %v", err)
	}
	if _, err := k.Open(sealed, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Key(old) opened what the new key sealed: %v", err)
	}
	if _, err := ring.Key(other.ID()); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Key(not loaded) = %v, want ErrDecrypt", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
