package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stepgate/stepgate/internal/store"
)

// unavailable wraps err with store.ErrUnavailable when it says the
// database cannot be reached or cannot work now (as opposed to a
// statement that was wrong): a timeout, a broken or refused connection,
// a server shutting down or out of resources. Other errors, and nil, are
// returned as they are.
func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 53: insufficient resources (disk
		// full, out of memory, too many connections); 57P: operator
		// intervention (shutdown, cannot connect now); 58: system error.
		for _, class := range []string{"08", "53", "57P", "58"} {
			if strings.HasPrefix(pgErr.Code, class) {
				return true
			}
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) ||
		errors.Is(err, errAcquireTimeout) || errors.Is(err, errPoolClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err)
}
