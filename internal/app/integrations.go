package app

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/integrations/hcpterraform"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
)

// hcpTerraform starts the HCP Terraform run task integration in the
// background and serves its endpoint next to the API.
func hcpTerraform(cfg *config.HCPTerraform, apiRoutes http.Handler, svc *gate.Service, hub *gate.Hub, st store.Store, master *keys.Master, o ServeOptions, bg *background) (http.Handler, error) {
	key, err := os.ReadFile(cfg.HMACKeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.integrations.hcp_terraform.hmac_key_file: %w", err)
	}
	key = bytes.TrimSpace(key)
	if len(key) == 0 {
		return nil, fmt.Errorf("server.integrations.hcp_terraform.hmac_key_file: %s is empty", cfg.HMACKeyFile)
	}
	r, err := hcpterraform.New(hcpterraform.Config{
		HMACKey: key, APIHosts: cfg.APIHosts, Workspace: cfg.Workspace,
		Heartbeat: time.Duration(cfg.Heartbeat), MaxPlanBytes: o.MaxPlan,
	}, svc, hub, st, master, o.Log.With("integration", "hcp-terraform"), o.Now)
	if err != nil {
		return nil, fmt.Errorf("server.integrations.%w", err)
	}
	bg.run(r.Run)
	mux := http.NewServeMux()
	mux.Handle("/", apiRoutes)
	mux.Handle("POST "+hcpterraform.Path, r.Handler())
	return mux, nil
}
