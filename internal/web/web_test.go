package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	f.addUser(t, "bob", "approvers")
	b.signIn(t, "bob")
	for _, path := range []string{"/signin", "/checks", "/account", "/checks/chk_nope", "/static/style.css", "/enroll/not-a-valid-link-at-all-xxxxxxxx"} {
		res := b.get(t, path)
		h := res.header
		if got := h.Get("Content-Security-Policy"); got != csp {
			t.Errorf("GET %s: Content-Security-Policy = %q, want %q", path, got, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := h.Get(k); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, want)
			}
		}
		if !strings.HasPrefix(path, "/static/") && h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", path, h.Get("Cache-Control"))
		}
	}
	// No page carries inline script or inline handlers.
	res := f.browser(t).get(t, "/signin")
	if m := regexp.MustCompile(`<script(?:\s+[^>]*)?>`).FindAllString(res.body, -1); len(m) != 1 || !strings.Contains(m[0], `src="/static/webauthn.js?v=`) {
		t.Errorf("script tags on /signin: %q, want only the external webauthn.js", m)
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(res.body) {
		t.Errorf("/signin has an inline event handler")
	}
	if !strings.Contains(res.body, `name="viewport" content="width=device-width, initial-scale=1"`) {
		t.Errorf("/signin has no viewport meta")
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	f := newFixture(t)
	u := f.addUser(t, "bob", "approvers")
	_ = u
	for _, tt := range []struct {
		name, public string
		dev, secure  bool
	}{
		{"ok/https", "https://stepgate.example.com", false, true},
		{"ok/dev-https", "https://stepgate.example.com", true, true},
		{"ok/dev-loopback-http", "http://127.0.0.1:8080", true, false},
		{"ok/dev-localhost-http", "http://localhost:8080", true, false},
		{"ok/dev-other-http", "http://stepgate.internal:8080", true, true},
		{"ok/http-without-dev", "http://127.0.0.1:8080", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := New(Config{PublicURL: tt.public, Dev: tt.dev}, f.svc, f.st, f.master, f.web.wa, f.tp, slog.New(slog.NewTextHandler(io.Discard, nil)), f.clock.Now)
			pu, _ := url.Parse(tt.public)
			form := url.Values{"username": {"bob"}, "code": {f.code(t, "bob")}}
			req := httptest.NewRequest(http.MethodPost, tt.public+"/signin/totp", strings.NewReader(form.Encode()))
			req.Host = pu.Host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", tt.public)
			rec := httptest.NewRecorder()
			w.Routes().ServeHTTP(rec, req)
			f.clock.Add(totp.Period)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("sign-in: %d, want 303\n%s", rec.Code, rec.Body)
			}
			var c *http.Cookie
			for _, ck := range rec.Result().Cookies() {
				if ck.Name == sessionCookie {
					c = ck
				}
			}
			if c == nil {
				t.Fatalf("no %s cookie in %v", sessionCookie, rec.Result().Header["Set-Cookie"])
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure != tt.secure || c.MaxAge != 12*60*60 {
				t.Errorf("session cookie %q: HttpOnly %v SameSite %v Path %q Secure %v MaxAge %d; want HttpOnly, Lax, /, Secure %v, 43200",
					rec.Result().Header.Get("Set-Cookie"), c.HttpOnly, c.SameSite, c.Path, c.Secure, c.MaxAge, tt.secure)
			}
			if len(c.Value) != 43 {
				t.Errorf("session secret is %d characters, want 43 (32 random bytes in base64url)", len(c.Value))
			}
			s, err := f.st.GetSession(context.Background(), hashSecret(c.Value))
			if err != nil || s.UserID != "usr_bob" || s.AAL != totp.AAL {
				t.Errorf("stored session for the cookie: %+v, %v", s, err)
			}
		})
	}
}

