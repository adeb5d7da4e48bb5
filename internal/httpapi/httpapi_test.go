package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// stack is the real server side of the API: a SQLite store, a fresh key
// ring, the default policy, the gate, and the API serving on srv.
type stack struct {
	path   string // the SQLite file
	srv    *httptest.Server
	st     store.Store
	master *keys.Master
	svc    *gate.Service
	api    *API
}

// stackOpts tune newStack; the zero value is fine.
type stackOpts struct {
	log     *slog.Logger     // nil: discarded
	now     func() time.Time // the clock of the ring and the gate; nil: time.Now
	ring    []keys.Option
	cfg     gate.Config // PublicURL and MaxPlanBytes are set by newStack
	maxPlan int64       // 0: 1 MiB
}

func newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	ctx := context.Background()
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.maxPlan == 0 {
		o.maxPlan = 1 << 20
	}
	path := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(master, o.now, o.ring...)
	if _, err := ring.Ensure(ctx, st); err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(ctx, policy.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); st.Close() })
	o.cfg.PublicURL, o.cfg.MaxPlanBytes = srv.URL, o.maxPlan
	svc := gate.New(st, engine, ring, o.cfg, o.log, o.now)
	a := New(svc, gate.NewHub(), st, o.log, o.maxPlan)
	mux.Handle("/", a.Routes())
	return &stack{path: path, srv: srv, st: st, master: master, svc: svc, api: a}
}

// token makes an API token for the workspaces billing-*.
func (s *stack) token(t *testing.T) string {
	t.Helper()
	tok, _, err := gate.CreateToken(context.Background(), s.st, gate.TokenSpec{Name: "ci", Workspaces: []string{"billing-*"}}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type env struct {
	srv   *httptest.Server
	token string
	close func()
}

func newEnv(t *testing.T, maxPlan int64) *env {
	t.Helper()
	s := newStack(t, stackOpts{maxPlan: maxPlan})
	return &env{srv: s.srv, token: s.token(t), close: func() { s.st.Close() }}
}

func (e *env) do(t *testing.T, method, path, token string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func planBody(t *testing.T, name string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReader(string(b))
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", b)
	}
	return e.Error.Code
}

func TestRequests(t *testing.T) {
	e := newEnv(t, 1<<20)
	for _, tt := range []struct {
		name, method, path, token string
		body                      func() io.Reader
		status                    int
		code                      string
	}{
		{"fail/no-token", "POST", "/v1/checks?workspace=billing-dev", "", func() io.Reader { return planBody(t, "dev-tag-change.plan.json") }, 401, api.CodeUnauthorized},
		{"fail/bad-token", "GET", "/v1/checks/chk_x", "sgt_abc_def", nil, 401, api.CodeUnauthorized},
		{"fail/other-workspace", "POST", "/v1/checks?workspace=web-dev", e.token, func() io.Reader { return planBody(t, "dev-tag-change.plan.json") }, 403, api.CodeForbidden},
		{"fail/not-a-plan", "POST", "/v1/checks?workspace=billing-dev", e.token, func() io.Reader { return strings.NewReader(`{"hello": 1}`) }, 400, api.CodeBadRequest},
		{"fail/bad-kind", "POST", "/v1/checks?workspace=billing-dev&kind=rm.rf", e.token, func() io.Reader { return planBody(t, "dev-tag-change.plan.json") }, 400, api.CodeBadRequest},
		{"fail/bad-digest", "POST", "/v1/checks?workspace=billing-dev&plan_file_sha256=xyz", e.token, func() io.Reader { return planBody(t, "dev-tag-change.plan.json") }, 400, api.CodeBadRequest},
		{"fail/too-large", "POST", "/v1/checks?workspace=billing-dev", e.token, func() io.Reader { return strings.NewReader(`{"x":"` + strings.Repeat("a", 2<<20) + `"}`) }, 413, api.CodeTooLarge},
		{"fail/unknown-check", "GET", "/v1/checks/chk_000000000000000000000000", e.token, nil, 404, api.CodeNotFound},
		{"fail/garbage-grant", "POST", "/v1/grants/consume", e.token, func() io.Reader { return strings.NewReader(`{"grant": "not.a.jws"}`) }, 401, api.CodeInvalidGrant},
		{"fail/unknown-field", "POST", "/v1/grants/consume", e.token, func() io.Reader { return strings.NewReader(`{"grant": "x", "admin": true}`) }, 400, api.CodeBadRequest},
		{"fail/bad-timeout", "GET", "/v1/checks/chk_x/wait?timeout=forever", e.token, nil, 400, api.CodeBadRequest},
		{"ok/created", "POST", "/v1/checks?workspace=billing-dev&pipeline.repository=acme/infra", e.token, func() io.Reader { return planBody(t, "dev-tag-change.plan.json") }, 201, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			resp, b := e.do(t, tt.method, tt.path, tt.token, body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.path, resp.StatusCode, tt.status, b)
			}
			if tt.code != "" && errCode(t, b) != tt.code {
				t.Errorf("error code = %s, want %s (%s)", errCode(t, b), tt.code, b)
			}
			if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing request id or security headers: %v", resp.Header)
			}
			if strings.Contains(string(b), e.token) {
				t.Errorf("an answer carries a token: %s", b)
			}
		})
	}
}

