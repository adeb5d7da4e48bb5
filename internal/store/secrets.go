package store

import (
	"context"
	"time"
)

// SecretVersion is one version of a secret kept in stepgate's database. The
// value is sealed under a data key of its own (AES-256-GCM), and the data
// key under the master key whose id is KeyID; both seals bind the name,
// version and workspace as associated data (package secret). A tombstone
// (Deleted) has no sealed parts: it says that the secret was removed.
type SecretVersion struct {
	Name    string
	Version int
	// Workspace is the glob of the workspaces whose checks may name it.
	Workspace   string
	Description string
	// KeyID names the master key SealedKey is sealed under.
	KeyID       string
	SealedKey   []byte
	SealedValue []byte
	Deleted     bool
	CreatedAt   time.Time
	// CreatedBy is who wrote (or removed) this version.
	CreatedBy string
}

// CheckSecret is one secret a check would release: its name, and the
// environment variable the pipeline asked to receive it in (empty for
// `stepgate secrets get`).
type CheckSecret struct {
	Name string `json:"name"`
	Env  string `json:"env,omitempty"`
}

// SecretTx keeps sealed secrets and the secrets each check names.
type SecretTx interface {
	// AddSecretVersion stores v; ErrConflict when its name already has
	// that version.
	AddSecretVersion(ctx context.Context, v *SecretVersion) error
	// GetSecret returns the newest version of a secret, a tombstone
	// included; ErrNotFound when the name never had one.
	GetSecret(ctx context.Context, name string) (*SecretVersion, error)
	// GetSecretVersion returns one version; ErrNotFound when absent.
	GetSecretVersion(ctx context.Context, name string, version int) (*SecretVersion, error)
	// ListSecrets returns the newest version of every secret, tombstones
	// included, by name.
	ListSecrets(ctx context.Context) ([]*SecretVersion, error)
	// SecretsSealedUnder returns at most limit versions, not tombstones,
	// whose data key is sealed under a master key other than keyID, by
	// name then version.
	SecretsSealedUnder(ctx context.Context, notKeyID string, limit int) ([]*SecretVersion, error)
	// ResealSecret replaces the sealed data key of one version and its key
	// id, only while its key id is still oldKeyID; it reports whether it
	// did (false: another rotation got there first, or no such version).
	ResealSecret(ctx context.Context, name string, version int, oldKeyID, newKeyID string, sealedKey []byte) (bool, error)

	// PutCheckSecrets records the secrets a check names, in order;
	// ErrNotFound when the check does not exist.
	PutCheckSecrets(ctx context.Context, checkID string, secrets []CheckSecret) error
	// GetCheckSecrets returns them; nil when the check names none.
	GetCheckSecrets(ctx context.Context, checkID string) ([]CheckSecret, error)
}
