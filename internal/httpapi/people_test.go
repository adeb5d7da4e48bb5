package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/oidc/oidctest"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// testClock is the server's clock: the real time (the provider signs with
// it) plus an offset a test may set.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// peopleEnv is the real API with the people side on, over a real OpenID
// Provider (oidctest) with the command line's native client registered.
type peopleEnv struct {
	*env
	st    store.Store
	p     *oidctest.Provider
	clock *testClock
	n     int
}

const otherClientID = "some-other-app"

func newPeopleEnv(t *testing.T, withPeople bool, configure ...func(*oidc.Config)) *peopleEnv {
	t.Helper()
	clock := &testClock{}
	s := newStack(t, stackOpts{now: clock.now})
	// A third client of the same provider: its tokens are not for stepgate.
	storage.RegisterClients(storage.NativeClient(otherClientID, oidctest.CLIRedirectURI))
	p := oidctest.StartWithCLI(t, s.srv.URL+"/oidc/callback")
	if withPeople {
		cfg := oidc.Config{
			Name: "Example SSO", Issuer: p.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
			RedirectURL: s.srv.URL + "/oidc/callback", ACR: map[int]string{2: "urn:stepgate:mfa", 3: "phr"},
		}
		for _, c := range configure {
			c(&cfg)
		}
		rp, err := oidc.New(context.Background(), cfg, clock.now)
		if err != nil {
			t.Fatal(err)
		}
		s.api.SetPeople(rp, oidctest.CLIClientID, clock.now)
	}
	e := &peopleEnv{env: &env{srv: s.srv}, st: s.st, p: p, clock: clock}
	// alice is linked to the provider's test-user2 (subject id2) and may
	// approve; test-user@host (id1) is linked to no account.
	e.putUser(t, &store.User{Name: "alice", Groups: []string{"approvers"}, Links: []string{"oidc:id2"}})
	return e
}

func (e *peopleEnv) putUser(t *testing.T, u *store.User) {
	t.Helper()
	u.ID = "usr_" + u.Name
	u.CreatedAt = time.Now().UTC()
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// putCheck stores a pending check that needs req, asked for by requester.
func (e *peopleEnv) putCheck(t *testing.T, requester string, req policy.Requirements, edit ...func(*store.Check)) *store.Check {
	t.Helper()
	e.n++
	now := time.Now().UTC()
	a := policy.Assessment{
		Decision: policy.StepUp, Requirements: &req,
		Findings: []policy.Finding{{Rule: "sensitive.change", Decision: policy.StepUp, Severity: "critical", Addresses: []string{"aws_iam_role_policy.deployer"}, Reason: "1 change to identity and access"}},
		Summary:  policy.Summary{Kind: "terraform.apply", Workspace: "billing-prod", Production: true},
	}
	raw, _ := json.Marshal(a)
	c := &store.Check{
		ID: fmt.Sprintf("chk_%024d", e.n), State: store.StatePending, Kind: "terraform.apply", Workspace: "billing-prod", Environment: "prod",
		PlanSHA256: strings.Repeat(fmt.Sprintf("%02x", e.n), 32), Requester: requester, Assessment: raw,
		ResumeKey: fmt.Sprintf("rk-%d", e.n), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	for _, f := range edit {
		f(c)
	}
	if err := e.st.InTx(context.Background(), func(tx store.Tx) error { return tx.CreateCheck(context.Background(), c) }); err != nil {
		t.Fatal(err)
	}
	return c
}

// idToken signs in at the provider as l with the given client (the
// native CLI client, the web client or another one) and returns the ID
// token of the code exchange.
func (e *peopleEnv) idToken(t *testing.T, clientID string, l oidctest.Login) string {
	t.Helper()
	return providerIDToken(t, e.p, clientID, e.srv.URL+"/oidc/callback", l)
}

// providerIDToken follows the authorization code flow of clientID (the
// web client's redirect is webRedirect) up to the callback, which it never
// calls, and exchanges the code.
func providerIDToken(t *testing.T, p *oidctest.Provider, clientID, webRedirect string, l oidctest.Login) string {
	t.Helper()
	ctx := context.Background()
	prov, err := gooidc.NewProvider(ctx, p.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: clientID, Endpoint: prov.Endpoint(), Scopes: []string{"openid", "profile", "email"}}
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	switch clientID {
	case oidctest.ClientID:
		cfg.ClientSecret = oidctest.ClientSecret
		cfg.RedirectURL = webRedirect
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	default:
		cfg.RedirectURL = "http://127.0.0.1:1/callback" // loopback, any port; never reached
	}
	p.SetNext(l)
	verifier := oauth2.GenerateVerifier()
	u := cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), gooidc.Nonce("nonce-1"))
	jar, _ := cookiejar.New(nil)
	var cb *url.URL
	hc := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), cfg.RedirectURL) {
			cb = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	res, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cb == nil || cb.Query().Get("code") == "" {
		t.Fatalf("no code from the provider for %s: status %d at %s", clientID, res.StatusCode, res.Request.URL)
	}
	tok, err := cfg.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the code of %s: %v", clientID, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token")
	}
	return raw
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (e *peopleEnv) call(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	res, b := e.do(t, method, path, token, r)
	return answer{res.StatusCode, res.Header, b}
}

