package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// The review page of a check that would release secrets names each one
// and where it goes, and shows the findings that say why the policy asks
// what it asks.
func TestReviewNamesSecrets(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers", "dba")
	const why = `Secret billing/db matches policy.secrets["billing/*"], which asks for aal 3 and 2 approvals from group dba.`
	f.putCheck(t, "chk_sec", checkSpec{
		requester: "billing-ci",
		req:       policy.Requirements{AAL: 3, Approvals: 2, Groups: []string{"dba"}},
		findings: []policy.Finding{
			{Rule: "secret.read", Decision: policy.StepUp, Severity: "critical", Reason: "Releases 2 secrets to the pipeline: billing/db, billing/api."},
			{Rule: "secret.requirements", Decision: policy.StepUp, Severity: "critical", Reason: why},
		},
	})
	err := f.st.PutCheckSecrets(context.Background(), "chk_sec", []store.CheckSecret{{Name: "billing/db", Env: "PGPASSWORD"}, {Name: "billing/api"}})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn(t, "bob")
	res := b.get(t, "/checks/chk_sec")
	if res.status != http.StatusOK {
		t.Fatalf("GET /checks/chk_sec = %d", res.status)
	}
	for _, want := range []string{
		"Secrets it releases",
		"<code>billing/db</code> → the environment variable <code>PGPASSWORD</code>",
		"<code>billing/api</code> → the standard output of <code>stepgate secrets get</code>",
		"policy.secrets[&#34;billing/*&#34;], which asks for aal 3 and 2 approvals from group dba.",
		"Releases 2 secrets to the pipeline: billing/db, billing/api.",
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("the review page does not say %q", want)
		}
	}
	if i, j := strings.Index(res.body, `id="secrets"`), strings.Index(res.body, `id="findings"`); i < 0 || j < i {
		t.Errorf("the secrets come at %d, the findings at %d: want the secrets before the findings", i, j)
	}
}