func TestPostsRefusedFromElsewhere(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	form := url.Values{"username": {"bob"}, "code": {"123456"}}.Encode()
	for _, tt := range []struct {
		name    string
		path    string
		ctype   string
		headers map[string]string
		want    int
	}{
		{"fail/no-origin", "/signin/totp", "application/x-www-form-urlencoded", nil, http.StatusForbidden},
		{"fail/foreign-origin", "/signin/totp", "application/x-www-form-urlencoded", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"fail/null-origin", "/signin/totp", "application/x-www-form-urlencoded", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"fail/cross-site", "/signin/totp", "application/x-www-form-urlencoded", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"fail/same-site-sibling", "/signin/totp", "application/x-www-form-urlencoded", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://sibling.example"}, http.StatusForbidden},
		{"fail/foreign-origin-json", "/signin/passkey/begin", "application/json", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"fail/no-origin-json", "/checks/x/approve/passkey/begin", "application/json", nil, http.StatusForbidden},
		{"fail/no-origin-signout", "/signout", "application/x-www-form-urlencoded", nil, http.StatusForbidden},
		{"fail/text-plain", "/signin/totp", "text/plain", map[string]string{"Origin": "SELF"}, http.StatusUnsupportedMediaType},
		{"fail/form-to-json-route", "/signin/passkey/begin", "application/x-www-form-urlencoded", map[string]string{"Origin": "SELF"}, http.StatusUnsupportedMediaType},
		{"ok/same-origin", "/signin/totp", "application/x-www-form-urlencoded", map[string]string{"Origin": "SELF"}, http.StatusUnauthorized},
		{"ok/sec-fetch-same-origin-null-origin", "/signin/totp", "application/x-www-form-urlencoded", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+tt.path, strings.NewReader(form))
			req.Header.Set("Content-Type", tt.ctype)
			for k, v := range tt.headers {
				req.Header.Set(k, strings.ReplaceAll(v, "SELF", f.srv.URL))
			}
			res := f.browser(t).do(t, req)
			if res.status != tt.want {
				t.Errorf("POST %s: %d, want %d\n%s", tt.path, res.status, tt.want, res.body)
			}
			if res.header.Get("Content-Security-Policy") != csp {
				t.Errorf("refusal without the CSP header")
			}
		})
	}
	if strings.Contains(f.logs.String(), "123456") {
		t.Errorf("a code reached the log:\n%s", f.logs)
	}
}

func TestSessionLimits(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")

	t.Run("fail/idle", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		f.clock.Add(29 * time.Minute)
		if res := b.get(t, "/checks"); res.status != http.StatusOK {
			t.Fatalf("after 29 min: %d, want 200", res.status)
		}
		f.clock.Add(29 * time.Minute) // 29 min since the last request: still in
		if res := b.get(t, "/checks"); res.status != http.StatusOK {
			t.Fatalf("29 min after the last request: %d, want 200", res.status)
		}
		hash := hashSecret(b.cookie(sessionCookie).Value)
		f.clock.Add(30 * time.Minute)
		res := b.get(t, "/checks")
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin") {
			t.Fatalf("30 min idle: %d %s, want 303 to /signin", res.status, res.header.Get("Location"))
		}
		if _, err := f.st.GetSession(context.Background(), hash); err == nil {
			t.Errorf("the idle session is still in the store")
		}
	})

	t.Run("fail/12h", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		start := f.clock.Now()
		for f.clock.Now().Sub(start) < SessionMaxAge-25*time.Minute {
			f.clock.Add(20 * time.Minute)
			if res := b.get(t, "/account"); res.status != http.StatusOK {
				t.Fatalf("at %s: %d, want 200", f.clock.Now().Sub(start), res.status)
			}
		}
		f.clock.Add(start.Add(SessionMaxAge).Sub(f.clock.Now()))
		if res := b.get(t, "/account"); res.status != http.StatusSeeOther {
			t.Errorf("12 h after sign-in, though active: %d, want 303 to /signin", res.status)
		}
	})

	t.Run("ok/last-seen-written-once-a-minute", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		hash := hashSecret(b.cookie(sessionCookie).Value)
		s0, _ := f.st.GetSession(context.Background(), hash)
		f.clock.Add(s0.LastSeenAt.Add(50 * time.Second).Sub(f.clock.Now()))
		b.get(t, "/checks")
		s1, _ := f.st.GetSession(context.Background(), hash)
		if !s1.LastSeenAt.Equal(s0.LastSeenAt) {
			t.Errorf("LastSeenAt written after 50 s")
		}
		f.clock.Add(11 * time.Second)
		b.get(t, "/checks")
		s2, _ := f.st.GetSession(context.Background(), hash)
		if !s2.LastSeenAt.After(s0.LastSeenAt) {
			t.Errorf("LastSeenAt not written after a minute")
		}
	})

	t.Run("ok/signout", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		hash := hashSecret(b.cookie(sessionCookie).Value)
		if res := b.post(t, "/signout", url.Values{}); res.status != http.StatusSeeOther {
			t.Fatalf("sign out: %d", res.status)
		}
		if _, err := f.st.GetSession(context.Background(), hash); err == nil {
			t.Errorf("the session is still in the store after sign-out")
		}
	})
}

