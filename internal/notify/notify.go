package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
)

// Events a webhook can receive.
const (
	Pending  = "check.pending"
	Approved = "check.approved"
	Rejected = "check.rejected"
	Expired  = "check.expired"
	// Checkpoint is a signed checkpoint of the audit log, sent only to
	// webhooks that list it (a copy of each checkpoint outside the
	// database; format json only).
	Checkpoint = "audit.checkpoint"
	// FactorAdded and FactorRemoved tell that a person's factors changed
	// (a passkey or an authenticator app added or removed), so that a
	// person whose session was stolen hears of it.
	FactorAdded   = "factor.added"
	FactorRemoved = "factor.removed"
	// BreakGlassUsed: a person broke the glass on a check; BreakGlassOverdue:
	// its review is late (repeated until someone acknowledges it). Every
	// webhook receives them, whatever events it lists: an emergency path
	// is never silenced by a filter.
	BreakGlassUsed    = "break_glass.used"
	BreakGlassOverdue = "break_glass.review_overdue"
)

// AllEvents lists the events of checks and factors, which a webhook with no
// events listed receives (audit checkpoints only go where listed).
var AllEvents = []string{Pending, Approved, Rejected, Expired, FactorAdded, FactorRemoved}

// Webhook is one receiver.
type Webhook struct {
	URL string
	// Format is "json" (the Event below), "slack" (a message for a Slack
	// or Mattermost incoming webhook) or "teams" (an Adaptive Card for a
	// Microsoft Teams incoming webhook or Workflows webhook).
	Format string
	// Events the receiver wants; empty means all.
	Events []string
	// Secret, when set, signs each body: header Stepgate-Signature:
	// sha256=HEX(HMAC-SHA256(secret, body)).
	Secret []byte
}

// Validate reports what is wrong with a webhook.
func (w *Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("webhook url %q is not an http(s) URL", redact(w.URL))
	}
	if !validFormat(w.Format) {
		return fmt.Errorf("webhook %s: format %q is not one of %s", redact(w.URL), w.Format, strings.Join(Formats, ", "))
	}
	for _, e := range w.Events {
		if e == Checkpoint {
			if w.Format != "" && w.Format != "json" {
				return fmt.Errorf("webhook %s: event %s is sent in the json format only", redact(w.URL), Checkpoint)
			}
			continue
		}
		if e == BreakGlassUsed || e == BreakGlassOverdue {
			continue // sent to every webhook anyway
		}
		if !slices.Contains(AllEvents, e) {
			return fmt.Errorf("webhook %s: event %q is not one of %v or %s", redact(w.URL), e, AllEvents, Checkpoint)
		}
	}
	return nil
}

// redact hides the path and query of a webhook URL (Slack puts its secret
// there) in logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Event is the JSON body of a "json" webhook: a check's event carries the
// check and its review URL, a factor's event the change and the account
// page's URL.
type Event struct {
	Type       string        `json:"type"`
	Time       time.Time     `json:"time"`
	Check      *api.Check    `json:"check,omitempty"`
	ReviewURL  string        `json:"review_url,omitempty"`
	Factor     *FactorChange `json:"factor,omitempty"`
	AccountURL string        `json:"account_url,omitempty"`
}

// FactorChange is a factor added to or removed from a person's account.
type FactorChange struct {
	User  string `json:"user"` // the person's name
	Email string `json:"email,omitempty"`
	Kind  string `json:"kind"` // webauthn or totp
	Name  string `json:"name"` // what the person calls it
	ID    string `json:"id"`
	// Via says how: "account" (the account page, after a fresh step-up)
	// or "enrollment" (a one-time enrollment link).
	Via string `json:"via"`
}

type delivery struct {
	hook    *Webhook
	body    []byte
	attempt int
	event   string
	check   string
}

// Notifier delivers events to webhooks in the background.
type Notifier struct {
	hooks     []*Webhook
	publicURL string
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time
	queue     chan *delivery
	// Attempts is how many times a delivery is tried; Backoff the first
	// pause between tries, doubled each time.
	Attempts int
	Backoff  time.Duration
}

