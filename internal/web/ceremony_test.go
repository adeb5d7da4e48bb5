package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/webauthn/webauthntest"
	"github.com/stepgate/stepgate/internal/policy"
)

// passkey is a software passkey of the fixture's relying party; synced
// says it keeps no signature counter (its count stays 0), as synced
// passkeys do: the sign count cannot tell a replay.
func (f *fixture) passkey(t *testing.T, synced bool) *webauthntest.Authenticator {
	t.Helper()
	u, _ := url.Parse(f.srv.URL)
	a := webauthntest.New(t, "localhost", "http://localhost:"+u.Port())
	if synced {
		a.Step, a.Backup = 0, true
	}
	return a
}

// capture is a ceremony's finish as an attacker who saw it has it: the
// cookies the browser sent and the body.
type capture struct {
	path    string
	cookies []*http.Cookie
	body    []byte
}

// setCookie returns the cookie named name that res sets.
func setCookie(t *testing.T, res *response, name string) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == name && c.Value != "" {
			return c
		}
	}
	t.Fatalf("the answer sets no cookie %s (Set-Cookie: %q)", name, res.header["Set-Cookie"])
	return nil
}

// send posts a captured finish again, from a client without a cookie jar.
func (f *fixture) send(t *testing.T, c *capture) *response {
	t.Helper()
	req := f.pagePost(c.path, "application/json", bytes.NewReader(c.body))
	for _, ck := range c.cookies {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	return (&browser{f: f, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}).do(t, req)
}

// begin posts a ceremony's begin and returns its options and the
// ceremony cookie it set.
func (b *browser) begin(t *testing.T, path, purpose string, body any) ([]byte, *http.Cookie) {
	t.Helper()
	res := b.postJSON(t, path, body)
	if res.status != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, res.status, res.body)
	}
	return []byte(res.body), setCookie(t, res, ceremonyCookie(purpose))
}

// registerPasskey registers a as a passkey of the signed-in person of b,
// from the account page, and returns the captured finish.
func (b *browser) registerPasskey(t *testing.T, a *webauthntest.Authenticator) *capture {
	t.Helper()
	opts, ck := b.begin(t, "/account/passkey/begin", purposeRegister, map[string]any{})
	body, _ := json.Marshal(map[string]any{"name": "laptop", "credential": a.Create(t, opts)})
	c := &capture{path: "/account/passkey/finish", cookies: []*http.Cookie{ck, b.session(t)}, body: body}
	if res := b.f.send(t, c); res.status != http.StatusOK {
		t.Fatalf("registering a passkey: %d %s", res.status, res.body)
	}
	return c
}

// session is the browser's session cookie.
func (b *browser) session(t *testing.T) *http.Cookie {
	t.Helper()
	c := b.cookie(sessionCookie)
	if c == nil {
		t.Fatal("the browser has no session")
	}
	return c
}

// refusals returns the audited refusals of ceremonies.
func (f *fixture) refusals(t *testing.T) []map[string]any {
	t.Helper()
	events, err := f.st.ListAudit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range events {
		if e.Type != audit.CeremonyRefused {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		d["actor"], d["subject"] = e.Actor, e.Subject
		out = append(out, d)
	}
	return out
}

// wantReplayRefused checks that res refused a replay and that it was
// audited, naming the person and the ceremony's purpose.
func (f *fixture) wantReplayRefused(t *testing.T, res *response, actor, purpose string) {
	t.Helper()
	if res.status != http.StatusConflict || !strings.Contains(res.body, "already used") {
		t.Errorf("replayed %s finish: %d %s, want 409 saying it was already used", purpose, res.status, res.body)
	}
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			t.Errorf("a replayed %s finish set a session cookie", purpose)
		}
	}
	for _, r := range f.refusals(t) {
		if r["actor"] == actor && r["purpose"] == purpose && r["reason"] == reasonReplayed {
			return
		}
	}
	t.Errorf("no audited refusal of a replayed %s ceremony by %s in %v", purpose, actor, f.refusals(t))
}

