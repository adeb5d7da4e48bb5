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

// CreateToken makes an API token and returns its secret form, the only time
// it exists: the store keeps a SHA-256 of the secret part.
func CreateToken(ctx context.Context, st store.Store, name string, workspaces []string, actor string, now time.Time) (string, *store.Token, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil, fmt.Errorf("%w: a token needs a name", ErrBadRequest)
	}
	for _, w := range workspaces {
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
	t := &store.Token{ID: id, Name: name, Hash: sum[:], Workspaces: workspaces, CreatedAt: now}
	err := st.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateToken(ctx, t); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"name": name, "workspaces": workspaces})
		return tx.AppendAudit(ctx, &audit.Event{Time: now, Type: audit.TokenCreated, Actor: actor, Subject: "token:" + id, Data: data})
	})
	if err != nil {
		return "", nil, fmt.Errorf("creating token %q: %w", name, err)
	}
	return tokenPrefix + id + "_" + enc, t, nil
}

// RevokeToken makes a token unusable from now on.
func RevokeToken(ctx context.Context, st store.Store, id, actor string, now time.Time) error {
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
	return &Caller{TokenID: t.ID, Name: t.Name, Workspaces: t.Workspaces}, nil
}
