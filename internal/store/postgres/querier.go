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

// poolQuerier runs each statement on a connection of the pool.
type poolQuerier struct{ p *pool }

func (q poolQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	c, err := q.p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer q.p.release(c)
	return pgxQuerier{c}.Exec(ctx, query, args...)
}

func (q poolQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	c, err := q.p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		q.p.release(c)
		return nil, err
	}
	return &poolRows{Rows: rows, release: func() { q.p.release(c) }}, nil
}

// poolRows gives the connection back when the rows are closed.
type poolRows struct {
	pgx.Rows
	release func()
	done    bool
}

func (r *poolRows) Close() {
	r.Rows.Close()
	if !r.done {
		r.done = true
		r.release()
	}
}