func TestTOTPSignIn(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	b := f.browser(t)

	res := b.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {"000000"}})
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "do not match") {
		t.Fatalf("wrong code: %d, want 401 with a message\n%s", res.status, res.body)
	}
	if c := f.credentials(t, "usr_bob")[0]; c.Failures != 1 {
		t.Errorf("failures after a wrong code = %d, want 1 (written in the transaction)", c.Failures)
	}
	unknown := b.post(t, "/signin/totp", url.Values{"username": {"nobody"}, "code": {"000000"}})
	if unknown.status != res.status || !strings.Contains(unknown.body, "do not match") {
		t.Errorf("unknown user: %d; want the same answer as a wrong code", unknown.status)
	}

	code := f.code(t, "bob")
	res = b.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {code}, "next": {"/checks/chk_1"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/checks/chk_1" {
		t.Fatalf("right code: %d %s, want 303 to /checks/chk_1", res.status, res.header.Get("Location"))
	}
	if c := f.credentials(t, "usr_bob")[0]; c.Failures != 0 {
		t.Errorf("failures after a right code = %d, want 0", c.Failures)
	}

	// The same code again, in another browser: refused, once used.
	other := f.browser(t)
	res = other.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {code}})
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "already used") {
		t.Errorf("reused code: %d, want 401 'already used'\n%s", res.status, res.body)
	}

	// An open redirect is not followed.
	f.clock.Add(totp.Period)
	res = other.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {f.code(t, "bob")}, "next": {"//evil.example/x"}})
	if res.header.Get("Location") != "/checks" {
		t.Errorf("next=//evil.example: Location %q, want /checks", res.header.Get("Location"))
	}

	// Five wrong codes slow this address down for bob (not bob: see
	// TestTOTPBackoffPerAddress).
	f.clock.Add(totp.Period)
	for range 5 {
		b.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {"000000"}})
	}
	res = b.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {f.code(t, "bob")}})
	if res.status != http.StatusTooManyRequests || !strings.Contains(res.body, "Too many wrong codes") || res.header.Get("Retry-After") == "" {
		t.Errorf("right code from the slowed address: %d, want 429 'Too many wrong codes' with Retry-After", res.status)
	}
	events, _ := f.st.ListAudit(context.Background(), 0, 1000)
	n := 0
	for _, e := range events {
		if e.Type == audit.CredentialTOTPFailure {
			n++
		}
	}
	if n < 7 {
		t.Errorf("%d TOTP failures audited, want at least 7", n)
	}
	for _, secret := range []string{code, b.cookie(sessionCookie).Value, f.secrets["bob"]} {
		if strings.Contains(f.logs.String(), secret) {
			t.Errorf("a secret reached the log:\n%s", f.logs)
		}
	}
}

// iamChange is a risky change: a role policy widened, with a masked value
// and one known only after apply.
func iamChange() plan.Change {
	return plan.Change{
		Address: "aws_iam_role_policy.deploy", Type: "aws_iam_role_policy", Name: "deploy", Provider: "registry.terraform.io/hashicorp/aws",
		Mode: plan.ModeManaged, Actions: []string{"update"}, Action: plan.ActionUpdate,
		Before:         json.RawMessage(`{"name":"deploy","policy":"{\"Statement\":[{\"Action\":\"s3:GetObject\"}]}","token":"(sensitive value)","arn":"arn:old"}`),
		After:          json.RawMessage(`{"name":"deploy","policy":"{\"Statement\":[{\"Action\":\"*\"}]}","token":"(sensitive value)","secret":"(sensitive value)"}`),
		AfterUnknown:   []string{"arn"},
		SensitivePaths: []string{"secret", "token"},
	}
}

func tagChange() plan.Change {
	return plan.Change{
		Address: "aws_instance.web", Type: "aws_instance", Name: "web", Provider: "registry.terraform.io/hashicorp/aws",
		Mode: plan.ModeManaged, Actions: []string{"update"}, Action: plan.ActionUpdate,
		Before: json.RawMessage(`{"tags":{"Owner":"a"}}`), After: json.RawMessage(`{"tags":{"Owner":"b"}}`),
	}
}