// New returns a notifier. Call Run to start delivering.
func New(hooks []*Webhook, publicURL string, client *http.Client, log *slog.Logger, now func() time.Time) *Notifier {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Notifier{hooks: hooks, publicURL: strings.TrimRight(publicURL, "/"), client: client, log: log, now: now,
		queue: make(chan *delivery, 1024), Attempts: 6, Backoff: 2 * time.Second}
}

// Notify queues an event for every webhook that wants it. It never blocks:
// when the queue is full the event is dropped and logged.
func (n *Notifier) Notify(ctx context.Context, event string, c *api.Check) {
	if n == nil || len(n.hooks) == 0 {
		return
	}
	review := n.publicURL + "/checks/" + c.ID
	if c.BreakGlass != nil && (event == BreakGlassUsed || event == BreakGlassOverdue) {
		review = n.publicURL + "/reviews"
	}
	view := *c
	view.Grant = "" // a grant never leaves in a notification
	n.queueFor(ctx, event, c.ID, map[string]func() any{
		"slack": func() any { return slackMessage(event, &view, review) },
		"teams": func() any { return teamsMessage(event, &view, review) },
		"json":  func() any { return Event{Type: event, Time: n.now().UTC(), Check: &view, ReviewURL: review} },
	})
}

// NotifyFactor queues a factor's event (FactorAdded, FactorRemoved) for
// every webhook that wants it. It never blocks.
func (n *Notifier) NotifyFactor(ctx context.Context, event string, fc FactorChange) {
	if n == nil || len(n.hooks) == 0 {
		return
	}
	account := n.publicURL + "/account"
	n.queueFor(ctx, event, "user:"+fc.User, map[string]func() any{
		"slack": func() any { return slackFactorMessage(event, &fc, account) },
		"teams": func() any { return teamsFactorMessage(event, &fc, account) },
		"json":  func() any { return Event{Type: event, Time: n.now().UTC(), Factor: &fc, AccountURL: account} },
	})
}

// queueFor queues event, about subject, for every webhook that wants it,
// in the webhook's format (bodies by format; json when none is set).
func (n *Notifier) queueFor(ctx context.Context, event, subject string, bodies map[string]func() any) {
	for _, h := range n.hooks {
		if !h.wants(event) {
			continue
		}
		msg, ok := bodies[h.Format]
		if !ok {
			msg = bodies["json"]
		}
		body, err := json.Marshal(msg())
		if err != nil {
			n.log.ErrorContext(ctx, "encoding notification failed", "event", event, "about", subject, "err", err)
			continue
		}
		n.enqueue(ctx, &delivery{hook: h, body: body, event: event, check: subject})
	}
}

func (n *Notifier) enqueue(ctx context.Context, d *delivery) {
	select {
	case n.queue <- d:
	default:
		n.log.ErrorContext(ctx, "notification queue full, dropping event", "event", d.event, "about", d.check, "webhook", redact(d.hook.URL))
	}
}

// wants reports whether the webhook receives event: one it lists, or,
// when it lists none, an event of checks.
func (w *Webhook) wants(event string) bool {
	if event == BreakGlassUsed || event == BreakGlassOverdue {
		return true // never filtered out
	}
	if len(w.Events) == 0 {
		return slices.Contains(AllEvents, event)
	}
	return slices.Contains(w.Events, event)
}

// CheckpointEvent is the JSON body of an audit.checkpoint webhook.
type CheckpointEvent struct {
	Type       string            `json:"type"`
	Time       time.Time         `json:"time"`
	Checkpoint *audit.Checkpoint `json:"checkpoint"`
}

// Write queues a signed audit checkpoint for every webhook that lists
// audit.checkpoint (it makes the notifier a checkpoint sink). It never
// blocks: when the queue is full the checkpoint is dropped and logged.
func (n *Notifier) Write(ctx context.Context, cp *audit.Checkpoint) error {
	if n == nil {
		return nil
	}
	body, err := json.Marshal(CheckpointEvent{Type: Checkpoint, Time: n.now().UTC(), Checkpoint: cp})
	if err != nil {
		return fmt.Errorf("encoding audit checkpoint %d: %w", cp.Seq, err)
	}
	subject := fmt.Sprintf("seq %d", cp.Seq)
	for _, h := range n.hooks {
		if !h.wants(Checkpoint) {
			continue
		}
		select {
		case n.queue <- &delivery{hook: h, body: body, event: Checkpoint, check: subject}:
		default:
			n.log.ErrorContext(ctx, "notification queue full, dropping event", "event", Checkpoint, "seq", cp.Seq, "webhook", redact(h.URL))
		}
	}
	return nil
}