func (f *fixture) countAudit(t *testing.T, typ string) int {
	t.Helper()
	events, err := f.st.ListAudit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestSignInReplayRefused: the sign-in finish of a synced passkey (its
// sign count stays 0), captured with its ceremony cookie and sent again,
// opens no session: refused, and audited naming the passkey's owner.
func TestSignInReplayRefused(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	a := f.passkey(t, true)
	owner := f.browser(t)
	owner.signIn(t, "bob")
	owner.registerPasskey(t, a)

	victim := f.browser(t)
	opts, ck := victim.begin(t, "/signin/passkey/begin", purposeLogin, map[string]any{})
	c := &capture{path: "/signin/passkey/finish", cookies: []*http.Cookie{ck}, body: a.Get(t, opts)}
	if res := f.send(t, c); res.status != http.StatusOK {
		t.Fatalf("signing in: %d %s", res.status, res.body)
	}
	signIns := f.countAudit(t, audit.UserSignedIn)

	res := f.send(t, c)
	f.wantReplayRefused(t, res, "bob", purposeLogin)
	if n := f.countAudit(t, audit.UserSignedIn); n != signIns {
		t.Errorf("%d sign-ins after the replay, want %d", n, signIns)
	}
}

// TestConcurrentSignInFinishes: the same finish sent many times at once
// signs in once.
func TestConcurrentSignInFinishes(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	a := f.passkey(t, true)
	owner := f.browser(t)
	owner.signIn(t, "bob")
	owner.registerPasskey(t, a)
	opts, ck := f.browser(t).begin(t, "/signin/passkey/begin", purposeLogin, map[string]any{})
	c := &capture{path: "/signin/passkey/finish", cookies: []*http.Cookie{ck}, body: a.Get(t, opts)}
	signIns := f.countAudit(t, audit.UserSignedIn)

	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = f.send(t, c).status
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
		default:
			t.Errorf("a concurrent finish answered %d, want 200 or 409", s)
		}
	}
	if ok != 1 || f.countAudit(t, audit.UserSignedIn) != signIns+1 {
		t.Errorf("%d of %d concurrent finishes signed in (%d sign-ins audited), want exactly 1", ok, n, f.countAudit(t, audit.UserSignedIn)-signIns)
	}
}

// TestRegistrationReplayRefused: a captured registration finish, sent
// again as it was or with the attacker's own passkey over the same
// challenge, adds no passkey.
func TestRegistrationReplayRefused(t *testing.T) {
	f := newFixture(t)
	u := f.addUser(t, "bob", "approvers")
	b := f.browser(t)
	b.signIn(t, "bob")
	c := b.registerPasskey(t, f.passkey(t, true))

	f.wantReplayRefused(t, f.send(t, c), "bob", purposeRegister)

	// The attacker's own passkey, answering the captured challenge.
	var sent struct {
		Credential json.RawMessage `json:"credential"`
	}
	_ = json.Unmarshal(c.body, &sent)
	var cd struct {
		Response struct {
			ClientDataJSON string `json:"clientDataJSON"`
		} `json:"response"`
	}
	_ = json.Unmarshal(sent.Credential, &cd)
	challenge := clientChallenge(t, cd.Response.ClientDataJSON)
	opts := fmt.Sprintf(`{"publicKey":{"challenge":%q,"user":{"id":%q}}}`, challenge, "dXNyX2JvYg")
	body, _ := json.Marshal(map[string]any{"name": "thief", "credential": f.passkey(t, true).Create(t, []byte(opts))})
	res := f.send(t, &capture{path: c.path, cookies: c.cookies, body: body})
	if res.status != http.StatusConflict {
		t.Errorf("the attacker's passkey over a used ceremony: %d %s, want 409", res.status, res.body)
	}
	if n := len(webauthnOnly(f.credentials(t, u.ID))); n != 1 {
		t.Errorf("bob has %d passkeys after the replays, want 1", n)
	}
}

// clientChallenge is the challenge in a base64url clientDataJSON.
func clientChallenge(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := decodeB64(b64)
	if err != nil {
		t.Fatal(err)
	}
	var cd struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(raw, &cd); err != nil {
		t.Fatal(err)
	}
	return cd.Challenge
}