func (e *peopleEnv) state(t *testing.T, id string) store.CheckState {
	t.Helper()
	c, err := e.st.GetCheck(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

var (
	strong = oidctest.Login{ACR: "phr", AMR: []string{"hwk", "user", "mfa"}}
	// weak2 reaches level 2 (otp): a provider that ignored acr_values=phr.
	weak2 = oidctest.Login{ACR: "urn:stepgate:mfa", AMR: []string{"pwd", "otp"}}
	weak1 = oidctest.Login{AMR: []string{"pwd"}}
)

func TestPeopleApprove(t *testing.T) {
	e := newPeopleEnv(t, true)
	e.putUser(t, &store.User{Name: "carol", Groups: []string{"approvers"}, Links: []string{"oidc:someone-else"}})
	meta := `, resource_metadata="` + e.srv.URL + `/.well-known/oauth-protected-resource"`
	aal3 := policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300}
	for _, tt := range []struct {
		name      string
		requester string
		req       policy.Requirements
		login     oidctest.Login
		client    string
		token     func(tok string) string // changes the token sent
		planSHA   func(c *store.Check) string
		noPlan    bool // a secret.read check, which has no plan
		status    int
		code      string
		// challenge is the whole WWW-Authenticate header expected, with
		// DESC for the error_description.
		challenge string
		want      store.CheckState
	}{
		{name: "ok/fresh-strong-token-of-the-cli", requester: "bob", req: aal3, login: strong, status: 200, want: store.StateApproved},
		{name: "ok/token-of-the-web-client", requester: "bob", req: aal3, login: strong, client: oidctest.ClientID, status: 200, want: store.StateApproved},
		{name: "ok/aal2-by-otp", requester: "bob", req: policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900}, login: weak2, status: 200, want: store.StateApproved},
		{
			name: "fail/weak-acr", requester: "bob", req: aal3, login: weak2, status: 401, code: api.CodeInsufficientUserAuthentication,
			challenge: `Bearer error="insufficient_user_authentication", error_description="DESC", acr_values="phr", max_age="300"` + meta,
			want:      store.StatePending,
		},
		{
			name: "fail/level-1-for-aal2", requester: "bob", req: policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 900}, login: weak1, status: 401, code: api.CodeInsufficientUserAuthentication,
			challenge: `Bearer error="insufficient_user_authentication", error_description="DESC", acr_values="urn:stepgate:mfa phr", max_age="900"` + meta,
			want:      store.StatePending,
		},
		{
			name: "fail/old-auth-time", requester: "bob", req: aal3, login: oidctest.Login{ACR: "phr", AMR: []string{"hwk", "user", "mfa"}, AuthTime: time.Now().Add(-10 * time.Minute)},
			status: 401, code: api.CodeInsufficientUserAuthentication,
			challenge: `Bearer error="insufficient_user_authentication", error_description="DESC", acr_values="phr", max_age="300"` + meta,
			want:      store.StatePending,
		},
		{
			name: "fail/no-max-age-means-five-minutes", requester: "bob", req: policy.Requirements{AAL: 3, Approvals: 1}, login: oidctest.Login{ACR: "phr", AuthTime: time.Now().Add(-6 * time.Minute)},
			status: 401, code: api.CodeInsufficientUserAuthentication,
			challenge: `Bearer error="insufficient_user_authentication", error_description="DESC", acr_values="phr", max_age="300"` + meta,
			want:      store.StatePending,
		},
		{name: "fail/unlinked-account", requester: "bob", req: aal3, login: oidctest.Login{Username: "test-user@127.0.0.1", ACR: "phr"}, status: 403, code: api.CodeForbidden, want: store.StatePending},
		{name: "fail/wrong-plan-sha", requester: "bob", req: aal3, login: strong, planSHA: func(*store.Check) string { return strings.Repeat("0", 64) }, status: 409, code: api.CodeConflict, want: store.StatePending},
		{name: "fail/no-plan-sha", requester: "bob", req: aal3, login: strong, planSHA: func(*store.Check) string { return "" }, status: 400, code: api.CodeBadRequest, want: store.StatePending},
		{name: "ok/secret-read-has-no-plan", requester: "bob", req: aal3, login: strong, noPlan: true, status: 200, want: store.StateApproved},
		{name: "fail/a-plan-sha-for-a-check-without-plan", requester: "bob", req: aal3, login: strong, noPlan: true, planSHA: func(*store.Check) string { return strings.Repeat("ab", 32) }, status: 409, code: api.CodeConflict, want: store.StatePending},
		{name: "fail/requester-self-approval", requester: "alice", req: aal3, login: strong, status: 403, code: api.CodeForbidden, want: store.StatePending},
		{name: "fail/not-in-the-required-group", requester: "bob", req: policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300, Groups: []string{"security"}}, login: strong, status: 403, code: api.CodeForbidden, want: store.StatePending},
		{name: "fail/method-not-accepted", requester: "bob", req: policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 300, Methods: []string{"hwk"}}, login: weak2, status: 403, code: api.CodeForbidden, want: store.StatePending},
		{
			name: "fail/invalid-token", requester: "bob", req: aal3, login: strong, token: func(tok string) string { return tok[:len(tok)-4] + "AAAA" },
			status: 401, code: api.CodeInvalidToken, challenge: `Bearer error="invalid_token", error_description="the ID token is invalid"` + meta, want: store.StatePending,
		},
		{
			name: "fail/token-of-another-client", requester: "bob", req: aal3, login: strong, client: otherClientID,
			status: 401, code: api.CodeInvalidToken, challenge: `Bearer error="invalid_token", error_description="the ID token is invalid"` + meta, want: store.StatePending,
		},
		{
			name: "fail/no-token", requester: "bob", req: aal3, login: strong, token: func(string) string { return "" },
			status: 401, code: api.CodeInvalidToken, challenge: `Bearer resource_metadata="` + e.srv.URL + `/.well-known/oauth-protected-resource"`, want: store.StatePending,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var edits []func(*store.Check)
			if tt.noPlan {
				edits = append(edits, func(c *store.Check) { c.Kind, c.PlanSHA256 = "secret.read", "" })
			}
			c := e.putCheck(t, tt.requester, tt.req, edits...)
			client := tt.client
			if client == "" {
				client = oidctest.CLIClientID
			}
			tok := e.idToken(t, client, tt.login)
			if tt.token != nil {
				tok = tt.token(tok)
			}
			sha := c.PlanSHA256
			if tt.planSHA != nil {
				sha = tt.planSHA(c)
			}
			res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/approve", tok, api.AnswerRequest{PlanSHA256: sha})
			if res.status != tt.status {
				t.Fatalf("approve = %d, want %d\n%s", res.status, tt.status, res.body)
			}
			if tt.code != "" {
				if got := errCode(t, res.body); got != tt.code {
					t.Errorf("error code = %q, want %q (%s)", got, tt.code, res.body)
				}
			}
			if tt.challenge != "" {
				got := res.header.Get("WWW-Authenticate")
				want := regexp.QuoteMeta(tt.challenge)
				want = "^" + strings.Replace(want, "DESC", `[^"\\]+`, 1) + "$"
				if !regexp.MustCompile(want).MatchString(got) {
					t.Errorf("WWW-Authenticate = %s\nwant %s", got, tt.challenge)
				}
			}
			if got := e.state(t, c.ID); got != tt.want {
				t.Errorf("check state = %s, want %s", got, tt.want)
			}
			aps, err := e.st.ListApprovals(context.Background(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != store.StateApproved {
				if len(aps) != 0 {
					t.Errorf("an approval was recorded: %+v", aps[0])
				}
				return
			}
			if len(aps) != 1 {
				t.Fatalf("%d approvals recorded, want 1", len(aps))
			}
			ap := aps[0]
			if ap.Subject != "alice" || !ap.Approved || ap.AAL < tt.req.AAL || ap.AuthTime.IsZero() {
				t.Errorf("approval %+v", ap)
			}
			var ev map[string]any
			if err := json.Unmarshal(ap.Evidence, &ev); err != nil {
				t.Fatal(err)
			}
			if ev["method"] != "oidc" || ev["iss"] != e.p.URL || ev["sub"] != "id2" || ev["acr"] != tt.login.ACR || ev["jti"] == "" || ev["auth_time"] == nil {
				t.Errorf("evidence %s", ap.Evidence)
			}
			if _, err := gate.VerifyEvidence(context.Background(), e.st, func() (*webauthn.WebAuthn, error) { return nil, fmt.Errorf("no passkey expected") }, []string{c.ID}); err != nil {
				t.Errorf("VerifyEvidence: %v", err)
			}
			var v api.Check
			if err := json.Unmarshal(res.body, &v); err != nil || v.State != "approved" || v.Grant != "" {
				t.Errorf("answer %s", res.body)
			}
		})
	}
}

