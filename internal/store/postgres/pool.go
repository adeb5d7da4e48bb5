package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pool is a small pool of pgx connections.
//
// pgxpool (and pgx/v5/stdlib, which imports it) need
// github.com/jackc/puddle/v2, which go.mod does not carry; this is the part
// of it the store needs. Swap it for pgxpool when go.mod has puddle: the
// pool_max_conns DSN setting already means the same.
type pool struct {
	cfg  *pgx.ConnConfig
	sem  chan struct{} // one token per open connection
	opts Options

	mu     sync.Mutex
	idle   []idleConn // most recently used last
	pids   map[uint32]bool
	closed bool
}

type idleConn struct {
	c     *pgx.Conn
	since time.Time
}

// checkAfter is how long a connection may sit idle before it is pinged
// before use.
const checkAfter = 30 * time.Second

// peekAfter is how long a connection may sit idle before it is checked,
// without sending anything, for what the server said meanwhile: after a
// restart, a FATAL message and the end of the stream wait there.
const peekAfter = time.Second

var errPoolClosed = errors.New("connection pool closed")

func newPool(cfg *pgx.ConnConfig, max int, opts Options) *pool {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = opts.ConnectTimeout
	}
	return &pool{cfg: cfg, sem: make(chan struct{}, max), opts: opts, pids: map[uint32]bool{}}
}

// errAcquireTimeout: every connection stayed busy for the acquire timeout.
var errAcquireTimeout = errors.New("timed out waiting for a free database connection")

// acquire returns an idle connection, or a new one if fewer than max are
// open, or waits for one to be released (at most the acquire timeout).
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	wait := time.NewTimer(p.opts.AcquireTimeout)
	defer wait.Stop()
	select {
	case p.sem <- struct{}{}:
	case <-wait.C:
		return nil, errAcquireTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.sem
			return nil, errPoolClosed
		}
		var ic idleConn
		ok := len(p.idle) > 0
		if ok {
			ic = p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
		}
		p.mu.Unlock()
		if !ok {
			break
		}
		if !p.usable(ctx, ic) {
			p.closeConn(ic.c)
			continue
		}
		return ic.c, nil
	}
	c, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		<-p.sem
		return nil, err
	}
	p.mu.Lock()
	p.pids[c.PgConn().PID()] = true
	p.mu.Unlock()
	return c, nil
}

// usable reports whether an idle connection can take a statement: a
// connection idle for a while is checked first, so that a statement is
// never sent on a connection the server has already closed.
func (p *pool) usable(ctx context.Context, ic idleConn) bool {
	idle := time.Since(ic.since)
	switch {
	case ic.c.IsClosed():
		return false
	case idle > checkAfter:
		pctx, cancel := context.WithTimeout(ctx, p.opts.StatementTimeout)
		defer cancel()
		return ic.c.Ping(pctx) == nil
	case idle > peekAfter:
		return ic.c.PgConn().CheckConn() == nil && !ic.c.IsClosed()
	}
	return true
}

// release gives c back. A connection that is broken or still in a
// transaction is closed instead.
func (p *pool) release(c *pgx.Conn) {
	defer func() { <-p.sem }()
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		p.closeConn(c)
		return
	}
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, idleConn{c, time.Now()})
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		p.closeConn(c)
	}
}

func (p *pool) closeConn(c *pgx.Conn) {
	p.mu.Lock()
	delete(p.pids, c.PgConn().PID())
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// owns reports whether pid is the backend of one of the pool's connections.
func (p *pool) owns(pid uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pids[pid]
}

// close closes the idle connections; the ones in use are closed when they
// are released.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, ic := range idle {
		p.closeConn(ic.c)
	}
}
