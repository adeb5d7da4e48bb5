package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/store"
)

// tokenPrefix starts every API token, so that secret scanners can find one
// pasted where it should not be.
const tokenPrefix = "sgt_"

// Caller is the authenticated pipeline of a request.
type Caller struct {
	TokenID    string
	Name       string
	Workspaces []string
	// Owner is the name of the person an API token acts for, if any: the
	// requester of its checks.
	Owner string
	// owner is Owner's account as Authenticate read it (nil when the
	// caller was not authenticated by an owned token): the requester of a
	// new check is not read again.
	owner *store.User
	// Subject is the sub of a verified CI token (empty for API tokens).
	Subject string
	// Claims are the verified claims of a CI token.
	Claims map[string]string
	// Pipeline, when set, is the pipeline identity from verified claims:
	// it replaces whatever the request says.
	Pipeline map[string]string
}

// MayUse reports whether the caller may ask for a workspace.
func (c *Caller) MayUse(workspace string) bool {
	if len(c.Workspaces) == 0 {
		return true
	}
	for _, p := range c.Workspaces {
		if ok, _ := path.Match(p, workspace); ok {
			return true
		}
	}
	return false
}

// TokenSpec is what an API token is made of.
type TokenSpec struct {
	// Name names the pipeline (or the person's use) the token is for; it is
	// kept in its canonical form (package ident).
	Name string
	// Workspaces are the glob patterns the token may ask for; none: any.
	Workspaces []string
	// Owner, when set, is the name of the person the token acts for: the
	// requester of its checks, who can never approve them. A token without
	// an owner is a pipeline's own identity.
	Owner string
}

// txRunner runs a function in a transaction: all CreateToken and
// RevokeToken need of the store.
type txRunner interface {
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
}

// CreateToken makes an API token and returns its secret form, the only time
// it exists: the store keeps a SHA-256 of the secret part. A name that is
// a person's is refused unless that person owns the token: it would pass
// for them.
func CreateToken(ctx context.Context, st txRunner, spec TokenSpec, actor string, now time.Time) (string, *store.Token, error) {
	name, err := ident.Name(spec.Name)
	if err != nil {
		return "", nil, fmt.Errorf("%w: token name: %w", ErrBadRequest, err)
	}
	for _, w := range spec.Workspaces {
		if _, err := path.Match(w, ""); err != nil || w == "" {
			return "", nil, fmt.Errorf("%w: workspace pattern %q is not a valid glob", ErrBadRequest, w)
		}
	}
	idBytes := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(idBytes); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	id := hex.EncodeToString(idBytes)
	enc := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(enc))
	t := &store.Token{ID: id, Name: name, Hash: sum[:], Workspaces: spec.Workspaces, CreatedAt: now}
	err = st.InTx(ctx, func(tx store.Tx) error {
		var owner *store.User
		if spec.Owner != "" {
			o, err := tx.GetUserByName(ctx, ident.Key(spec.Owner))
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: owner %q: no such person", ErrBadRequest, spec.Owner)
			}
			if err != nil {
				return err
			}
			if !o.DisabledAt.IsZero() {
				return fmt.Errorf("%w: owner %q is disabled", ErrBadRequest, o.Name)
			}
			owner, t.OwnerID = o, o.ID
		}
		if err := nameFree(ctx, tx, name, owner); err != nil {
			return err
		}
		if err := tx.CreateToken(ctx, t); err != nil {
			return err
		}
		d := map[string]any{"name": name, "workspaces": spec.Workspaces}
		if owner != nil {
			d["owner"] = owner.Name
		}
		data, _ := json.Marshal(d)
		return tx.AppendAudit(ctx, &audit.Event{Time: now, Type: audit.TokenCreated, Actor: actor, Subject: "token:" + id, Data: data})
	})
	if err != nil {
		return "", nil, fmt.Errorf("creating token %q: %w", name, err)
	}
	return tokenPrefix + id + "_" + enc, t, nil
}

// nameFree refuses a token name that is another identity's in canonical
// form: a person's (unless that person owns the token), or a token's
// spelt otherwise (one from before names were made canonical). The same
// name again, for a new token of the same pipeline, is fine.
func nameFree(ctx context.Context, tx store.Tx, name string, owner *store.User) error {
	users, err := tx.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if ident.Same(u.Name, name) && (owner == nil || owner.ID != u.ID) {
			return fmt.Errorf("%w: token name %q is the name of the person %q; a token acting for them needs --owner %s, a pipeline's token another name",
				ErrConflict, name, u.Name, u.Name)
		}
	}
	tokens, err := tx.ListTokens(ctx)
	if err != nil {
		return err
	}
	for _, o := range tokens {
		if o.Name != name && ident.Same(o.Name, name) {
			return fmt.Errorf("%w: token name %q is token %s's %q written otherwise", ErrConflict, name, o.ID, o.Name)
		}
	}
	return nil
}

// RevokeToken makes a token unusable from now on.
func RevokeToken(ctx context.Context, st txRunner, id, actor string, now time.Time) error {
	return st.InTx(ctx, func(tx store.Tx) error {
		t, err := tx.GetToken(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no token %s", ErrNotFound, id)
		}
		if err != nil {
			return err
		}
		if !t.RevokedAt.IsZero() {
			return nil
		}
		t.RevokedAt = now
		if err := tx.UpdateToken(ctx, t); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &audit.Event{Time: now, Type: audit.TokenRevoked, Actor: actor, Subject: "token:" + id})
	})
}

// Authenticate finds the pipeline behind a bearer token. The comparison of
// the secret is constant-time; every failure is the same ErrUnauthorized.
func (s *Service) Authenticate(ctx context.Context, bearer string) (*Caller, error) {
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: not a stepgate token", ErrUnauthorized)
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" {
		return nil, fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	t, err := s.st.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.Hash) != 1 {
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	if !t.RevokedAt.IsZero() {
		return nil, fmt.Errorf("%w: token %s was revoked", ErrUnauthorized, t.ID)
	}
	c := &Caller{TokenID: t.ID, Name: t.Name, Workspaces: t.Workspaces}
	if t.OwnerID != "" {
		// A token acting for a person works only while that person may.
		u, err := s.st.GetUser(ctx, t.OwnerID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: the owner of token %s is gone", ErrUnauthorized, t.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("looking up the owner of token %s: %w", t.ID, err)
		}
		if !u.DisabledAt.IsZero() {
			return nil, fmt.Errorf("%w: the owner of token %s, %s, is disabled", ErrUnauthorized, t.ID, u.Name)
		}
		c.Owner, c.owner = u.Name, u
	}
	return c, nil
}
