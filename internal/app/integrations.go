package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/integrations/github"
	"github.com/stepgate/stepgate/internal/integrations/hcpterraform"
)

// integrations adds the integrations srv configures (their routes and
// background loops) to s.
func integrations(s *Server, srv config.Server, o Options) error {
	if h := srv.Integrations.HCPTerraform; h != nil {
		if err := hcpTerraform(s, h, o); err != nil {
			return err
		}
	}
	if g := srv.Integrations.GitHub; g != nil {
		gh, err := github.FromConfig(g, srv.PublicURL, s.Store, s.Hub, o.Log, o.Now)
		if err != nil {
			return err
		}
		s.Go("github deployment reviews", func(ctx context.Context) error { gh.Run(ctx); return nil })
		s.Handle("POST "+github.Path, gh)
	}
	return nil
}

// hcpTerraform serves the HCP Terraform run task endpoint, and works on
// the run tasks in the background.
func hcpTerraform(s *Server, cfg *config.HCPTerraform, o Options) error {
	key, err := os.ReadFile(cfg.HMACKeyFile)
	if err != nil {
		return fmt.Errorf("server.integrations.hcp_terraform.hmac_key_file: %w", err)
	}
	key = bytes.TrimSpace(key)
	if len(key) == 0 {
		return fmt.Errorf("server.integrations.hcp_terraform.hmac_key_file: %s is empty", cfg.HMACKeyFile)
	}
	r, err := hcpterraform.New(hcpterraform.Config{
		HMACKey: key, APIHosts: cfg.APIHosts, Workspace: cfg.Workspace,
		Heartbeat: time.Duration(cfg.Heartbeat), MaxPlanBytes: o.MaxPlan,
	}, s.Gate, s.Hub, s.Store, s.Master, o.Log.With("integration", "hcp-terraform"), o.Now)
	if err != nil {
		return fmt.Errorf("server.integrations.%w", err)
	}
	s.Go("hcp-terraform run tasks", func(ctx context.Context) error { r.Run(ctx); return nil })
	s.Handle("POST "+hcpterraform.Path, r.Handler())
	return nil
}
