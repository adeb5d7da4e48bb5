package sqlstore

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Hub.Watch once the hub is closed.
var ErrClosed = errors.New("store closed")

// DefaultMaxPending is how many distinct ids a watcher that does not read
// may fall behind by before the oldest are dropped.
const DefaultMaxPending = 4096

// Hub fans check ids out to the watchers of one process.
//
// A slow watcher never blocks Publish. Each watcher has a queue of the ids
// it has not received yet, in the order they were first published, with
// each id at most once: an id published again while still queued is
// coalesced with the queued one (the watcher re-reads the check anyway). So
// a watcher receives every id published after Watch returned, at least
// once, unless it falls more than MaxPending distinct ids behind: then the
// oldest queued ids are dropped.
type Hub struct {
	maxPending int

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	closed   bool
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

// NewHub returns a hub whose watchers queue at most maxPending ids.
func NewHub(maxPending int) *Hub {
	return &Hub{maxPending: maxPending, watchers: map[*watcher]struct{}{}, done: make(chan struct{})}
}

type watcher struct {
	wake chan struct{} // capacity 1: ids are queued
	out  chan string

	mu     sync.Mutex
	queue  []string
	queued map[string]struct{}
}

// Publish queues id for every watcher. It never blocks on a watcher.
func (h *Hub) Publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.push(id, h.maxPending)
	}
}

func (w *watcher) push(id string, max int) {
	w.mu.Lock()
	if _, ok := w.queued[id]; !ok {
		if len(w.queue) >= max {
			delete(w.queued, w.queue[0])
			w.queue = w.queue[1:]
		}
		w.queue = append(w.queue, id)
		w.queued[id] = struct{}{}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	clear(w.queued)
	return q
}

// Watch returns a channel that receives the ids published from now on. It
// is closed when ctx ends or the hub closes.
func (h *Hub) Watch(ctx context.Context) (<-chan string, error) {
	w := &watcher{wake: make(chan struct{}, 1), out: make(chan string), queued: map[string]struct{}{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	h.watchers[w] = struct{}{}
	h.wg.Add(1)
	go h.deliver(ctx, w)
	return w.out, nil
}

func (h *Hub) deliver(ctx context.Context, w *watcher) {
	defer h.wg.Done()
	defer close(w.out)
	defer func() {
		h.mu.Lock()
		delete(h.watchers, w)
		h.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-w.wake:
		}
		for _, id := range w.take() {
			select {
			case w.out <- id:
			case <-ctx.Done():
				return
			case <-h.done:
				return
			}
		}
	}
}

// Close closes every watcher's channel and waits for their goroutines.
func (h *Hub) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.wg.Wait()
}
