package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
	"github.com/stepgate/stepgate/internal/integrations/github/githubtest"
)

// TestGitHubAppAnswersFromVerifiedChecks runs the server binary as a GitHub
// App: a check made with the job's OIDC token lets GitHub deploy that run;
// a check made with an API token that merely says it is another run does
// not (the attack: pipeline.run_id is a claim, not an identity).
func TestGitHubAppAnswersFromVerifiedChecks(t *testing.T) {
	dir := t.TempDir()
	is := ciauthtest.New(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const appID, secret = 4711, "webhook-secret"
	gh := githubtest.New(t, appID, &key.PublicKey)
	keyFile, secretFile := filepath.Join(dir, "app.pem"), filepath.Join(dir, "secret")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "stepgate.yaml")
	err = os.WriteFile(cfg, []byte(`server:
  ci_issuers:
    - url: `+is.URL+`
      audience: stepgate
      system: github-actions
      rules:
        - claims: {repository: acme/infra}
          workspaces: ["billing-*"]
  integrations:
    github:
      app_id: `+strconv.Itoa(appID)+`
      private_key_file: `+keyFile+`
      webhook_secret_file: `+secretFile+`
      api_url: `+gh.URL+`
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "--config", cfg)
	plan := repo(t, "examples/dev-tag-change.plan.json")

	// Run 4242 asks with its OIDC token (claims run_id 4242, see
	// newOIDCEndpoint).
	oidc := newOIDCEndpoint(t, is)
	r := run(t, dir, []string{"STEPGATE_SERVER=" + s.url, "GITHUB_ACTIONS=true",
		"ACTIONS_ID_TOKEN_REQUEST_URL=" + oidc.srv.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + oidc.reqToken},
		"check", "--plan", plan, "--workspace", "billing-dev", "--wait", "0")
	if r.code != 0 {
		t.Fatalf("check with the OIDC token: exit %d\n%s", r.code, r.stderr)
	}
	// An API token's check says it is run 5555 of the same repository.
	env := append(pipelineEnv(s, s.token("ci", "billing-*")), "GITHUB_ACTIONS=true", "GITHUB_REPOSITORY=acme/infra",
		"GITHUB_RUN_ID=5555", "GITHUB_SHA=ffac537e6cbbf934b08745a378932722df287a53")
	if r := run(t, dir, env, "check", "--plan", plan, "--workspace", "billing-dev", "--wait", "0"); r.code != 0 {
		t.Fatalf("check with the API token: exit %d\n%s", r.code, r.stderr)
	}

	deliver := func(id, runID string, sig string) int {
		body, _ := json.Marshal(map[string]any{
			"action": "requested", "environment": "production", "event": "push",
			"deployment_callback_url": gh.URL + "/repos/acme/infra/actions/runs/" + runID + "/deployment_protection_rule",
			"deployment":              map[string]any{"sha": "ffac537e6cbbf934b08745a378932722df287a53"},
			"repository":              map[string]any{"full_name": "acme/infra"},
			"installation":            map[string]any{"id": githubtest.Installation},
		})
		if sig == "" {
			m := hmac.New(sha256.New, []byte(secret))
			m.Write(body)
			sig = "sha256=" + hex.EncodeToString(m.Sum(nil))
		}
		req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/integrations/github/webhook", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "deployment_protection_rule")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := deliver("d0", "4242", "sha256="+hex.EncodeToString(make([]byte, 32))); code != http.StatusUnauthorized {
		t.Errorf("a delivery with a wrong signature: %d, want 401", code)
	}
	gh.None(t)
	if code := deliver("d1", "4242", ""); code != http.StatusAccepted {
		t.Fatalf("delivery for run 4242: %d, want 202", code)
	}
	if rv := gh.Next(t); rv.Body["state"] != "approved" || rv.Path != "/repos/acme/infra/actions/runs/4242/deployment_protection_rule" {
		t.Errorf("run 4242 (verified check allowed): %+v, want approved", rv)
	}
	if code := deliver("d2", "5555", ""); code != http.StatusAccepted {
		t.Fatalf("delivery for run 5555: %d, want 202", code)
	}
	if rv := gh.Next(t); rv.Body["state"] != "rejected" {
		t.Errorf("run 5555 (only an API token's claim): %+v, want rejected", rv)
	}
}
