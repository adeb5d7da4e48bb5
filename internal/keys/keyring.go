package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// keyIDLabel separates the key id from any other use of the key.
const keyIDLabel = "stepgate master key id v1"

// keyID names a master key without revealing it: "mk_" and the first 8
// bytes of HMAC-SHA256(key, label), in hex. Knowing it tells nothing of the
// key; two keys have the same id with probability 2^-64.
func keyID(key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(keyIDLabel))
	return "mk_" + hex.EncodeToString(mac.Sum(nil)[:8])
}

// ID names this master key, so that what it sealed can record which key
// sealed it, and a rotation can find what is still sealed under an older
// one. It is not secret.
func (m *Master) ID() string { return m.id }

// WithPrevious returns a master key that seals with m and opens with m or
// any of prev: the keyring of a master key rotation, during which data
// sealed under the old key is re-sealed under the new one (stepgate
// secrets rotate-master) while the server keeps opening both. Keys with
// m's id, or repeated, are left out.
func (m *Master) WithPrevious(prev ...*Master) *Master {
	out := &Master{aead: m.aead, id: m.id}
	seen := map[string]bool{m.id: true}
	for _, p := range append(append([]*Master(nil), m.previous...), prev...) {
		if p == nil || seen[p.id] {
			continue
		}
		seen[p.id] = true
		out.previous = append(out.previous, &Master{aead: p.aead, id: p.id})
	}
	return out
}

// Key returns the key of the ring with this id: m itself or one of its
// previous keys. The key returned seals and opens with that key only.
func (m *Master) Key(id string) (*Master, error) {
	if id == m.id {
		return &Master{aead: m.aead, id: m.id}, nil
	}
	for _, p := range m.previous {
		if p.id == id {
			return p, nil
		}
	}
	return nil, fmt.Errorf("master key %s is not loaded (server.master_key_file, server.previous_master_key_files): %w", id, ErrDecrypt)
}

// IDs lists the ids of the keys m opens with: its own first.
func (m *Master) IDs() []string {
	out := []string{m.id}
	for _, p := range m.previous {
		out = append(out, p.id)
	}
	return out
}