func TestCreatedCheckCarriesGrantOnlyForItsToken(t *testing.T) {
	e := newEnv(t, 1<<20)
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev&pipeline.run_id=42", e.token, planBody(t, "dev-tag-change.plan.json"))
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var c api.Check
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	// An API token's pipeline fields are what the pipeline says: kept as
	// unverified claims, never as its pipeline identity.
	if c.State != "allowed" || c.Grant == "" || c.PipelineUnverified["run_id"] != "42" || c.Pipeline != nil {
		t.Fatalf("check = %+v, want allowed with a grant and the pipeline's claims unverified", c)
	}
	resp, b = e.do(t, "GET", "/.well-known/jwks.json", "", nil)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &set) != nil || len(set.Keys) != 1 || set.Keys[0]["alg"] != "EdDSA" || set.Keys[0]["d"] != nil {
		t.Errorf("JWKS = %d %s, want one public EdDSA key", resp.StatusCode, b)
	}
	resp, b = e.do(t, "GET", "/.well-known/openid-configuration", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"jwks_uri": "`+e.srv.URL+`/.well-known/jwks.json"`) {
		t.Errorf("discovery = %d %s", resp.StatusCode, b)
	}
}

// TestStoreOutageNeverGrants: when the database is gone, answers are
// errors, never a grant, and /readyz says so.
func TestStoreOutageNeverGrants(t *testing.T) {
	e := newEnv(t, 1<<20)
	if resp, _ := e.do(t, "GET", "/readyz", "", nil); resp.StatusCode != 200 {
		t.Fatalf("readyz before the outage: %d", resp.StatusCode)
	}
	e.close() // the store goes away under the running server
	resp, b := e.do(t, "POST", "/v1/checks?workspace=billing-dev", e.token, planBody(t, "dev-tag-change.plan.json"))
	if resp.StatusCode < 400 || strings.Contains(string(b), `"grant"`) {
		t.Errorf("create during an outage: %d %s; want an error and no grant", resp.StatusCode, b)
	}
	if resp, _ := e.do(t, "GET", "/readyz", "", nil); resp.StatusCode != 503 {
		t.Errorf("readyz during the outage: %d, want 503", resp.StatusCode)
	}
	if resp, _ := e.do(t, "GET", "/healthz", "", nil); resp.StatusCode != 200 {
		t.Errorf("healthz during the outage: %d, want 200 (the process is alive)", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, 1<<20)
	e.do(t, "POST", "/v1/checks?workspace=billing-dev", e.token, planBody(t, "dev-tag-change.plan.json"))
	_, b := e.do(t, "GET", "/metrics", "", nil)
	for _, m := range []string{`stepgate_checks_created_total{decision="allow"} 1`, `stepgate_http_requests_total{code="201",route="POST /v1/checks"} 1`, "go_goroutines"} {
		if !strings.Contains(string(b), m) {
			t.Errorf("metrics do not contain %q", m)
		}
	}
}

// TestMetricsToken: with server.metrics_token set, /metrics answers only
// a scrape that presents it.
func TestMetricsToken(t *testing.T) {
	s := newStack(t, stackOpts{})
	s.api.SetMetricsToken("m3trics-token")
	e := &env{srv: s.srv}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"fail/no token", "", 401},
		{"fail/wrong token", "m3trics-tokeN", 401},
		{"fail/an API token", s.token(t), 401},
		{"ok/the metrics token", "m3trics-token", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := e.do(t, "GET", "/metrics", tc.token, nil)
			if resp.StatusCode != tc.want {
				t.Errorf("GET /metrics = %d, want %d", resp.StatusCode, tc.want)
			}
			if leaked := strings.Contains(string(b), "go_goroutines"); leaked != (tc.want == 200) {
				t.Errorf("GET /metrics body has metrics: %v, want %v", leaked, tc.want == 200)
			}
		})
	}
}
