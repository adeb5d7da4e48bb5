package github

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/integrations/github/githubtest"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

const (
	appID     = 31337
	secret    = "It's a Secret to Everybody"
	publicURL = "https://stepgate.example.com"
	repo      = "acme/infra"
	runID     = "4242"
	sha       = "ffac537e6cbbf934b08745a378932722df287a53"
)

type harness struct {
	st      *sqlite.Store
	gh      *githubtest.Server
	key     *rsa.PrivateKey
	hub     *gate.Hub
	app     *App
	stop    func()
	waiting chan string
	done    chan string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{st: st, gh: githubtest.New(t, appID, &key.PublicKey), key: key, hub: gate.NewHub()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.hub.Run(ctx, st) }()
	t.Cleanup(func() { cancel(); <-done })
	h.start(t)
	return h
}

// start runs a new App over the harness's store, as a server (re)start.
func (h *harness) start(t *testing.T) {
	t.Helper()
	c, err := NewClient(h.gh.URL, appID, h.key, h.gh.Client(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h.waiting = make(chan string, 16)
	h.app = New(Config{Secret: []byte(secret), APIURL: h.gh.URL, PublicURL: publicURL,
		Backoff: func(int) time.Duration { return time.Millisecond }, Recheck: time.Hour},
		h.st, h.hub, c, slog.New(slog.DiscardHandler), time.Now)
	h.app.onWait = func(id string) { h.waiting <- id }
	h.done = make(chan string, 16)
	h.app.onDone = func(id string) { h.done <- id }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.app.Run(ctx) }()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
}

// awaitDone returns once a delivery's follower has returned.
func (h *harness) awaitDone(t *testing.T) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery was never answered")
	}
}

func (h *harness) awaitWaiting(t *testing.T) {
	t.Helper()
	select {
	case <-h.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the delivery never waited for its checks")
	}
}

// payload is a deployment_protection_rule delivery as GitHub documents it.
func (h *harness) payload(callback string) []byte {
	if callback == "" {
		callback = h.gh.URL + "/repos/" + repo + "/actions/runs/" + runID + "/deployment_protection_rule"
	}
	b, _ := json.Marshal(map[string]any{
		"action": "requested", "environment": "production", "event": "push",
		"ref": "refs/heads/main", "sha": sha,
		"deployment_callback_url": callback,
		"deployment":              map[string]any{"id": 1, "sha": sha, "ref": "main", "environment": "production", "task": "deploy"},
		"repository":              map[string]any{"id": 9, "full_name": repo, "name": "infra", "owner": map[string]any{"login": "acme"}},
		"installation":            map[string]any{"id": githubtest.Installation, "node_id": "MDIz"},
		"sender":                  map[string]any{"login": "octocat"},
	})
	return b
}