func TestPeopleExpiredAndDisabled(t *testing.T) {
	e := newPeopleEnv(t, true)
	c := e.putCheck(t, "bob", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 300})
	tok := e.idToken(t, oidctest.CLIClientID, strong)

	// The provider's ID tokens live an hour.
	e.clock.advance(2 * time.Hour)
	res := e.call(t, "GET", "/v1/people/me", tok, nil)
	if res.status != 401 || !strings.Contains(res.header.Get("WWW-Authenticate"), `error="invalid_token", error_description="the ID token has expired"`) {
		t.Fatalf("expired token: %d %s", res.status, res.header.Get("WWW-Authenticate"))
	}
	e.clock.advance(-2 * time.Hour)

	u, err := e.st.GetUserByName(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	u.DisabledAt = time.Now()
	if err := e.st.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	res = e.call(t, "POST", "/v1/people/checks/"+c.ID+"/approve", tok, api.AnswerRequest{PlanSHA256: c.PlanSHA256})
	if res.status != 403 || !strings.Contains(string(res.body), "disabled") {
		t.Fatalf("disabled account: %d %s", res.status, res.body)
	}
}

func TestPeopleReject(t *testing.T) {
	e := newPeopleEnv(t, true)
	c := e.putCheck(t, "bob", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300})
	// Saying no needs no step-up, as on the web.
	tok := e.idToken(t, oidctest.CLIClientID, weak1)
	if res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/reject", tok, api.AnswerRequest{PlanSHA256: c.PlanSHA256}); res.status != 400 {
		t.Fatalf("reject without a reason: %d %s", res.status, res.body)
	}
	if res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/reject", tok, api.AnswerRequest{PlanSHA256: strings.Repeat("f", 64), Reason: "no"}); res.status != 409 {
		t.Fatalf("reject of another plan: %d %s", res.status, res.body)
	}
	res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/reject", tok, api.AnswerRequest{PlanSHA256: c.PlanSHA256, Reason: "  deletes the prod database  "})
	if res.status != 200 {
		t.Fatalf("reject: %d %s", res.status, res.body)
	}
	if got := e.state(t, c.ID); got != store.StateRejected {
		t.Fatalf("state %s", got)
	}
	aps, _ := e.st.ListApprovals(context.Background(), c.ID)
	if len(aps) != 1 || aps[0].Approved || aps[0].Reason != "deletes the prod database" || aps[0].Subject != "alice" {
		t.Fatalf("rejection %+v", aps)
	}
	// The check is over: approving it now is a conflict.
	strongTok := e.idToken(t, oidctest.CLIClientID, strong)
	if res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/approve", strongTok, api.AnswerRequest{PlanSHA256: c.PlanSHA256}); res.status != 409 {
		t.Fatalf("approve a rejected check: %d %s", res.status, res.body)
	}
}

