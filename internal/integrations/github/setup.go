package github

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/config"
)

// FromConfig builds the App of server.integrations.github: it reads the
// private key and the webhook secret from their files.
func FromConfig(c *config.GitHubApp, publicURL string, st Store, hub Hub, log *slog.Logger, now func() time.Time) (*App, error) {
	const k = "server.integrations.github"
	pemBytes, err := os.ReadFile(c.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s.private_key_file: %w", k, err)
	}
	key, err := ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%s.private_key_file: %w", k, err)
	}
	sec, err := os.ReadFile(c.WebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("%s.webhook_secret_file: %w", k, err)
	}
	secret := []byte(strings.TrimSpace(string(sec)))
	if len(secret) == 0 {
		return nil, fmt.Errorf("%s.webhook_secret_file: the file is empty", k)
	}
	client, err := NewClient(c.API(), c.AppID, key, &http.Client{Timeout: 30 * time.Second}, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	return New(Config{Secret: secret, APIURL: c.API(), PublicURL: publicURL}, st, hub, client, log, now), nil
}
