package postgres

import (
	"context"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnection delays of the listener, doubling from the first to the last.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// connectListener opens the listener's own connection and LISTENs on the
// schema's channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.cfg.Copy()
	// TCP keepalives make the kernel notice within about 30s that the
	// connection is gone when the network drops it silently: the listener
	// only reads, so nothing else would.
	d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}}
	cfg.DialFunc = d.DialContext
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		closeQuietly(c)
		return nil, err
	}
	s.listenerPID.Store(c.PgConn().PID())
	return c, nil
}

// listen hands the notifications c receives to the hub until ctx ends. When
// the connection drops, it connects again, waiting longer after each
// failure (up to maxBackoff). Notifications sent while it is disconnected
// are lost.
func (s *Store) listen(ctx context.Context, c *pgx.Conn) {
	defer close(s.listenerDone)
	backoff := minBackoff
	for {
		if c != nil {
			s.receive(ctx, c)
			s.listenerPID.Store(0)
			closeQuietly(c)
			c = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		var err error
		if c, err = s.connectListener(ctx); err != nil {
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
	}
}

// receive publishes what c receives until it fails or ctx ends. It skips
// what this store's own connections sent: NotifyCheck has published those
// already.
func (s *Store) receive(ctx context.Context, c *pgx.Conn) {
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return
		}
		if !s.pool.owns(n.PID) {
			s.hub.Publish(n.Payload)
		}
	}
}

func closeQuietly(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}
