package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGrantAlgorithm(t *testing.T) {
	if got := Default().Server.GrantAlgorithm; got != "EdDSA" {
		t.Errorf("default grant_algorithm = %q, want EdDSA", got)
	}
	path := filepath.Join(t.TempDir(), "stepgate.yaml")
	if err := os.WriteFile(path, []byte("server:\n  database: sqlite://x.db\n  grant_algorithm: RS256\n  audience: sts.amazonaws.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if c.Server.GrantAlgorithm != "RS256" || c.Server.Audience != "sts.amazonaws.com" {
		t.Errorf("Load() server = %+v", c.Server)
	}
	for alg, ok := range map[string]bool{"": true, "EdDSA": true, "RS256": true, "rs256": false, "ES256": false, "PS256": false, "HS256": false, "none": false} {
		s := Server{Database: "sqlite://x.db", GrantAlgorithm: alg}
		err := s.Validate()
		if (err == nil) != ok {
			t.Errorf("Validate(grant_algorithm %q) = %v, want ok %v", alg, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "server.grant_algorithm") {
			t.Errorf("Validate(grant_algorithm %q) = %v, want it to name the setting", alg, err)
		}
	}
}