func sign(body []byte, key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (h *harness) deliver(t *testing.T, id string, body []byte, sig string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "deployment_protection_rule")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	rec := httptest.NewRecorder()
	h.app.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// verified is a check made with a CI token whose claims were verified.
func verified(id string, state store.CheckState, commit string) *store.Check {
	return &store.Check{ID: id, State: state, TokenID: "oidc:x", CreatedAt: time.Now(),
		Pipeline: map[string]string{"system": "github-actions", "issuer": "https://token.actions.githubusercontent.com", "repository": repo, "run_id": runID, "sha": commit}}
}

func (h *harness) create(t *testing.T, cs ...*store.Check) {
	t.Helper()
	for _, c := range cs {
		if err := h.st.CreateCheck(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *harness) audited(t *testing.T, typ string) []*audit.Event {
	t.Helper()
	evs, err := h.st.ListAudit(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*audit.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func TestSignatureIsVerifiedFirst(t *testing.T) {
	for _, tt := range []struct{ name, sig string }{
		{"fail/missing", ""},
		{"fail/other-secret", sign(nil, "not the secret")},
		{"fail/sha1", "sha1=" + strings.Repeat("0", 40)},
		{"fail/not-hex", "sha256=zz"},
		{"fail/signature-of-another-body", sign([]byte("{}"), secret)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			body := h.payload("")
			sig := tt.sig
			if tt.name == "fail/other-secret" {
				sig = sign(body, "not the secret")
			}
			code, _ := h.deliver(t, "d1", body, sig)
			if code != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", code)
			}
			if n := len(h.audited(t, audit.IntegrationRefused)); n != 1 {
				t.Errorf("%d integration.refused events, want 1", n)
			}
			if open, _ := h.st.OpenGitHubDeliveries(t.Context(), 10); len(open) != 0 {
				t.Errorf("a delivery with a bad signature was recorded: %v", open)
			}
			h.gh.None(t)
		})
	}
}

func TestValidSignature(t *testing.T) {
	// The example of GitHub's "Validating webhook deliveries".
	got := ValidSignature([]byte(secret), []byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if !got {
		t.Error("ValidSignature(GitHub's documented example) = false")
	}
}

func TestCallbackMustBeARunOnTheAPIHost(t *testing.T) {
	for _, tt := range []struct{ name, callback string }{
		{"fail/other-host", "https://evil.example.com/repos/" + repo + "/actions/runs/" + runID + "/deployment_protection_rule"},
		{"fail/other-repository", "{api}/repos/acme/other/actions/runs/" + runID + "/deployment_protection_rule"},
		{"fail/not-a-run-callback", "{api}/repos/" + repo + "/actions/runs/" + runID + "/approve"},
		{"fail/query", "{api}/repos/" + repo + "/actions/runs/" + runID + "/deployment_protection_rule?x=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.create(t, verified("c1", store.StateAllowed, sha))
			body := h.payload(strings.ReplaceAll(tt.callback, "{api}", h.gh.URL))
			code, _ := h.deliver(t, "d1", body, sign(body, secret))
			if code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", code)
			}
			if n := len(h.audited(t, audit.IntegrationRefused)); n != 1 {
				t.Errorf("%d integration.refused events, want 1", n)
			}
			h.gh.None(t)
		})
	}
}

func TestAnswers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		checks []*store.Check
		want   string
	}{
		{"ok/allowed", []*store.Check{verified("c1", store.StateAllowed, sha)}, Approved},
		{"ok/approved-and-consumed", []*store.Check{verified("c1", store.StateApproved, sha), verified("c2", store.StateConsumed, sha)}, Approved},
		{"fail/no-check", nil, Rejected},
		{"fail/denied", []*store.Check{verified("c1", store.StateAllowed, sha), verified("c2", store.StateDenied, sha)}, Rejected},
		{"fail/rejected", []*store.Check{verified("c1", store.StateRejected, sha)}, Rejected},
		{"fail/expired", []*store.Check{verified("c1", store.StateExpired, sha)}, Rejected},
		{"fail/other-commit", []*store.Check{verified("c1", store.StateAllowed, strings.Repeat("0", 40))}, Rejected},
		{
			// The attack: an API token's check saying pipeline.run_id=...
			// (what a pipeline merely says) must not count.
			"fail/unverified-claims", []*store.Check{{
				ID: "c1", State: store.StateAllowed, TokenID: "tok_1", CreatedAt: time.Now(),
				PipelineUnverified: map[string]string{"system": "github-actions", "repository": repo, "run_id": runID, "sha": sha},
			}}, Rejected,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.create(t, tt.checks...)
			body := h.payload("")
			if code, msg := h.deliver(t, "d1", body, sign(body, secret)); code != http.StatusAccepted {
				t.Fatalf("status = %d (%s), want 202", code, msg)
			}
			r := h.gh.Next(t)
			h.awaitDone(t)
			if r.Path != "/repos/"+repo+"/actions/runs/"+runID+"/deployment_protection_rule" || r.Body["state"] != tt.want || r.Body["environment_name"] != "production" {
				t.Errorf("review = %+v, want state %s for production", r, tt.want)
			}
			if evs := h.audited(t, audit.DeploymentReviewed); len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"state":"`+tt.want+`"`) {
				t.Errorf("deployment.reviewed events = %v", evs)
			}
		})
	}
}

func TestPendingReportsThenAnswersWhenPeopleDecide(t *testing.T) {
	h := newHarness(t)
	h.create(t, verified("c1", store.StateAllowed, sha), verified("c2", store.StatePending, sha))
	body := h.payload("")
	if code, _ := h.deliver(t, "d1", body, sign(body, secret)); code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202", code)
	}
	r := h.gh.Next(t)
	if _, hasState := r.Body["state"]; hasState || !strings.Contains(r.Body["comment"].(string), publicURL+"/checks/c2") {
		t.Fatalf("status report = %+v, want no state and the review link of c2", r.Body)
	}
	h.awaitWaiting(t)
	c, _ := h.st.GetCheck(t.Context(), "c2")
	c.State = store.StateApproved
	if err := h.st.UpdateCheck(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := h.st.NotifyCheck(t.Context(), "c2"); err != nil { // as the gate does after a decision
		t.Fatal(err)
	}
	if r := h.gh.Next(t); r.Body["state"] != Approved {
		t.Errorf("final answer = %+v, want approved", r.Body)
	}
}

func TestRetriesGitHubErrors(t *testing.T) {
	h := newHarness(t)
	h.gh.Fail(2) // 502, 502, then 204
	h.create(t, verified("c1", store.StateAllowed, sha))
	body := h.payload("")
	h.deliver(t, "d1", body, sign(body, secret))
	if r := h.gh.Next(t); r.Body["state"] != Approved {
		t.Fatalf("answer = %+v, want approved", r.Body)
	}
	h.awaitDone(t)
	d, err := h.st.GetGitHubDelivery(t.Context(), "d1")
	if err != nil || d.State != store.DeliveryAnswered || d.Answer != Approved || d.Attempts != 2 {
		t.Errorf("delivery = %+v, %v; want answered approved after 2 failed attempts", d, err)
	}
	h.gh.None(t)
}

func TestRedeliveryIsAnsweredOnce(t *testing.T) {
	h := newHarness(t)
	h.create(t, verified("c1", store.StateAllowed, sha))
	body := h.payload("")
	if code, _ := h.deliver(t, "d1", body, sign(body, secret)); code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202", code)
	}
	h.gh.Next(t)
	h.awaitDone(t)
	if code, msg := h.deliver(t, "d1", body, sign(body, secret)); code != http.StatusOK || !strings.Contains(msg, "already") {
		t.Errorf("redelivery: %d %s, want 200 already received", code, msg)
	}
	h.stop()
	h.gh.None(t)
}

func TestPendingDeliverySurvivesARestart(t *testing.T) {
	h := newHarness(t)
	h.create(t, verified("c1", store.StatePending, sha))
	body := h.payload("")
	h.deliver(t, "d1", body, sign(body, secret))
	if r := h.gh.Next(t); r.Body["state"] != nil {
		t.Fatalf("status report = %+v, want no state", r.Body)
	}
	h.awaitWaiting(t)
	h.stop() // the server stops while people decide
	c, _ := h.st.GetCheck(t.Context(), "c1")
	c.State = store.StateRejected
	if err := h.st.UpdateCheck(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	h.start(t) // and starts again: the delivery is resumed from the store
	if r := h.gh.Next(t); r.Body["state"] != Rejected {
		t.Errorf("answer after the restart = %+v, want rejected", r.Body)
	}
	h.awaitDone(t)
	h.gh.None(t) // the status report was not sent again
}

func TestPingAndOtherEvents(t *testing.T) {
	h := newHarness(t)
	for _, ev := range []string{"ping", "push"} {
		body := []byte(`{"zen":"Keep it logically awesome."}`)
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", ev)
		req.Header.Set("X-Hub-Signature-256", sign(body, secret))
		rec := httptest.NewRecorder()
		h.app.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d, want 200", ev, rec.Code)
		}
	}
	h.gh.None(t)
}

func TestGitHubRefusingForGoodIsRecordedNotRetried(t *testing.T) {
	h := newHarness(t)
	h.gh.FailWith(1, http.StatusUnprocessableEntity)
	h.create(t, verified("c1", store.StateAllowed, sha))
	body := h.payload("")
	h.deliver(t, "d1", body, sign(body, secret))
	h.awaitDone(t)
	d, err := h.st.GetGitHubDelivery(t.Context(), "d1")
	if err != nil || d.State != store.DeliveryAnswered || d.Answer != "" || d.Attempts != 1 || !strings.Contains(d.LastError, "422") {
		t.Errorf("delivery = %+v, %v; want answered, no answer sent, 1 attempt, the 422 kept", d, err)
	}
	if evs := h.audited(t, audit.DeploymentReviewed); len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"sent":false`) {
		t.Errorf("deployment.reviewed events = %v, want one saying the answer was not sent", evs)
	}
	h.gh.None(t)
}

func TestShutdownCancelsRetries(t *testing.T) {
	h := newHarness(t)
	h.stop()
	h.app.cfg.Backoff = func(int) time.Duration { return time.Hour }
	h.gh.Fail(1)
	h.create(t, verified("c1", store.StateAllowed, sha))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); h.app.Run(ctx) }()
	body := h.payload("")
	h.deliver(t, "d1", body, sign(body, secret))
	// The first call fails; the follower now waits an hour to retry.
	deadline := time.After(10 * time.Second)
	for {
		d, err := h.st.GetGitHubDelivery(t.Context(), "d1")
		if err == nil && d.Attempts == 1 {
			break
		}
		select {
		case <-stopped:
			t.Fatal("Run returned before shutdown")
		case <-deadline:
			t.Fatal("the first call to GitHub was never recorded as failed")
		case <-time.After(10 * time.Millisecond): // polling the store
		}
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return on shutdown while a retry waited")
	}
	if d, _ := h.st.GetGitHubDelivery(t.Context(), "d1"); d.State == store.DeliveryAnswered {
		t.Errorf("delivery = %+v, want it still open, to resume at the next start", d)
	}
}

