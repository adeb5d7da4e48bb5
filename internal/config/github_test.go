package config

import (
	"strings"
	"testing"
)

func TestGitHubAppValidate(t *testing.T) {
	ok := GitHubApp{AppID: 1, PrivateKeyFile: "k.pem", WebhookSecretFile: "s"}
	for _, tt := range []struct {
		name string
		edit func(g *GitHubApp)
		want string // "" for valid
	}{
		{"ok/default-api", func(*GitHubApp) {}, ""},
		{"ok/enterprise", func(g *GitHubApp) { g.APIURL = "https://ghe.example.com/api/v3" }, ""},
		{"ok/loopback-test-server", func(g *GitHubApp) { g.APIURL = "http://127.0.0.1:8443" }, ""},
		{"fail/no-app-id", func(g *GitHubApp) { g.AppID = 0 }, "server.integrations.github.app_id"},
		{"fail/no-key", func(g *GitHubApp) { g.PrivateKeyFile = "" }, "server.integrations.github.private_key_file"},
		{"fail/no-secret", func(g *GitHubApp) { g.WebhookSecretFile = "" }, "server.integrations.github.webhook_secret_file"},
		{"fail/plain-http", func(g *GitHubApp) { g.APIURL = "http://api.github.com" }, "server.integrations.github.api_url"},
		{"fail/loopback-without-port", func(g *GitHubApp) { g.APIURL = "http://localhost" }, "server.integrations.github.api_url"},
		{"fail/not-a-url", func(g *GitHubApp) { g.APIURL = "api.github.com" }, "server.integrations.github.api_url"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := ok
			tt.edit(&g)
			s := Server{Database: "sqlite://x.db", Integrations: Integrations{GitHub: &g}}
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
