package sqlstore

import (
	"context"
	"fmt"

	"github.com/stepgate/stepgate/internal/store"
)

// refErr maps the error of a statement that writes a user's record: a
// foreign key violation means the user does not exist (store.ErrNotFound);
// n and the rest as updateErr. For an insert, pass n = 1.
func (x *Tx) refErr(n int64, err error, userID string) error {
	if x.d.Classify(err) == ForeignKeyViolation {
		return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	return x.updateErr(n, err)
}

// hashName is how an error names a record keyed by a hash: its first six
// bytes in hex, enough to tell records apart in a log.
func hashName(h []byte) string { return fmt.Sprintf("%.6x", h) }

// Users.

const userColumns = `id, name, email, groups, admin, links, created_at, disabled_at`

func scanUser(r Rows) (*store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.Name, &u.Email, jsonDest{&u.Groups}, &u.Admin, jsonDest{&u.Links},
		timeDest{&u.CreatedAt}, timeDest{&u.DisabledAt})
	return &u, err
}

// userArgs are u's columns in userColumns order.
func (x *Tx) userArgs(u *store.User) ([]any, error) {
	groups, err := jsonArg(u.Groups)
	if err != nil {
		return nil, fmt.Errorf("encoding groups: %w", err)
	}
	links, err := jsonArg(u.Links)
	if err != nil {
		return nil, fmt.Errorf("encoding links: %w", err)
	}
	return []any{u.ID, u.Name, u.Email, groups, u.Admin, links,
		x.d.timeArg(u.CreatedAt), x.d.timeArg(u.DisabledAt)}, nil
}

// insertLinks indexes u's links in user_links, each distinct link once;
// store.ErrConflict if another user has one of them.
func (x *Tx) insertLinks(ctx context.Context, u *store.User) error {
	seen := make(map[string]bool, len(u.Links))
	for _, link := range u.Links {
		if seen[link] {
			continue
		}
		seen[link] = true
		if _, err := x.q.Exec(ctx, `INSERT INTO user_links (link, user_id) VALUES ($1, $2)`, link, u.ID); err != nil {
			return fmt.Errorf("link %q: %w", link, x.insertErr(err))
		}
	}
	return nil
}

// CreateUser stores u; store.ErrConflict if its ID, its name or one of its
// links is taken. A link listed twice is stored as listed and indexed once.
//
// It runs several statements: each backend's Store runs it in a
// transaction of its own, so that a failure leaves nothing behind.
func (x *Tx) CreateUser(ctx context.Context, u *store.User) error {
	args, err := x.userArgs(u)
	if err == nil {
		_, err = x.q.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, args...)
		if err != nil {
			err = x.insertErr(err)
		}
	}
	if err == nil {
		err = x.insertLinks(ctx, u)
	}
	if err != nil {
		return fmt.Errorf("creating user %q: %w", u.ID, err)
	}
	return nil
}

