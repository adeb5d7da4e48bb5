package store

import (
	"context"
	"encoding/json"
	"time"
)

// User is a person who may approve checks.
type User struct {
	ID     string
	Name   string // unique, what people sign in with
	Email  string
	Groups []string
	Admin  bool
	// Links are identities of the person elsewhere, such as "github:alice":
	// a pipeline run by that identity has this person as its requester.
	Links      []string
	CreatedAt  time.Time
	DisabledAt time.Time // zero while the account is usable
}

// CredentialKind is the kind of a factor.
type CredentialKind string

const (
	KindWebAuthn CredentialKind = "webauthn"
	KindTOTP     CredentialKind = "totp"
)

// Credential is one factor of a user: a passkey or a TOTP seed.
type Credential struct {
	ID     string // WebAuthn: base64url of the credential id; TOTP: a random id
	UserID string
	Kind   CredentialKind
	Name   string // what the person calls it ("YubiKey 5C", "phone")
	// Data is the factor's public part, as its package encodes it (the
	// WebAuthn credential: public key, AAGUID, flags, transports).
	Data json.RawMessage
	// SealedSecret is a secret sealed under the master key (the TOTP seed).
	SealedSecret []byte
	SignCount    uint32
	// LastStep is the last TOTP time step accepted: a code is used once.
	LastStep int64
	// Failures counts wrong codes in a row; LockedUntil backs off after five.
	Failures    int
	LockedUntil time.Time
	CreatedAt   time.Time
	LastUsedAt  time.Time
}

// Enrollment is a one-time link to set up a user's first factor.
type Enrollment struct {
	Hash      []byte // SHA-256 of the secret in the link
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until used
}

// Session is a signed-in person in the web UI.
type Session struct {
	Hash       []byte // SHA-256 of the secret in the cookie
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// The proof the session began with.
	AAL      int
	AMR      []string
	AuthTime time.Time
}

// PeopleTx is what can be done with people inside a transaction.
type PeopleTx interface {
	CreateUser(ctx context.Context, u *User) error // ErrConflict on a taken id or name
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByName(ctx context.Context, name string) (*User, error)
	// FindUserByLink returns the user with this link ("github:alice").
	FindUserByLink(ctx context.Context, link string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	UpdateUser(ctx context.Context, u *User) error // ErrConflict when a link is another user's

	AddCredential(ctx context.Context, c *Credential) error
	GetCredential(ctx context.Context, id string) (*Credential, error)
	// GetCredentialForUpdate locks the credential until the tx ends (sign
	// counts and TOTP steps are read-modify-write).
	GetCredentialForUpdate(ctx context.Context, id string) (*Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]*Credential, error)
	UpdateCredential(ctx context.Context, c *Credential) error
	DeleteCredential(ctx context.Context, id string) error

	CreateEnrollment(ctx context.Context, e *Enrollment) error
	GetEnrollment(ctx context.Context, hash []byte) (*Enrollment, error)
	UpdateEnrollment(ctx context.Context, e *Enrollment) error

	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, hash []byte) (*Session, error)
	UpdateSession(ctx context.Context, s *Session) error
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteUserSessions signs a user out everywhere.
	DeleteUserSessions(ctx context.Context, userID string) error

	// PutCheckChanges keeps the normalized changes of a check's plan (JSON,
	// sensitive values already masked) for the review page.
	PutCheckChanges(ctx context.Context, checkID string, changes json.RawMessage) error
	GetCheckChanges(ctx context.Context, checkID string) (json.RawMessage, error)
	// ListChecks returns checks in a state, newest first (the review list).
	ListChecks(ctx context.Context, state CheckState, limit int) ([]*Check, error)
	// ListChecksPage is ListChecks from the offset-th check on (pages of
	// the review list).
	ListChecksPage(ctx context.Context, state CheckState, offset, limit int) ([]*Check, error)
	// CountPendingChecks counts the pending checks created with a token.
	CountPendingChecks(ctx context.Context, tokenID string) (int, error)
	// PendingStats counts the pending checks, and those whose expiry is
	// before now (for the metrics).
	PendingStats(ctx context.Context, now time.Time) (pending, overdue int, err error)
}
