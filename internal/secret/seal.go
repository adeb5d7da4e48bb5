package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// ErrSealed says a sealed secret does not open: it was altered, moved to
// another name, version or workspace, or sealed under a master key that is
// not loaded. The message never says which.
var ErrSealed = errors.New("secret: sealed value does not open")

const (
	dataKeySize = 32 // AES-256
	nonceSize   = 12
	// sealFormat is the first byte of a sealed value: AES-256-GCM with a
	// 12-byte random nonce, version(1) || nonce(12) || ciphertext || tag.
	sealFormat = 1
)

// aad is the associated data of the seals of one version: a purpose ("data
// key" or "value") and the name, version and workspace, each length-prefixed
// so that no two different tuples encode alike.
func aad(purpose string, name string, version int, workspace string) []byte {
	var b []byte
	for _, s := range []string{"stepgate secret v1", purpose, name, strconv.Itoa(version), workspace} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// seal fills the sealed parts of v (Name, Version and Workspace set) with
// value under a fresh data key, itself sealed under master.
func seal(master *keys.Master, v *store.SecretVersion, value []byte) error {
	dk := make([]byte, dataKeySize)
	defer clear(dk)
	if _, err := rand.Read(dk); err != nil {
		return fmt.Errorf("sealing secret %s: reading random data key: %w", v.Name, err)
	}
	sealedValue, err := sealWith(dk, value, aad("value", v.Name, v.Version, v.Workspace))
	if err != nil {
		return fmt.Errorf("sealing secret %s: %w", v.Name, err)
	}
	sealedKey, err := master.Seal(dk, aad("data key", v.Name, v.Version, v.Workspace))
	if err != nil {
		return fmt.Errorf("sealing data key of secret %s: %w", v.Name, err)
	}
	v.KeyID, v.SealedKey, v.SealedValue = master.ID(), sealedKey, sealedValue
	return nil
}

// openDataKey opens the data key of v with the master key of v.KeyID,
// among those ring holds.
func openDataKey(ring *keys.Master, v *store.SecretVersion) ([]byte, error) {
	m, err := ring.Key(v.KeyID)
	if err != nil {
		return nil, fmt.Errorf("opening version %d of secret %s: %w: %w", v.Version, v.Name, ErrSealed, err)
	}
	dk, err := m.Open(v.SealedKey, aad("data key", v.Name, v.Version, v.Workspace))
	if err != nil || len(dk) != dataKeySize {
		clear(dk)
		return nil, fmt.Errorf("opening data key of version %d of secret %s: %w", v.Version, v.Name, ErrSealed)
	}
	return dk, nil
}

// open returns the value of v. The caller clears it once used.
func open(ring *keys.Master, v *store.SecretVersion) ([]byte, error) {
	if v.Deleted {
		return nil, fmt.Errorf("opening secret %s: version %d is a removal, it has no value", v.Name, v.Version)
	}
	dk, err := openDataKey(ring, v)
	if err != nil {
		return nil, err
	}
	defer clear(dk)
	value, err := openWith(dk, v.SealedValue, aad("value", v.Name, v.Version, v.Workspace))
	if err != nil {
		return nil, fmt.Errorf("opening version %d of secret %s: %w", v.Version, v.Name, ErrSealed)
	}
	return value, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func sealWith(key, plaintext, ad []byte) ([]byte, error) {
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+aead.Overhead())
	out[0] = sealFormat
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+nonceSize], plaintext, append([]byte{sealFormat}, ad...)), nil
}

func openWith(key, sealed, ad []byte) ([]byte, error) {
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+nonceSize+aead.Overhead() || sealed[0] != sealFormat {
		return nil, ErrSealed
	}
	return aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], append([]byte{sealFormat}, ad...))
}
