package app

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stepgate/stepgate/internal/config"
)

func TestCIVerifierFromConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stepgate.yaml")
	yaml := `server:
  ci_issuers:
    - url: https://token.actions.githubusercontent.com
      audience: stepgate
      rules:
        - claims: {repository: acme/infra, ref: refs/heads/main}
          workspaces: [billing-prod]
          name: "github:{actor}"
`
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Server.CIIssuers) != 1 || cfg.Server.CIIssuers[0].Rules[0].Claims["ref"] != "refs/heads/main" {
		t.Fatalf("ci_issuers = %+v", cfg.Server.CIIssuers)
	}
	if v, err := CIVerifier(cfg.Server.CIIssuers); err != nil || v == nil {
		t.Fatalf("CIVerifier = %v, %v", v, err)
	}
	if v, err := CIVerifier(nil); err != nil || v != nil {
		t.Fatalf("no issuers: %v, %v; want none", v, err)
	}
	bad := cfg.Server.CIIssuers
	bad[0].Rules[0].Claims = map[string]string{"repository": "*"}
	if _, err := CIVerifier(bad); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("a rule matching every repository: %v, want ErrInvalid", err)
	}
}

func TestPublicURL(t *testing.T) {
	for _, tt := range []struct{ listen, public, want string }{
		{"127.0.0.1:8080", "", "http://localhost:8080"},
		{"localhost:9000", "", "http://localhost:9000"},
		{"[::1]:8080", "", "http://localhost:8080"},
		{"0.0.0.0:8080", "", "http://0.0.0.0:8080"},
		{"127.0.0.1:8080", "https://gate.example.com/", "https://gate.example.com"},
	} {
		if got := PublicURL(config.Server{Listen: tt.listen, PublicURL: tt.public}); got != tt.want {
			t.Errorf("PublicURL(%q, %q) = %q, want %q", tt.listen, tt.public, got, tt.want)
		}
	}
}
