package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// busyTimeout is how long a statement waits for another connection's (or
// process's) write lock before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// maxConns is the size of the connection pool.
const maxConns = 8

// records is sqlstore.Tx under a name that keeps the embedded field
// unexported while its methods are promoted.
type records = sqlstore.Tx

// Store is a SQLite database. Its methods outside InTx each run as one
// statement, in its own implicit transaction; AppendAudit, CreateUser and
// UpdateUser run in a transaction of their own; UseNonce runs two
// statements, each atomic on its own.
type Store struct {
	*records
	db      *sql.DB
	dialect *sqlstore.Dialect
	hub     *sqlstore.Hub
	stmts   *stmtCache
	// writer is held by the transaction of this process that has the
	// write lock (a semaphore, so that waiting honours the context).
	// Writers of one process queue here, in Go, instead of polling
	// SQLite's lock: its busy handler sleeps up to 100 ms between tries,
	// which under load is most of a transaction's latency. Other
	// processes still meet at the file lock, with the busy timeout.
	writer chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path and applies
// the migrations it lacks.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("opening SQLite database %q: want the path of a file, without '?' or '#'", path)
	}
	// SQLite gives the -wal and -shm files the mode of the database file:
	// create it readable by its owner only (it holds sealed keys, TOTP
	// secrets and the audit log). An existing file keeps its mode.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite database %q: %w", path, err)
	}
	_ = f.Close()
	dsn := path + "?" + strings.Join([]string{
		"_txlock=immediate",
		fmt.Sprintf("_busy_timeout=%d", busyTimeout.Milliseconds()),
		"_foreign_keys=1",
		"_journal_mode=WAL",
	}, "&")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening SQLite database %q: %w", path, err)
	}
	// Writers take turns anyway; a few connections let reads proceed
	// while one writes.
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)

	d := &sqlstore.Dialect{
		ForUpdate:  "", // the transaction already holds the write lock
		SkipLocked: "", // writers take turns
		Time:       func(t time.Time) any { return t.UnixMicro() },
		LockAudit:  func(context.Context, sqlstore.Querier) error { return nil }, // likewise
		Classify:   classify,
	}
	stmts := &stmtCache{db: db, m: map[string]*sql.Stmt{}}
	s := &Store{records: nil, db: db, dialect: d, hub: sqlstore.NewHub(sqlstore.DefaultMaxPending), stmts: stmts, writer: make(chan struct{}, 1)}
	s.records = sqlstore.NewTx(querier{db: db, stmts: stmts, failed: s.unavailable}, d)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening SQLite database %q: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := sqlstore.ReadMigrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	m := sqlstore.Migrator{
		CreateTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
		) STRICT`,
		InTx: s.inTx,
	}
	_, err = m.Migrate(ctx, ms)
	return err
}

func classify(err error) sqlstore.Violation {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return sqlstore.NoViolation
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return sqlstore.UniqueViolation
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ForeignKeyViolation
	}
	return sqlstore.NoViolation
}

// inTx runs fn in a transaction that holds the write lock from BEGIN
// (_txlock=immediate), committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(q sqlstore.Querier) error) error {
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("beginning transaction: %w", ctx.Err())
	}
	defer func() { <-s.writer }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", s.unavailable(err))
	}
	finished := false
	defer func() {
		if !finished { // fn panicked
			_ = tx.Rollback()
		}
	}()
	err = fn(querier{db: tx, tx: tx, stmts: s.stmts})
	finished = true
	if err != nil {
		rbErr := tx.Rollback()
		// After the rollback, which gives the connection back: the
		// connections are dropped only once none is in use.
		err = s.unavailable(err)
		if rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rolling back transaction: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", s.unavailable(err))
	}
	return nil
}

// InTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise; it returns fn's error. The transaction holds the
// database's write lock from its start: keep it short, and do not call the
// Store's own methods from fn (use tx).
func (s *Store) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.inTx(ctx, func(q sqlstore.Querier) error {
		return fn(sqlstore.NewTx(q, s.dialect))
	})
}

// AppendAudit appends e in a transaction of its own.
func (s *Store) AppendAudit(ctx context.Context, e *audit.Event) error {
	return s.InTx(ctx, func(tx store.Tx) error { return tx.AppendAudit(ctx, e) })
}

// CreateUser creates u and indexes its links in a transaction of its own.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	return s.InTx(ctx, func(tx store.Tx) error { return tx.CreateUser(ctx, u) })
}

// UpdateUser updates u and its links in a transaction of its own.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	return s.InTx(ctx, func(tx store.Tx) error { return tx.UpdateUser(ctx, u) })
}

// NotifyCheck wakes the watchers of this process; see sqlstore.Hub for
// what a slow watcher gets.
func (s *Store) NotifyCheck(ctx context.Context, id string) error {
	s.hub.Publish(id)
	return nil
}

// WatchChecks returns the ids of the checks notified from now on, until ctx
// ends or the store closes. A watcher that does not keep up gets each id at
// least once, repeated notifications of a queued id coalesced (see
// sqlstore.Hub).
func (s *Store) WatchChecks(ctx context.Context) (<-chan string, error) {
	ch, err := s.hub.Watch(ctx)
	if err != nil {
		return nil, fmt.Errorf("watching checks: %w", err)
	}
	return ch, nil
}

// Ping checks that a check could be recorded now: it rewrites the one row
// of the readiness table in a write transaction (so the database does not
// grow), which fails when the file cannot be written (read-only, disk
// full, locked by another process beyond the context's deadline). Its
// errors wrap store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	probe := func() error {
		return s.inTx(ctx, func(q sqlstore.Querier) error {
			_, err := q.Exec(ctx, `UPDATE readiness SET probed_at = ? WHERE id = 1`, time.Now().UnixMicro())
			return err
		})
	}
	err := probe()
	if err != nil && errors.Is(err, store.ErrUnavailable) {
		// The failure dropped the idle connections, which may have been
		// opened while the file was read-only: probe once more on fresh
		// ones, so readiness says what the file is now.
		err = probe()
	}
	if err != nil {
		return fmt.Errorf("%w: writing to the SQLite database: %w", store.ErrUnavailable, err)
	}
	return nil
}

// cannotWrite reports whether err says the file cannot be written now
// (rather than that a statement was wrong): read-only, full, I/O error,
// cannot open.
func cannotWrite(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY:
		return true
	}
	return false
}

// unavailable wraps err with store.ErrUnavailable when it says the file
// cannot be written now (callers answer 503). It first drops the idle
// connections: a connection opened while the file was read-only stays
// read-only, so the pool opens fresh ones, which see the file as it is now.
func (s *Store) unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || !cannotWrite(err) {
		return err
	}
	s.db.SetMaxIdleConns(0)
	s.db.SetMaxIdleConns(maxConns)
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// Close closes the watchers' channels and the database. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.hub.Close()
		s.stmts.close()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("closing SQLite database: %w", err)
		}
	})
	return s.closeErr
}

// querier adapts database/sql to sqlstore.Querier. Queries, and
// statements with arguments, run as prepared statements kept by stmts
// (SQLite compiles a statement anew each time otherwise, a good part of a
// small transaction's cost); Exec without arguments (migrations: several
// statements in one string) runs as it is.
type querier struct {
	db interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}
	tx    *sql.Tx // the transaction, when db is one
	stmts *stmtCache
	// failed, when set, is told of the statements' errors and returns
	// the error to return.
	failed func(error) error
}

// stmt returns the prepared statement of query for this querier, or nil to
// run query unprepared.
func (q querier) stmt(ctx context.Context, query string, one bool) *sql.Stmt {
	if !one || q.stmts == nil {
		return nil
	}
	st := q.stmts.get(ctx, query)
	if st == nil || q.tx == nil {
		return st
	}
	// The statement on the transaction's connection: database/sql reuses
	// what it prepared there before, and closes this handle with the
	// transaction.
	return q.tx.StmtContext(ctx, st)
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := q.stmt(ctx, query, len(args) > 0); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = q.db.ExecContext(ctx, query, args...)
	}
	if err != nil {
		if q.failed != nil {
			err = q.failed(err)
		}
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	var rows *sql.Rows
	var err error
	if st := q.stmt(ctx, query, true); st != nil {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = q.db.QueryContext(ctx, query, args...)
	}
	if err != nil {
		if q.failed != nil {
			err = q.failed(err)
		}
		return nil, err
	}
	return sqlRows{rows}, nil
}

// maxStatements bounds the statement cache: the store's queries are a
// fixed set of strings, so this is never reached unless queries are built
// with values in them, which then run unprepared.
const maxStatements = 256

// stmtCache holds one prepared statement per query string.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	closed bool
}

// get returns the statement of query, preparing it the first time; nil
// when it cannot be prepared here (the caller then runs the query as it
// is, and gets the error, if any, from there).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[query]
	full := len(c.m) >= maxStatements || c.closed
	c.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := c.db.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok || c.closed {
		_ = st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// CreateCeremony prunes and inserts in a transaction of its own, queued
// behind this process's other writers.
func (s *Store) CreateCeremony(ctx context.Context, c *store.Ceremony) error {
	return s.InTx(ctx, func(tx store.Tx) error { return tx.CreateCeremony(ctx, c) })
}

// UseCeremony runs in a transaction of its own, queued behind this
// process's other writers.
func (s *Store) UseCeremony(ctx context.Context, hash []byte, now time.Time) (*store.Ceremony, error) {
	return useOnce(ctx, s, func(tx store.Tx) (*store.Ceremony, error) { return tx.UseCeremony(ctx, hash, now) })
}

// UseEnrollment runs in a transaction of its own, queued behind this
// process's other writers.
func (s *Store) UseEnrollment(ctx context.Context, hash []byte, now time.Time) (*store.Enrollment, error) {
	return useOnce(ctx, s, func(tx store.Tx) (*store.Enrollment, error) { return tx.UseEnrollment(ctx, hash, now) })
}

// useOnce runs use, a single-use record's use, in a transaction of its own.
// Its refusals (store.ErrUsed, store.ErrExpired) change nothing: they are
// returned with the record as read, and the transaction commits.
func useOnce[T any](ctx context.Context, s *Store, use func(tx store.Tx) (T, error)) (T, error) {
	var v T
	var refused error
	err := s.InTx(ctx, func(tx store.Tx) error {
		var err error
		v, err = use(tx)
		if errors.Is(err, store.ErrUsed) || errors.Is(err, store.ErrExpired) {
			refused = err
			return nil
		}
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, refused
}

// SetGrantApprovals records the approvals of a grant in a transaction of
// its own.
func (s *Store) SetGrantApprovals(ctx context.Context, checkID string, approvalIDs []string) error {
	return s.InTx(ctx, func(tx store.Tx) error { return tx.SetGrantApprovals(ctx, checkID, approvalIDs) })
}
