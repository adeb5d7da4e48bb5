package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

func contextConfig(t *testing.T, src string) policy.Config {
	t.Helper()
	var o policy.Overrides
	if err := yaml.Unmarshal([]byte(src), &o); err != nil {
		t.Fatal(err)
	}
	return o.Apply(policy.DefaultConfig())
}

func rules(v *api.Check) []string {
	var out []string
	for _, f := range v.Assessment.Findings {
		out = append(out, f.Rule)
	}
	return out
}

// During a freeze, only the approval of a member of freeze.approvers
// counts: an approver of the usual group is refused, under the lock.
func TestFreezeApproversEnforced(t *testing.T) {
	// The fixture's clock is Monday 2026-11-30 10:00 UTC.
	f := newFixtureWith(t, contextConfig(t, `
freeze:
  approvers: change-board
  windows: [{name: release, start: "2026-11-30T00:00:00Z", end: "2026-12-01T00:00:00Z"}]
`))
	f.approvers(t, "alice")
	ctx := context.Background()
	if err := f.st.CreateUser(ctx, &store.User{ID: "usr_carol", Name: "carol", Groups: []string{"change-board"}, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	id, state := f.create(t, "dev-tag-change.plan.json", "billing-dev")
	if state != "pending" {
		t.Fatalf("a change during a freeze is %s, want pending", state)
	}
	v, err := f.svc.GetCheck(ctx, f.caller, id)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.Assessment.Requirements; r == nil || r.AAL != 3 || r.Approvals != 1 || !slices.Equal(r.Groups, []string{"change-board"}) {
		t.Fatalf("requirements = %+v, want aal 3, 1 approval from change-board", v.Assessment.Requirements)
	}
	proof := func(who string, groups ...string) *Proof {
		return &Proof{Subject: who, Groups: groups, Approved: true, AAL: 3, AMR: []string{"hwk", "user"}, AuthTime: f.clock.Now()}
	}
	if _, err := f.svc.Record(ctx, id, proof("alice", DefaultApproverGroup)); !errors.Is(err, ErrNotEligible) {
		t.Fatalf("Record(alice of approvers) = %v, want ErrNotEligible", err)
	}
	// A proof claiming the group is not enough: the account's groups now count.
	if v, err := f.svc.Record(ctx, id, proof("alice", "change-board")); err == nil && v.State == "approved" {
		t.Fatalf("Record(alice claiming change-board) approved the check")
	}
	if v, err := f.svc.Record(ctx, id, proof("carol", "change-board")); err != nil || v.State != "approved" {
		t.Fatalf("Record(carol of change-board) = %v, %v; want approved", v, err)
	}
}

// More than burst.max_checks checks from one requester in an hour steps up.
func TestBurstCountsTheRequestersChecks(t *testing.T) {
	f := newFixtureWith(t, contextConfig(t, `burst: {max_checks: 2}`))
	for i, want := range []string{"allowed", "allowed", "pending"} {
		// Each a new plan: the same one would resume the first check.
		f.clock.Add(time.Minute)
		v, _, err := f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-dev", Plan: planOf(t, i)})
		if err != nil {
			t.Fatal(err)
		}
		if v.State != want || (want == "pending") != slices.Contains(rules(v), "requester.burst") {
			t.Errorf("check %d: %s %v, want %s", i+1, v.State, rules(v), want)
		}
	}
	// An hour later the count starts again.
	f.clock.Add(time.Hour)
	v, _, err := f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-dev", Plan: planOf(t, 9)})
	if err != nil || v.State != "allowed" {
		t.Errorf("after an hour: %v, %v; want allowed", v, err)
	}
}

// A token named like a person is a token, and an owned token's requester is
// its owner, a person.
func TestRequesterKind(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.approvers(t, "alice")
	for _, tt := range []struct {
		name   string
		caller *Caller
		want   policy.Requester
	}{
		{"attack/token-named-alice", &Caller{TokenID: "t1", Name: "alice"}, policy.Requester{Kind: "token", Name: "alice", Groups: []string{}}},
		{"ok/owned-token", &Caller{TokenID: "t2", Name: "laptop", Owner: "alice"}, policy.Requester{Kind: "person", Name: "alice", Owner: "alice", Groups: []string{DefaultApproverGroup}}},
		{"ok/ci-unlinked", &Caller{TokenID: "oidc:x", Name: "github:repo", Claims: map[string]string{"actor": "alice"}, Pipeline: map[string]string{"system": "github-actions", "actor": "alice"}},
			policy.Requester{Kind: "ci", Name: "github:repo", Groups: []string{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := f.svc.requesterOf(ctx, tt.caller)
			if got.Kind != tt.want.Kind || got.Name != tt.want.Name || got.Owner != tt.want.Owner || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Errorf("requesterOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// planOf is a small plan, different for each n.
func planOf(t *testing.T, n int) *strings.Reader {
	t.Helper()
	return strings.NewReader(fmt.Sprintf(`{"format_version":"1.2","terraform_version":"1.9.5","resource_changes":[
		{"address":"aws_instance.w%d","mode":"managed","type":"aws_instance","name":"w%d","provider_name":"registry.terraform.io/hashicorp/aws",
		 "change":{"actions":["update"],"before":{"tags":{"n":"%d"}},"after":{"tags":{"n":"%d"}}}}]}`, n, n, n, n+1))
}