func (x *Tx) getUser(ctx context.Context, what, where string, arg any) (*store.User, error) {
	var u *store.User
	err := x.queryFound(ctx, func(r Rows) (err error) {
		u, err = scanUser(r)
		return err
	}, `SELECT `+userColumns+` FROM users WHERE `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return u, nil
}

func (x *Tx) GetUser(ctx context.Context, id string) (*store.User, error) {
	return x.getUser(ctx, fmt.Sprintf("getting user %q", id), `id = $1`, id)
}

func (x *Tx) GetUserByName(ctx context.Context, name string) (*store.User, error) {
	return x.getUser(ctx, fmt.Sprintf("getting user named %q", name), `name = $1`, name)
}

// FindUserByLink returns the user one of whose links is link.
func (x *Tx) FindUserByLink(ctx context.Context, link string) (*store.User, error) {
	return x.getUser(ctx, fmt.Sprintf("finding user with link %q", link),
		`id = (SELECT user_id FROM user_links WHERE link = $1)`, link)
}

// ListUsers returns every user, oldest first.
func (x *Tx) ListUsers(ctx context.Context) ([]*store.User, error) {
	var out []*store.User
	err := x.queryAll(ctx, appendTo(&out, scanUser), `SELECT `+userColumns+` FROM users ORDER BY created_at NULLS FIRST, id`)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// UpdateUser replaces every column of the user with u's ID, and its links;
// store.ErrConflict if u's name or one of its links is another user's.
//
// It runs several statements: each backend's Store runs it in a
// transaction of its own, so that a failure changes nothing.
func (x *Tx) UpdateUser(ctx context.Context, u *store.User) error {
	args, err := x.userArgs(u)
	if err == nil {
		var n int64
		n, err = x.q.Exec(ctx, `UPDATE users SET name = $2, email = $3, groups = $4, admin = $5, links = $6,
			created_at = $7, disabled_at = $8 WHERE id = $1`, args...)
		err = x.updateErr(n, err)
	}
	if err == nil {
		_, err = x.q.Exec(ctx, `DELETE FROM user_links WHERE user_id = $1`, u.ID)
	}
	if err == nil {
		err = x.insertLinks(ctx, u)
	}
	if err != nil {
		return fmt.Errorf("updating user %q: %w", u.ID, err)
	}
	return nil
}

// Credentials.

const credentialColumns = `id, user_id, kind, name, data, sealed_secret, sign_count, last_step, failures,
	locked_until, created_at, last_used_at`

func scanCredential(r Rows) (*store.Credential, error) {
	var c store.Credential
	var kind string
	err := r.Scan(&c.ID, &c.UserID, &kind, &c.Name, rawDest{&c.Data}, bytesDest{&c.SealedSecret},
		uint32Dest{&c.SignCount}, &c.LastStep, &c.Failures,
		timeDest{&c.LockedUntil}, timeDest{&c.CreatedAt}, timeDest{&c.LastUsedAt})
	c.Kind = store.CredentialKind(kind)
	return &c, err
}

// credentialArgs are c's columns in credentialColumns order.
func (x *Tx) credentialArgs(c *store.Credential) []any {
	t := x.d.timeArg
	return []any{c.ID, c.UserID, string(c.Kind), c.Name, rawArg(c.Data), bytesArg(c.SealedSecret),
		int64(c.SignCount), c.LastStep, c.Failures,
		t(c.LockedUntil), t(c.CreatedAt), t(c.LastUsedAt)}
}

// AddCredential stores c; store.ErrConflict if its ID is taken,
// store.ErrNotFound if its user does not exist.
func (x *Tx) AddCredential(ctx context.Context, c *store.Credential) error {
	_, err := x.q.Exec(ctx, `INSERT INTO credentials (`+credentialColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, x.credentialArgs(c)...)
	if err := x.refErr(1, err, c.UserID); err != nil {
		return fmt.Errorf("adding credential %q: %w", c.ID, err)
	}
	return nil
}

func (x *Tx) getCredential(ctx context.Context, id, suffix string) (*store.Credential, error) {
	var c *store.Credential
	err := x.queryFound(ctx, func(r Rows) (err error) {
		c, err = scanCredential(r)
		return err
	}, `SELECT `+credentialColumns+` FROM credentials WHERE id = $1`+suffix, id)
	if err != nil {
		return nil, fmt.Errorf("getting credential %q: %w", id, err)
	}
	return c, nil
}

func (x *Tx) GetCredential(ctx context.Context, id string) (*store.Credential, error) {
	return x.getCredential(ctx, id, "")
}

// GetCredentialForUpdate reads a credential and locks it until the
// transaction ends. Outside a transaction the lock ends with the statement.
func (x *Tx) GetCredentialForUpdate(ctx context.Context, id string) (*store.Credential, error) {
	return x.getCredential(ctx, id, x.d.ForUpdate)
}

// ListCredentials returns the credentials of a user, oldest first.
func (x *Tx) ListCredentials(ctx context.Context, userID string) ([]*store.Credential, error) {
	var out []*store.Credential
	err := x.queryAll(ctx, appendTo(&out, scanCredential), `SELECT `+credentialColumns+` FROM credentials WHERE user_id = $1
		ORDER BY created_at NULLS FIRST, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing credentials of user %q: %w", userID, err)
	}
	return out, nil
}

// UpdateCredential replaces every column of the credential with c's ID;
// store.ErrNotFound if there is none, or if c's user does not exist.
func (x *Tx) UpdateCredential(ctx context.Context, c *store.Credential) error {
	n, err := x.q.Exec(ctx, `UPDATE credentials SET user_id = $2, kind = $3, name = $4, data = $5,
		sealed_secret = $6, sign_count = $7, last_step = $8, failures = $9,
		locked_until = $10, created_at = $11, last_used_at = $12
		WHERE id = $1`, x.credentialArgs(c)...)
	if err := x.refErr(n, err, c.UserID); err != nil {
		return fmt.Errorf("updating credential %q: %w", c.ID, err)
	}
	return nil
}

// DeleteCredential deletes a credential; store.ErrNotFound if there is none.
func (x *Tx) DeleteCredential(ctx context.Context, id string) error {
	n, err := x.q.Exec(ctx, `DELETE FROM credentials WHERE id = $1`, id)
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("deleting credential %q: %w", id, err)
	}
	return nil
}

// Enrollments.

const enrollmentColumns = `hash, user_id, created_at, expires_at, used_at`

func (x *Tx) enrollmentArgs(e *store.Enrollment) []any {
	t := x.d.timeArg
	return []any{bytesArg(e.Hash), e.UserID, t(e.CreatedAt), t(e.ExpiresAt), t(e.UsedAt)}
}

// CreateEnrollment stores e; store.ErrConflict if its hash is taken,
// store.ErrNotFound if its user does not exist. An empty hash is an error.
func (x *Tx) CreateEnrollment(ctx context.Context, e *store.Enrollment) error {
	_, err := x.q.Exec(ctx, `INSERT INTO enrollments (`+enrollmentColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		x.enrollmentArgs(e)...)
	if err := x.refErr(1, err, e.UserID); err != nil {
		return fmt.Errorf("creating enrollment %s: %w", hashName(e.Hash), err)
	}
	return nil
}

func (x *Tx) GetEnrollment(ctx context.Context, hash []byte) (*store.Enrollment, error) {
	var e store.Enrollment
	err := x.queryFound(ctx, func(r Rows) error {
		return r.Scan(bytesDest{&e.Hash}, &e.UserID, timeDest{&e.CreatedAt}, timeDest{&e.ExpiresAt}, timeDest{&e.UsedAt})
	}, `SELECT `+enrollmentColumns+` FROM enrollments WHERE hash = $1`, hash)
	if err != nil {
		return nil, fmt.Errorf("getting enrollment %s: %w", hashName(hash), err)
	}
	return &e, nil
}

// UpdateEnrollment replaces every column of the enrollment with e's hash;
// store.ErrNotFound if there is none, or if e's user does not exist.
func (x *Tx) UpdateEnrollment(ctx context.Context, e *store.Enrollment) error {
	n, err := x.q.Exec(ctx, `UPDATE enrollments SET user_id = $2, created_at = $3, expires_at = $4, used_at = $5
		WHERE hash = $1`, x.enrollmentArgs(e)...)
	if err := x.refErr(n, err, e.UserID); err != nil {
		return fmt.Errorf("updating enrollment %s: %w", hashName(e.Hash), err)
	}
	return nil
}

// Sessions.

const sessionColumns = `hash, user_id, created_at, last_seen_at, aal, amr, auth_time`

func (x *Tx) sessionArgs(s *store.Session) ([]any, error) {
	amr, err := jsonArg(s.AMR)
	if err != nil {
		return nil, fmt.Errorf("encoding amr: %w", err)
	}
	t := x.d.timeArg
	return []any{bytesArg(s.Hash), s.UserID, t(s.CreatedAt), t(s.LastSeenAt), s.AAL, amr, t(s.AuthTime)}, nil
}

// CreateSession stores s; store.ErrConflict if its hash is taken,
// store.ErrNotFound if its user does not exist. An empty hash is an error.
func (x *Tx) CreateSession(ctx context.Context, s *store.Session) error {
	args, err := x.sessionArgs(s)
	if err == nil {
		_, err = x.q.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`, args...)
		err = x.refErr(1, err, s.UserID)
	}
	if err != nil {
		return fmt.Errorf("creating session %s: %w", hashName(s.Hash), err)
	}
	return nil
}

func (x *Tx) GetSession(ctx context.Context, hash []byte) (*store.Session, error) {
	var s store.Session
	err := x.queryFound(ctx, func(r Rows) error {
		return r.Scan(bytesDest{&s.Hash}, &s.UserID, timeDest{&s.CreatedAt}, timeDest{&s.LastSeenAt},
			&s.AAL, jsonDest{&s.AMR}, timeDest{&s.AuthTime})
	}, `SELECT `+sessionColumns+` FROM sessions WHERE hash = $1`, hash)
	if err != nil {
		return nil, fmt.Errorf("getting session %s: %w", hashName(hash), err)
	}
	return &s, nil
}

// UpdateSession replaces every column of the session with s's hash;
// store.ErrNotFound if there is none, or if s's user does not exist.
func (x *Tx) UpdateSession(ctx context.Context, s *store.Session) error {
	args, err := x.sessionArgs(s)
	if err == nil {
		var n int64
		n, err = x.q.Exec(ctx, `UPDATE sessions SET user_id = $2, created_at = $3, last_seen_at = $4,
			aal = $5, amr = $6, auth_time = $7 WHERE hash = $1`, args...)
		err = x.refErr(n, err, s.UserID)
	}
	if err != nil {
		return fmt.Errorf("updating session %s: %w", hashName(s.Hash), err)
	}
	return nil
}

// DeleteSession deletes a session; store.ErrNotFound if there is none.
func (x *Tx) DeleteSession(ctx context.Context, hash []byte) error {
	n, err := x.q.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash)
	if err := x.updateErr(n, err); err != nil {
		return fmt.Errorf("deleting session %s: %w", hashName(hash), err)
	}
	return nil
}

// DeleteUserSessions deletes every session of a user, if any.
func (x *Tx) DeleteUserSessions(ctx context.Context, userID string) error {
	if _, err := x.q.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("deleting sessions of user %q: %w", userID, err)
	}
	return nil
}
