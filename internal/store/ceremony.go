package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of UseCeremony, checked with errors.Is.
var (
	// ErrUsed: the record was used already (a replay).
	ErrUsed = errors.New("store: already used")
	// ErrExpired: the record is past its expiry.
	ErrExpired = errors.New("store: expired")
)

// Ceremony is the server side of a ceremony in progress on the web: the two
// requests of a WebAuthn ceremony (registration, sign-in, approval), a TOTP
// set-up, a sign-in or step-up at the OpenID Connect provider. The browser
// holds only a random id in a cookie; the record is found by the SHA-256 of
// that id and used once.
type Ceremony struct {
	Hash    []byte // SHA-256 of the id in the cookie (32 bytes)
	Purpose string // what it was begun for: login, register, approve, totp, oidc
	// Bind is what began it: the SHA-256 of the session cookie or of the
	// enrollment link; empty for a sign-in.
	Bind []byte
	// Subject is the check being approved, or the user registering.
	Subject string
	// Data is the ceremony's state (the WebAuthn session data, the pending
	// TOTP seed...), sealed under the master key by the web side.
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until used
}

// CeremonyTx keeps ceremonies in progress, so that every server sharing the
// database sees each of them used at most once.
type CeremonyTx interface {
	// CreateCeremony stores c; ErrConflict if its hash is taken. It also
	// deletes a bounded number of records that expired before c.CreatedAt,
	// so that the table does not grow.
	CreateCeremony(ctx context.Context, c *Ceremony) error
	// GetCeremony reads a ceremony without using it (ErrNotFound if none),
	// whatever its expiry and use.
	GetCeremony(ctx context.Context, hash []byte) (*Ceremony, error)
	// UseCeremony marks the ceremony used at now and returns it, in one
	// atomic statement: of callers using the same ceremony at once, exactly
	// one gets it. The others, and every later caller, get ErrUsed (with the
	// record, so that the refusal can name it); a ceremony whose ExpiresAt
	// is not after now gives ErrExpired (with the record); an unknown hash
	// ErrNotFound (and a nil record).
	UseCeremony(ctx context.Context, hash []byte, now time.Time) (*Ceremony, error)
	// UseEnrollment marks the enrollment link with hash used at now and
	// returns it, in one atomic statement, as UseCeremony does: ErrUsed if
	// it was used, ErrExpired if its ExpiresAt is not after now (both with
	// the record), ErrNotFound if there is none. A link is used once.
	UseEnrollment(ctx context.Context, hash []byte, now time.Time) (*Enrollment, error)
}
