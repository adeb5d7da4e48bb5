package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// drain reads ch until nothing arrives for quiet.
func drain(ch <-chan string, quiet time.Duration) []string {
	var got []string
	for {
		select {
		case id, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, id)
		case <-time.After(quiet):
			return got
		}
	}
}

func TestHubCoalescesRepeatsForASlowWatcher(t *testing.T) {
	h := NewHub(DefaultMaxPending)
	defer h.Close()
	ch, err := h.Watch(t.Context())
	if err != nil {
		t.Fatalf("Watch() = %v, want nil", err)
	}
	for range 100 {
		h.Publish("a")
	}
	h.Publish("b")
	got := drain(ch, 200*time.Millisecond)
	// One "a" may already be on its way when the others are queued.
	if len(got) == 0 || len(got) > 3 || got[len(got)-1] != "b" {
		t.Errorf("a slow watcher got %v after 100 × a then b, want a (a) b", got)
	}
}

func TestHubDropsTheOldestBeyondMaxPending(t *testing.T) {
	h := NewHub(3)
	defer h.Close()
	ch, err := h.Watch(t.Context())
	if err != nil {
		t.Fatalf("Watch() = %v, want nil", err)
	}
	for i := range 10 {
		h.Publish(fmt.Sprint(i))
	}
	got := drain(ch, 200*time.Millisecond)
	// "0" may already be on its way; of the rest the newest 3 are kept.
	if len(got) > 4 || len(got) < 3 {
		t.Fatalf("a slow watcher got %v after 10 ids with MaxPending 3, want 3 or 4", got)
	}
	if diff := cmp.Diff([]string{"7", "8", "9"}, got[len(got)-3:]); diff != "" {
		t.Errorf("a slow watcher kept (-want +got):\n%s", diff)
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub(DefaultMaxPending)
	ch, err := h.Watch(context.Background())
	if err != nil {
		t.Fatalf("Watch() = %v, want nil", err)
	}
	h.Publish("a") // never read
	h.Close()
	for range ch { // must end
	}
	if _, err := h.Watch(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Watch() after Close() = %v, want %v", err, ErrClosed)
	}
	h.Publish("b") // no watchers: nothing happens
	h.Close()      // twice is fine
}
