package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
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

// notifiers tells each of its notifiers in turn.
type notifiers []gate.Notifier

func (ns notifiers) Notify(ctx context.Context, event string, c *api.Check) {
	for _, n := range ns {
		n.Notify(ctx, event, c)
	}
}
