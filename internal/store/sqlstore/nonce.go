package sqlstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// pruneNonces is how many forgotten nonces UseNonce deletes at most: each
// use adds one row, so deleting up to this many per use keeps the table
// from growing while no call does much work.
const pruneNonces = 100

// UseNonce records hash as used until `until`; true if this call recorded
// it (see store.NonceTx). It runs two statements, each atomic on its own:
// one deletes records past their until (skipping, on PostgreSQL, those a
// concurrent call is deleting); the other inserts the record, or replaces
// one past its until, in one INSERT ... ON CONFLICT, whose row count says
// whether it did. Concurrent inserts of one key wait for each other, so
// exactly one of them counts a row.
func (x *Tx) UseNonce(ctx context.Context, hash []byte, until, now time.Time) (bool, error) {
	switch {
	case len(hash) != sha256.Size:
		return false, fmt.Errorf("using nonce: the hash has %d bytes, want %d (SHA-256)", len(hash), sha256.Size)
	case NormalTime(until).IsZero() || NormalTime(now).IsZero():
		return false, errors.New("using nonce: until and now must be set")
	}
	t := x.d.timeArg
	_, err := x.q.Exec(ctx, `DELETE FROM used_nonces WHERE hash IN (
		SELECT hash FROM used_nonces WHERE expires_at < $1 ORDER BY expires_at LIMIT $2`+x.d.SkipLocked+`)`,
		t(now), pruneNonces)
	if err != nil {
		return false, fmt.Errorf("deleting forgotten nonces: %w", err)
	}
	n, err := x.q.Exec(ctx, `INSERT INTO used_nonces (hash, expires_at) VALUES ($1, $2)
		ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE used_nonces.expires_at < $3`,
		hash, t(until), t(now))
	if err != nil {
		return false, fmt.Errorf("using nonce %s: %w", hashName(hash), err)
	}
	return n == 1, nil
}
