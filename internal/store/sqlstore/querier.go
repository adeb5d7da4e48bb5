package sqlstore

import "context"

// Querier runs statements on a connection, a pool or a transaction. Each
// backend adapts its driver (database/sql, pgx) to it.
type Querier interface {
	// Exec runs a statement and returns how many rows it changed. With no
	// args, query may hold several statements (migrations use that).
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows. The caller closes them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows is the result of Query. Scan destinations are pointers to string,
// bool, int, int64, []byte or sql.Scanner values, which database/sql and
// pgx both accept.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}
