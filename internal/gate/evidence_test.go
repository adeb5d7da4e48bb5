package gate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/store"
)

// TestEvidenceIsCheckedAgainstTheCheck: a passkey approval's evidence is
// verified against the plan digest stored with its check, not the digest
// the evidence itself names: an approval made for another plan (or a check
// whose plan digest was edited in the database afterwards) is reported,
// whatever the assertion's signature.
func TestEvidenceIsCheckedAgainstTheCheck(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id, state := f.create(t, "prod-iam.plan.json", "billing-prod")
	if state != string(store.StatePending) {
		t.Fatalf("state %s, want pending", state)
	}
	c, err := f.st.GetCheck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("0", 64)
	ev, _ := json.Marshal(map[string]any{"method": "webauthn", "check_id": id, "plan_digest": other, "nonce": "n", "credential_id": "AQ=="})
	if err := f.st.AddApproval(ctx, &store.Approval{ID: "apr_1", CheckID: id, Subject: "alice", Approved: true, AAL: 3, AuthTime: f.clock.Now(), Evidence: ev, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	noRP := func() (*webauthn.WebAuthn, error) {
		return nil, errors.New("the relying party is not needed to see the digest differs")
	}
	_, err = VerifyEvidence(ctx, f.st, noRP, []string{id})
	var ee *EvidenceError
	if !errors.As(err, &ee) || ee.ApprovalID != "apr_1" || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), c.PlanSHA256) {
		t.Fatalf("VerifyEvidence() = %v, want an EvidenceError naming the evidence's digest %s and the check's %s", err, other, c.PlanSHA256)
	}
}

// TestUnreadablePasskeyEvidenceIsReported: evidence that says it is a
// passkey assertion but does not parse is reported, not skipped as if it
// were a TOTP approval's.
func TestUnreadablePasskeyEvidenceIsReported(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id, _ := f.create(t, "prod-iam.plan.json", "billing-prod")
	ev := json.RawMessage(`{"method":"webauthn","check_id":"` + id + `","credential_id":"not base64!"}`)
	if err := f.st.AddApproval(ctx, &store.Approval{ID: "apr_1", CheckID: id, Subject: "alice", Approved: true, AAL: 3, AuthTime: f.clock.Now(), Evidence: ev, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := VerifyEvidence(ctx, f.st, func() (*webauthn.WebAuthn, error) { return nil, errors.New("unused") }, []string{id})
	var ee *EvidenceError
	if !errors.As(err, &ee) || ee.ApprovalID != "apr_1" {
		t.Fatalf("VerifyEvidence() = %v, want an EvidenceError for apr_1", err)
	}
}
