package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/api"
)

const testToken = "sgt_s3cr3t-token"

// recorder is a test server that records the last request and answers
// with a canned status and body.
type recorder struct {
	status int
	body   string
	got    struct {
		method, path, rawQuery, auth, ua, contentType string
		body                                          []byte
		query                                         url.Values
	}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.got.method, rec.got.path, rec.got.rawQuery = r.Method, r.URL.Path, r.URL.RawQuery
	rec.got.query = r.URL.Query()
	rec.got.auth, rec.got.ua, rec.got.contentType = r.Header.Get("Authorization"), r.Header.Get("User-Agent"), r.Header.Get("Content-Type")
	rec.got.body, _ = io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rec.status)
	io.WriteString(w, rec.body)
}

func newTest(t *testing.T, rec *recorder, opts ...Option) *Client {
	t.Helper()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/", testToken, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateCheck(t *testing.T) {
	rec := &recorder{status: http.StatusCreated, body: `{"id":"chk_1","state":"pending","review_url":"https://gate/checks/chk_1","approvals":[]}`}
	c := newTest(t, rec, WithUserAgent("stepgate/test"))
	plan := `{"format_version":"1.2","resource_changes":[]}`
	got, err := c.CreateCheck(context.Background(), CheckRequest{
		Kind: "terraform.apply", Workspace: "billing-prod", Environment: "prod",
		PlanFileSHA256: strings.Repeat("ab", 32),
		Pipeline:       map[string]string{"repository": "acme/infra", "run_id": "42"},
		// A reader that is not a bytes/strings reader: the body is streamed
		// with no length known in advance.
		Plan: io.MultiReader(strings.NewReader(plan[:10]), strings.NewReader(plan[10:])),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "chk_1" || got.State != "pending" || got.ReviewURL != "https://gate/checks/chk_1" {
		t.Errorf("CreateCheck() = %+v", got)
	}
	if rec.got.method != http.MethodPost || rec.got.path != api.PathChecks {
		t.Errorf("request = %s %s, want POST %s", rec.got.method, rec.got.path, api.PathChecks)
	}
	want := url.Values{
		api.ParamKind: {"terraform.apply"}, api.ParamWorkspace: {"billing-prod"}, api.ParamEnvironment: {"prod"},
		api.ParamPlanFileHash:                  {strings.Repeat("ab", 32)},
		api.ParamPipelinePrefix + "repository": {"acme/infra"}, api.ParamPipelinePrefix + "run_id": {"42"},
	}
	if diff := cmp.Diff(want, rec.got.query); diff != "" {
		t.Errorf("query mismatch (-want +got):\n%s", diff)
	}
	if string(rec.got.body) != plan {
		t.Errorf("body = %q, want the plan as given", rec.got.body)
	}
	if rec.got.auth != "Bearer "+testToken || rec.got.ua != "stepgate/test" || rec.got.contentType != "application/json" {
		t.Errorf("headers: Authorization %q, User-Agent %q, Content-Type %q", rec.got.auth, rec.got.ua, rec.got.contentType)
	}
}

func TestCreateCheckWithoutPlan(t *testing.T) {
	rec := &recorder{status: http.StatusCreated, body: `{"id":"chk_2","state":"pending"}`}
	c := newTest(t, rec)
	if _, err := c.CreateCheck(context.Background(), CheckRequest{Kind: "secret.read", Workspace: "vault"}); err != nil {
		t.Fatal(err)
	}
	if len(rec.got.body) != 0 || rec.got.query.Has(api.ParamEnvironment) || rec.got.query.Has(api.ParamPlanFileHash) {
		t.Errorf("secret.read sent body %q and query %q; want an empty body and no empty parameters", rec.got.body, rec.got.rawQuery)
	}
}

func TestPaths(t *testing.T) {
	rec := &recorder{status: http.StatusOK, body: `{"id":"chk_1","state":"approved","grant":"g"}`}
	c := newTest(t, rec)
	ctx := context.Background()
	if _, err := c.GetCheck(ctx, "chk_1"); err != nil || rec.got.method != "GET" || rec.got.path != "/v1/checks/chk_1" {
		t.Errorf("GetCheck: %v, %s %s", err, rec.got.method, rec.got.path)
	}
	if _, err := c.WaitCheck(ctx, "chk_1", 30*time.Second); err != nil || rec.got.path != "/v1/checks/chk_1/wait" || rec.got.rawQuery != "timeout=30s" {
		t.Errorf("WaitCheck: %v, %s?%s", err, rec.got.path, rec.got.rawQuery)
	}
	if _, err := c.WaitCheck(ctx, "chk_1", 1500*time.Millisecond); err != nil || rec.got.rawQuery != "timeout=2s" {
		t.Errorf("WaitCheck(1.5s): %v, query %s; want whole seconds rounded up", err, rec.got.rawQuery)
	}
	rec.body = `{"check_id":"chk_1","grant_id":"grt_1","consumed_at":"2025-01-02T03:04:05Z"}`
	cr, err := c.Consume(ctx, "eyJ.grant.sig")
	if err != nil || cr.GrantID != "grt_1" || rec.got.path != api.PathConsume || string(rec.got.body) != `{"grant":"eyJ.grant.sig"}` {
		t.Errorf("Consume: %+v, %v, %s %s", cr, err, rec.got.path, rec.got.body)
	}
	rec.status, rec.body = http.StatusNoContent, ""
	err = c.ReportOutcome(ctx, "chk_1", api.OutcomeRequest{GrantID: "grt_1", ExitCode: 3, DurationMS: 1200})
	if err != nil || rec.got.path != "/v1/checks/chk_1/outcome" || string(rec.got.body) != `{"grant_id":"grt_1","exit_code":3,"duration_ms":1200}` {
		t.Errorf("ReportOutcome: %v, %s %s", err, rec.got.path, rec.got.body)
	}
	for _, id := range []string{"", "..", "a/b", "a?b", "a b", "%2e%2e"} {
		if _, err := c.GetCheck(ctx, id); err == nil || !strings.Contains(err.Error(), "invalid check id") {
			t.Errorf("GetCheck(%q) error = %v, want an invalid id", id, err)
		}
	}
}

func TestPathPrefix(t *testing.T) {
	rec := &recorder{status: http.StatusOK, body: `{"id":"chk_1"}`}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c, err := New(srv.URL+"/stepgate/", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetCheck(context.Background(), "chk_1"); err != nil || rec.got.path != "/stepgate/v1/checks/chk_1" {
		t.Errorf("GetCheck under a prefix: %v, path %s", err, rec.got.path)
	}
	if rec.got.auth != "" {
		t.Errorf("Authorization = %q with no token, want none", rec.got.auth)
	}
	if got, want := c.JWKSURL(), srv.URL+"/stepgate/.well-known/jwks.json"; got != want {
		t.Errorf("JWKSURL() = %q, want %q", got, want)
	}
	if got, want := c.BaseURL(), srv.URL+"/stepgate"; got != want {
		t.Errorf("BaseURL() = %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   Error
		text   string
	}{
		{"fail/api-error", 409, `{"error":{"code":"conflict","message":"grant already consumed"}}`,
			Error{409, api.CodeConflict, "grant already consumed"}, "server answered 409 conflict: grant already consumed"},
		{"fail/proxy-page", 502, `<html>bad gateway</html>`,
			Error{502, "", "Bad Gateway"}, "server answered 502 Bad Gateway"},
		{"fail/empty", 401, ``,
			Error{401, "", "Unauthorized"}, "server answered 401 Unauthorized"},
		{"fail/control-characters", 400, `{"error":{"code":"bad_request","message":"plan:\u001b[2J bad"}}`,
			Error{400, api.CodeBadRequest, "plan: [2J bad"}, "server answered 400 bad_request: plan: [2J bad"},
		{"fail/redirect-not-followed", 307, ``, Error{307, "", "Temporary Redirect"}, "server answered 307"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{status: tt.status, body: tt.body}
			c := newTest(t, rec)
			_, err := c.GetCheck(context.Background(), "chk_1")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("GetCheck() error = %v, want an *Error", err)
			}
			if diff := cmp.Diff(tt.want, *e); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error text = %q, want %q", err.Error(), tt.text)
			}
		})
	}
}

// TestRedirectKeepsToken: a redirect, even to the same host, is not
// followed, so neither the token nor a streamed plan goes anywhere else.
func TestRedirectKeepsToken(t *testing.T) {
	var leaked bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { leaked = true }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c, err := New(srv.URL, testToken, WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateCheck(context.Background(), CheckRequest{Kind: "terraform.apply", Workspace: "w", Plan: strings.NewReader("{}")})
	var e *Error
	if !errors.As(err, &e) || e.Status != 307 || leaked {
		t.Errorf("CreateCheck() against a redirect = %v (leaked %v); want a 307 *Error and nothing sent elsewhere", err, leaked)
	}
}

func TestOversizedAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"`)
		io.WriteString(w, strings.Repeat("x", MaxResponseBytes))
		io.WriteString(w, `"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, testToken)
	if _, err := c.GetCheck(context.Background(), "chk_1"); err == nil || !strings.Contains(err.Error(), "larger than 8 MiB") {
		t.Errorf("GetCheck() of an oversized answer: error = %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	c, _ := New(u, testToken)
	_, err := c.CreateCheck(context.Background(), CheckRequest{Kind: "terraform.apply", Workspace: "w", Plan: strings.NewReader("{}")})
	var e *Error
	var ue *url.Error
	if err == nil || errors.As(err, &e) || !errors.As(err, &ue) {
		t.Fatalf("CreateCheck() against a closed server = %v, want a wrapped transport error", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q carries the token", err)
	}
}

// TestWaitOutlivesHTTPTimeout: a caller's http.Client.Timeout shorter than
// the long-poll shortens the poll instead of failing every wait.
func TestWaitOutlivesHTTPTimeout(t *testing.T) {
	rec := &recorder{status: http.StatusOK, body: `{"id":"chk_1","state":"pending"}`}
	c := newTest(t, rec, WithHTTPClient(&http.Client{Timeout: 20 * time.Second}))
	if _, err := c.WaitCheck(context.Background(), "chk_1", 30*time.Second); err != nil || rec.got.rawQuery != "timeout=15s" {
		t.Errorf("WaitCheck: %v, query %s; want timeout=15s under a 20s HTTP timeout", err, rec.got.rawQuery)
	}
}

// TestWaitLongPoll: the request waits as long as the server holds it.
func TestWaitLongPoll(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get(api.ParamTimeout))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		time.Sleep(d)
		json.NewEncoder(w).Encode(api.Check{ID: "chk_1", State: "pending"})
	}))
	defer srv.Close()
	c, _ := New(srv.URL, testToken)
	start := time.Now()
	got, err := c.WaitCheck(context.Background(), "chk_1", time.Second)
	if err != nil || got.State != "pending" || time.Since(start) < time.Second {
		t.Errorf("WaitCheck() = %+v, %v after %v", got, err, time.Since(start))
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct{ url, token, want string }{
		{"ftp://gate", "", "want an http:// or https:// URL"},
		{"gate.example.com", "", "want an http:// or https:// URL"},
		{"https://", "", "has no host"},
		{"https://user:pw@gate", "", "must not carry a user name or password"},
		{"https://gate?x=1", "", "no query"},
		{"https://gate", "tok\nen", "spaces or control characters"},
	} {
		_, err := New(tt.url, tt.token)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q) error = %v, want %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok\nen") {
			t.Errorf("New() error %q carries the token", err)
		}
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	c, err := New("https://gate.example.com", testToken)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %+v %#v %s", c, c, c, c)
	slog.New(slog.NewTextHandler(&b, nil)).Info("client", "c", c)
	if strings.Contains(b.String(), testToken) {
		t.Errorf("the token is printed: %s", b.String())
	}
}
