package sqlstore

import (
	"context"
	"fmt"
)

// Setting returns the value of key (see store.SettingsTx).
func (x *Tx) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := x.queryFound(ctx, func(r Rows) error { return r.Scan(&v) }, `SELECT value FROM settings WHERE key = $1`, key)
	if err != nil {
		return "", fmt.Errorf("reading setting %q: %w", key, err)
	}
	return v, nil
}

// SetSetting sets key to value in one statement.
func (x *Tx) SetSetting(ctx context.Context, key, value string) error {
	_, err := x.q.Exec(ctx, `INSERT INTO settings (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("setting %q: %w", key, err)
	}
	return nil
}
