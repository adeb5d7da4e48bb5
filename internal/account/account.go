package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/store"
)

// Errors callers check with errors.Is.
var (
	ErrInvalid  = errors.New("invalid account input")
	ErrNotFound = errors.New("no such user")
	ErrTaken    = errors.New("already taken")
)

// EnrollmentTTL is how long an enrollment link works.
const EnrollmentTTL = 24 * time.Hour

// Audit event types of accounts (package audit's).
const (
	EventUserCreated       = audit.UserCreated
	EventUserDisabled      = audit.UserDisabled
	EventUserEnabled       = audit.UserEnabled
	EventUserGroups        = audit.UserGroups
	EventUserLinked        = audit.UserLinked
	EventEnrollmentCreated = audit.EnrollmentCreated
)

var (
	namePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	groupPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	linkPattern  = regexp.MustCompile(`^(github|gitlab|hcp|oidc):[^\s:]{1,200}$`)
)

// Manager changes accounts.
type Manager struct {
	st  store.Store
	now func() time.Time
}

// New returns a Manager over a store.
func New(st store.Store, now func() time.Time) *Manager { return &Manager{st: st, now: now} }

func newID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return "usr_" + hex.EncodeToString(b)
}

func event(now time.Time, typ, actor, subject string, data any) *audit.Event {
	b, _ := json.Marshal(data)
	return &audit.Event{Time: now, Type: typ, Actor: actor, Subject: subject, Data: b}
}

func checkGroups(groups []string) error {
	for _, g := range groups {
		if !groupPattern.MatchString(g) {
			return fmt.Errorf("%w: group %q: lower-case letters, digits, . _ -", ErrInvalid, g)
		}
	}
	return nil
}

