package store

import (
	"context"
	"time"
)

// NonceTx keeps the nonces of ID tokens that were used, so that every
// server sharing the database accepts an ID token once.
type NonceTx interface {
	// UseNonce records hash (the SHA-256 of a nonce, 32 bytes: the nonce
	// itself is never stored) as used until `until`, when it may be
	// forgotten, and reports whether this call recorded it: of callers
	// using the same hash at once, exactly one gets true. It is false
	// while an earlier record of hash holds, that is until that record's
	// until is before now; a record past it counts as absent. Records past
	// their until are deleted on the way (a bounded number per call).
	UseNonce(ctx context.Context, hash []byte, until, now time.Time) (bool, error)
}
