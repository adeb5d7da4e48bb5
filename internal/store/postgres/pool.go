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
	cfg *pgx.ConnConfig
	sem chan struct{} // one token per open connection

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

var errPoolClosed = errors.New("connection pool closed")

func newPool(cfg *pgx.ConnConfig, max int) *pool {
	return &pool{cfg: cfg, sem: make(chan struct{}, max), pids: map[uint32]bool{}}
}

// acquire returns an idle connection, or a new one if fewer than max are
// open, or waits for one to be released.
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.sem <- struct{}{}:
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
		if ic.c.IsClosed() || time.Since(ic.since) > checkAfter && ic.c.Ping(ctx) != nil {
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
