package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Advisory lock classes (the first key of the two-key advisory locks); the
// second key is derived from the schema, so stores in different schemas of
// one database do not wait for each other.
const (
	migrateLockClass int32 = 0x73676d01 // "sgm" 1: migrating
	auditLockClass   int32 = 0x73676101 // "sga" 1: appending to the audit chain
)

// records is sqlstore.Tx under a name that keeps the embedded field
// unexported while its methods are promoted.
type records = sqlstore.Tx

// Store is a PostgreSQL database (the schema first on the search_path).
// Its methods outside InTx each run as one statement, in its own implicit
// transaction; AppendAudit, CreateUser and UpdateUser run in a transaction
// of their own; UseNonce runs two statements, each atomic on its own.
type Store struct {
	*records
	pool    *pool
	dialect *sqlstore.Dialect
	hub     *sqlstore.Hub
	channel string // LISTEN/NOTIFY channel of the schema's checks
	lockKey int32  // second key of the advisory locks

	listenerPID  atomic.Uint32 // the listener's backend while connected, for tests
	stopListener context.CancelFunc
	listenerDone chan struct{}

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database dsn names (a URL or key=value string, as
// pgx takes it), applies the migrations it lacks, and starts listening for
// check notifications. The tables live in the first schema of the
// search_path (search_path can be set in the DSN). pool_max_conns sets the
// size of the connection pool, as with pgxpool (default: the larger of 4
// and the number of CPUs); the notification listener holds one more
// connection.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// Options bound how long the store waits for the database, so that a
// silent network partition fails requests closed quickly instead of
// hanging them. Zero values take the defaults.
type Options struct {
	// ConnectTimeout bounds opening a connection (default 5s; the DSN's
	// connect_timeout, when set, wins).
	ConnectTimeout time.Duration
	// StatementTimeout bounds one statement, or one transaction of InTx
	// (default 5s).
	StatementTimeout time.Duration
	// AcquireTimeout bounds waiting for a free connection of the pool
	// (default 5s).
	AcquireTimeout time.Duration
}

// Default timeouts.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultStatementTimeout = 5 * time.Second
	DefaultAcquireTimeout   = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.AcquireTimeout <= 0 {
		o.AcquireTimeout = DefaultAcquireTimeout
	}
	return o
}

// OpenWith is Open with timeouts.
func OpenWith(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing PostgreSQL DSN: %w", err)
	}
	maxConns := max(4, runtime.NumCPU())
	if v, ok := cfg.RuntimeParams["pool_max_conns"]; ok {
		delete(cfg.RuntimeParams, "pool_max_conns")
		if maxConns, err = strconv.Atoi(v); err != nil || maxConns < 1 {
			return nil, fmt.Errorf("parsing PostgreSQL DSN: pool_max_conns %q is not a positive integer", v)
		}
	}
	s := &Store{
		pool:         newPool(cfg, maxConns, opts.withDefaults()),
		hub:          sqlstore.NewHub(sqlstore.DefaultMaxPending),
		listenerDone: make(chan struct{}),
	}
	s.dialect = &sqlstore.Dialect{
		ForUpdate:  " FOR UPDATE",
		SkipLocked: " FOR UPDATE SKIP LOCKED",
		Time:       func(t time.Time) any { return t },
		LockAudit: func(ctx context.Context, q sqlstore.Querier) error {
			_, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, auditLockClass, s.lockKey)
			return err
		},
		Classify: classify,
	}
	s.records = sqlstore.NewTx(poolQuerier{s.pool}, s.dialect)
	if err := s.open(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening PostgreSQL database %q on %q: %w", cfg.Database, cfg.Host, unavailable(err))
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer s.pool.release(c)
	// The schema names the notification channel and the lock keys.
	var schema *string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("reading current schema: %w", err)
	}
	if schema == nil {
		return errors.New("no schema of the search_path exists")
	}
	s.channel, s.lockKey = channelName(*schema), lockKey(*schema)
	if err := s.migrate(ctx, c); err != nil {
		return err
	}
	// Listen before Open returns, so that a watcher started after Open
	// hears every later notification of other processes.
	lc, err := s.connectListener(ctx)
	if err != nil {
		return fmt.Errorf("listening for check notifications: %w", err)
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopListener = stop
	go s.listen(lctx, lc)
	return nil
}

// channelName is the LISTEN/NOTIFY channel of the checks of schema:
// channels are per database, and stores in different schemas must not wake
// each other.
func channelName(schema string) string {
	name := "stepgate_checks_" + schema
	if len(name) > 63 { // NAMEDATALEN-1
		sum := sha256.Sum256([]byte(schema))
		name = "stepgate_checks_" + hex.EncodeToString(sum[:8])
	}
	return name
}

// lockKey is the second key of the advisory locks of schema.
func lockKey(schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte(schema))
	return int32(h.Sum32())
}

