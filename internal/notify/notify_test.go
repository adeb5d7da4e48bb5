package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/policy"
)

func check() *api.Check {
	return &api.Check{ID: "chk_1", State: "pending", Kind: "terraform.apply", Workspace: "billing-prod", Requester: "ci",
		Grant: "eyJsecret", Assessment: &policy.Assessment{Decision: policy.StepUp,
			Requirements: &policy.Requirements{AAL: 3, Approvals: 1, MaxAge: 300},
			Findings:     []policy.Finding{{Rule: "sensitive.change", Reason: "1 change to <identity>"}}}}
}

type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
	fails  atomic.Int32 // answer 500 this many times first
	got    chan struct{}
}

func newReceiver(fails int32) (*receiver, *httptest.Server) {
	r := &receiver{got: make(chan struct{}, 10)}
	r.fails.Store(fails)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.fails.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.heads = append(r.heads, req.Header.Clone())
		r.mu.Unlock()
		r.got <- struct{}{}
	}))
	return r, srv
}

func newNotifier(hooks ...*Webhook) *Notifier {
	n := New(hooks, "https://gate.example.com", nil, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	n.Backoff = 10 * time.Millisecond
	n.Attempts = 4
	return n
}

func wait(t *testing.T, r *receiver) {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
}

func TestJSONEventSignedAndRetried(t *testing.T) {
	r, srv := newReceiver(2) // two failures, then success
	defer srv.Close()
	secret := []byte("s3cret")
	n := newNotifier(&Webhook{URL: srv.URL + "/hook", Format: "json", Secret: secret})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Notify(ctx, Pending, check())
	wait(t, r)
	var ev Event
	if err := json.Unmarshal(r.bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != Pending || ev.ReviewURL != "https://gate.example.com/checks/chk_1" || ev.Check.Workspace != "billing-prod" {
		t.Errorf("event = %+v", ev)
	}
	if ev.Check.Grant != "" || strings.Contains(string(r.bodies[0]), "eyJsecret") {
		t.Error("a grant was sent in a notification")
	}
	if got := r.heads[0].Get("Stepgate-Signature"); got != Sign(secret, r.bodies[0]) {
		t.Errorf("signature = %q, want %q", got, Sign(secret, r.bodies[0]))
	}
}

func TestSlackAndEventFilter(t *testing.T) {
	r, srv := newReceiver(0)
	defer srv.Close()
	n := newNotifier(&Webhook{URL: srv.URL, Format: "slack", Events: []string{Approved}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Notify(ctx, Pending, check()) // not wanted
	c := check()
	c.State = "approved"
	n.Notify(ctx, Approved, c)
	wait(t, r)
	var msg map[string]any
	if err := json.Unmarshal(r.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg["text"].(string), "was approved") || !strings.Contains(msg["text"].(string), "<https://gate.example.com/checks/chk_1|Review chk_1>") {
		t.Errorf("slack text = %q", msg["text"])
	}
	if !strings.Contains(msg["text"].(string), "&lt;identity&gt;") {
		t.Errorf("a reason was not escaped for Slack: %q", msg["text"])
	}
	select {
	case <-r.got:
		t.Error("an unwanted event was delivered")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNeverBlocks(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	n := newNotifier(&Webhook{URL: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Nothing delivers (Run is not started, as when every worker is stuck
	// on a hanging receiver): once the queue is full, every further call
	// must still return at once, dropping and logging the event.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range cap(n.queue) + 100 {
			n.Notify(ctx, Pending, check())
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocked with a hanging receiver and a full queue")
	}
}

func TestGivesUp(t *testing.T) {
	r, srv := newReceiver(100)
	defer srv.Close()
	n := newNotifier(&Webhook{URL: srv.URL})
	n.deliver(context.Background(), context.Background(), &delivery{hook: n.hooks[0], body: []byte(`{}`), event: Pending, check: "chk_1"})
	if left := r.fails.Load(); left != 100-int32(n.Attempts) {
		t.Errorf("tried %d times, want %d", 100-left, n.Attempts)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		w    Webhook
		want string
	}{
		{Webhook{URL: "ftp://x"}, "not an http"},
		{Webhook{URL: "https://hooks.slack.com/services/T0/B0/SECRET", Format: "xml"}, "format"},
		{Webhook{URL: "https://x.example.com", Events: []string{"check.exploded"}}, "check.exploded"},
		{Webhook{URL: "https://x.example.com", Format: "slack", Events: []string{Checkpoint}}, "json format only"},
	} {
		err := tt.w.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Validate(%+v) = %v, want an error about %s without the URL's secret", tt.w, err, tt.want)
		}
	}
	if err := (&Webhook{URL: "https://x.example.com/h", Format: "slack", Events: []string{Expired}}).Validate(); err != nil {
		t.Errorf("a good webhook: %v", err)
	}
}

// TestCheckpointsGoOnlyWhereListed: a signed audit checkpoint is posted to
// the webhooks that list audit.checkpoint, signed like any body, and not
// to those that list nothing (which get the events of checks).
func TestCheckpointsGoOnlyWhereListed(t *testing.T) {
	all, allSrv := newReceiver(0)
	defer allSrv.Close()
	listed, listedSrv := newReceiver(0)
	defer listedSrv.Close()
	secret := []byte("s3cret")
	n := newNotifier(&Webhook{URL: allSrv.URL}, &Webhook{URL: listedSrv.URL, Events: []string{Checkpoint}, Secret: secret})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	cp := &audit.Checkpoint{Seq: 42, Hash: strings.Repeat("a", 64), Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), KeyID: "k1", Signature: []byte{1, 2, 3}}
	if err := n.Write(ctx, cp); err != nil {
		t.Fatal(err)
	}
	wait(t, listed)
	var ev CheckpointEvent
	if err := json.Unmarshal(listed.bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != Checkpoint || ev.Checkpoint == nil || !ev.Checkpoint.Equal(cp) {
		t.Errorf("checkpoint event = %+v, want %+v", ev, cp)
	}
	if got := listed.heads[0].Get("Stepgate-Signature"); got != Sign(secret, listed.bodies[0]) || listed.heads[0].Get("Stepgate-Event") != Checkpoint {
		t.Errorf("headers = %v, want the body signed and the event named", listed.heads[0])
	}
	// The webhook that lists no events gets the next check event, and the
	// checkpoint never.
	n.Notify(ctx, Pending, check())
	wait(t, all)
	if strings.Contains(string(all.bodies[0]), Checkpoint) {
		t.Errorf("a webhook listing no events got the checkpoint: %s", all.bodies[0])
	}
}

func TestFactorEvents(t *testing.T) {
	r, srv := newReceiver(0)
	defer srv.Close()
	secret := []byte("s3cret")
	n := newNotifier(
		&Webhook{URL: srv.URL + "/json", Format: "json", Secret: secret, Events: []string{FactorAdded, FactorRemoved}},
		&Webhook{URL: srv.URL + "/slack", Format: "slack", Events: []string{FactorAdded}},
		&Webhook{URL: srv.URL + "/checks-only", Format: "json", Events: []string{Pending}},
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	fc := FactorChange{User: "bob", Kind: "totp", Name: "<tablet>", ID: "cred_1", Via: "account"}
	n.NotifyFactor(ctx, FactorAdded, fc)
	wait(t, r)
	wait(t, r)
	n.NotifyFactor(ctx, FactorRemoved, fc)
	wait(t, r)

	r.mu.Lock()
	defer r.mu.Unlock()
	var events []Event
	var slack []string
	for i, b := range r.bodies {
		if r.heads[i].Get("Stepgate-Signature") != "" {
			if got := Sign(secret, b); got != r.heads[i].Get("Stepgate-Signature") {
				t.Errorf("signature %q, want %q", r.heads[i].Get("Stepgate-Signature"), got)
			}
			var ev Event
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatal(err)
			}
			events = append(events, ev)
			continue
		}
		var m map[string]string
		_ = json.Unmarshal(b, &m)
		slack = append(slack, m["text"])
	}
	if len(events) != 2 || len(slack) != 1 {
		t.Fatalf("got %d json and %d slack deliveries, want 2 and 1", len(events), len(slack))
	}
	for _, ev := range events {
		if ev.Factor == nil || *ev.Factor != fc || ev.Check != nil || ev.AccountURL != "https://gate.example.com/account" {
			t.Errorf("event %+v, want the factor change and the account URL", ev)
		}
	}
	if !strings.Contains(slack[0], "was added to the stepgate account of bob") || !strings.Contains(slack[0], "&lt;tablet&gt;") {
		t.Errorf("slack text %q", slack[0])
	}
	if err := (&Webhook{URL: "https://x.example/h", Events: []string{FactorRemoved}}).Validate(); err != nil {
		t.Errorf("Validate() of a webhook for factor.removed = %v", err)
	}
}

// A notification of a check that would release secrets names them, and
// says why the policy asks what it asks (the findings).
func TestSlackNamesSecrets(t *testing.T) {
	c := check()
	c.Secrets = []api.CheckSecret{{Name: "billing/db", Env: "PGPASSWORD"}, {Name: "billing/<api>"}}
	text := slackMessage(Pending, c, "https://gate.example.com/checks/chk_1")["text"].(string)
	if !strings.Contains(text, "Releases secrets: `billing/db`, `billing/&lt;api&gt;`") {
		t.Errorf("slack text = %q, want it to name the secrets, escaped", text)
	}
	b, err := json.Marshal(Event{Type: Pending, Check: c})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"secrets":[{"name":"billing/db","env":"PGPASSWORD"}`) {
		t.Errorf("JSON event = %s, want the secrets", b)
	}
}

// TestRunDrainsAtShutdown: events queued when the server stops are still
// delivered (once each) before Run returns; none is lost to the shutdown.
func TestRunDrainsAtShutdown(t *testing.T) {
	r, srv := newReceiver(0)
	defer srv.Close()
	n := newNotifier(&Webhook{URL: srv.URL})
	for range 3 {
		n.Notify(context.Background(), Pending, check())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // shutting down before the loop took anything
	n.Run(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) != 3 {
		t.Errorf("delivered %d of the 3 events queued at shutdown, want 3", len(r.bodies))
	}
}

// TestBreakGlassIsNeverFiltered: a webhook that lists only check.pending
// still receives break_glass.used, with who, why and the review queue's
// link; listing the break-glass events is valid.
func TestBreakGlassIsNeverFiltered(t *testing.T) {
	r, srv := newReceiver(0)
	defer srv.Close()
	n := newNotifier(&Webhook{URL: srv.URL, Format: "slack", Events: []string{Pending}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	c := check()
	c.State = "approved"
	c.BreakGlass = &api.BreakGlass{Reason: "INC-1234: <the> bucket is down", UsedBy: "olivia"}
	n.Notify(ctx, BreakGlassUsed, c)
	wait(t, r)
	var msg struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(r.bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BREAK-GLASS by olivia", "INC-1234: &lt;the&gt; bucket is down", "<https://gate.example.com/reviews|"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("slack text %q; want it to contain %q", msg.Text, want)
		}
	}
	for _, e := range []string{BreakGlassUsed, BreakGlassOverdue} {
		if err := (&Webhook{URL: srv.URL, Events: []string{e}}).Validate(); err != nil {
			t.Errorf("a webhook listing %s: %v", e, err)
		}
	}
}
