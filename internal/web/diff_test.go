package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
)

// A policy document is a JSON string inside the plan: the review page
// shows what changed inside it, member by member, not two whole documents
// to compare by eye.
func TestPolicyDocumentDiff(t *testing.T) {
	doc := func(action, resource string) string {
		b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{
			map[string]any{"Effect": "Allow", "Action": action, "Resource": resource},
		}})
		return string(b)
	}
	before, _ := json.Marshal(map[string]any{"name": "deployer", "policy": doc("s3:GetObject", "arn:aws:s3:::billing-invoices/*")})
	after, _ := json.Marshal(map[string]any{"name": "deployer", "policy": doc("s3:*", "*")})
	v := newChangeView(&plan.Change{Address: "aws_iam_role_policy.deployer", Type: "aws_iam_role_policy", Action: plan.ActionUpdate, Before: before, After: after})
	type row struct{ path, before, after string }
	var got []row
	for _, r := range v.Rows {
		got = append(got, row{r.Path, r.Before.Text + r.Before.Note, r.After.Text + r.After.Note})
	}
	want := []row{
		{"policy › Statement[0].Action", `"s3:GetObject"`, `"s3:*"`},
		{"policy › Statement[0].Resource", `"arn:aws:s3:::billing-invoices/*"`, `"*"`},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}

	// A document that is created is shown whole, indented.
	v = newChangeView(&plan.Change{Address: "aws_iam_role_policy.new", Action: plan.ActionCreate, After: after})
	var policy *diffRow
	for i := range v.Rows {
		if v.Rows[i].Path == "policy" {
			policy = &v.Rows[i]
		}
	}
	if policy == nil || !strings.Contains(policy.After.Text, "\n  \"Statement\": [") {
		t.Errorf("a created policy document: %+v, want it whole and indented", policy)
	}
}

// The list says in one line what each waiting check would do, and a
// check's heading says where it is: an approved check no longer "needs
// approval".
func TestListSummaryAndStateHeading(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	reason := "aws_iam_role_policy.deployer allows s3:* on * (was s3:GetObject on arn:aws:s3:::billing-invoices/*)"
	f.putCheck(t, "chk_sum", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 2, Approvals: 1},
		findings: []policy.Finding{
			{Rule: "prod.change", Decision: policy.StepUp, Severity: "medium", Reason: "Production: 1 resource would change."},
			{Rule: "identity.escalation", Decision: policy.StepUp, Severity: "critical", Addresses: []string{"aws_iam_role_policy.deployer"}, Reason: reason},
			{Rule: "info", Decision: policy.Allow, Severity: "info", Reason: "not a reason to ask"},
		}})
	b := f.browser(t)
	b.signIn(t, "bob")
	list := b.get(t, "/checks")
	if !strings.Contains(list.body, reason) || strings.Contains(list.body, "not a reason to ask") {
		t.Errorf("the checks list does not summarise the check by its step-up findings:\n%s", list.body)
	}
	page := b.get(t, "/checks/chk_sum")
	if !strings.Contains(page.body, "Decision: needs approval") {
		t.Errorf("a pending check's heading does not say it needs approval")
	}
	b.post(t, "/checks/chk_sum/approve/totp", url.Values{"code": {f.code(t, "bob")}})
	page = b.get(t, "/checks/chk_sum")
	if strings.Contains(page.body, "Decision: needs approval") || !strings.Contains(page.body, "Decision: approved: the grant is issued") {
		i := strings.Index(page.body, "Decision:")
		t.Errorf("an approved check's heading: want it to say approved, not needs approval: %q", page.body[i:min(len(page.body), i+80)])
	}
}

// Every change of a large plan can be reached: the list is paged.
func TestChangesArePaged(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	var changes []plan.Change
	for i := range 2*maxListed + 50 {
		ch := tagChange()
		ch.Address = fmt.Sprintf("aws_s3_bucket.b%04d", i)
		changes = append(changes, ch)
	}
	f.putCheck(t, "chk_many", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 2, Approvals: 1}, changes: changes})
	b := f.browser(t)
	b.signIn(t, "bob")
	for _, tt := range []struct {
		query      string
		has, hasnt string
		next       bool
	}{
		{"", "aws_s3_bucket.b0000", "aws_s3_bucket.b0300", true},
		{"?changes=2", "aws_s3_bucket.b0300", "aws_s3_bucket.b0299<", true},
		{"?changes=3", "aws_s3_bucket.b0649", "aws_s3_bucket.b0599<", false},
		{"?changes=99", "aws_s3_bucket.b0649", "aws_s3_bucket.b0000<", false},
	} {
		res := b.get(t, "/checks/chk_many"+tt.query)
		if res.status != http.StatusOK || !strings.Contains(res.body, tt.has) || strings.Contains(res.body, tt.hasnt) {
			t.Errorf("page %q: status %d; want %s listed and not %s", tt.query, res.status, tt.has, tt.hasnt)
		}
		if got := strings.Contains(res.body, "more changes →"); got != tt.next {
			t.Errorf("page %q: a link to more changes = %v, want %v", tt.query, got, tt.next)
		}
	}
}
