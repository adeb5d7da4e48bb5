package store

import "context"

// Settings the server records for the commands that act on its database.
const (
	// SettingPublicURL is the URL `stepgate serve` was last reached at:
	// admin commands print enrollment links on it.
	SettingPublicURL = "server.public_url"
)

// SettingsTx keeps a few named values about the installation.
type SettingsTx interface {
	// Setting returns the value of key; ErrNotFound when it was never set.
	Setting(ctx context.Context, key string) (string, error)
	// SetSetting sets key to value, replacing any earlier value.
	SetSetting(ctx context.Context, key, value string) error
}
