package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/stepgate/stepgate/internal/config"
)

// MetricsToken is the bearer token /metrics requires: the content of
// server.metrics_token_file, else server.metrics_token; "" leaves /metrics
// open.
func MetricsToken(srv config.Server) (string, error) {
	if srv.MetricsTokenFile == "" {
		return strings.TrimSpace(srv.MetricsToken), nil
	}
	b, err := os.ReadFile(srv.MetricsTokenFile)
	if err != nil {
		return "", fmt.Errorf("server.metrics_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("server.metrics_token_file %s is empty", srv.MetricsTokenFile)
	}
	return tok, nil
}
