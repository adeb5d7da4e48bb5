package sqlstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// pruneCeremonies is how many expired ceremonies CreateCeremony deletes at
// most: each creation adds one row, so deleting up to this many keeps the
// table from growing while no call does much work.
const pruneCeremonies = 100

const ceremonyColumns = `hash, purpose, bind, subject, data, created_at, expires_at, used_at`

func scanCeremony(r Rows) (*store.Ceremony, error) {
	var c store.Ceremony
	err := r.Scan(bytesDest{&c.Hash}, &c.Purpose, bytesDest{&c.Bind}, &c.Subject, bytesDest{&c.Data},
		timeDest{&c.CreatedAt}, timeDest{&c.ExpiresAt}, timeDest{&c.UsedAt})
	return &c, err
}

// CreateCeremony stores c (see store.CeremonyTx). It runs two statements,
// each atomic on its own: one deletes records that expired before
// c.CreatedAt (skipping, on PostgreSQL, those a concurrent call is
// deleting), the other inserts c.
func (x *Tx) CreateCeremony(ctx context.Context, c *store.Ceremony) error {
	switch {
	case len(c.Hash) != sha256.Size:
		return fmt.Errorf("creating ceremony: the hash has %d bytes, want %d (SHA-256)", len(c.Hash), sha256.Size)
	case NormalTime(c.CreatedAt).IsZero() || NormalTime(c.ExpiresAt).IsZero():
		return errors.New("creating ceremony: created_at and expires_at must be set")
	}
	t := x.d.timeArg
	_, err := x.q.Exec(ctx, `DELETE FROM ceremonies WHERE hash IN (
		SELECT hash FROM ceremonies WHERE expires_at < $1 ORDER BY expires_at LIMIT $2`+x.d.SkipLocked+`)`,
		t(c.CreatedAt), pruneCeremonies)
	if err != nil {
		return fmt.Errorf("deleting expired ceremonies: %w", err)
	}
	_, err = x.q.Exec(ctx, `INSERT INTO ceremonies (`+ceremonyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		c.Hash, c.Purpose, bytesArg(c.Bind), c.Subject, bytesArg(c.Data), t(c.CreatedAt), t(c.ExpiresAt), t(c.UsedAt))
	if err != nil {
		return fmt.Errorf("creating ceremony %s: %w", hashName(c.Hash), x.insertErr(err))
	}
	return nil
}

// GetCeremony reads a ceremony without using it.
func (x *Tx) GetCeremony(ctx context.Context, hash []byte) (*store.Ceremony, error) {
	var c *store.Ceremony
	err := x.queryFound(ctx, func(r Rows) (err error) {
		c, err = scanCeremony(r)
		return err
	}, `SELECT `+ceremonyColumns+` FROM ceremonies WHERE hash = $1`, hash)
	if err != nil {
		return nil, fmt.Errorf("getting ceremony %s: %w", hashName(hash), err)
	}
	return c, nil
}

// UseCeremony marks a ceremony used (see store.CeremonyTx) with one UPDATE
// ... RETURNING, which only a record not used and not expired matches:
// concurrent updates of one row wait for each other, and the ones that
// come second no longer match. When it matches nothing, the record is
// read to say why.
func (x *Tx) UseCeremony(ctx context.Context, hash []byte, now time.Time) (*store.Ceremony, error) {
	if NormalTime(now).IsZero() {
		return nil, errors.New("using ceremony: now must be set")
	}
	var c *store.Ceremony
	err := x.queryOne(ctx, func(r Rows) (err error) {
		c, err = scanCeremony(r)
		return err
	}, `UPDATE ceremonies SET used_at = $2 WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING `+ceremonyColumns, hash, x.d.timeArg(now))
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("using ceremony %s: %w", hashName(hash), err)
	}
	c, err = x.GetCeremony(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("using ceremony: %w", err)
	}
	if !c.UsedAt.IsZero() {
		return c, fmt.Errorf("using ceremony %s: %w at %s", hashName(hash), store.ErrUsed, c.UsedAt.Format(time.RFC3339Nano))
	}
	return c, fmt.Errorf("using ceremony %s: %w at %s", hashName(hash), store.ErrExpired, c.ExpiresAt.Format(time.RFC3339Nano))
}

// UseEnrollment marks an enrollment link used (see store.CeremonyTx), as
// UseCeremony marks a ceremony.
func (x *Tx) UseEnrollment(ctx context.Context, hash []byte, now time.Time) (*store.Enrollment, error) {
	if NormalTime(now).IsZero() {
		return nil, errors.New("using enrollment: now must be set")
	}
	var e store.Enrollment
	scan := func(r Rows) error {
		return r.Scan(bytesDest{&e.Hash}, &e.UserID, timeDest{&e.CreatedAt}, timeDest{&e.ExpiresAt}, timeDest{&e.UsedAt})
	}
	err := x.queryOne(ctx, scan, `UPDATE enrollments SET used_at = $2
		WHERE hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING `+enrollmentColumns, hash, x.d.timeArg(now))
	if err == nil {
		return &e, nil
	}
	if !errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("using enrollment %s: %w", hashName(hash), err)
	}
	got, err := x.GetEnrollment(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("using enrollment: %w", err)
	}
	if !got.UsedAt.IsZero() {
		return got, fmt.Errorf("using enrollment %s: %w at %s", hashName(hash), store.ErrUsed, got.UsedAt.Format(time.RFC3339Nano))
	}
	return got, fmt.Errorf("using enrollment %s: %w at %s", hashName(hash), store.ErrExpired, got.ExpiresAt.Format(time.RFC3339Nano))
}
