package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// waitTimeout bounds every wait for a notification or a closed channel.
const waitTimeout = 10 * time.Second

// WaitForIDs reads ch until it has seen every id in want (in any order, other
// ids and repeats allowed), failing t after waitTimeout.
func WaitForIDs(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	missing := map[string]bool{}
	for _, id := range want {
		missing[id] = true
	}
	timeout := time.After(waitTimeout)
	for len(missing) > 0 {
		select {
		case id, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed; still waiting for %d ids, e.g. %v", len(missing), firstKeys(missing))
			}
			delete(missing, id)
		case <-timeout:
			t.Fatalf("no notification of %d ids after %v, e.g. %v", len(missing), waitTimeout, firstKeys(missing))
		}
	}
}

func firstKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out[:min(len(out), 5)]
}

// WaitClosed reads ch until it is closed, failing t after waitTimeout.
func WaitClosed(t *testing.T, ch <-chan string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("watch channel still open after %v", waitTimeout)
		}
	}
}

func watch(t *testing.T, ctx context.Context, st store.Store) <-chan string {
	t.Helper()
	ch, err := st.WatchChecks(ctx)
	if err != nil {
		t.Fatalf("WatchChecks() = %v, want nil", err)
	}
	return ch
}

func notify(t *testing.T, st store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := st.NotifyCheck(t.Context(), id); err != nil {
			t.Fatalf("NotifyCheck(%s) = %v, want nil", id, err)
		}
	}
}

func testWatch(t *testing.T, open Opener) {
	t.Run("ok/every-watcher-gets-every-id", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		w1, w2 := watch(t, t.Context(), st), watch(t, t.Context(), st)
		notify(t, st, "c1", "c2", "c1")
		WaitForIDs(t, w1, "c1", "c2")
		WaitForIDs(t, w2, "c1", "c2")
		// A watcher that started later gets what is notified after.
		w3 := watch(t, t.Context(), st)
		notify(t, st, "c3")
		WaitForIDs(t, w3, "c3")
		WaitForIDs(t, w1, "c3")
	})

	t.Run("ok/slow-watcher-does-not-block-notifiers", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		slow := watch(t, t.Context(), st) // never read until the end
		fast := watch(t, t.Context(), st)
		const n = 300
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("c%d", i))
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, id := range want {
				if err := st.NotifyCheck(t.Context(), id); err != nil {
					t.Errorf("NotifyCheck(%s) = %v, want nil", id, err)
					return
				}
			}
		}()
		WaitForIDs(t, fast, want...)
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Fatalf("NotifyCheck() blocked for %v behind a watcher that does not read", waitTimeout)
		}
		// Nothing was lost for the slow watcher either.
		WaitForIDs(t, slow, want...)
	})

	t.Run("ok/channel-closes-when-ctx-ends", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		ch := watch(t, ctx, st)
		other := watch(t, t.Context(), st)
		cancel()
		WaitClosed(t, ch)
		// Other watchers go on.
		notify(t, st, "c1")
		WaitForIDs(t, other, "c1")
	})
}

func testLifecycle(t *testing.T, open Opener) {
	t.Run("ok/ping", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		if err := st.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
	})

	t.Run("ok/close-ends-watchers", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		ch := watch(t, t.Context(), st)
		if err := st.Close(); err != nil {
			t.Fatalf("Close() = %v, want nil", err)
		}
		WaitClosed(t, ch)
		if err := st.Ping(t.Context()); err == nil {
			t.Error("Ping() after Close() = nil, want an error")
		}
		if _, err := st.WatchChecks(t.Context()); err == nil {
			t.Error("WatchChecks() after Close() = nil error, want an error")
		}
		if err := st.Close(); err != nil {
			t.Errorf("second Close() = %v, want nil", err)
		}
	})
}