// TestApprovalReplayRefused: a captured approval finish sent again records
// nothing more.
func TestApprovalReplayRefused(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.putCheck(t, "chk_two", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 3, Approvals: 2, MaxAge: 900}})
	b := f.browser(t)
	b.signIn(t, "bob")
	a := f.passkey(t, true)
	b.registerPasskey(t, a)

	opts, ck := b.begin(t, "/checks/chk_two/approve/passkey/begin", purposeApprove, map[string]any{})
	c := &capture{path: "/checks/chk_two/approve/passkey/finish", cookies: []*http.Cookie{ck, b.session(t)}, body: a.Get(t, opts)}
	if res := f.send(t, c); res.status != http.StatusOK {
		t.Fatalf("approving: %d %s", res.status, res.body)
	}
	f.wantReplayRefused(t, f.send(t, c), "bob", purposeApprove)
	if aps, _ := f.st.ListApprovals(context.Background(), "chk_two"); len(aps) != 1 {
		t.Errorf("%d approvals after the replay, want 1", len(aps))
	}
	for _, r := range f.refusals(t) {
		if r["purpose"] == purposeApprove && r["subject"] != "chk_two" {
			t.Errorf("the refusal names %v, want the check chk_two", r["subject"])
		}
	}
}

// TestTOTPSetUpReplayRefused: a captured confirmation of a new
// authenticator app, sent again, adds no second factor.
func TestTOTPSetUpReplayRefused(t *testing.T) {
	f := newFixture(t)
	u := f.addUser(t, "bob", "approvers")
	b := f.browser(t)
	b.signIn(t, "bob")
	add := b.get(t, "/account/add")
	ck := setCookie(t, add, ceremonyCookie(purposeTOTP))
	secret := strings.ReplaceAll(secretPattern.FindStringSubmatch(add.body)[1], " ", "")
	form := url.Values{"code": {f.codeFor(t, secret)}, "name": {"tablet"}}
	replay := func() *response {
		req := f.formPost("/account/totp", form)
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.session(t).Value})
		return (&browser{f: f, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}).do(t, req)
	}
	if res := replay(); res.status != http.StatusSeeOther {
		t.Fatalf("confirming: %d %s", res.status, res.body)
	}
	res := replay()
	if res.status != http.StatusConflict || !strings.Contains(res.body, "already used") {
		t.Errorf("replayed confirmation: %d, want 409\n%s", res.status, res.body)
	}
	if n := len(f.credentials(t, u.ID)); n != 2 {
		t.Errorf("bob has %d factors after the replay, want 2", n)
	}
	// One refusal, one event: the replay is written as a refused ceremony,
	// and not a second time as a refused change of factors.
	if n, m := len(f.refusalEvents(t, "ceremony.refused", "")), len(f.refusalEvents(t, "factor.refused", "")); n != 1 || m != 0 {
		t.Errorf("the replay wrote %d ceremony.refused and %d factor.refused events, want 1 and 0", n, m)
	}
	found := false
	for _, r := range f.refusals(t) {
		found = found || (r["actor"] == "bob" && r["purpose"] == purposeTOTP && r["reason"] == reasonReplayed)
	}
	if !found {
		t.Errorf("the replay was not audited: %v", f.refusals(t))
	}
}

// TestCeremonyBoundToItsSession: a captured approval ceremony cookie used
// with another person's session is refused and audited.
func TestCeremonyBoundToItsSession(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.addUser(t, "mallory", "approvers")
	f.putCheck(t, "chk_two", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 3, Approvals: 2, MaxAge: 900}})
	b := f.browser(t)
	b.signIn(t, "bob")
	a := f.passkey(t, false)
	b.registerPasskey(t, a)
	opts, ck := b.begin(t, "/checks/chk_two/approve/passkey/begin", purposeApprove, map[string]any{})
	m := f.browser(t)
	m.signIn(t, "mallory")
	res := f.send(t, &capture{path: "/checks/chk_two/approve/passkey/finish", cookies: []*http.Cookie{ck, m.session(t)}, body: a.Get(t, opts)})
	if res.status != http.StatusBadRequest {
		t.Errorf("a ceremony finished from another session: %d %s, want 400", res.status, res.body)
	}
	found := false
	for _, r := range f.refusals(t) {
		found = found || (r["actor"] == "mallory" && r["reason"] == reasonElsewise)
	}
	if !found {
		t.Errorf("the refusal was not audited: %v", f.refusals(t))
	}
	if aps, _ := f.st.ListApprovals(context.Background(), "chk_two"); len(aps) != 0 {
		t.Errorf("%d approvals, want 0", len(aps))
	}
}

// secretPattern finds the TOTP seed shown on a set-up page.
var secretPattern = regexp.MustCompile(`<code class="secret">([A-Z2-7 ]+)</code>`)

func decodeB64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
