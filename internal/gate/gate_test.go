package gate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/clocktest"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type fixture struct {
	svc    *Service
	st     store.Store
	clock  *clocktest.Clock
	caller *Caller
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, policy.DefaultConfig())
}

// newFixtureWith is newFixture with a policy configuration.
func newFixtureWith(t testing.TB, cfg policy.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	master, err := keys.NewMaster(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	ring := keys.NewRing(master, clk.Now)
	if _, err := ring.Ensure(ctx, st); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := New(st, engine, ring, Config{PublicURL: "https://stepgate.example.com"}, slog.New(slog.NewTextHandler(io.Discard, nil)), clk.Now)
	secret, _, err := CreateToken(ctx, st, TokenSpec{Name: "billing-ci", Workspaces: []string{"billing-*"}}, "test", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	caller, err := svc.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: st, clock: clk, caller: caller}
}

// approvers creates the accounts of people of the group "approvers":
// only the approvals of people with an enabled, eligible account count.
func (f *fixture) approvers(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		u := &store.User{ID: "usr_" + n, Name: n, Groups: []string{DefaultApproverGroup}, CreatedAt: f.clock.Now()}
		if err := f.st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) create(t *testing.T, example, workspace string) (string, string) {
	t.Helper()
	file, err := os.Open(filepath.Join("..", "..", "examples", example))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	v, created, err := f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: workspace, Plan: file})
	if err != nil {
		t.Fatalf("CreateCheck(%s): %v", example, err)
	}
	if !created {
		t.Fatalf("CreateCheck(%s) resumed a check, want a new one", example)
	}
	return v.ID, v.State
}

func TestCreateCheckStates(t *testing.T) {
	f := newFixture(t)
	id, state := f.create(t, "dev-tag-change.plan.json", "billing-dev")
	if state != "allowed" {
		t.Fatalf("dev tag change: %s, want allowed", state)
	}
	v, err := f.svc.GetCheck(context.Background(), f.caller, id)
	if err != nil || v.Grant == "" {
		t.Fatalf("an allowed check has no grant for its requester: %v", err)
	}
	again, err := f.svc.GetCheck(context.Background(), f.caller, id)
	if err != nil || again.Grant != v.Grant {
		t.Errorf("the grant is not the same when read again (Ed25519 signs deterministically)")
	}
	_, state = f.create(t, "prod-iam.plan.json", "billing-prod")
	if state != "pending" {
		t.Errorf("prod IAM change: %s, want pending", state)
	}
}

func TestTokenScope(t *testing.T) {
	f := newFixture(t)
	file, _ := os.Open("../../examples/dev-tag-change.plan.json")
	defer file.Close()
	_, _, err := f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "web-dev", Plan: file})
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("a billing-* token asking for web-dev: %v, want ErrForbidden", err)
	}
	for _, bad := range []string{"", "sgt_x", "sgt_unknown_secret", "Bearer x", strings.Repeat("a", 100)} {
		if _, err := f.svc.Authenticate(context.Background(), bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthorized", bad, err)
		}
	}
}

func TestResume(t *testing.T) {
	f := newFixture(t)
	id, _ := f.create(t, "prod-iam.plan.json", "billing-prod")
	file, _ := os.Open("../../examples/prod-iam.plan.json")
	defer file.Close()
	v, created, err := f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod", Plan: file})
	if err != nil || created || v.ID != id || !v.Resumed {
		t.Fatalf("asking again: id %s created %v resumed %v err %v; want the same pending check %s", v.ID, created, v.Resumed, err, id)
	}
	// Once it expired, asking again makes a new check.
	f.clock.Add(2 * time.Hour)
	file2, _ := os.Open("../../examples/prod-iam.plan.json")
	defer file2.Close()
	v, created, err = f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod", Plan: file2})
	if err != nil || !created || v.ID == id {
		t.Fatalf("after expiry: id %s created %v err %v; want a new check", v.ID, created, err)
	}
	old, _ := f.svc.GetCheck(context.Background(), f.caller, id)
	if old.State != "expired" {
		t.Errorf("the old check is %s, want expired", old.State)
	}
}

func TestApprovalRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.approvers(t, "alice", "bob", "dave", "frank")
	id, _ := f.create(t, "prod-iam.plan.json", "billing-prod") // aal 3, 1 approval, max_age 300
	now := f.clock.Now()
	for _, tt := range []struct {
		name  string
		proof Proof
		err   error
		state string
	}{
		{"fail/requester", Proof{Subject: "billing-ci", Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: now}, ErrSelfApproval, ""},
		{"ok/too-weak", Proof{Subject: "bob", Groups: []string{"approvers"}, Approved: true, AAL: 2, AMR: []string{"otp"}, AuthTime: now}, nil, "pending"},
		{"ok/too-old", Proof{Subject: "dave", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: now.Add(-10 * time.Minute)}, nil, "pending"},
		{"fail/bad-aal", Proof{Subject: "erin", Groups: []string{"approvers"}, Approved: true, AAL: 4, AuthTime: now}, ErrBadRequest, ""},
		{"fail/not-an-approver", Proof{Subject: "mallory", Groups: []string{"dev"}, Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: now}, ErrNotEligible, ""},
		{"ok/alice", Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk", "user"}, AuthTime: now}, nil, "approved"},
		{"fail/after-approval", Proof{Subject: "frank", Groups: []string{"approvers"}, Approved: false, AAL: 3, AuthTime: now}, ErrNotPending, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := f.svc.Record(ctx, id, &tt.proof)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Record = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || v.State != tt.state {
				t.Fatalf("Record: state %v err %v, want %s", v, err, tt.state)
			}
		})
	}
	events, err := f.st.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	refusals := 0
	for _, e := range events {
		if e.Type == audit.ApprovalRefused && strings.Contains(string(e.Data), `"reason"`) {
			refusals++
		}
	}
	if refusals != 3 {
		t.Errorf("audited %d refused approvals, want 3 (the requester's, the non-approver's, and the answer after approval)", refusals)
	}
	v, err := f.svc.GetCheck(ctx, f.caller, id)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := f.svc.Keys(ctx)
	c, err := grant.Verify(ctx, v.Grant, ks, grant.Expect{Issuer: "https://stepgate.example.com", Audience: "stepgate", Workspace: "billing-prod", Now: f.clock.Now(), Leeway: time.Second})
	if err != nil {
		t.Fatalf("the grant does not verify: %v", err)
	}
	if c.AAL != 3 || len(c.Approvals) != 1 || c.Requester != "billing-ci" || c.Subject != id || c.PlanSHA256 == "" || len(c.Approvals) == 0 {
		t.Errorf("grant claims = %+v", c)
	}
	for _, ap := range c.Approvals {
		if ap.Subject != "alice" || ap.AAL < 3 {
			t.Errorf("the grant names approval %+v: only qualifying approvals should be listed", ap)
		}
	}
}

func TestRejectionEndsTheCheck(t *testing.T) {
	f := newFixture(t)
	id, _ := f.create(t, "billing-rg-prod.plan.json", "billing-eu")
	v, err := f.svc.Record(context.Background(), id, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: false, Reason: "not during the freeze", AAL: 2, AuthTime: f.clock.Now()})
	if err != nil || v.State != "rejected" {
		t.Fatalf("rejection: %v %v", v, err)
	}
	if _, err := f.svc.Record(context.Background(), id, &Proof{Subject: "bob", Groups: []string{"approvers"}, Approved: true, AAL: 3, AuthTime: f.clock.Now()}); !errors.Is(err, ErrNotPending) {
		t.Errorf("approving a rejected check: %v, want ErrNotPending", err)
	}
}

func TestConsumeOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.approvers(t, "alice")
	id, _ := f.create(t, "dev-tag-change.plan.json", "billing-dev")
	v, _ := f.svc.GetCheck(ctx, f.caller, id)
	if _, err := f.svc.Consume(ctx, f.caller, v.Grant); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := f.svc.Consume(ctx, f.caller, v.Grant); !errors.Is(err, ErrConflict) {
		t.Errorf("second use: %v, want ErrConflict", err)
	}
	if _, err := f.svc.Consume(ctx, f.caller, v.Grant[:len(v.Grant)-4]+"AAAA"); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("forged signature: %v, want ErrInvalidGrant", err)
	}
	if err := f.svc.ReportOutcome(ctx, f.caller, id, &api.OutcomeRequest{GrantID: v.GrantID, ExitCode: 0, DurationMS: 1200}); err != nil {
		t.Errorf("outcome: %v", err)
	}
	if err := f.svc.ReportOutcome(ctx, f.caller, id, &api.OutcomeRequest{GrantID: v.GrantID, ExitCode: 1}); !errors.Is(err, ErrConflict) {
		t.Errorf("second outcome: %v, want ErrConflict", err)
	}
	// An expired grant is refused.
	id2, _ := f.create(t, "billing-rg-prod.plan.json", "billing-dev") // pending
	if _, err := f.svc.Record(ctx, id2, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 2, AMR: []string{"otp"}, AuthTime: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	v2, _ := f.svc.GetCheck(ctx, f.caller, id2)
	f.clock.Add(20 * time.Minute)
	if _, err := f.svc.Consume(ctx, f.caller, v2.Grant); !errors.Is(err, ErrInvalidGrant) || !errors.Is(err, grant.ErrExpired) {
		t.Errorf("expired grant: %v, want ErrInvalidGrant wrapping grant.ErrExpired", err)
	}
	// Every step is in one intact chain.
	events, err := f.st.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(events); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	for _, want := range []string{audit.TokenCreated, audit.CheckCreated, audit.GrantIssued, audit.GrantConsumed, audit.GrantRefused, audit.ApplyOutcome, audit.CheckApproval, audit.CheckApproved} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("no %s event in %v", want, types)
		}
	}
}

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Notify(_ context.Context, event string, c *api.Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event+" "+c.State)
}