// migrate applies the pending migrations on c while it holds a session
// advisory lock, so that processes opening the database at once migrate
// it once.
func (s *Store) migrate(ctx context.Context, c *pgx.Conn) error {
	ms, err := sqlstore.ReadMigrations(migrationFS, "migrations")
	if err != nil {
		return err
	}
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, migrateLockClass, s.lockKey); err != nil {
		return fmt.Errorf("locking schema for migrations: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := c.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, migrateLockClass, s.lockKey); err != nil {
			_ = c.Close(ctx) // never reuse a session that may still hold the lock
		}
	}()
	m := sqlstore.Migrator{
		CreateTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`,
		InTx: func(ctx context.Context, fn func(sqlstore.Querier) error) error {
			return inTx(ctx, c, func(tx pgx.Tx) error { return fn(pgxQuerier{tx}) })
		},
	}
	_, err = m.Migrate(ctx, ms)
	return err
}

func classify(err error) sqlstore.Violation {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return sqlstore.NoViolation
	}
	switch e.Code {
	case "23505": // unique_violation
		return sqlstore.UniqueViolation
	case "23503": // foreign_key_violation
		return sqlstore.ForeignKeyViolation
	}
	return sqlstore.NoViolation
}

// inTx runs fn in a transaction on c (READ COMMITTED), committed when fn
// returns nil.
func inTx(ctx context.Context, c *pgx.Conn, fn func(tx pgx.Tx) error) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	return runTx(ctx, c, tx, fn)
}

// runTx runs fn in tx, begun on c, and commits when fn returns nil.
func runTx(ctx context.Context, c *pgx.Conn, tx pgx.Tx, fn func(tx pgx.Tx) error) error {
	finished := false
	defer func() {
		if !finished { // fn panicked
			_ = rollback(c, tx)
		}
	}()
	err := fn(tx)
	finished = true
	if err != nil {
		if rbErr := rollback(c, tx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}

// rollback rolls tx back even when the transaction's context has ended. A
// connection that closed (say, on a cancelled query) needs no rollback:
// the server ended the transaction.
func rollback(c *pgx.Conn, tx pgx.Tx) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) && !c.IsClosed() {
		return fmt.Errorf("rolling back transaction: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction (READ COMMITTED) on a connection of its
// own, committed when fn returns nil and rolled back otherwise; it returns
// fn's error. It does not retry: a deadlock or a serialization failure is
// returned. Use tx in fn, not the Store: the Store's methods would run
// outside the transaction, on another connection of the pool.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.pool.opts.StatementTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		c, err := s.pool.acquire(ctx)
		if err != nil {
			return fmt.Errorf("beginning transaction: %w", unavailable(err))
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			s.pool.release(c)
			if attempt == 0 && pgconn.SafeToRetry(err) {
				continue // nothing was sent: once more, on a fresh connection
			}
			return fmt.Errorf("beginning transaction: %w", unavailable(err))
		}
		err = runTx(ctx, c, tx, func(tx pgx.Tx) error {
			return fn(sqlstore.NewTx(pgxQuerier{tx}, s.dialect))
		})
		s.pool.release(c)
		return unavailable(err)
	}
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

// NotifyCheck wakes the watchers of this process at once, and those of
// other processes through NOTIFY on the schema's channel (payload: the id).
// A watcher in this process gets the id once: the listener skips the
// notifications this store's own connections sent.
func (s *Store) NotifyCheck(ctx context.Context, id string) error {
	s.hub.Publish(id)
	if _, err := (poolQuerier{s.pool}).Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, id); err != nil {
		return fmt.Errorf("notifying check %q: %w", id, err)
	}
	return nil
}

// WatchChecks returns the ids of the checks notified from now on, in this
// process or another, until ctx ends or the store closes. A watcher that
// does not keep up gets each id at least once, repeated notifications of a
// queued id coalesced (see sqlstore.Hub). Notifications from other
// processes sent while the listener is reconnecting are lost: waiters
// should re-read what they wait for now and then.
func (s *Store) WatchChecks(ctx context.Context) (<-chan string, error) {
	ch, err := s.hub.Watch(ctx)
	if err != nil {
		return nil, fmt.Errorf("watching checks: %w", err)
	}
	return ch, nil
}

// Ping checks that a check could be recorded now: it rewrites the one row
// of the readiness table, within the statement timeout. Its errors wrap
// store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := (poolQuerier{s.pool}).Exec(ctx, `UPDATE readiness SET probed_at = now() WHERE id = 1`); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return fmt.Errorf("writing to PostgreSQL: %w", err)
	}
	return nil
}

// Close stops the listener, closes the watchers' channels and the
// connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stopListener != nil {
			s.stopListener()
			<-s.listenerDone
		}
		s.hub.Close()
		s.pool.close()
	})
	return nil
}

// SetGrantApprovals records the approvals of a grant in a transaction of
// its own.
func (s *Store) SetGrantApprovals(ctx context.Context, checkID string, approvalIDs []string) error {
	return s.InTx(ctx, func(tx store.Tx) error { return tx.SetGrantApprovals(ctx, checkID, approvalIDs) })
}
