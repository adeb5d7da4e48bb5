package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/ciauth/ciauthtest"
)

// TestUntrustedRefWithCIToken: the real binary, a server trusting a test CI
// issuer, `stepgate check` authenticated by the job's OIDC token. A
// production apply for a feature branch is denied by the token's verified
// claims, even when the runner's environment says main; the same from a
// protected main steps up as before.
func TestUntrustedRefWithCIToken(t *testing.T) {
	dir := t.TempDir()
	is := ciauthtest.New(t)
	cfg := filepath.Join(dir, "stepgate.yaml")
	yaml := fmt.Sprintf(`server:
  ci_issuers:
    - url: %s
      audience: stepgate
      system: github-actions
      rules:
        - claims: {repository: acme/infra}
          workspaces: ["billing-*"]
          name: "github:{actor}"
`, is.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "--config", cfg)
	base := is.GitHubClaims("stepgate", time.Now())
	token := func(ref, protected, runID string) string {
		return is.Token(t, base, func(m map[string]any) { m["ref"], m["ref_protected"], m["run_id"] = ref, protected, runID })
	}
	for _, tt := range []struct {
		name  string
		token string
		env   []string // what the runner says of itself
		code  int
		out   string
	}{
		{"attack/feature-branch-saying-main", token("refs/heads/feature-x", "false", "1"),
			[]string{"GITHUB_ACTIONS=true", "GITHUB_REF=refs/heads/main", "GITHUB_EVENT_NAME=push"}, 4, "pipeline.untrusted_ref"},
		{"ok/feature-branch", token("refs/heads/feature-x", "false", "2"), nil, 4, "pipeline.untrusted_ref"},
		{"ok/protected-main", token("refs/heads/main", "true", "3"), nil, 3, "prod.change"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"STEPGATE_SERVER=" + s.url, "STEPGATE_ID_TOKEN=" + tt.token}, tt.env...)
			r := run(t, dir, env, "check", "--plan", repo(t, "examples/dev-tag-change.plan.json"), "--workspace", "billing-prod", "--wait", "1s")
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.out) {
				t.Errorf("check: exit %d, want %d mentioning %s\n%s%s", r.code, tt.code, tt.out, r.stdout, r.stderr)
			}
			if tt.code == 3 && strings.Contains(r.stdout+r.stderr, "pipeline.untrusted_ref") {
				t.Errorf("a protected main was judged untrusted:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}
