package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Checkpoint is a signed statement of the head of the chain: "the event at
// Seq had the hash Hash", made at Time and signed with the Ed25519
// checkpoint key KeyID. Because every hash covers the one before it, a
// checkpoint vouches for the whole chain up to Seq: removing, editing or
// re-sealing any event up to Seq changes the hash at Seq, and the
// signature cannot be made again without the private key, which is sealed
// under the master key, outside the reach of someone who holds only the
// database.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	Time      time.Time `json:"time"`
	KeyID     string    `json:"kid"`
	Signature []byte    `json:"sig"` // Ed25519 over SignedBytes; base64 in JSON
}

// checkpointContext names what is signed, so that a signature over a
// checkpoint can never be taken for a signature over anything else.
const checkpointContext = "stepgate.audit.checkpoint.v1"

// signedCheckpoint is the canonical encoding a checkpoint signature
// covers: fixed field order, the time in UTC with nanoseconds.
type signedCheckpoint struct {
	Context string `json:"context"`
	Seq     int64  `json:"seq"`
	Hash    string `json:"hash"`
	Time    string `json:"time"`
	KeyID   string `json:"kid"`
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ErrBadCheckpoint says a checkpoint's signature does not verify, or the
// checkpoint is malformed.
var ErrBadCheckpoint = errors.New("audit checkpoint invalid")

// SignedBytes returns the bytes of c that its signature covers
// (everything but the signature).
func (c *Checkpoint) SignedBytes() ([]byte, error) {
	switch {
	case c.Seq < 1:
		return nil, fmt.Errorf("%w: sequence %d is not positive", ErrBadCheckpoint, c.Seq)
	case !hexHash.MatchString(c.Hash):
		return nil, fmt.Errorf("%w at sequence %d: hash %q is not a lower-case hex SHA-256", ErrBadCheckpoint, c.Seq, c.Hash)
	case c.KeyID == "":
		return nil, fmt.Errorf("%w at sequence %d: no key id", ErrBadCheckpoint, c.Seq)
	case c.Time.IsZero():
		return nil, fmt.Errorf("%w at sequence %d: no time", ErrBadCheckpoint, c.Seq)
	}
	return json.Marshal(signedCheckpoint{
		Context: checkpointContext,
		Seq:     c.Seq,
		Hash:    c.Hash,
		Time:    c.Time.UTC().Format(time.RFC3339Nano),
		KeyID:   c.KeyID,
	})
}

// SignCheckpoint sets c.Signature with priv, the key c.KeyID names.
func SignCheckpoint(c *Checkpoint, priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("signing audit checkpoint: the key is not an Ed25519 private key")
	}
	b, err := c.SignedBytes()
	if err != nil {
		return err
	}
	c.Signature = ed25519.Sign(priv, b)
	return nil
}

// VerifyCheckpoint checks c's signature with pub, the public key of
// c.KeyID. It returns an error wrapping ErrBadCheckpoint when it does not
// verify.
func VerifyCheckpoint(c *Checkpoint, pub ed25519.PublicKey) error {
	b, err := c.SignedBytes()
	if err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w at sequence %d: key %s is not an Ed25519 public key", ErrBadCheckpoint, c.Seq, c.KeyID)
	}
	if len(c.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, b, c.Signature) {
		return fmt.Errorf("%w at sequence %d: the signature does not verify with key %s", ErrBadCheckpoint, c.Seq, c.KeyID)
	}
	return nil
}

// Equal reports whether c and o state the same thing with the same
// signature.
func (c *Checkpoint) Equal(o *Checkpoint) bool {
	return c.Seq == o.Seq && c.Hash == o.Hash && c.Time.Equal(o.Time) && c.KeyID == o.KeyID && string(c.Signature) == string(o.Signature)
}