func TestReviewPage(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.putCheck(t, "chk_review", checkSpec{
		requester: "ci-bot",
		req:       policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300},
		findings: []policy.Finding{{Rule: "iam_change", Decision: policy.StepUp, Severity: "high",
			Addresses: []string{"aws_iam_role_policy.deploy"}, Reason: "an IAM policy changes in production"}},
		changes:  []plan.Change{tagChange(), iamChange()},
		pipeline: map[string]string{"repository": "acme/infra", "ref": "refs/heads/main", "run_url": "https://github.com/acme/infra/actions/runs/42"},
		byAction: map[string]int{"update": 2, "no-op": 3},
	})
	// A passkey record (the page only needs to know there is one).
	err := f.st.InTx(context.Background(), func(tx store.Tx) error {
		return tx.AddCredential(context.Background(), &store.Credential{ID: "cred-pk", UserID: "usr_bob", Kind: store.KindWebAuthn, Name: "key", Data: json.RawMessage(`{}`), CreatedAt: f.clock.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn(t, "bob")
	res := b.get(t, "/checks/chk_review")
	if res.status != http.StatusOK {
		t.Fatalf("review page: %d\n%s", res.status, res.body)
	}
	body := res.body
	// In this order: what it needs, findings, risky changes, all changes,
	// who asked, the answer.
	order := []string{"Decision: needs approval", "level 3", "0 of 1", "an IAM policy changes in production",
		`id="risky"`, "aws_iam_role_policy.deploy", `id="all"`, "aws_instance.web", `id="who"`, "acme/infra", `id="answer"`}
	at := -1
	for _, s := range order {
		i := strings.Index(body[at+1:], s)
		if i < 0 {
			t.Fatalf("%q missing after position %d of the review page", s, at)
		}
		at += 1 + i
	}
	risky := body[strings.Index(body, `id="risky"`):strings.Index(body, `id="all"`)]
	if strings.Contains(risky, "aws_instance.web") {
		t.Errorf("the tag change is among the risky changes")
	}
	for _, want := range []string{"(sensitive value)", "(known after apply)", "s3:GetObject", `&#34;*&#34;`, "update 2", "no-op 3",
		`href="https://github.com/acme/infra/actions/runs/42"`, strings.Repeat("ab", 32), "Approve with a passkey", "Reject", "PIN or biometrics"} {
		if !strings.Contains(body, want) {
			t.Errorf("review page lacks %q", want)
		}
	}
	if strings.Contains(body, "Approve with this code") {
		t.Errorf("an aal 3 check offers TOTP")
	}
	// The masked token is equal on both sides: it is counted, not shown as a change.
	if !strings.Contains(risky, "1 sensitive attribute(s) are masked") {
		t.Errorf("the masked attribute is not mentioned")
	}

	// The list shows it.
	list := b.get(t, "/checks")
	for _, want := range []string{"/checks/chk_review", "billing-prod", "ci-bot", "AAL3, 1 approver", "0 of 1 approved", "59 min left"} {
		if !strings.Contains(list.body, want) {
			t.Errorf("/checks lacks %q\n%s", want, list.body)
		}
	}
}

func TestReviewEscapes(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	evil := `<script>alert(1)</script>`
	ch := tagChange()
	ch.Address = `aws_s3_bucket.x["` + evil + `"]`
	ch.After = json.RawMessage(`{"tags":{"Owner":"` + strings.ReplaceAll(evil, `"`, `\"`) + `"}}`)
	f.putCheck(t, "chk_xss", checkSpec{
		requester: `mallory"><script>x()</script>`,
		req:       policy.Requirements{AAL: 2, Approvals: 1},
		findings: []policy.Finding{{Rule: "r" + evil, Decision: policy.StepUp, Severity: "high",
			Addresses: []string{ch.Address}, Reason: "reason " + evil}},
		changes:  []plan.Change{ch},
		pipeline: map[string]string{"repository": evil, "ref": `"><img src=x onerror=alert(1)>`, "run_url": "javascript:alert(1)"},
	})
	b := f.browser(t)
	b.signIn(t, "bob")
	for _, path := range []string{"/checks/chk_xss", "/checks"} {
		res := b.get(t, path)
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d", path, res.status)
		}
		if strings.Contains(res.body, "<script>alert") || strings.Contains(res.body, "<script>x") || strings.Contains(res.body, "<img src=x") {
			t.Errorf("%s: unescaped markup from data", path)
		}
		if n := strings.Count(res.body, "<script"); n != 1 {
			t.Errorf("%s: %d script tags, want 1 (webauthn.js)", path, n)
		}
	}
	res := b.get(t, "/checks/chk_xss")
	if !strings.Contains(res.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the escaped text is not shown")
	}
	if strings.Contains(res.body, `href="javascript:`) {
		t.Errorf("a javascript: run URL became a link")
	}
}

// Bidi overrides, zero-width and control characters could make what a
// reviewer reads differ from what is applied ("admin" shown for
// "nimda"): every one is shown as a visible escape.
func TestReviewShowsHiddenCharacters(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	ch := tagChange()
	ch.Address = "aws_iam_role.\u202eadmin\u200b"
	ch.After = json.RawMessage(`{"tags":{"Owner":"ops\u2066x\u0007"}}`)
	f.putCheck(t, "chk_bidi", checkSpec{
		requester: "mallory\u202e",
		req:       policy.Requirements{AAL: 2, Approvals: 1},
		findings: []policy.Finding{{Rule: "sensitive.change", Decision: policy.StepUp, Severity: "high",
			Addresses: []string{ch.Address}, Reason: "role \u202egnp.exe changes\u0085"}},
		changes:  []plan.Change{ch},
		pipeline: map[string]string{"repository": "acme/\u200finfra"},
	})
	b := f.browser(t)
	b.signIn(t, "bob")
	for _, path := range []string{"/checks/chk_bidi", "/checks"} {
		res := b.get(t, path)
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d", path, res.status)
		}
		for _, r := range []rune{'\u202e', '\u200b', '\u2066', '\u200f', '\u0007', '\u0085'} {
			if strings.ContainsRune(res.body, r) {
				t.Errorf("%s: the page carries U+%04X as it is", path, r)
			}
		}
	}
	res := b.get(t, "/checks/chk_bidi")
	for _, want := range []string{`aws_iam_role.\u202eadmin\u200b`, `role \u202egnp.exe changes\x85`, `mallory\u202e`, `acme/\u200finfra`, `ops\u2066x\x07`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
}

func TestApproveWithTOTP(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.putCheck(t, "chk_ok", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900}})
	b := f.browser(t)
	b.signIn(t, "bob")
	page := b.get(t, "/checks/chk_ok")
	if !strings.Contains(page.body, "Approve with this code") {
		t.Fatalf("an aal 2 check does not offer TOTP")
	}
	res := b.post(t, "/checks/chk_ok/approve/totp", url.Values{"code": {f.code(t, "bob")}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/checks/chk_ok?done=approved" {
		t.Fatalf("approve: %d %s\n%s", res.status, res.header.Get("Location"), res.body)
	}
	if s := f.state(t, "chk_ok"); s != store.StateApproved {
		t.Errorf("state after approval = %s, want approved", s)
	}
	aps, _ := f.st.ListApprovals(context.Background(), "chk_ok")
	if len(aps) != 1 || aps[0].AAL != 2 || aps[0].AMR[0] != "otp" || !aps[0].AuthTime.Equal(f.clock.Now()) {
		t.Fatalf("approvals = %+v", aps)
	}
	var ev map[string]string
	cred := f.credentials(t, "usr_bob")[0]
	if err := json.Unmarshal(aps[0].Evidence, &ev); err != nil || ev["method"] != "totp" || ev["credential"] != cred.ID {
		t.Errorf("evidence = %s, want {method: totp, credential: %s}", aps[0].Evidence, cred.ID)
	}
	after := b.get(t, "/checks/chk_ok?done=approved")
	if !strings.Contains(after.body, "Your approval is recorded") || strings.Contains(after.body, "Approve with this code") {
		t.Errorf("the page after approval still offers to approve")
	}
	// The check is no longer pending.
	f.clock.Add(totp.Period)
	res = b.post(t, "/checks/chk_ok/approve/totp", url.Values{"code": {f.code(t, "bob")}})
	if res.status != http.StatusConflict || !strings.Contains(res.body, "no longer waiting") {
		t.Errorf("approving an approved check: %d, want 409", res.status)
	}
}

func TestApproveRefusals(t *testing.T) {
	f := newFixture(t)
	f.addUser(t, "bob", "approvers")
	f.addUser(t, "alice", "approvers")
	f.addUser(t, "dev", "developers")
	f.putCheck(t, "chk_alice", checkSpec{requester: "alice", req: policy.Requirements{AAL: 2, Approvals: 1}})
	f.putCheck(t, "chk_bot", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 2, Approvals: 1}})
	f.putCheck(t, "chk_aal3", checkSpec{requester: "ci-bot", req: policy.Requirements{AAL: 3, Approvals: 1}})

	t.Run("fail/reused-code", func(t *testing.T) {
		b := f.browser(t)
		code := f.code(t, "bob")
		if res := b.post(t, "/signin/totp", url.Values{"username": {"bob"}, "code": {code}}); res.status != http.StatusSeeOther {
			t.Fatalf("sign in: %d", res.status)
		}
		res := b.post(t, "/checks/chk_bot/approve/totp", url.Values{"code": {code}})
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "already used") {
			t.Errorf("approving with the sign-in code: %d, want 401 'already used'\n%s", res.status, res.body)
		}
		if s := f.state(t, "chk_bot"); s != store.StatePending {
			t.Errorf("state = %s, want pending", s)
		}
		f.clock.Add(totp.Period)
	})

	t.Run("fail/wrong-code-counted", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		before := f.credentials(t, "usr_bob")[0].Failures
		res := b.post(t, "/checks/chk_bot/approve/totp", url.Values{"code": {"000000"}})
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, "not right") {
			t.Errorf("wrong code: %d, want 401", res.status)
		}
		if got := f.credentials(t, "usr_bob")[0].Failures; got != before+1 {
			t.Errorf("failures %d → %d, want +1 written through the store", before, got)
		}
	})

	t.Run("fail/self-approval", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "alice")
		page := b.get(t, "/checks/chk_alice")
		if !strings.Contains(page.body, "You asked for this change; someone else must approve it.") || strings.Contains(page.body, "Approve with this code") {
			t.Errorf("the requester's review page offers to approve")
		}
		last := f.credentials(t, "usr_alice")[0].LastStep
		res := b.post(t, "/checks/chk_alice/approve/totp", url.Values{"code": {f.code(t, "alice")}})
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "You asked for this change; someone else must approve it.") {
			t.Errorf("requester approves: %d, want 403 with the message\n%s", res.status, res.body)
		}
		if got := f.credentials(t, "usr_alice")[0].LastStep; got != last {
			t.Errorf("the refused approval spent the code")
		}
		res = b.postJSON(t, "/checks/chk_alice/approve/passkey/begin", map[string]any{})
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "someone else must approve it") {
			t.Errorf("requester begins a passkey approval: %d %s", res.status, res.body)
		}
		if s := f.state(t, "chk_alice"); s != store.StatePending {
			t.Errorf("state = %s, want pending", s)
		}
		// Rejecting one's own check is allowed.
		res = b.post(t, "/checks/chk_alice/reject", url.Values{"reason": {"wrong branch"}})
		if res.status != http.StatusSeeOther || f.state(t, "chk_alice") != store.StateRejected {
			t.Errorf("requester rejects: %d, state %s", res.status, f.state(t, "chk_alice"))
		}
	})

	t.Run("fail/not-eligible", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "dev")
		res := b.post(t, "/checks/chk_bot/approve/totp", url.Values{"code": {f.code(t, "dev")}})
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "not one of the approvers") {
			t.Errorf("non-approver: %d\n%s", res.status, res.body)
		}
	})

	t.Run("fail/totp-for-aal3", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		res := b.post(t, "/checks/chk_aal3/approve/totp", url.Values{"code": {f.code(t, "bob")}})
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "level 3") {
			t.Errorf("TOTP on an aal 3 check: %d", res.status)
		}
	})

	t.Run("fail/passkey-json-errors", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		res := b.postJSON(t, "/checks/chk_aal3/approve/passkey/begin", map[string]any{})
		if res.status != http.StatusBadRequest || !strings.Contains(res.body, "no passkey") {
			t.Errorf("begin without a passkey: %d %s", res.status, res.body)
		}
		res = b.postJSON(t, "/checks/chk_aal3/approve/passkey/finish", map[string]any{"id": "x"})
		if res.status != http.StatusBadRequest || !strings.Contains(res.body, `"error"`) {
			t.Errorf("finish without a ceremony: %d %s", res.status, res.body)
		}
		res = b.postJSON(t, "/checks/nope/approve/passkey/begin", map[string]any{})
		if res.status != http.StatusNotFound {
			t.Errorf("begin on no check: %d", res.status)
		}
		anon := f.browser(t)
		res = anon.postJSON(t, "/checks/chk_aal3/approve/passkey/begin", map[string]any{})
		if res.status != http.StatusUnauthorized || !strings.Contains(res.body, `"redirect":"/signin"`) {
			t.Errorf("begin signed out: %d %s", res.status, res.body)
		}
	})

	t.Run("fail/reject-without-reason", func(t *testing.T) {
		b := f.browser(t)
		b.signIn(t, "bob")
		res := b.post(t, "/checks/chk_bot/reject", url.Values{"reason": {"  "}})
		if res.status != http.StatusBadRequest || f.state(t, "chk_bot") != store.StatePending {
			t.Errorf("reject without a reason: %d, state %s", res.status, f.state(t, "chk_bot"))
		}
		res = b.post(t, "/checks/chk_bot/reject", url.Values{"reason": {"not now"}})
		if res.status != http.StatusSeeOther || f.state(t, "chk_bot") != store.StateRejected {
			t.Errorf("reject: %d, state %s", res.status, f.state(t, "chk_bot"))
		}
		aps, _ := f.st.ListApprovals(context.Background(), "chk_bot")
		if len(aps) != 1 || aps[0].Approved || aps[0].Reason != "not now" {
			t.Errorf("rejection = %+v", aps)
		}
	})
}

