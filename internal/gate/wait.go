package gate

import (
	"context"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/store"
)

// Hub wakes the requests waiting on a check when it changes, whichever
// server changed it: it follows the store's notifications.
type Hub struct {
	mu       sync.Mutex
	waiters  map[string]map[chan struct{}]struct{}
	stopping chan struct{} // closed by Stop
	stopOnce sync.Once
}

// NewHub returns a hub with no waiters.
func NewHub() *Hub {
	return &Hub{waiters: map[string]map[chan struct{}]struct{}{}, stopping: make(chan struct{})}
}

// Stop answers every waiter, now and from now on, at once with its check's
// current state: the server is shutting down, and the waiting clients
// resume on another server or after the restart.
func (h *Hub) Stop() { h.stopOnce.Do(func() { close(h.stopping) }) }

// Waiting is the number of requests waiting on a check.
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, w := range h.waiters {
		n += len(w)
	}
	return n
}

// checkWatcher delivers the ids of checks that changed, in this process
// and in others sharing the database: all the Hub needs of the store.
type checkWatcher interface {
	WatchChecks(ctx context.Context) (<-chan string, error)
}

// Run follows the store's notifications until ctx ends.
func (h *Hub) Run(ctx context.Context, st checkWatcher) error {
	ids, err := st.WatchChecks(ctx)
	if err != nil {
		return err
	}
	for id := range ids {
		h.wake(id)
	}
	return ctx.Err()
}

func (h *Hub) wake(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.waiters[id] {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}

// Subscribe returns a channel that receives when check id changes, and a
// function to call when no longer waiting.
func (h *Hub) Subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.waiters[id] == nil {
		h.waiters[id] = map[chan struct{}]struct{}{}
	}
	h.waiters[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.waiters[id], ch)
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
		h.mu.Unlock()
	}
}

// MaxWait is the longest a wait request is held.
const MaxWait = 60 * time.Second

// RecheckInterval is how often a waiting request re-reads its check even
// without a notification, by default (Config.RecheckInterval).
const RecheckInterval = 2 * time.Second

// Wait returns a check once it is no longer pending, or when timeout (at
// most MaxWait) has passed, or when the hub stops, whichever comes first.
func (s *Service) Wait(ctx context.Context, hub *Hub, caller *Caller, id string, timeout time.Duration) (*api.Check, error) {
	timeout = min(max(timeout, 0), MaxWait)
	woken, done := hub.Subscribe(id)
	defer done()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	// Notifications wake a waiter at once; this re-read bounds the delay
	// when one is lost, or when another process wrote a SQLite database.
	var rechecks <-chan time.Time // nil: never
	if every := s.recheckInterval(); every > 0 {
		recheck := time.NewTicker(every)
		defer recheck.Stop()
		rechecks = recheck.C
	}
	// The pending check's own expiry also ends the wait.
	for {
		v, err := s.GetCheck(ctx, caller, id)
		if err != nil || v.State != string(store.StatePending) {
			return v, err
		}
		untilExpiry := v.ExpiresAt.Sub(s.now()) + 10*time.Millisecond
		expiry := time.NewTimer(max(untilExpiry, 0))
		if s.waiting != nil {
			s.waiting(id) // a test learns that this waiter now waits
		}
		select {
		case <-woken:
		case <-rechecks:
		case <-expiry.C:
		case <-deadline.C:
			expiry.Stop()
			return s.GetCheck(ctx, caller, id)
		case <-hub.stopping:
			expiry.Stop()
			return s.GetCheck(ctx, caller, id)
		case <-ctx.Done():
			expiry.Stop()
			return nil, ctx.Err()
		}
		expiry.Stop()
	}
}

// recheckInterval is Config.RecheckInterval: 0 means RecheckInterval, a
// negative value never (only notifications wake a waiter; tests of the
// notification path use it, so that the fallback cannot pass for it).
func (s *Service) recheckInterval() time.Duration {
	switch {
	case s.cfg.RecheckInterval == 0:
		return RecheckInterval
	case s.cfg.RecheckInterval < 0:
		return 0
	}
	return s.cfg.RecheckInterval
}