// Create adds a user and returns the secret of their enrollment link.
func (m *Manager) Create(ctx context.Context, name, email string, groups []string, admin bool, actor string) (*store.User, string, error) {
	name = ident.Key(name) // "Bob" and "ｂｏｂ" are bob
	if !namePattern.MatchString(name) {
		return nil, "", fmt.Errorf("%w: name %q: 1-63 lower-case letters, digits, . _ -", ErrInvalid, name)
	}
	if err := checkGroups(groups); err != nil {
		return nil, "", err
	}
	if email != "" && (!strings.Contains(email, "@") || len(email) > 254) {
		return nil, "", fmt.Errorf("%w: email %q", ErrInvalid, email)
	}
	now := m.now().UTC()
	u := &store.User{ID: newID(), Name: name, Email: email, Groups: dedupe(groups), Admin: admin, CreatedAt: now}
	var secret string
	err := m.st.InTx(ctx, func(tx store.Tx) error {
		if _, err := tx.GetUserByName(ctx, name); err == nil {
			return fmt.Errorf("%w: a user named %q exists", ErrTaken, name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A pipeline token with this name would pass for the new person.
		tokens, err := tx.ListTokens(ctx)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			if ident.Same(t.Name, name) && t.OwnerID == "" {
				return fmt.Errorf("%w: %q is the name of the pipeline token %s; choose another name for the person", ErrTaken, name, t.ID)
			}
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, event(now, EventUserCreated, actor, "user:"+u.Name, map[string]any{"id": u.ID, "groups": u.Groups, "admin": admin})); err != nil {
			return err
		}
		secret, err = m.enroll(ctx, tx, u, actor, now)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("creating user %q: %w", name, err)
	}
	return u, secret, nil
}

// Enroll makes a new enrollment link for an existing user (to add a
// factor after losing one, for instance).
func (m *Manager) Enroll(ctx context.Context, name, actor string) (string, error) {
	now := m.now().UTC()
	var secret string
	err := m.st.InTx(ctx, func(tx store.Tx) error {
		u, err := m.get(ctx, tx, name)
		if err != nil {
			return err
		}
		if !u.DisabledAt.IsZero() {
			return fmt.Errorf("%w: user %q is disabled", ErrInvalid, name)
		}
		secret, err = m.enroll(ctx, tx, u, actor, now)
		return err
	})
	return secret, err
}

func (m *Manager) enroll(ctx context.Context, tx store.Tx, u *store.User, actor string, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	e := &store.Enrollment{Hash: EnrollmentHash(secret), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(EnrollmentTTL)}
	if err := tx.CreateEnrollment(ctx, e); err != nil {
		return "", err
	}
	return secret, tx.AppendAudit(ctx, event(now, EventEnrollmentCreated, actor, "user:"+u.Name, map[string]any{"expires_at": e.ExpiresAt}))
}

// EnrollmentHash is how an enrollment secret is looked up.
func EnrollmentHash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func (m *Manager) get(ctx context.Context, tx store.Tx, name string) (*store.User, error) {
	u, err := tx.GetUserByName(ctx, ident.Key(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return u, err
}

// SetDisabled disables a user (and signs them out everywhere) or enables
// them again.
func (m *Manager) SetDisabled(ctx context.Context, name string, disabled bool, actor string) error {
	now := m.now().UTC()
	return m.st.InTx(ctx, func(tx store.Tx) error {
		u, err := m.get(ctx, tx, name)
		if err != nil {
			return err
		}
		typ := EventUserEnabled
		if disabled {
			typ = EventUserDisabled
			u.DisabledAt = now
			if err := tx.DeleteUserSessions(ctx, u.ID); err != nil {
				return err
			}
		} else {
			u.DisabledAt = time.Time{}
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, event(now, typ, actor, "user:"+u.Name, nil))
	})
}

// SetGroups replaces a user's groups and admin flag.
func (m *Manager) SetGroups(ctx context.Context, name string, groups []string, admin bool, actor string) (*store.User, error) {
	if err := checkGroups(groups); err != nil {
		return nil, err
	}
	now := m.now().UTC()
	var u *store.User
	err := m.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if u, err = m.get(ctx, tx, name); err != nil {
			return err
		}
		u.Groups, u.Admin = dedupe(groups), admin
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, event(now, EventUserGroups, actor, "user:"+u.Name, map[string]any{"groups": u.Groups, "admin": admin}))
	})
	return u, err
}

// Link ties a pipeline identity (github:alice, gitlab:alice) to a user: a
// check run by that identity has the user as its requester, who then cannot
// approve it. remove unlinks instead.
func (m *Manager) Link(ctx context.Context, name, link string, remove bool, actor string) (*store.User, error) {
	link = strings.TrimSpace(link)
	if !linkPattern.MatchString(link) {
		return nil, fmt.Errorf("%w: identity %q: want github:LOGIN, gitlab:LOGIN, hcp:USERNAME or oidc:SUBJECT", ErrInvalid, link)
	}
	// GitHub and GitLab logins ignore case: github:Bob is github:bob.
	canonical, err := ident.Link(link)
	if err != nil {
		return nil, fmt.Errorf("%w: identity %q: %w", ErrInvalid, link, err)
	}
	link = canonical
	now := m.now().UTC()
	var u *store.User
	err = m.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if u, err = m.get(ctx, tx, name); err != nil {
			return err
		}
		if remove {
			u.Links = slices.DeleteFunc(u.Links, func(l string) bool { return l == link })
		} else if !slices.Contains(u.Links, link) {
			if other, err := tx.FindUserByLink(ctx, link); err == nil && other.ID != u.ID {
				return fmt.Errorf("%w: %s is linked to %s", ErrTaken, link, other.Name)
			}
			u.Links = append(u.Links, link)
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("%w: %s is linked to another user", ErrTaken, link)
			}
			return err
		}
		return tx.AppendAudit(ctx, event(now, EventUserLinked, actor, "user:"+u.Name, map[string]any{"link": link, "removed": remove}))
	})
	return u, err
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
