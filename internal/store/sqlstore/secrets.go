package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stepgate/stepgate/internal/store"
)

// Secrets.

const secretColumns = `name, version, workspace, description, key_id, sealed_key, sealed_value, deleted, created_at, created_by`

func scanSecret(r Rows) (*store.SecretVersion, error) {
	var v store.SecretVersion
	err := r.Scan(&v.Name, &v.Version, &v.Workspace, &v.Description, &v.KeyID, bytesDest{&v.SealedKey},
		bytesDest{&v.SealedValue}, &v.Deleted, timeDest{&v.CreatedAt}, &v.CreatedBy)
	return &v, err
}

// AddSecretVersion stores v; store.ErrConflict when the version exists.
func (x *Tx) AddSecretVersion(ctx context.Context, v *store.SecretVersion) error {
	_, err := x.q.Exec(ctx, `INSERT INTO secret_versions (`+secretColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		v.Name, v.Version, v.Workspace, v.Description, v.KeyID, bytesArg(v.SealedKey), bytesArg(v.SealedValue),
		v.Deleted, x.d.timeArg(v.CreatedAt), v.CreatedBy)
	if err != nil {
		return fmt.Errorf("adding version %d of secret %q: %w", v.Version, v.Name, x.insertErr(err))
	}
	return nil
}

// GetSecret returns the newest version of a secret.
func (x *Tx) GetSecret(ctx context.Context, name string) (*store.SecretVersion, error) {
	var v *store.SecretVersion
	err := x.queryFound(ctx, func(r Rows) (err error) {
		v, err = scanSecret(r)
		return err
	}, `SELECT `+secretColumns+` FROM secret_versions WHERE name = $1 ORDER BY version DESC LIMIT 1`, name)
	if err != nil {
		return nil, fmt.Errorf("getting secret %q: %w", name, err)
	}
	return v, nil
}

// GetSecretVersion returns one version of a secret.
func (x *Tx) GetSecretVersion(ctx context.Context, name string, version int) (*store.SecretVersion, error) {
	var v *store.SecretVersion
	err := x.queryFound(ctx, func(r Rows) (err error) {
		v, err = scanSecret(r)
		return err
	}, `SELECT `+secretColumns+` FROM secret_versions WHERE name = $1 AND version = $2`, name, version)
	if err != nil {
		return nil, fmt.Errorf("getting version %d of secret %q: %w", version, name, err)
	}
	return v, nil
}

// ListSecrets returns the newest version of every secret, by name.
func (x *Tx) ListSecrets(ctx context.Context) ([]*store.SecretVersion, error) {
	var out []*store.SecretVersion
	err := x.queryAll(ctx, appendTo(&out, scanSecret), `SELECT `+secretColumns+` FROM secret_versions s
		WHERE version = (SELECT max(version) FROM secret_versions n WHERE n.name = s.name)
		ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	return out, nil
}

// SecretsSealedUnder returns live versions sealed under another key.
func (x *Tx) SecretsSealedUnder(ctx context.Context, notKeyID string, limit int) ([]*store.SecretVersion, error) {
	if err := positive(limit); err != nil {
		return nil, fmt.Errorf("listing secrets to reseal: %w", err)
	}
	var out []*store.SecretVersion
	err := x.queryAll(ctx, appendTo(&out, scanSecret), `SELECT `+secretColumns+` FROM secret_versions
		WHERE key_id <> $1 AND deleted = $2 ORDER BY name, version LIMIT $3`, notKeyID, false, limit)
	if err != nil {
		return nil, fmt.Errorf("listing secrets to reseal: %w", err)
	}
	return out, nil
}

// ResealSecret swaps the sealed data key of a version still under oldKeyID.
func (x *Tx) ResealSecret(ctx context.Context, name string, version int, oldKeyID, newKeyID string, sealedKey []byte) (bool, error) {
	if len(sealedKey) == 0 || newKeyID == "" {
		return false, fmt.Errorf("resealing version %d of secret %q: no sealed key or key id", version, name)
	}
	n, err := x.q.Exec(ctx, `UPDATE secret_versions SET key_id = $4, sealed_key = $5
		WHERE name = $1 AND version = $2 AND key_id = $3 AND deleted = $6`,
		name, version, oldKeyID, newKeyID, sealedKey, false)
	if err != nil {
		return false, fmt.Errorf("resealing version %d of secret %q: %w", version, name, err)
	}
	return n == 1, nil
}

// PutCheckSecrets records the secrets a check names.
func (x *Tx) PutCheckSecrets(ctx context.Context, checkID string, secrets []store.CheckSecret) error {
	if len(secrets) == 0 {
		_, err := x.q.Exec(ctx, `DELETE FROM check_secrets WHERE check_id = $1`, checkID)
		if err != nil {
			return fmt.Errorf("putting secrets of check %q: %w", checkID, err)
		}
		return nil
	}
	b, err := json.Marshal(secrets)
	if err != nil {
		return fmt.Errorf("putting secrets of check %q: %w", checkID, err)
	}
	_, err = x.q.Exec(ctx, `INSERT INTO check_secrets (check_id, secrets) VALUES ($1, $2)
		ON CONFLICT (check_id) DO UPDATE SET secrets = excluded.secrets`, checkID, string(b))
	if x.d.Classify(err) == ForeignKeyViolation {
		return fmt.Errorf("putting secrets of check %q: %w", checkID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("putting secrets of check %q: %w", checkID, err)
	}
	return nil
}

// GetCheckSecrets returns the secrets a check names; nil for none.
func (x *Tx) GetCheckSecrets(ctx context.Context, checkID string) ([]store.CheckSecret, error) {
	var out []store.CheckSecret
	err := x.queryAll(ctx, func(r Rows) error {
		return r.Scan(jsonDest{&out})
	}, `SELECT secrets FROM check_secrets WHERE check_id = $1`, checkID)
	if err != nil {
		return nil, fmt.Errorf("getting secrets of check %q: %w", checkID, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
