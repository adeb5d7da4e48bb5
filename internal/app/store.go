package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
)

// DefaultStartRetry is how long serve keeps retrying an unreachable
// database at start.
const DefaultStartRetry = 2 * time.Minute

// Backoff between attempts to reach the database at start: doubling from
// the first to the last.
const (
	startBackoffMin = 500 * time.Millisecond
	startBackoffMax = 10 * time.Second
)

// OpenServerStore opens the database of srv with its timeouts. While the
// database cannot be reached (store.ErrUnavailable) it tries again, with
// backoff, for server.database_timeouts.start_retry, logging why; other
// errors (a bad DSN, a failed migration) return at once.
func OpenServerStore(ctx context.Context, srv config.Server, log *slog.Logger) (store.Store, error) {
	budget := time.Duration(srv.DatabaseTimeouts.StartRetry)
	if budget <= 0 {
		budget = DefaultStartRetry
	}
	deadline := time.Now().Add(budget)
	pause := startBackoffMin
	for attempt := 1; ; attempt++ {
		st, err := openStore(ctx, srv)
		if err == nil {
			if attempt > 1 {
				log.InfoContext(ctx, "database reachable", "database", config.Redacted(srv.Database), "attempts", attempt)
			}
			return st, nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("database still unreachable after %v (server.database_timeouts.start_retry): %w", budget, err)
		}
		wait := min(pause, left)
		log.WarnContext(ctx, "database not reachable; retrying", "database", config.Redacted(srv.Database), "attempt", attempt, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the database: %w", ctx.Err())
		case <-time.After(wait):
		}
		pause = min(2*pause, startBackoffMax)
	}
}

// openStore opens srv's database once, with its timeouts.
func openStore(ctx context.Context, srv config.Server) (store.Store, error) {
	dsn := srv.Database
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		t := srv.DatabaseTimeouts
		return postgres.OpenWith(ctx, dsn, postgres.Options{
			ConnectTimeout:   time.Duration(t.Connect),
			StatementTimeout: time.Duration(t.Statement),
			AcquireTimeout:   time.Duration(t.Acquire),
		})
	}
	return OpenStore(ctx, dsn)
}
