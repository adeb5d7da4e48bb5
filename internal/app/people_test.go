package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
)

// TestServePeopleAPI: with server.oidc, serve publishes the protected
// resource metadata with the command line's client; without, it does not.
func TestServePeopleAPI(t *testing.T) {
	p := oidctest.StartWithCLI(t, "http://localhost/oidc/callback")
	for _, tt := range []struct {
		name   string
		oidc   *config.OIDC
		status int
	}{
		{"ok/with-oidc", &config.OIDC{Issuer: p.URL, ClientID: oidctest.ClientID, CLIClientID: oidctest.CLIClientID}, http.StatusOK},
		{"fail/without-oidc", nil, http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			secret := filepath.Join(dir, "oidc-secret")
			if err := os.WriteFile(secret, []byte(oidctest.ClientSecret), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.oidc != nil {
				tt.oidc.ClientSecretFile = secret
			}
			ctx, cancel := context.WithCancel(context.Background())
			addr := make(chan string, 1)
			done := make(chan error, 1)
			go func() {
				done <- Serve(ctx, ServeOptions{
					Server: config.Server{
						Listen: "127.0.0.1:0", Database: "sqlite://" + filepath.Join(dir, "stepgate.db"),
						CheckTTL: config.Duration(time.Hour), GrantTTL: config.Duration(15 * time.Minute), Audience: "stepgate",
						OIDC: tt.oidc,
					},
					Policy: policy.DefaultConfig(), MaxPlan: 1 << 20, Dev: true,
					Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: io.Discard, Now: time.Now,
					OnListen: func(a string) { addr <- a },
				})
			}()
			t.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
			var a string
			select {
			case a = <-addr:
			case err := <-done:
				t.Fatalf("Serve: %v", err)
			}
			res, err := http.Get("http://" + a + api.PathProtectedResource)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("GET %s = %d, want %d", api.PathProtectedResource, res.StatusCode, tt.status)
			}
			if tt.oidc == nil {
				return
			}
			var md api.ProtectedResource
			if err := json.NewDecoder(res.Body).Decode(&md); err != nil {
				t.Fatal(err)
			}
			if md.CLIClientID != oidctest.CLIClientID || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != p.URL {
				t.Errorf("metadata %+v", md)
			}
		})
	}
}
