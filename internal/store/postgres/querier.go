package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

// pgxQuerier adapts a pgx connection or transaction to sqlstore.Querier.
type pgxQuerier struct {
	c interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	}
}

func (q pgxQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.c.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q pgxQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.c.Query(ctx, query, args...)
}

// poolQuerier runs each statement on a connection of the pool, within
// the statement timeout. A statement that failed before anything was
// sent (the connection was found broken) is retried once on a fresh
// connection.
type poolQuerier struct{ p *pool }

func (q poolQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, q.p.opts.StatementTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		c, err := q.p.acquire(ctx)
		if err != nil {
			return 0, unavailable(err)
		}
		n, err := pgxQuerier{c}.Exec(ctx, query, args...)
		q.p.release(c)
		if err != nil && attempt == 0 && pgconn.SafeToRetry(err) {
			continue
		}
		return n, unavailable(err)
	}
}

func (q poolQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	ctx, cancel := context.WithTimeout(ctx, q.p.opts.StatementTimeout)
	for attempt := 0; ; attempt++ {
		c, err := q.p.acquire(ctx)
		if err != nil {
			cancel()
			return nil, unavailable(err)
		}
		rows, err := c.Query(ctx, query, args...)
		if err != nil {
			q.p.release(c)
			if attempt == 0 && pgconn.SafeToRetry(err) {
				continue
			}
			cancel()
			return nil, unavailable(err)
		}
		return &poolRows{Rows: rows, release: func() { q.p.release(c); cancel() }}, nil
	}
}

// poolRows gives the connection back when the rows are closed.
type poolRows struct {
	pgx.Rows
	release func()
	done    bool
}

func (r *poolRows) Err() error { return unavailable(r.Rows.Err()) }

func (r *poolRows) Close() {
	r.Rows.Close()
	if !r.done {
		r.done = true
		r.release()
	}
}