func TestPeopleReview(t *testing.T) {
	e := newPeopleEnv(t, true)
	mine := e.putCheck(t, "alice", policy.Requirements{AAL: 2, Approvals: 0, MaxAge: 300})
	other := e.putCheck(t, "bob", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300})
	security := e.putCheck(t, "bob", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300, Groups: []string{"security"}})
	tok := e.idToken(t, oidctest.CLIClientID, weak1)

	res := e.call(t, "GET", "/v1/people/checks", tok, nil)
	var list api.ReviewList
	if res.status != 200 || json.Unmarshal(res.body, &list) != nil {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	var ids []string
	for _, c := range list.Checks {
		ids = append(ids, c.ID)
		if c.ID == mine.ID && !c.Mine {
			t.Errorf("%s is alice's own check but not marked mine", c.ID)
		}
	}
	if got, want := strings.Join(ids, ","), other.ID+","+mine.ID; got != want {
		t.Errorf("listed %s, want %s (newest first, not %s which needs the group security)", got, want, security.ID)
	}

	res = e.call(t, "GET", "/v1/people/checks/"+other.ID, tok, nil)
	var v api.Check
	if res.status != 200 || json.Unmarshal(res.body, &v) != nil {
		t.Fatalf("show: %d %s", res.status, res.body)
	}
	if v.PlanSHA256 != other.PlanSHA256 || v.Requester != "bob" || v.Assessment.Requirements.AAL != 3 || len(v.Assessment.Findings) != 1 || v.Assessment.Findings[0].Addresses[0] != "aws_iam_role_policy.deployer" {
		t.Errorf("show: %s", res.body)
	}
	if res := e.call(t, "GET", "/v1/people/checks/chk_nope", tok, nil); res.status != 404 {
		t.Errorf("unknown check: %d", res.status)
	}

	res = e.call(t, "GET", "/v1/people/me", tok, nil)
	var me api.Me
	if res.status != 200 || json.Unmarshal(res.body, &me) != nil || me.Name != "alice" || me.Subject != "id2" || me.AAL != 1 {
		t.Errorf("me: %d %s", res.status, res.body)
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	e := newPeopleEnv(t, true)
	res := e.call(t, "GET", "/.well-known/oauth-protected-resource", "", nil)
	var md api.ProtectedResource
	if res.status != 200 || json.Unmarshal(res.body, &md) != nil {
		t.Fatalf("metadata: %d %s", res.status, res.body)
	}
	if md.Resource != e.srv.URL || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != e.p.URL ||
		strings.Join(md.BearerMethodsSupported, ",") != "header" || md.CLIClientID != oidctest.CLIClientID ||
		strings.Join(md.CLIScopes, " ") != "openid profile email" || md.ResourceName == "" {
		t.Errorf("metadata %s", res.body)
	}

	off := newPeopleEnv(t, false)
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/v1/people/checks", "/v1/people/me"} {
		res := off.call(t, "GET", path, "x", nil)
		if res.status != 404 || errCode(t, res.body) != api.CodeNotFound {
			t.Errorf("without server.oidc, GET %s = %d %s, want 404", path, res.status, res.body)
		}
	}
}