// slackFactorMessage is a factor's event for Slack-compatible webhooks.
func slackFactorMessage(event string, fc *FactorChange, account string) map[string]any {
	what := "was added to"
	if event == FactorRemoved {
		what = "was removed from"
	}
	kind := map[string]string{"webauthn": "A passkey", "totp": "An authenticator app"}[fc.Kind]
	if kind == "" {
		kind = "A factor"
	}
	text := fmt.Sprintf("%s (%s) %s the stepgate account of %s (via %s). If this was not you, tell an admin at once.\n<%s|Review your factors>",
		kind, escapeSlack(fc.Name), what, escapeSlack(fc.User), escapeSlack(fc.Via), account)
	return map[string]any{"text": text}
}

// Run delivers queued events until ctx ends, retrying failures with
// exponential back-off. Retries wait on their own timers, so one slow
// receiver does not hold the others.
func (n *Notifier) Run(ctx context.Context) {
	// Deliveries post with send, which outlives ctx by at most
	// DrainTimeout: what is in flight or queued when ctx ends is still
	// attempted once, then Run returns.
	send, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for {
		select {
		case d := <-n.queue:
			wg.Go(func() { n.deliver(ctx, send, d) })
			continue
		case <-ctx.Done():
		}
		break
	}
	for drained := false; !drained; {
		select {
		case d := <-n.queue:
			wg.Go(func() { n.deliver(ctx, send, d) })
		default:
			drained = true
		}
	}
	stop := time.AfterFunc(DrainTimeout, cancel)
	defer stop.Stop()
	wg.Wait()
}

// DrainTimeout bounds how long Run, once its context has ended, waits for
// the deliveries in flight and queued.
const DrainTimeout = 5 * time.Second

// deliver posts d, retrying with backoff until it succeeds, Attempts are
// spent, or stop ends (then the attempt in flight is the last).
func (n *Notifier) deliver(stop, send context.Context, d *delivery) {
	ctx := send
	pause := n.Backoff
	for d.attempt = 1; d.attempt <= n.Attempts; d.attempt++ {
		err := n.post(send, d)
		if err == nil {
			n.log.InfoContext(ctx, "notification delivered", "event", d.event, "check", d.check, "webhook", redact(d.hook.URL), "attempt", d.attempt)
			return
		}
		n.log.WarnContext(ctx, "notification failed", "event", d.event, "check", d.check, "webhook", redact(d.hook.URL), "attempt", d.attempt, "err", err)
		if d.attempt == n.Attempts {
			break
		}
		select {
		case <-stop.Done():
			n.log.WarnContext(ctx, "notification dropped: shutting down", "event", d.event, "check", d.check, "webhook", redact(d.hook.URL), "attempts", d.attempt)
			return
		case <-time.After(pause):
		}
		pause *= 2
	}
	n.log.ErrorContext(ctx, "notification given up", "event", d.event, "check", d.check, "webhook", redact(d.hook.URL), "attempts", n.Attempts)
}

func (n *Notifier) post(ctx context.Context, d *delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.hook.URL, bytes.NewReader(d.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stepgate-webhook")
	req.Header.Set("Stepgate-Event", d.event)
	if len(d.hook.Secret) > 0 {
		req.Header.Set("Stepgate-Signature", Sign(d.hook.Secret, d.body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting: %w", scrub(err, d.hook.URL))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// scrub removes a webhook's secret URL from an error.
func scrub(err error, raw string) error {
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), raw, redact(raw)))
}

// Sign is the Stepgate-Signature of a body: sha256=HEX(HMAC-SHA256).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// escapeSlack escapes the three characters Slack's mrkdwn gives meaning.
func escapeSlack(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
