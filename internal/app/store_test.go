package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/faulttest"
	"github.com/stepgate/stepgate/internal/store"
)

// recordHandler sends every log record's message and attributes to ch.
type recordHandler struct{ ch chan string }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	select {
	case h.ch <- b.String():
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// TestServeWaitsForDatabase: serve does not give up when PostgreSQL is not
// reachable yet at start: it retries with backoff, logging why, and opens
// the store once the database is up; after start_retry it gives up with a
// clear error.
func TestServeWaitsForDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	c := faulttest.NewCluster(t)
	c.Stop()
	logs := make(chan string, 100)
	log := slog.New(recordHandler{logs})

	t.Run("fail/gives up after start_retry", func(t *testing.T) {
		srv := config.Server{Database: c.DSN(c.Addr()), DatabaseTimeouts: config.DatabaseTimeouts{StartRetry: config.Duration(time.Second)}}
		start := time.Now()
		_, err := OpenServerStore(t.Context(), srv, log)
		if err == nil || !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "start_retry") {
			t.Errorf("OpenServerStore() with the database down = %v, want an unavailable error naming start_retry", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %v, want about 1s", d)
		}
	})

	t.Run("ok/retries until the database is up", func(t *testing.T) {
		for len(logs) > 0 {
			<-logs
		}
		srv := config.Server{Database: c.DSN(c.Addr())}
		type result struct {
			st  store.Store
			err error
		}
		done := make(chan result, 1)
		go func() {
			st, err := OpenServerStore(context.Background(), srv, log)
			done <- result{st, err}
		}()
		select {
		case msg := <-logs:
			if !strings.Contains(msg, "database not reachable; retrying") || !strings.Contains(msg, "err=") {
				t.Errorf("first log line = %q, want the retry and its reason", msg)
			}
		case r := <-done:
			t.Fatalf("OpenServerStore() with the database down returned at once: %v", r.err)
		}
		c.Start()
		r := <-done
		if r.err != nil {
			t.Fatalf("OpenServerStore() once the database is up = %v, want nil", r.err)
		}
		defer r.st.Close()
		if err := r.st.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v", err)
		}
	})
}
