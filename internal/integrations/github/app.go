package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// Store is what the App needs of the database.
type Store interface {
	AddGitHubDelivery(ctx context.Context, d *store.GitHubDelivery) error
	GetGitHubDelivery(ctx context.Context, id string) (*store.GitHubDelivery, error)
	UpdateGitHubDelivery(ctx context.Context, d *store.GitHubDelivery) error
	OpenGitHubDeliveries(ctx context.Context, limit int) ([]*store.GitHubDelivery, error)
	ChecksOfRun(ctx context.Context, system, repository, runID string, limit int) ([]*store.Check, error)
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
}

// Hub wakes the App when a check changes, whichever server changed it
// (gate.Hub).
type Hub interface {
	Subscribe(id string) (<-chan struct{}, func())
}

// Reviewer answers GitHub (Client; a fake in tests).
type Reviewer interface {
	Review(ctx context.Context, installation int64, callbackURL string, r Review) error
}

// Config is the App's settings.
type Config struct {
	// Secret is the webhook secret (X-Hub-Signature-256).
	Secret []byte
	// APIURL is GitHub's REST API; callbacks must be on its host.
	APIURL string
	// PublicURL is stepgate's, for review links.
	PublicURL string
	// MaxAttempts bounds the calls of one answer to GitHub (default 6);
	// Backoff is the wait before attempt n+1 (default 1s doubling to 1m).
	MaxAttempts int
	Backoff     func(attempt int) time.Duration
	// Recheck is how often a delivery waiting for people re-reads its
	// checks without a wake-up (default 1m): a lost notification delays,
	// it does not lose the answer.
	Recheck time.Duration
}

// App answers deployment protection rules.
type App struct {
	cfg Config
	st  Store
	hub Hub
	gh  Reviewer
	log *slog.Logger
	now func() time.Time

	kick chan string // deliveries to follow
	mu   sync.Mutex
	busy map[string]bool // deliveries followed now
	// refused: by reason, when a refusal was last audited and how many
	// were refused since.
	refused map[string]*refusals
	// onWait, when set (tests), is called once a delivery waiting for
	// people listens for its checks' changes.
	onWait func(delivery string)
	// onDone, when set (tests), is called when a delivery's follower
	// returns.
	onDone func(delivery string)
}

type refusals struct {
	last  time.Time
	since int
}

// New returns the App over a store, the gate's hub and GitHub.
func New(cfg Config, st Store, hub Hub, gh Reviewer, log *slog.Logger, now func() time.Time) *App {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(n int) time.Duration { return min(time.Second<<n, time.Minute) }
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = time.Minute
	}
	return &App{cfg: cfg, st: st, hub: hub, gh: gh, log: log, now: now, kick: make(chan string, 64), busy: map[string]bool{}}
}

// recordTimeout bounds recording what GitHub accepted, which is done even
// when the server is stopping.
const recordTimeout = 10 * time.Second

// maxOpen is how many unanswered deliveries are resumed at start.
const maxOpen = 1000

// Run follows deliveries until ctx ends: first those left unanswered by
// an earlier run of the server, then each new one. It returns when every
// delivery it follows has stopped.
func (a *App) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	open, err := a.st.OpenGitHubDeliveries(ctx, maxOpen)
	if err != nil && ctx.Err() == nil {
		a.log.ErrorContext(ctx, "resuming GitHub deliveries failed", "err", err)
	}
	for _, d := range open {
		a.follow(ctx, &wg, d.ID)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-a.kick:
			a.follow(ctx, &wg, id)
		}
	}
}

func (a *App) follow(ctx context.Context, wg *sync.WaitGroup, id string) {
	a.mu.Lock()
	if a.busy[id] {
		a.mu.Unlock()
		return
	}
	a.busy[id] = true
	a.mu.Unlock()
	wg.Go(func() {
		defer func() {
			a.mu.Lock()
			delete(a.busy, id)
			a.mu.Unlock()
			if a.onDone != nil {
				a.onDone(id)
			}
		}()
		if err := a.answer(ctx, id); err != nil && ctx.Err() == nil {
			a.log.ErrorContext(ctx, "answering a GitHub deployment protection rule failed", "delivery", id, "err", err)
		}
	})
}

// answer follows one delivery until it is answered (or ctx ends): a
// status report with the review link while people are needed, then the
// final answer.
func (a *App) answer(ctx context.Context, id string) error {
	listening := func() {
		if a.onWait != nil {
			a.onWait(id)
		}
	}
	for {
		d, err := a.st.GetGitHubDelivery(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err != nil {
			a.log.ErrorContext(ctx, "reading a GitHub delivery failed", "delivery", id, "err", err)
			if !a.wait(ctx, nil, func() {}) {
				return ctx.Err()
			}
			continue
		}
		if d.State == store.DeliveryAnswered {
			return nil
		}
		checks, err := a.st.ChecksOfRun(ctx, system, d.Repository, d.RunID, maxChecks)
		if err != nil {
			// Fail closed: no answer is not an approval; try again later.
			a.log.ErrorContext(ctx, "reading the checks of a run failed", "delivery", id, "err", err)
			if !a.wait(ctx, nil, func() {}) {
				return ctx.Err()
			}
			continue
		}
		v := Decide(checks, d.SHA, a.cfg.PublicURL)
		if v.State != Pending {
			return a.finish(ctx, d, v)
		}
		if d.State == store.DeliveryReceived {
			// The status report only informs: when GitHub refuses it, the
			// final answer is still owed, and the report is tried again at
			// the next change.
			if err := a.call(ctx, d, Review{EnvironmentName: d.Environment, Comment: v.Comment}); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				a.log.WarnContext(ctx, "GitHub refused a status report", "delivery", id, "err", err)
				if !a.wait(ctx, v.Waiting, listening) {
					return ctx.Err()
				}
				continue
			}
			d.State = store.DeliveryReported
			d.UpdatedAt = a.now()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
			err = a.st.UpdateGitHubDelivery(rctx, d)
			cancel()
			if err != nil {
				return err
			}
		}
		if !a.wait(ctx, v.Waiting, listening) {
			return ctx.Err()
		}
	}
}

