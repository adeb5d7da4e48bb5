package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/integrations/hcpterraform"
	"github.com/stepgate/stepgate/internal/integrations/hcpterraform/hcptest"
	"github.com/stepgate/stepgate/internal/store"
)

// TestHCPTerraformRunTaskSurvivesARestart: the binary, configured as an
// HCP Terraform run task, refuses an unsigned request (audited), answers a
// signed one at once, reports running with the review link, stops on
// SIGTERM while people decide, and after the restart reports the approval.
func TestHCPTerraformRunTaskSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "stepgate.db")
	hcp := hcptest.New(t)
	plan, err := os.ReadFile(repo(t, "examples/prod-iam.plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	hcp.SetPlan("plan-1", plan)
	key := []byte("e2e-hmac-key")
	keyFile := filepath.Join(dir, "hcp.hmac")
	if err := os.WriteFile(keyFile, append(key, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "stepgate.yaml")
	yaml := "server:\n  integrations:\n    hcp_terraform:\n      hmac_key_file: " + keyFile +
		"\n      api_hosts: [\"" + hcp.Host() + "\"]\n      workspace: \"{workspace}\"\n      heartbeat: 1s\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, db, "--config", cfg)
	post := func(body []byte, sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url+hcpterraform.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set(hcpterraform.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body, _ := json.Marshal(hcp.Request("taskrs-1", "run-1", "post_plan", "billing-prod", "plan-1"))
	if got := post(body, ""); got != http.StatusUnauthorized {
		t.Errorf("unsigned run task request = %d, want 401", got)
	}
	if got := post(body, hcpterraform.Sign([]byte("another key"), body)); got != http.StatusUnauthorized {
		t.Errorf("run task request signed with another key = %d, want 401", got)
	}
	if got := post(body, hcpterraform.Sign(key, body)); got != http.StatusOK {
		t.Fatalf("signed run task request = %d, want 200", got)
	}
	first := hcp.Next(t)
	if first.Status() != "running" || !strings.HasPrefix(first.Result.Data.Attributes.URL, s.url+"/checks/") {
		t.Fatalf("first callback = %+v, want running with the review URL", first.Result.Data.Attributes)
	}
	id := strings.TrimPrefix(first.Result.Data.Attributes.URL, s.url+"/checks/")
	start := time.Now()
	s.stop()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping with a run task waiting took %v", took)
	}
	// Drain the heartbeats sent before the stop.
	for len(hcp.Results()) > 0 {
		<-hcp.Results()
	}

	s = startServer(t, dir, db, "--config", cfg)
	svc, st := s.domain()
	rt, err := st.GetRunTask(context.Background(), "taskrs-1")
	if err != nil || !rt.State.Open() || rt.CheckID != id {
		t.Fatalf("run task after the restart = %+v, %v; want open, for check %s", rt, err, id)
	}
	approvers(t, st, "alice", "bob")
	for _, p := range []string{"alice", "bob"} {
		v, err := svc.Record(context.Background(), id, &gate.Proof{Subject: p, Groups: []string{"approvers"}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if v.State == string(store.StateApproved) {
			break
		}
	}
	final, _ := hcp.Final(t)
	if final.Task != "taskrs-1" || final.Status() != "passed" {
		t.Errorf("after the approval = %s %+v, want passed", final.Task, final.Result.Data.Attributes)
	}
	events, err := st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range events {
		if e.Type == audit.IntegrationRefused {
			refused++
		}
	}
	// Unsigned and wrong key, from one address: anonymous refusals, the
	// first audited at once, the second counted into the next a minute on.
	if refused != 1 {
		t.Errorf("%d refusals audited, want 1 (unsigned, then wrong key counted)", refused)
	}
}