func TestPasskeySignInErrors(t *testing.T) {
	f := newFixture(t)
	b := f.browser(t)
	res := b.postJSON(t, "/signin/passkey/begin", map[string]any{})
	if res.status != http.StatusOK {
		t.Fatalf("begin: %d %s", res.status, res.body)
	}
	var opts struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal([]byte(res.body), &opts); err != nil || opts.PublicKey.Challenge == "" {
		t.Errorf("begin options %s: %v", res.body, err)
	}
	var ceremonySet string
	for _, h := range res.header["Set-Cookie"] {
		if strings.HasPrefix(h, ceremonyCookie(purposeLogin)+"=") {
			ceremonySet = h
		}
	}
	if !strings.Contains(ceremonySet, "HttpOnly") || !strings.Contains(ceremonySet, "SameSite=Strict") || !strings.Contains(ceremonySet, "Max-Age=300") {
		t.Errorf("ceremony cookie %q: want HttpOnly, SameSite=Strict, Max-Age=300", ceremonySet)
	}
	if strings.Contains(ceremonySet, opts.PublicKey.Challenge) {
		t.Errorf("the ceremony cookie holds the challenge in clear")
	}
	res = b.postJSON(t, "/signin/passkey/finish", map[string]any{"id": "AAAA", "type": "public-key"})
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, `"error"`) {
		t.Errorf("finish with a bad assertion: %d %s", res.status, res.body)
	}
	// The ceremony was used up.
	res = b.postJSON(t, "/signin/passkey/finish", map[string]any{"id": "AAAA", "type": "public-key"})
	if res.status != http.StatusBadRequest {
		t.Errorf("second finish: %d %s, want 400 (no ceremony)", res.status, res.body)
	}
	// Expired after five minutes.
	b.postJSON(t, "/signin/passkey/begin", map[string]any{})
	f.clock.Add(6 * time.Minute)
	res = b.postJSON(t, "/signin/passkey/finish", map[string]any{})
	if res.status != http.StatusBadRequest {
		t.Errorf("finish after 6 min: %d, want 400", res.status)
	}
}