// TestPeopleSyncedGroupsAreKept: with a groups claim, the groups of the
// ID token are kept in the account, as a web sign-in keeps them, so that
// an approval given with them still counts when the check's approvals are
// counted later.
func TestPeopleSyncedGroupsAreKept(t *testing.T) {
	e := newPeopleEnv(t, true, func(c *oidc.Config) {
		c.GroupsClaim = "groups"
		c.GroupMap = map[string][]string{"idp-sre": {"sre"}}
	})
	c := e.putCheck(t, "bob", policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300, Groups: []string{"sre"}})
	login := strong
	login.Groups = []string{"idp-sre"}
	res := e.call(t, "POST", "/v1/people/checks/"+c.ID+"/approve", e.idToken(t, oidctest.CLIClientID, login), api.AnswerRequest{PlanSHA256: c.PlanSHA256})
	if res.status != 200 {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	u, err := e.st.GetUserByName(context.Background(), "alice")
	if err != nil || !slices.Equal(u.Groups, []string{"sre"}) {
		t.Errorf("alice's groups = %v, %v; want [sre] from the ID token", u.Groups, err)
	}
	got, _ := e.st.GetCheck(context.Background(), c.ID)
	if got.State != store.StateApproved {
		t.Errorf("state %s, want approved", got.State)
	}
}

// TestPeopleReviewPages: the people API pages the pending checks, so that
// a flood cannot hide the older ones: next_page leads to the oldest.
func TestPeopleReviewPages(t *testing.T) {
	e := newPeopleEnv(t, true)
	oldest := e.putCheck(t, "bob", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 300}, func(c *store.Check) { c.CreatedAt = c.CreatedAt.Add(-time.Hour) })
	for range gate.PageSize + 5 {
		e.putCheck(t, "bob", policy.Requirements{AAL: 2, Approvals: 1, MaxAge: 300})
	}
	tok := e.idToken(t, oidctest.CLIClientID, weak1)
	seen := map[string]bool{}
	path := "/v1/people/checks"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages for 56 checks")
		}
		res := e.call(t, "GET", path, tok, nil)
		var list api.ReviewList
		if res.status != 200 || json.Unmarshal(res.body, &list) != nil {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
		if len(list.Checks) > gate.PageSize {
			t.Errorf("GET %s: %d checks, want at most %d", path, len(list.Checks), gate.PageSize)
		}
		for _, c := range list.Checks {
			seen[c.ID] = true
		}
		path = ""
		if list.NextPage != 0 {
			path = fmt.Sprintf("/v1/people/checks?page=%d", list.NextPage)
		}
	}
	if len(seen) != gate.PageSize+6 || !seen[oldest.ID] {
		t.Errorf("saw %d checks over the pages (oldest: %v), want %d with the oldest", len(seen), seen[oldest.ID], gate.PageSize+6)
	}
	if res := e.call(t, "GET", "/v1/people/checks?page=0", tok, nil); res.status != 400 {
		t.Errorf("page=0: %d, want 400", res.status)
	}
}
