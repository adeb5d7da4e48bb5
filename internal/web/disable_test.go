package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// TestDisabledApprover: bob approves, then an admin disables him. His
// session ends at once (his cookie is sent to sign in, on pages and
// ceremonies alike), and his approval no longer counts: alice's second
// approval leaves a two-approval check pending.
func TestDisabledApprover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []string{"alice", "bob", "carol"} {
		f.addUser(t, n, "approvers")
	}
	f.putCheck(t, "chk_two", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 2, Approvals: 2, MaxAge: 900}})
	bob := f.browser(t)
	bob.signIn(t, "bob")
	if res := bob.post(t, "/checks/chk_two/approve/totp", url.Values{"code": {f.code(t, "bob")}}); res.status != http.StatusSeeOther {
		t.Fatalf("bob approving: %d\n%s", res.status, res.body)
	}
	stolen := bob.session(t)

	if err := account.New(f.st, f.clock.Now).SetDisabled(ctx, "bob", true, "admin"); err != nil {
		t.Fatal(err)
	}

	// bob's session cookie, as his browser (or a thief) still has it.
	withCookie := func(req *http.Request) *response {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: stolen.Value})
		return (&browser{f: f, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}).do(t, req)
	}
	get, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/checks/chk_two", nil)
	if res := withCookie(get); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin") {
		t.Errorf("a disabled person's session on a page: %d %s, want 303 to sign in", res.status, res.header.Get("Location"))
	}
	begin := f.pagePost("/checks/chk_two/approve/passkey/begin", "application/json", strings.NewReader("{}"))
	if res := withCookie(begin); res.status != http.StatusUnauthorized {
		t.Errorf("a disabled person's session beginning an approval: %d, want 401", res.status)
	}
	f.clock.Add(totp.Period)
	if res := withCookie(f.formPost("/checks/chk_two/approve/totp", url.Values{"code": {f.code(t, "bob")}})); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin") {
		t.Errorf("a disabled person's session approving: %d %s, want 303 to sign in", res.status, res.header.Get("Location"))
	}
	if res := f.browser(t).post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {f.code(t, "bob")}}); res.status != http.StatusUnauthorized {
		t.Errorf("a disabled person signing in: %d, want 401", res.status)
	}

	alice := f.browser(t)
	alice.signIn(t, "alice")
	if res := alice.post(t, "/checks/chk_two/approve/totp", url.Values{"code": {f.code(t, "alice")}}); res.status != http.StatusSeeOther {
		t.Fatalf("alice approving: %d\n%s", res.status, res.body)
	}
	if s := f.state(t, "chk_two"); s != store.StatePending {
		t.Fatalf("after alice's approval with the disabled bob's: %s, want pending", s)
	}
	page := alice.get(t, "/checks/chk_two")
	if !strings.Contains(page.body, "does not count now: disabled") {
		t.Errorf("the review page does not say bob's approval no longer counts")
	}
	if list := alice.get(t, "/checks"); !strings.Contains(list.body, "1 of 2") {
		t.Errorf("the list does not count 1 of 2")
	}
	carol := f.browser(t)
	carol.signIn(t, "carol")
	carol.post(t, "/checks/chk_two/approve/totp", url.Values{"code": {f.code(t, "carol")}})
	if s := f.state(t, "chk_two"); s != store.StateApproved {
		t.Errorf("after carol's approval: %s, want approved", s)
	}
}
