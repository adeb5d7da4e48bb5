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