func TestAnnouncements(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.approvers(t, "alice")
	r := &recorder{}
	f.svc.SetNotifier(r)
	f.create(t, "dev-tag-change.plan.json", "billing-dev") // allowed: nobody to tell
	id1, _ := f.create(t, "prod-iam.plan.json", "billing-prod")
	if _, err := f.svc.Record(ctx, id1, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	id2, _ := f.create(t, "billing-rg-prod.plan.json", "billing-eu")
	if _, err := f.svc.Record(ctx, id2, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: false, AAL: 2, AuthTime: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.create(t, "billing-rg-prod.plan.json", "billing-us")
	f.clock.Add(2 * time.Hour)
	if n, err := f.svc.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	want := []string{"check.pending pending", "check.approved approved", "check.pending pending", "check.rejected rejected", "check.pending pending", "check.expired expired"}
	if strings.Join(r.events, ",") != strings.Join(want, ",") {
		t.Errorf("announced %v, want %v", r.events, want)
	}
}

func TestReviewKeepsChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id, _ := f.create(t, "prod-iam.plan.json", "billing-prod")
	v, changes, err := f.svc.Review(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != id || len(changes) != 1 || changes[0].Address != "aws_iam_role_policy.deployer" || len(changes[0].After) == 0 {
		t.Fatalf("Review = %+v, %+v; want the IAM policy change with its values", v, changes)
	}
	pending, err := f.svc.Pending(ctx, 10)
	if err != nil || len(pending) != 1 || pending[0].ID != id || pending[0].Grant != "" {
		t.Errorf("Pending = %v, %v; want the one pending check, without a grant", pending, err)
	}
}

// The person a CI token's verified claims are linked to is the requester,
// with the provider's rule for names (GitHub logins ignore case). The same
// claims sent as pipeline.* parameters with an API token are only claims.
func TestLinkedPipelineActorIsTheRequester(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	u := &store.User{ID: "usr_alice", Name: "alice", Groups: []string{"approvers"}, Links: []string{"github:alice"}, CreatedAt: f.clock.Now()}
	if err := f.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	claims := map[string]string{"system": "github-actions", "actor": "Alice", "repository": "acme/infra"}
	ci := &Caller{TokenID: "oidc:run-1", Name: "github:Alice", Pipeline: claims}
	for _, tt := range []struct {
		name     string
		caller   *Caller
		pipeline map[string]string
		want     string
	}{
		{"ok/verified-ci-claims", ci, nil, "alice"},
		{"fail/api-token-says-it-is-alice", f.caller, claims, "billing-ci"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file, _ := os.Open("../../examples/prod-iam.plan.json")
			defer file.Close()
			v, _, err := f.svc.CreateCheck(ctx, tt.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-prod-" + tt.want, Plan: file, Pipeline: tt.pipeline})
			if err != nil {
				t.Fatal(err)
			}
			if v.Requester != tt.want {
				t.Fatalf("requester = %q, want %q", v.Requester, tt.want)
			}
			_, err = f.svc.Record(ctx, v.ID, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: f.clock.Now()})
			if self := errors.Is(err, ErrSelfApproval); self != (tt.want == "alice") {
				t.Errorf("alice approving: %v; want ErrSelfApproval only when she is the requester", err)
			}
		})
	}
}

func TestSubjectTemplate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.approvers(t, "alice")
	f.svc.cfg.SubjectTemplate = "workspace:{workspace}:env:{environment}:aal:{aal}"
	id, _ := f.create(t, "prod-iam.plan.json", "billing-prod")
	if _, err := f.svc.Record(ctx, id, &Proof{Subject: "alice", Groups: []string{"approvers"}, Approved: true, AAL: 3, AMR: []string{"hwk"}, AuthTime: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	v, err := f.svc.GetCheck(ctx, f.caller, id)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := f.svc.Keys(ctx)
	c, err := grant.Verify(ctx, v.Grant, ks, grant.Expect{Issuer: "https://stepgate.example.com", Audience: "stepgate", Now: f.clock.Now(), Leeway: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "workspace:billing-prod:env::aal:3" || c.CheckID != id || c.Check() != id {
		t.Errorf("sub %q, check_id %q; want the rendered template and the check id", c.Subject, c.CheckID)
	}
	if _, err := f.svc.Consume(ctx, f.caller, v.Grant); err != nil {
		t.Errorf("consuming a grant whose sub is a template: %v", err)
	}
	// A dev grant renders another subject: a cloud trusting the production
	// one does not accept it.
	devID, _ := f.create(t, "dev-tag-change.plan.json", "billing-dev")
	dv, _ := f.svc.GetCheck(ctx, f.caller, devID)
	dc, err := grant.Verify(ctx, dv.Grant, ks, grant.Expect{Issuer: "https://stepgate.example.com", Audience: "stepgate", Now: f.clock.Now(), Leeway: time.Second})
	if err != nil || dc.Subject != "workspace:billing-dev:env::aal:0" {
		t.Errorf("dev grant sub = %q, %v", dc.Subject, err)
	}
	for _, bad := range []string{"aal:{aal}", "workspace:{workspace}:{nope}", "{workspace"} {
		if ValidSubjectTemplate(bad) == nil {
			t.Errorf("ValidSubjectTemplate(%q) accepted it", bad)
		}
	}
	for _, good := range []string{"", "check", "ws:{workspace}", "{kind}/{workspace}/{environment}/{decision}/{aal}"} {
		if err := ValidSubjectTemplate(good); err != nil {
			t.Errorf("ValidSubjectTemplate(%q) = %v", good, err)
		}
	}
}

// A plan value the policy cannot be given (a number out of OPA's range) is
// the pipeline's bad input: refused, and no check is recorded.
func TestPlanValueOutOfRange(t *testing.T) {
	f := newFixture(t)
	plan := `{"format_version":"1.2","resource_changes":[{"address":"aws_instance.a","mode":"managed","type":"aws_instance","name":"a","provider_name":"aws",
		"change":{"actions":["update"],"before":{"tags":{"cost":1}},"after":{"tags":{"cost":1e100000}},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}]}`
	_, _, err := f.svc.CreateCheck(context.Background(), f.caller, &CreateRequest{Kind: "terraform.apply", Workspace: "billing-dev", Plan: strings.NewReader(plan)})
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "number too big") {
		t.Fatalf("CreateCheck: %v, want ErrBadRequest naming the number", err)
	}
	for _, state := range []store.CheckState{store.StateAllowed, store.StatePending, store.StateDenied} {
		cs, err := f.st.ListChecks(context.Background(), state, 10)
		if err != nil || len(cs) != 0 {
			t.Fatalf("%s checks after a refused plan: %d (%v), want none", state, len(cs), err)
		}
	}
}
