package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// ErrDecrypt is returned (wrapped) when sealed data does not open: it was
// altered, truncated, sealed under another master key or with other
// associated data, or is in an unknown format. The message never says which.
var ErrDecrypt = errors.New("keys: cannot decrypt")

const (
	masterKeySize = 32 // AES-256
	// sealVersion1 is AES-256-GCM with a 12-byte random nonce:
	// version(1) || nonce(12) || ciphertext || tag(16).
	sealVersion1 = 1
	nonceSize    = 12
	tagSize      = 16
	// maxMasterFile bounds what LoadMaster reads: the key is 44 base64
	// characters plus a line ending, so anything much larger is not a key.
	maxMasterFile = 1024
)

// Master encrypts secrets at rest with AES-256-GCM. It holds only the
// expanded cipher, never prints its key (fmt, slog) and is safe for
// concurrent use.
type Master struct {
	aead cipher.AEAD
	// id names the key without revealing it (see ID).
	id string
	// previous are older master keys that still open what they sealed
	// during a rotation (WithPrevious); they never seal.
	previous []*Master
}

// LoadMaster reads a master key file: 32 random bytes, standard base64, on
// one line. It refuses a file that group or others can read or write, and a
// key of the wrong length. Errors name the path, never the content.
func LoadMaster(path string) (*Master, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening master key file: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the mode checked is that of the
	// file read.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading master key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s is accessible by group or others (mode %04o); run `chmod 600 %s`", path, perm, path)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxMasterFile+1))
	defer clear(raw)
	if err != nil {
		return nil, fmt.Errorf("reading master key file %s: %w", path, err)
	}
	if len(raw) > maxMasterFile {
		return nil, fmt.Errorf("master key file %s is too large to be a key (want 32 bytes in base64 on one line)", path)
	}
	text := bytes.TrimSpace(raw)
	if bytes.ContainsAny(text, "\r\n") {
		return nil, fmt.Errorf("master key file %s has more than one line (want 32 bytes in base64 on one line)", path)
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	defer clear(key)
	n, err := base64.StdEncoding.Strict().Decode(key, text)
	if err != nil {
		// The decoder's error carries only an offset, but say it plainly.
		return nil, fmt.Errorf("master key file %s is not valid base64 (want 32 bytes in base64 on one line)", path)
	}
	if n != masterKeySize {
		return nil, fmt.Errorf("master key file %s holds a %d-byte key, want %d bytes", path, n, masterKeySize)
	}
	return newMaster(key[:n])
}

// GenerateMasterFile writes a new random master key to path with mode 0600.
// It never overwrites: an existing file is an error.
func GenerateMasterFile(path string) error {
	key := make([]byte, masterKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generating master key: %w", err)
	}
	line := make([]byte, base64.StdEncoding.EncodedLen(len(key))+1)
	defer clear(line)
	base64.StdEncoding.Encode(line, key)
	line[len(line)-1] = '\n'

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating master key file: %w", err)
	}
	// The umask can only remove bits, but make the mode exactly 0600 anyway.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(line)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // we created it; do not leave a partial key behind
		return fmt.Errorf("writing master key file %s: %w", path, err)
	}
	return nil
}

// NewMaster makes a Master from a raw 32-byte key (for tests and for keys
// that come from elsewhere than a file). The caller may clear key afterwards.
func NewMaster(key []byte) (*Master, error) {
	if len(key) != masterKeySize {
		return nil, fmt.Errorf("master key is %d bytes, want %d", len(key), masterKeySize)
	}
	return newMaster(key)
}

func newMaster(key []byte) (*Master, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("creating master cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating master cipher: %w", err)
	}
	return &Master{aead: aead, id: keyID(key)}, nil
}

// Seal encrypts and authenticates plaintext, bound to aad (which is not
// stored: Open needs the same aad). The result is version(1) || nonce(12) ||
// ciphertext || tag(16); the version byte is authenticated too.
func (m *Master) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = sealVersion1
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("sealing: reading random nonce: %w", err)
	}
	return m.aead.Seal(out, out[1:1+nonceSize], plaintext, versionedAAD(sealVersion1, aad)), nil
}

// Open decrypts what Seal returned. Any change to sealed, another master key
// or another aad gives an error that wraps ErrDecrypt.
func (m *Master) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("opening sealed data: too short (%d bytes): %w", len(sealed), ErrDecrypt)
	}
	if sealed[0] != sealVersion1 {
		return nil, fmt.Errorf("opening sealed data: unknown format version %d: %w", sealed[0], ErrDecrypt)
	}
	nonce, ct := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	pt, err := m.aead.Open(nil, nonce, ct, versionedAAD(sealed[0], aad))
	for _, p := range m.previous {
		if err == nil {
			break
		}
		pt, err = p.aead.Open(nil, nonce, ct, versionedAAD(sealed[0], aad))
	}
	if err != nil {
		return nil, fmt.Errorf("opening sealed data: authentication failed (tampered data, wrong master key or wrong context): %w", ErrDecrypt)
	}
	return pt, nil
}

func versionedAAD(version byte, aad []byte) []byte {
	b := make([]byte, 0, 1+len(aad))
	return append(append(b, version), aad...)
}

// LogValue keeps the key out of structured logs.
func (m *Master) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String keeps the key out of fmt's %v and %s.
func (m *Master) String() string { return "[redacted]" }

// GoString keeps the key out of fmt's %#v.
func (m *Master) GoString() string { return "keys.Master{[redacted]}" }

// Format keeps the key out of every other fmt verb (%d, %x on the struct...).
func (m *Master) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, m.GoString())
		return
	}
	io.WriteString(f, "[redacted]")
}
