package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/policy"
)

// The receivers below answer as Slack and Teams do: a body that is not of
// the documented shape is refused (400, as Slack's invalid_blocks or
// Teams' "Bad payload"), so a message of the wrong shape is never
// counted as delivered.

// checkSlack validates a body against Slack's incoming webhook payload:
// {"text", "blocks"}, text a non-empty fallback, at most 50 blocks, section
// and context blocks with text objects of at most 3000 characters.
func checkSlack(body []byte) error {
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	for k := range msg {
		if k != "text" && k != "blocks" {
			return fmt.Errorf("unexpected field %q", k)
		}
	}
	var text string
	if err := json.Unmarshal(msg["text"], &text); err != nil || strings.TrimSpace(text) == "" {
		return errors.New("no text (the fallback notifications show)")
	}
	var blocks []struct {
		Type     string      `json:"type"`
		Text     *slackText  `json:"text"`
		Elements []slackText `json:"elements"`
	}
	if err := json.Unmarshal(msg["blocks"], &blocks); err != nil {
		return fmt.Errorf("blocks: %w", err)
	}
	if len(blocks) == 0 || len(blocks) > 50 {
		return fmt.Errorf("%d blocks, want 1 to 50", len(blocks))
	}
	for i, b := range blocks {
		switch b.Type {
		case "section":
			if b.Text == nil {
				return fmt.Errorf("block %d: section without text", i)
			}
			if err := b.Text.valid(); err != nil {
				return fmt.Errorf("block %d: %w", i, err)
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > 10 {
				return fmt.Errorf("block %d: context with %d elements, want 1 to 10", i, len(b.Elements))
			}
			for _, e := range b.Elements {
				if err := e.valid(); err != nil {
					return fmt.Errorf("block %d: %w", i, err)
				}
			}
		default:
			return fmt.Errorf("block %d: type %q not sent by stepgate", i, b.Type)
		}
	}
	return nil
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func (t slackText) valid() error {
	if t.Type != "mrkdwn" && t.Type != "plain_text" {
		return fmt.Errorf("text object of type %q", t.Type)
	}
	if n := utf8.RuneCountInString(t.Text); n == 0 || n > 3000 {
		return fmt.Errorf("text object of %d characters, want 1 to 3000", n)
	}
	return nil
}

// teamsCard is the part of an Adaptive Card stepgate sends.
type teamsCard struct {
	Schema  string `json:"$schema"`
	Type    string `json:"type"`
	Version string `json:"version"`
	Body    []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Inlines []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"inlines"`
	} `json:"body"`
	Actions []struct {
		Type  string `json:"type"`
		Title string `json:"title"`
		URL   string `json:"url"`
	} `json:"actions"`
}

// checkTeams validates a body against the envelope Teams' incoming
// webhooks and Workflows webhooks take for an Adaptive Card:
// {"type":"message","attachments":[{"contentType":
// "application/vnd.microsoft.card.adaptive","content":{AdaptiveCard}}]}.
func checkTeams(body []byte) (*teamsCard, error) {
	var env struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			ContentURL  *string         `json:"contentUrl"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if env.Type != "message" || len(env.Attachments) != 1 {
		return nil, fmt.Errorf("type %q with %d attachments, want a message with one", env.Type, len(env.Attachments))
	}
	a := env.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" || a.ContentURL != nil {
		return nil, fmt.Errorf("attachment contentType %q contentUrl %v", a.ContentType, a.ContentURL)
	}
	var card teamsCard
	if err := json.Unmarshal(a.Content, &card); err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	if card.Type != "AdaptiveCard" || card.Schema != "http://adaptivecards.io/schemas/adaptive-card.json" || !slices.Contains([]string{"1.0", "1.1", "1.2", "1.3", "1.4"}, card.Version) {
		return nil, fmt.Errorf("card type %q schema %q version %q", card.Type, card.Schema, card.Version)
	}
	if len(card.Body) == 0 {
		return nil, errors.New("empty card")
	}
	for i, b := range card.Body {
		switch b.Type {
		case "TextBlock":
			if b.Text == "" {
				return nil, fmt.Errorf("body %d: TextBlock without text", i)
			}
		case "RichTextBlock":
			for _, in := range b.Inlines {
				if in.Type != "TextRun" || in.Text == "" {
					return nil, fmt.Errorf("body %d: inline %+v, want a TextRun with text", i, in)
				}
			}
		default:
			return nil, fmt.Errorf("body %d: element %q not sent by stepgate", i, b.Type)
		}
	}
	for _, ac := range card.Actions {
		if ac.Type != "Action.OpenUrl" || ac.Title == "" || !strings.HasPrefix(ac.URL, "https://") {
			return nil, fmt.Errorf("action %+v", ac)
		}
	}
	return &card, nil
}

// text is everything a card shows, and apart what it shows as markdown.
func (c *teamsCard) text() (all, markdown string) {
	var a, m strings.Builder
	for _, b := range c.Body {
		m.WriteString(b.Text + "\n")
		a.WriteString(b.Text + "\n")
		for _, in := range b.Inlines {
			a.WriteString(in.Text)
		}
		a.WriteString("\n")
	}
	return a.String(), m.String()
}

// chatReceiver is a local Slack or Teams webhook: it refuses bodies of the
// wrong shape with 400, fails the first fails requests with 500, and
// keeps what it accepted.
type chatReceiver struct {
	check    func([]byte) error
	fails    atomic.Int32
	requests atomic.Int32
	hits     chan struct{} // one per request
	mu       sync.Mutex
	bodies   [][]byte
	refused  []string
	got      chan struct{}
}

func newChatReceiver(t *testing.T, check func([]byte) error, fails int32) (*chatReceiver, string) {
	r := &chatReceiver{check: check, got: make(chan struct{}, 20), hits: make(chan struct{}, 100)}
	r.fails.Store(fails)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		select {
		case r.hits <- struct{}{}:
		default:
		}
		b, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if r.fails.Add(-1) >= 0 {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return
		}
		if err := r.check(b); err != nil {
			r.mu.Lock()
			r.refused = append(r.refused, err.Error())
			r.mu.Unlock()
			http.Error(w, "invalid payload", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted) // as Workflows answers; Slack answers 200 "ok"
		r.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/services/T0/B0/SECRET"
}

func (r *chatReceiver) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(5 * time.Second):
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no delivery; refused: %v", r.refused)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// riskyCheck is a pending check with seven findings, one of whose reasons
// was written to look like a mention, a link and markup.
func riskyCheck() *api.Check {
	c := check()
	c.Requester = "carol"
	c.Pipeline = map[string]string{"system": "gitlab-ci", "repository": "acme/infra", "ref": "main", "run_id": "1234"}
	c.PipelineUnverified = map[string]string{"system": "liar"}
	f := []policy.Finding{{Rule: "identity.escalation", Reason: "Escalation: aws_iam_role_policy.deployer allows s3:* on *"}}
	f = append(f, policy.Finding{Rule: "x", Reason: "<!channel> [click](https://evil.example) *bold* \u202egnp.exe"})
	for i := range 5 {
		f = append(f, policy.Finding{Rule: "prod.change", Reason: fmt.Sprintf("change %d", i)})
	}
	c.Assessment.Findings = f
	return c
}

func decided(state string) *api.Check {
	c := riskyCheck()
	c.State = state
	c.Approvals = []api.Approval{{Subject: "bob", Approved: state == "approved", Reason: "not <now>"}}
	return c
}

func TestSlackMessageShape(t *testing.T) {
	r, url := newChatReceiver(t, checkSlack, 0)
	n := newNotifier(&Webhook{URL: url, Format: "slack"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Notify(ctx, Pending, riskyCheck())
	first := r.wait(t, 1)[0]
	n.Notify(ctx, Rejected, decided("rejected")) // the follow-up
	second := r.wait(t, 1)[1]

	pendingText, shown := slackShown(t, first)
	for _, want := range []string{
		"*terraform.apply* on `billing-prod` waits for approval",
		"<https://gate.example.com/checks/chk_1|Review chk_1>",
		"*Requested by* carol",
		"*Pipeline* gitlab-ci · acme/infra · main · run 1234",
		"*Needs* aal 3",
		"• Escalation: aws_iam_role_policy.deployer allows s3:* on *",
		"• change 2", "… and 2 more on the review page",
		"&lt;!channel&gt;", `\u202e`,
	} {
		if !strings.Contains(shown, want) {
			t.Errorf("Slack blocks lack %q:\n%s", want, shown)
		}
	}
	for _, never := range []string{"<!channel>", "\u202e", "liar", "change 3", "eyJsecret"} {
		if strings.Contains(shown+pendingText, never) {
			t.Errorf("Slack message shows %q:\n%s", never, shown)
		}
	}
	if !strings.Contains(pendingText, "waits for approval") || !strings.Contains(pendingText, "Review chk_1>") {
		t.Errorf("fallback text %q", pendingText)
	}
	if _, shown := slackShown(t, second); !strings.Contains(shown, "was rejected by bob (not &lt;now&gt;)") || strings.Contains(shown, "Risky changes") {
		t.Errorf("follow-up %s, want who rejected and why, without the list again", shown)
	}
}

// slackShown is a Slack message's fallback text, and what its blocks show.
func slackShown(t *testing.T, body []byte) (text, blocks string) {
	t.Helper()
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Text     slackText   `json:"text"`
			Elements []slackText `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	for _, b := range msg.Blocks {
		shown.WriteString(b.Text.Text + "\n")
		for _, e := range b.Elements {
			shown.WriteString(e.Text + "\n")
		}
	}
	return msg.Text, shown.String()
}

func TestTeamsCardShape(t *testing.T) {
	r, url := newChatReceiver(t, func(b []byte) error { _, err := checkTeams(b); return err }, 0)
	n := newNotifier(&Webhook{URL: url, Format: "teams"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	n.Notify(ctx, Pending, riskyCheck())
	n.Notify(ctx, Approved, decided("approved"))
	n.NotifyFactor(ctx, FactorAdded, FactorChange{User: "bob", Kind: "webauthn", Name: "[key](https://evil.example)", Via: "account"})
	bodies := r.wait(t, 3)

	cards := map[string]*teamsCard{}
	for _, b := range bodies {
		c, err := checkTeams(b)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := c.text()
		switch {
		case strings.Contains(all, "waits for approval"):
			cards["pending"] = c
		case strings.Contains(all, "was approved"):
			cards["approved"] = c
		default:
			cards["factor"] = c
		}
	}
	all, markdown := cards["pending"].text()
	for _, want := range []string{
		"terraform.apply on billing-prod waits for approval", "Requested by: carol",
		"Pipeline: gitlab-ci · acme/infra · main · run 1234", "Needs: aal 3", "Check: chk_1",
		"• Escalation: aws_iam_role_policy.deployer allows s3:* on *", "… and 2 more on the review page",
		"[click](https://evil.example)", `\u202e`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("Teams card lacks %q:\n%s", want, all)
		}
	}
	// What a plan wrote is never markdown: only TextRuns carry it.
	for _, never := range []string{"evil.example", "carol", "billing-prod", "Escalation"} {
		if strings.Contains(markdown, never) {
			t.Errorf("Teams card shows %q as markdown:\n%s", never, markdown)
		}
	}
	if strings.Contains(all, "\u202e") || strings.Contains(all, "liar") {
		t.Errorf("Teams card shows a bidi override or the unverified pipeline:\n%s", all)
	}
	if a := cards["pending"].Actions; len(a) != 1 || a[0].URL != "https://gate.example.com/checks/chk_1" {
		t.Errorf("actions %+v, want one link to the review page", a)
	}
	if all, _ := cards["approved"].text(); !strings.Contains(all, "was approved by bob") || strings.Contains(all, "Risky changes") {
		t.Errorf("follow-up card:\n%s", all)
	}
	if all, md := cards["factor"].text(); !strings.Contains(all, "[key](https://evil.example)") || strings.Contains(md, "evil") {
		t.Errorf("factor card shows the name as markdown or not at all:\n%s", all)
	}
}

// TestChatFailuresAreBoundedRetries: a receiver answering 500 is tried
// again with back-off and gets the message once it recovers; one that
// never recovers is tried Attempts times, then given up; and the gate's
// call to Notify returns at once all along.
func TestChatFailuresAreBoundedRetries(t *testing.T) {
	for _, tt := range []struct {
		name   string
		format string
		check  func([]byte) error
	}{
		{"slack", "slack", checkSlack},
		{"teams", "teams", func(b []byte) error { _, err := checkTeams(b); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recovers, url := newChatReceiver(t, tt.check, 2)
			down, downURL := newChatReceiver(t, tt.check, 1000)
			n := newNotifier(&Webhook{URL: url, Format: tt.format}, &Webhook{URL: downURL, Format: tt.format})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			go func() { n.Run(ctx); close(done) }()
			start := time.Now()
			n.Notify(ctx, Pending, riskyCheck())
			if d := time.Since(start); d > time.Second {
				t.Errorf("Notify took %v", d)
			}
			recovers.wait(t, 1)
			if got := recovers.requests.Load(); got != 3 {
				t.Errorf("recovering receiver got %d requests, want 2 failures and 1 delivery", got)
			}
			for i := range n.Attempts {
				select {
				case <-down.hits:
				case <-time.After(10 * time.Second):
					t.Fatalf("receiver that is down got %d requests, want %d", i, n.Attempts)
				}
			}
			cancel()
			<-done
			if got := down.requests.Load(); got != int32(n.Attempts) {
				t.Errorf("receiver that is down got %d requests, want exactly %d", got, n.Attempts)
			}
		})
	}
}

func TestValidateTeams(t *testing.T) {
	if err := (&Webhook{URL: "https://acme.webhook.office.com/webhookb2/x", Format: "teams"}).Validate(); err != nil {
		t.Errorf("a Teams webhook: %v", err)
	}
	if err := (&Webhook{URL: "https://x.example.com/h", Format: "teams", Events: []string{Checkpoint}}).Validate(); err == nil || !strings.Contains(err.Error(), "json format only") {
		t.Errorf("a Teams webhook for checkpoints: %v, want refused", err)
	}
}
