package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/clocktest"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/logtest"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

type fixture struct {
	st     store.Store
	svc    *gate.Service
	web    *Web
	srv    *httptest.Server
	clock  *clocktest.Clock
	master *keys.Master
	tp     *totp.TOTP
	logs   *logtest.Buffer
	// secrets of the users' TOTP factors, by user name
	secrets map[string]string
}

// newFixture runs the web side on a real SQLite store behind a real HTTP
// server, in dev mode on a loopback address (cookies without Secure, so
// that the test client keeps them over http).
func newFixture(t *testing.T, configure ...func(w *Web, public string)) *fixture {
	t.Helper()
	return newFixtureWith(t, gate.Config{}, configure...)
}

// newFixtureWith is newFixture with the gate configured by cfg (its
// PublicURL is set here).
func newFixtureWith(t *testing.T, cfg gate.Config, configure ...func(w *Web, public string)) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := bytes.Repeat([]byte{7}, 32)
	master, err := keys.NewMaster(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.New(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	ring := keys.NewRing(master, clk.Now)
	if _, err := ring.Ensure(ctx, st); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	public := "http://" + srv.Listener.Addr().String()
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.PublicURL = public
	svc := gate.New(st, engine, ring, cfg, log, clk.Now)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	wa, err := webauthn.New("localhost", fmt.Sprintf("http://localhost:%d", port), "stepgate", clk.Now)
	if err != nil {
		t.Fatalf("webauthn.New: %v", err)
	}
	tp := totp.New(master, "stepgate", clk.Now)
	w := New(Config{PublicURL: public, Dev: true}, svc, st, master, wa, tp, log, clk.Now)
	for _, c := range configure {
		c(w, public)
	}
	srv.Config.Handler = w.Routes()
	srv.Start()
	t.Cleanup(srv.Close)
	return &fixture{st: st, svc: svc, web: w, srv: srv, clock: clk, master: master, tp: tp, logs: logs, secrets: map[string]string{}}
}

// addUser creates a person with one TOTP factor.
func (f *fixture) addUser(t *testing.T, name string, groups ...string) *store.User {
	t.Helper()
	u := &store.User{ID: "usr_" + name, Name: name, Groups: groups, CreatedAt: f.clock.Now()}
	cred := f.newTOTP(t, u, "phone")
	err := f.st.InTx(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateUser(context.Background(), u); err != nil {
			return err
		}
		return tx.AddCredential(context.Background(), cred)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(totp.Period) // the confirming code is spent
	return u
}

// newTOTP sets up a TOTP factor for u, remembering its secret.
func (f *fixture) newTOTP(t *testing.T, u *store.User, name string) *store.Credential {
	t.Helper()
	p, err := f.tp.Begin(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(p.URL)
	secret := pu.Query().Get("secret")
	f.secrets[u.Name] = secret
	cred, err := f.tp.Confirm(p, f.codeFor(t, secret), u.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func (f *fixture) codeFor(t *testing.T, secret string) string {
	t.Helper()
	code, err := pqtotp.GenerateCode(secret, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// code is the current TOTP code of a user.
func (f *fixture) code(t *testing.T, name string) string { return f.codeFor(t, f.secrets[name]) }

// browser is a test client with a cookie jar that does not follow
// redirects, and sends the Origin a browser would.
type browser struct {
	f      *fixture
	client *http.Client
}

func (f *fixture) browser(t *testing.T) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{f: f, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(t *testing.T, req *http.Request) *response {
	t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return &response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(t *testing.T, path string) *response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.f.srv.URL+path, nil)
	return b.do(t, req)
}

// pagePost is a POST to the fixture's server the way a browser sends it
// from a stepgate page: same-origin.
func (f *fixture) pagePost(path, contentType string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", f.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return req
}

// formPost is pagePost with a form.
func (f *fixture) formPost(path string, form url.Values) *http.Request {
	return f.pagePost(path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

// post sends a form the way a browser does from a stepgate page.
func (b *browser) post(t *testing.T, path string, form url.Values) *response {
	t.Helper()
	return b.do(t, b.f.formPost(path, form))
}

// postJSON sends JSON the way webauthn.js does.
func (b *browser) postJSON(t *testing.T, path string, v any) *response {
	t.Helper()
	body, _ := json.Marshal(v)
	return b.do(t, b.f.pagePost(path, "application/json", bytes.NewReader(body)))
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.f.srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// signIn signs a person in with their current TOTP code and moves the
// clock past that code's step.
func (b *browser) signIn(t *testing.T, name string) {
	t.Helper()
	res := b.post(t, "/signin/totp", url.Values{"username": {name}, "code": {b.f.code(t, name)}})
	if res.status != http.StatusSeeOther || b.cookie(sessionCookie) == nil {
		t.Fatalf("signing in %s: %d, want 303 and a session cookie\n%s", name, res.status, res.body)
	}
	b.f.clock.Add(totp.Period)
}

// checkSpec describes a pending check put straight into the store.
type checkSpec struct {
	requester string
	req       policy.Requirements
	findings  []policy.Finding
	changes   []plan.Change
	pipeline  map[string]string
	byAction  map[string]int
}

// putCheck stores a pending check with an assessment of our choosing and
// its changes, as the gate would.
func (f *fixture) putCheck(t *testing.T, id string, s checkSpec) {
	t.Helper()
	now := f.clock.Now()
	req := s.req
	a := policy.Assessment{
		Decision: policy.StepUp, Requirements: &req, Findings: s.findings,
		Summary: policy.Summary{Kind: "terraform.apply", Workspace: "billing-prod", Production: true, ByAction: s.byAction},
	}
	if a.Findings == nil {
		a.Findings = []policy.Finding{}
	}
	assessment, _ := json.Marshal(a)
	c := &store.Check{
		ID: id, State: store.StatePending, Kind: "terraform.apply", Workspace: "billing-prod", Environment: "prod",
		PlanSHA256: strings.Repeat("ab", 32), Requester: s.requester, Pipeline: s.pipeline, Assessment: assessment,
		ResumeKey: "rk-" + id, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	changes, _ := json.Marshal(gate.Changes{Changes: s.changes})
	err := f.st.InTx(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateCheck(context.Background(), c); err != nil {
			return err
		}
		if s.changes != nil {
			return tx.PutCheckChanges(context.Background(), id, changes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) state(t *testing.T, id string) store.CheckState {
	t.Helper()
	c, err := f.st.GetCheck(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

func (f *fixture) credentials(t *testing.T, userID string) []*store.Credential {
	t.Helper()
	cs, err := f.st.ListCredentials(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