// TestRefusalsDoNotFloodTheAuditLog: anyone may send unsigned requests; one
// reason is audited at most once a minute, with the count of the others.
func TestRefusalsDoNotFloodTheAuditLog(t *testing.T) {
	h := newHarness(t)
	now := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	h.app.now = func() time.Time { return now }
	body := h.payload("")
	for range 50 {
		if code, _ := h.deliver(t, "d1", body, "sha256=00"); code != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401", code)
		}
	}
	if n := len(h.audited(t, audit.IntegrationRefused)); n != 1 {
		t.Fatalf("%d integration.refused events after 50 refusals within a minute, want 1", n)
	}
	now = now.Add(refusalEvery)
	h.deliver(t, "d1", body, "")
	evs := h.audited(t, audit.IntegrationRefused)
	if len(evs) != 2 || !strings.Contains(string(evs[1].Data), `"refused_since_last":49`) {
		t.Errorf("after a minute: %d events, last %s; want 2, counting the 49 not audited", len(evs), evs[len(evs)-1].Data)
	}
}

// TestRefusedStatusReportStillAnswers: GitHub refusing the status report
// does not drop the final answer.
func TestRefusedStatusReportStillAnswers(t *testing.T) {
	h := newHarness(t)
	h.gh.FailWith(1, http.StatusUnprocessableEntity)
	h.create(t, verified("c1", store.StatePending, sha))
	body := h.payload("")
	h.deliver(t, "d1", body, sign(body, secret))
	h.awaitWaiting(t)
	c, _ := h.st.GetCheck(t.Context(), "c1")
	c.State = store.StateDenied
	if err := h.st.UpdateCheck(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := h.st.NotifyCheck(t.Context(), "c1"); err != nil {
		t.Fatal(err)
	}
	if r := h.gh.Next(t); r.Body["state"] != Rejected {
		t.Errorf("answer = %+v, want rejected", r.Body)
	}
}
