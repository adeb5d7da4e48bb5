package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stepgate/stepgate/internal/api"
)

// DefaultShutdownGrace is how long serve waits, after SIGTERM, for the
// requests in flight and the background work (within Kubernetes' default
// 30 s termination grace period).
const DefaultShutdownGrace = 25 * time.Second

// drainer refuses new requests once the server is shutting down: they go
// to another server (a load balancer retries them) or come back after the
// restart.
type drainer struct{ on atomic.Bool }

func (d *drainer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.on.Load() {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, `{"error":{"code":%q,"message":"the server is shutting down; try again"}}`+"\n", api.CodeUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// background runs the server's loops (notifications, the hub, expiry)
// until stopped, and knows when they have all returned.
type background struct {
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// newBackground derives the loops' context from ctx's values only: the
// loops keep running while the HTTP server drains, and stop after it.
func newBackground(ctx context.Context) *background {
	b := &background{}
	b.ctx, b.stop = context.WithCancel(context.WithoutCancel(ctx))
	return b
}

func (b *background) run(fn func(ctx context.Context)) { b.wg.Go(func() { fn(b.ctx) }) }

// shutdown stops the server in this order: new requests are refused, every
// waiter is answered with its check's current state, the requests in
// flight finish, the background loops stop and drain; the caller closes
// the server (last checkpoint, store) after. It fails when this takes
// longer than grace.
func shutdown(hs *http.Server, s *Server, grace time.Duration, log *slog.Logger) error {
	start := time.Now()
	s.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(ctx)
	if lerr := s.stopLoops(ctx); lerr != nil {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("shutting down within %v: %w", grace, err)
	}
	log.Info("shut down", "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}
