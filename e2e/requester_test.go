package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
)

// TestPipelineCannotChooseItsRequester: a pipeline holding alice's own
// token says, through the GitHub Actions environment stepgate check reads,
// that bob ran it. The requester stays alice, who therefore cannot approve
// her own production change, and bob's claims are shown as unverified.
func TestPipelineCannotChooseItsRequester(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"))
	for _, args := range [][]string{
		{"users", "add", "alice", "--group", "approvers"},
		{"users", "add", "bob", "--group", "approvers"},
		{"users", "link", "bob", "github:bob"},
	} {
		if r := run(t, dir, nil, append(args, "--database", s.database)...); r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	r := run(t, dir, nil, "tokens", "create", "--name", "alice-laptop", "--owner", "alice", "--database", s.database)
	if r.code != 0 {
		t.Fatalf("tokens create --owner: exit %d\n%s", r.code, r.stderr)
	}
	env := append(pipelineEnv(s, strings.TrimSpace(r.stdout)),
		"GITHUB_ACTIONS=true", "GITHUB_ACTOR=bob", "GITHUB_REPOSITORY=acme/infra", "GITHUB_RUN_ID=42")
	r = run(t, dir, env, "check", "--plan", repo(t, "examples/prod-iam.plan.json"), "--workspace", "billing-prod", "--wait", "0s", "--output", "json")
	if r.code != 3 {
		t.Fatalf("check: exit %d, want 3 (pending)\n%s%s", r.code, r.stdout, r.stderr)
	}
	var c api.Check
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("check --output json: %v\n%s", err, r.stdout)
	}
	if c.Requester != "alice" {
		t.Errorf("requester = %q, want alice (the token's owner), whatever GITHUB_ACTOR says", c.Requester)
	}
	if c.Pipeline != nil || c.PipelineUnverified["actor"] != "bob" {
		t.Errorf("pipeline = %v, pipeline_unverified = %v; want only unverified claims", c.Pipeline, c.PipelineUnverified)
	}
	svc, _ := s.domain()
	_, err := svc.Record(context.Background(), c.ID, &gate.Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()})
	if !errors.Is(err, gate.ErrSelfApproval) {
		t.Errorf("alice approving the check of her own token: %v, want ErrSelfApproval", err)
	}
	// Disabling alice stops her token.
	if r := run(t, dir, nil, "users", "disable", "alice", "--database", s.database); r.code != 0 {
		t.Fatalf("users disable: exit %d\n%s", r.code, r.stderr)
	}
	r = run(t, dir, env, "check", "--plan", repo(t, "examples/dev-tag-change.plan.json"), "--workspace", "billing-dev")
	if r.code == 0 || !strings.Contains(r.stderr, "401") && !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Errorf("check with the token of a disabled person: exit %d\n%s", r.code, r.stderr)
	}
}
