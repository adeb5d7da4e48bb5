package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// newOIDCFixture runs the web side with a real OpenID Provider in the
// test process. The fixture's clock is set to the real time: the
// provider signs with it.
func newOIDCFixture(t *testing.T) (*fixture, *oidctest.Provider) {
	t.Helper()
	var p *oidctest.Provider
	f := newFixture(t, func(w *Web, public string) {
		p = oidctest.Start(t, public+DefaultOIDCCallback)
		rp, err := oidc.New(context.Background(), oidc.Config{
			Name: "Example SSO", Issuer: p.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
			RedirectURL: public + DefaultOIDCCallback, GroupsClaim: "groups",
			GroupMap: map[string][]string{"sre": {"approvers", "sre"}},
			ACR:      map[int]string{2: "urn:stepgate:mfa", 3: "phr"},
		}, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		w.SetOIDC(rp, "")
	})
	f.clock.Set(time.Now().UTC())
	return f, p
}

// sso is a browser that follows redirects across the two sites.
type sso struct {
	f      *fixture
	client *http.Client
	// callback is the last callback URL the provider sent the browser to.
	callback *url.URL
}

func newSSO(f *fixture) *sso {
	jar, _ := cookiejar.New(nil)
	s := &sso{f: f}
	s.client = &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == DefaultOIDCCallback {
			s.callback = r.URL
		}
		return nil
	}}
	return s
}

func (s *sso) post(t *testing.T, path string, form url.Values) (int, string, string) {
	t.Helper()
	return s.do(t, s.f.formPost(path, form))
}

func (s *sso) do(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Request.URL.Path + "?" + res.Request.URL.RawQuery, string(b)
}

func (s *sso) signIn(t *testing.T, l oidctest.Login, p *oidctest.Provider) {
	t.Helper()
	p.SetNext(l)
	status, at, body := s.post(t, "/signin/oidc", url.Values{})
	if status != http.StatusOK || !strings.HasPrefix(at, "/checks") {
		t.Fatalf("oidc sign-in ended at %s with %d\n%s", at, status, body)
	}
}

func TestOIDCSignInCreatesAccount(t *testing.T) {
	f, p := newOIDCFixture(t)
	b := f.browser(t)
	if res := b.get(t, "/signin"); !strings.Contains(res.body, "Sign in with Example SSO") {
		t.Fatalf("no sign-in button:\n%s", res.body)
	}
	s := newSSO(f)
	s.signIn(t, oidctest.Login{Groups: []string{"sre", "unmapped"}, AMR: []string{"pwd"}}, p)
	u, err := f.st.FindUserByLink(context.Background(), "oidc:id2")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "test-user2" || !slices.Equal(u.Groups, []string{"approvers", "sre"}) {
		t.Fatalf("user %+v", u)
	}
	// The second sign-in matches the same account; groups follow the provider.
	s2 := newSSO(f)
	s2.signIn(t, oidctest.Login{Groups: []string{}}, p)
	u2, _ := f.st.FindUserByLink(context.Background(), "oidc:id2")
	if u2.ID != u.ID || len(u2.Groups) != 0 {
		t.Fatalf("second sign-in: %+v", u2)
	}
	// A disabled account is refused.
	u2.DisabledAt = f.clock.Now()
	if err := f.st.UpdateUser(context.Background(), u2); err != nil {
		t.Fatal(err)
	}
	p.SetNext(oidctest.Login{})
	if status, _, _ := newSSO(f).post(t, "/signin/oidc", url.Values{}); status != http.StatusForbidden {
		t.Fatalf("disabled account: %d", status)
	}
}

// TestOIDCFormAction: the sign-in and approval forms redirect to the
// provider, which form-action must allow (browsers check it on the
// redirects of a form), and nothing else is allowed more.
func TestOIDCFormAction(t *testing.T) {
	f, p := newOIDCFixture(t)
	want := strings.Replace(csp, "form-action 'self';", "form-action 'self' "+p.URL+";", 1)
	if want == csp {
		t.Fatalf("csp %q has no form-action 'self';", csp)
	}
	for _, path := range []string{"/signin", "/checks"} {
		if got := f.browser(t).get(t, path).header.Get("Content-Security-Policy"); got != want {
			t.Errorf("GET %s: Content-Security-Policy = %q, want %q", path, got, want)
		}
	}
}