func TestFactors(t *testing.T) {
	f := newFixture(t)
	u := f.addUser(t, "bob", "approvers")
	b := f.browser(t)
	b.signIn(t, "bob")
	only := f.credentials(t, u.ID)[0]

	res := b.post(t, "/account/factors/"+only.ID+"/remove", url.Values{})
	if res.status != http.StatusConflict || !strings.Contains(res.body, "only factor") {
		t.Errorf("removing the last factor: %d, want 409 with a message\n%s", res.status, res.body)
	}
	if n := len(f.credentials(t, u.ID)); n != 1 {
		t.Fatalf("%d factors after refusal, want 1", n)
	}

	res = b.post(t, "/account/factors/"+only.ID+"/rename", url.Values{"name": {"  my <phone>  "}})
	if res.status != http.StatusSeeOther || f.credentials(t, u.ID)[0].Name != "my <phone>" {
		t.Errorf("rename: %d, name %q", res.status, f.credentials(t, u.ID)[0].Name)
	}
	page := b.get(t, "/account")
	if !strings.Contains(page.body, "my &lt;phone&gt;") || !strings.Contains(page.body, "Authenticator app (TOTP)") {
		t.Errorf("account page lacks the factor")
	}

	// A second authenticator app, from the account page.
	add := b.get(t, "/account/add")
	m := regexp.MustCompile(`<code class="secret">([A-Z2-7 ]+)</code>`).FindStringSubmatch(add.body)
	if add.status != http.StatusOK || m == nil || !strings.Contains(add.body, `src="data:image/png;base64,`) {
		t.Fatalf("add page: %d, no QR or secret\n%s", add.status, add.body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	res = b.post(t, "/account/totp", url.Values{"code": {"000000"}, "name": {"tablet"}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, secret[:4]) {
		t.Errorf("wrong first code: %d, want 400 with the same key shown again", res.status)
	}
	res = b.post(t, "/account/totp", url.Values{"code": {f.codeFor(t, secret)}, "name": {"tablet"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("confirm second factor: %d\n%s", res.status, res.body)
	}
	if n := len(f.credentials(t, u.ID)); n != 2 {
		t.Fatalf("%d factors, want 2", n)
	}
	res = b.post(t, "/account/factors/"+only.ID+"/remove", url.Values{})
	if res.status != http.StatusSeeOther || len(f.credentials(t, u.ID)) != 1 {
		t.Errorf("removing one of two: %d", res.status)
	}
	// Someone else's factor is not found.
	other := f.addUser(t, "carol", "approvers")
	res = b.post(t, "/account/factors/"+f.credentials(t, other.ID)[0].ID+"/remove", url.Values{})
	if res.status != http.StatusNotFound || len(f.credentials(t, other.ID)) != 1 {
		t.Errorf("removing another's factor: %d", res.status)
	}

	// Adding a factor needs a recent sign-in (see TestFactorChangesNeedFreshStepUp).
	f.clock.Add(11 * time.Minute)
	if res := b.get(t, "/account/add"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin?reauth=1") {
		t.Errorf("add page 11 min after sign-in: %d %s, want 303 to sign in again", res.status, res.header.Get("Location"))
	}
	if res := b.postJSON(t, "/account/passkey/begin", map[string]any{}); res.status != http.StatusForbidden {
		t.Errorf("passkey begin 11 min after sign-in: %d, want 403", res.status)
	}
}

func TestEnrollment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	accounts := account.New(f.st, f.clock.Now)
	_, token, err := accounts.Create(ctx, "newbie", "", []string{"approvers"}, false, "test")
	if err != nil {
		t.Fatal(err)
	}
	path := "/enroll/" + token
	b := f.browser(t)
	page := b.get(t, path)
	m := regexp.MustCompile(`<code class="secret">([A-Z2-7 ]+)</code>`).FindStringSubmatch(page.body)
	if page.status != http.StatusOK || m == nil || !strings.Contains(page.body, "Register a passkey") {
		t.Fatalf("enrollment page: %d\n%s", page.status, page.body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	res := b.post(t, path+"/totp", url.Values{"code": {f.codeFor(t, secret)}, "name": {"phone"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?done=enrolled" || b.cookie(sessionCookie) == nil {
		t.Fatalf("enroll: %d %s\n%s", res.status, res.header.Get("Location"), res.body)
	}
	if got := b.get(t, "/account"); got.status != http.StatusOK || !strings.Contains(got.body, "newbie") {
		t.Errorf("not signed in after enrollment: %d", got.status)
	}
	got, err := f.st.GetEnrollment(ctx, account.EnrollmentHash(token))
	if err != nil || got.UsedAt.IsZero() {
		t.Errorf("enrollment not marked used: %+v %v", got, err)
	}
	if res := f.browser(t).get(t, path); res.status != http.StatusGone {
		t.Errorf("used link: %d, want 410", res.status)
	}

	// A second link for the same person (after losing a factor) adds one.
	token2, err := accounts.Enroll(ctx, "newbie", "test")
	if err != nil {
		t.Fatal(err)
	}
	b2 := f.browser(t)
	page = b2.get(t, "/enroll/"+token2)
	m = regexp.MustCompile(`<code class="secret">([A-Z2-7 ]+)</code>`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("second enrollment page: %d", page.status)
	}
	f.clock.Add(totp.Period)
	res = b2.post(t, "/enroll/"+token2+"/totp", url.Values{"code": {f.codeFor(t, strings.ReplaceAll(m[1], " ", ""))}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("second enrollment: %d\n%s", res.status, res.body)
	}
	u, _ := f.st.GetUserByName(ctx, "newbie")
	if n := len(f.credentials(t, u.ID)); n != 2 {
		t.Errorf("%d factors after a second enrollment, want 2", n)
	}

	// An expired link.
	token3, _ := accounts.Enroll(ctx, "newbie", "test")
	f.clock.Add(account.EnrollmentTTL)
	if res := f.browser(t).get(t, "/enroll/"+token3); res.status != http.StatusGone {
		t.Errorf("expired link: %d, want 410", res.status)
	}
	if strings.Contains(f.logs.String(), token) {
		t.Errorf("the enrollment token reached the log")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/checks/x":        "/checks/x",
		"/checks?x=1":      "/checks?x=1",
		"//evil.example":   "",
		"/\\evil.example":  "",
		"https://evil":     "",
		"":                 "",
		"javascript:x":     "",
		"/a\r\nSet-Cookie": "",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequireUV(t *testing.T) {
	in := json.RawMessage(`{"publicKey":{"challenge":"abc","userVerification":"preferred","allowCredentials":[{"type":"public-key","id":"AQ"}]},"mediation":"optional"}`)
	out, err := requireUV(in)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			UserVerification string `json:"userVerification"`
			Allow            []any  `json:"allowCredentials"`
		} `json:"publicKey"`
		Mediation string `json:"mediation"`
	}
	if err := json.Unmarshal(out, &o); err != nil || o.PublicKey.UserVerification != "required" || o.PublicKey.Challenge != "abc" || len(o.PublicKey.Allow) != 1 || o.Mediation != "optional" {
		t.Errorf("requireUV = %s, %v", out, err)
	}
}