// wait returns when one of the checks changes, after cfg.Recheck, or
// false when ctx ends.
func (a *App) wait(ctx context.Context, ids []string, listening func()) bool {
	woke := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop) // last: the relays below return
	for _, id := range ids {
		ch, done := a.hub.Subscribe(id)
		defer done()
		go func() {
			select {
			case <-ch:
				select {
				case woke <- struct{}{}:
				default:
				}
			case <-stop:
			}
		}()
	}
	listening()
	t := time.NewTimer(a.cfg.Recheck)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-woke:
	case <-t.C:
	}
	return true
}

// finish sends the final answer, records it and audits it.
func (a *App) finish(ctx context.Context, d *store.GitHubDelivery, v Verdict) error {
	err := a.call(ctx, d, Review{EnvironmentName: d.Environment, State: v.State, Comment: v.Comment})
	if err != nil && ctx.Err() != nil {
		return err
	}
	now := a.now()
	d.State, d.UpdatedAt = store.DeliveryAnswered, now
	data := map[string]any{
		"state": v.State, "repository": d.Repository, "run_id": d.RunID, "sha": d.SHA,
		"environment": d.Environment, "delivery": d.ID, "checks": v.Checks, "reason": v.Comment,
	}
	if err == nil {
		d.Answer = v.State
		a.log.InfoContext(ctx, "answered a GitHub deployment protection rule", "delivery", d.ID,
			"repository", d.Repository, "run_id", d.RunID, "environment", d.Environment, "state", v.State)
	} else {
		// GitHub refused the answer for good, or kept failing: the
		// deployment stays waiting (GitHub's own timeout rejects it).
		data["error"] = truncate(err.Error(), 300)
		data["sent"] = false
	}
	// What GitHub accepted is recorded even when the server is stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return a.st.InTx(ctx, func(tx store.Tx) error {
		// Another server sharing the database may have answered the same
		// delivery (both resumed it at start): the first record stands.
		if cur, err := tx.GetGitHubDelivery(ctx, d.ID); err != nil {
			return err
		} else if cur.State == store.DeliveryAnswered {
			return nil
		}
		if err := tx.UpdateGitHubDelivery(ctx, d); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, event(now, audit.DeploymentReviewed, "github-app", "github:"+d.Repository+"/runs/"+d.RunID, data))
	})
}

// call sends r, retrying what may pass with backoff, at most
// cfg.MaxAttempts times; each failure is counted on the delivery.
func (a *App) call(ctx context.Context, d *store.GitHubDelivery, r Review) error {
	var err error
	for n := range a.cfg.MaxAttempts {
		if err = a.gh.Review(ctx, d.InstallationID, d.CallbackURL, r); err == nil {
			return nil
		}
		d.Attempts++
		d.LastError = truncate(err.Error(), 300)
		d.UpdatedAt = a.now()
		if uerr := a.st.UpdateGitHubDelivery(ctx, d); uerr != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "recording a failed call to GitHub failed", "delivery", d.ID, "err", uerr)
		}
		if !Retryable(err) || n == a.cfg.MaxAttempts-1 {
			break
		}
		a.log.WarnContext(ctx, "GitHub refused an answer; retrying", "delivery", d.ID, "attempt", n+1, "err", err)
		t := time.NewTimer(a.cfg.Backoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}

func event(t time.Time, typ, actor, subject string, data map[string]any) *audit.Event {
	e := &audit.Event{Time: t, Type: typ, Actor: actor, Subject: subject}
	b, err := json.Marshal(data)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"encoding_error": err.Error()})
	}
	e.Data = b
	return e
}

// refusalEvery is how often one reason of refusal is audited: anyone can
// send unsigned requests, and they must not flood the audit log. The
// refusals in between are counted into the next event, and logged.
const refusalEvery = time.Minute

// refuse audits a refused delivery.
func (a *App) refuse(ctx context.Context, delivery, reason string, status int) {
	now := a.now()
	a.mu.Lock()
	if a.refused == nil {
		a.refused = map[string]*refusals{}
	}
	r := a.refused[reason]
	if r == nil {
		r = &refusals{}
		a.refused[reason] = r
	}
	if !r.last.IsZero() && now.Sub(r.last) < refusalEvery {
		r.since++
		a.mu.Unlock()
		a.log.WarnContext(ctx, "refused a GitHub delivery", "reason", reason, "status", status)
		return
	}
	before := r.since
	r.last, r.since = now, 0
	a.mu.Unlock()
	data := map[string]any{"reason": reason, "delivery": truncate(delivery, 100), "status": status}
	if before > 0 {
		data["refused_since_last"] = before // not audited one by one
	}
	err := a.st.InTx(ctx, func(tx store.Tx) error {
		return tx.AppendAudit(ctx, event(now, audit.IntegrationRefused, "anonymous", "github-webhook", data))
	})
	if err != nil {
		a.log.ErrorContext(ctx, "auditing a refused GitHub delivery failed", "err", fmt.Errorf("%s: %w", reason, err))
	}
}