func TestOIDCApproval(t *testing.T) {
	f, p := newOIDCFixture(t)
	req := policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}
	strong := oidctest.Login{Groups: []string{"sre"}, ACR: "phr", AMR: []string{"hwk", "user", "mfa"}}

	s := newSSO(f)
	s.signIn(t, oidctest.Login{Groups: []string{"sre"}, AMR: []string{"pwd"}}, p)

	// Refused: a provider that ignores acr_values and answers with a weak acr.
	f.putCheck(t, "chk_weak", checkSpec{requester: "alice", req: req})
	p.SetNext(oidctest.Login{Groups: []string{"sre"}, ACR: "urn:stepgate:mfa", AMR: []string{"pwd", "otp"}})
	status, _, body := s.post(t, "/checks/chk_weak/approve/oidc", nil)
	if status != http.StatusForbidden || f.state(t, "chk_weak") != store.StatePending {
		t.Fatalf("weak acr: %d %s\n%s", status, f.state(t, "chk_weak"), body)
	}
	if !strings.Contains(body, "this check needs level 3") {
		t.Fatalf("weak acr refused for another reason:\n%s", body)
	}
	if q := url.Values(p.LastRequest()); q.Get("prompt") != "login" || q.Get("max_age") != "300" || q.Get("acr_values") != "phr" {
		t.Fatalf("authorization request %v", q)
	}

	// Refused: an old auth_time.
	p.SetNext(oidctest.Login{Groups: []string{"sre"}, ACR: "phr", AuthTime: time.Now().Add(-time.Hour)})
	if status, _, _ := s.post(t, "/checks/chk_weak/approve/oidc", nil); status != http.StatusForbidden || f.state(t, "chk_weak") != store.StatePending {
		t.Fatalf("old auth_time: %d", status)
	}

	// Approved with a strong acr; the approval carries the token's AMR.
	f.putCheck(t, "chk_ok", checkSpec{requester: "alice", req: req})
	p.SetNext(strong)
	status, at, body := s.post(t, "/checks/chk_ok/approve/oidc", nil)
	if status != http.StatusOK || !strings.Contains(at, "done=approved") || f.state(t, "chk_ok") != store.StateApproved {
		t.Fatalf("strong acr: %d at %s, %s\n%s", status, at, f.state(t, "chk_ok"), body)
	}
	aps, err := f.st.ListApprovals(context.Background(), "chk_ok")
	if err != nil || len(aps) != 1 {
		t.Fatalf("approvals %v %v", aps, err)
	}
	ap := aps[0]
	var ev map[string]any
	_ = json.Unmarshal(ap.Evidence, &ev)
	if ap.AAL != 3 || !slices.Equal(ap.AMR, strong.AMR) || ap.Subject != "test-user2" || ev["method"] != "oidc" || ev["sub"] != "id2" || ev["acr"] != "phr" || ev["jti"] == "" {
		t.Fatalf("approval %+v evidence %s", ap, ap.Evidence)
	}

	// Replayed callback (with the flow cookie it came with): refused.
	f.putCheck(t, "chk_replay", checkSpec{requester: "alice", req: req})
	replay := s.callback
	req2, _ := http.NewRequest(http.MethodGet, replay.String(), nil)
	if status, _, _ := s.do(t, req2); status < 400 {
		t.Fatalf("replayed callback: %d", status)
	}

	// The requester cannot approve their own check.
	f.putCheck(t, "chk_self", checkSpec{requester: "test-user2", req: req})
	p.SetNext(strong)
	if status, _, _ := s.post(t, "/checks/chk_self/approve/oidc", nil); status != http.StatusForbidden || f.state(t, "chk_self") != store.StatePending {
		t.Fatalf("self approval: %d", status)
	}
}

// TestOIDCCallbackReplayRefused: the provider's callback, sent again with
// the captured flow cookie, is refused as a replay and audited; a sign-in
// asked for a fresh proof makes the provider sign in again.
func TestOIDCCallbackReplayRefused(t *testing.T) {
	f, p := newOIDCFixture(t)
	p.SetNext(oidctest.Login{AMR: []string{"pwd"}})
	begin := f.browser(t)
	res := begin.post(t, "/signin/oidc", url.Values{"reauth": {"1"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("POST /signin/oidc: %d", res.status)
	}
	if q := mustURL(t, res.header.Get("Location")).Query(); q.Get("prompt") != "login" || q.Get("max_age") != "300" {
		t.Errorf("a sign-in for a fresh proof asks the provider %v, want prompt=login and max_age=300", q)
	}
	flow := setCookie(t, res, ceremonyCookie(purposeOIDC))
	s := newSSO(f)
	s.client.Jar.SetCookies(mustURL(t, f.srv.URL+DefaultOIDCCallback), []*http.Cookie{flow})
	req, _ := http.NewRequest(http.MethodGet, res.header.Get("Location"), nil)
	if status, at, body := s.do(t, req); status != http.StatusOK || !strings.HasPrefix(at, "/checks") {
		t.Fatalf("sign-in ended at %s with %d\n%s", at, status, body)
	}
	replay, _ := http.NewRequest(http.MethodGet, s.callback.String(), nil)
	replay.AddCookie(&http.Cookie{Name: flow.Name, Value: flow.Value})
	got := (&browser{f: f, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}).do(t, replay)
	if got.status != http.StatusConflict || !strings.Contains(got.body, "already used") {
		t.Errorf("replayed callback: %d, want 409\n%s", got.status, got.body)
	}
	found := false
	for _, r := range f.refusals(t) {
		found = found || (r["purpose"] == purposeOIDC && r["reason"] == reasonReplayed)
	}
	if !found {
		t.Errorf("the replayed callback was not audited: %v", f.refusals(t))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
