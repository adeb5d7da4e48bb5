package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// A person's own factors: adding, renaming and removing them. Adding or
// removing one needs a fresh proof (FreshFactorChange): a stolen session
// must not be enough to enroll the thief's factor or remove the owner's.

// FreshFactorChange is how recent the proof of a session must be to add
// or remove a factor: a step-up's default age.
const FreshFactorChange = DefaultStepUpAge

var (
	// ErrNotFresh refuses a change of factors by a session whose proof is
	// older than FreshFactorChange.
	ErrNotFresh = fmt.Errorf("%w: no fresh step-up", ErrForbidden)
	// ErrNoSuchFactor: the factor is not the person's (or does not exist).
	ErrNoSuchFactor = fmt.Errorf("%w: no such factor on the account", ErrNotFound)
	// ErrLastFactor refuses to remove a person's only factor.
	ErrLastFactor = fmt.Errorf("%w: the only factor of the account", ErrConflict)
	// ErrFactorExists refuses a factor registered already.
	ErrFactorExists = fmt.Errorf("%w: the factor is already registered", ErrConflict)
)

// Fresh reports whether a session whose proof was made at authTime may
// add or remove a factor now.
func (p *People) Fresh(authTime time.Time) bool {
	age := p.now().Sub(authTime)
	return age >= -time.Minute && age <= FreshFactorChange
}

// RequireFresh refuses (ErrNotFresh) to let u add or remove a factor
// (action) with a session whose proof, made at authTime, is not fresh,
// and audits the refusal (credential.refused; route names the request).
func (p *People) RequireFresh(ctx context.Context, u *store.User, authTime time.Time, action, route string) error {
	if p.Fresh(authTime) {
		return nil
	}
	err := p.st.InTx(ctx, func(tx store.Tx) error {
		return p.Audit(ctx, tx, audit.CredentialRefused, u.Name, "user:"+u.ID, map[string]any{
			"action": action, "reason": "the session's proof is older than the fresh step-up allows",
			"auth_time": authTime, "max_age": int(FreshFactorChange / time.Second), "route": route,
		})
	})
	if err != nil {
		return fmt.Errorf("auditing refused factor change: %w", err)
	}
	return ErrNotFresh
}

// AddFactor saves cred, a new factor of u, and audits it
// (credential.added), in a transaction of its own.
func (p *People) AddFactor(ctx context.Context, u *store.User, cred *store.Credential) error {
	return p.st.InTx(ctx, func(tx store.Tx) error { return p.AddFactorIn(ctx, tx, u, cred) })
}

// AddFactorIn is AddFactor in tx (an enrollment saves the first factor
// with the use of its link and the session).
func (p *People) AddFactorIn(ctx context.Context, tx store.Tx, u *store.User, cred *store.Credential) error {
	if err := tx.AddCredential(ctx, cred); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("%w: %w", ErrFactorExists, err)
		}
		return fmt.Errorf("adding credential: %w", err)
	}
	return p.Audit(ctx, tx, audit.CredentialAdded, u.Name, "user:"+u.ID, map[string]any{"credential": cred.ID, "kind": cred.Kind, "name": cred.Name})
}

// RenameFactor names u's factor id name, and audits it
// (credential.renamed). ErrNoSuchFactor when it is not u's.
func (p *People) RenameFactor(ctx context.Context, u *store.User, id, name string) error {
	return p.st.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetCredentialForUpdate(ctx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.UserID != u.ID) {
			return ErrNoSuchFactor
		}
		if err != nil {
			return err
		}
		old := c.Name
		c.Name = name
		if err := tx.UpdateCredential(ctx, c); err != nil {
			return err
		}
		return p.Audit(ctx, tx, audit.CredentialRenamed, u.Name, "user:"+u.ID, map[string]any{"credential": c.ID, "from": old, "to": name})
	})
}

// RemoveFactor removes u's factor id, never the last (ErrLastFactor), and
// audits it (credential.removed). Every factor of u is locked first (in
// id order), so that two removals at once cannot both see two factors
// and leave none. It returns the factor removed.
func (p *People) RemoveFactor(ctx context.Context, u *store.User, id string) (*store.Credential, error) {
	var found *store.Credential
	err := p.st.InTx(ctx, func(tx store.Tx) error {
		all, err := LockedCredentials(ctx, tx, u.ID, "")
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(c *store.Credential) bool { return c.ID == id && c.UserID == u.ID })
		switch {
		case i < 0:
			return ErrNoSuchFactor
		case len(all) <= 1:
			return ErrLastFactor
		}
		found = all[i]
		if err := tx.DeleteCredential(ctx, id); err != nil {
			return err
		}
		return p.Audit(ctx, tx, audit.CredentialRemoved, u.Name, "user:"+u.ID, map[string]any{"credential": id, "kind": found.Kind, "name": found.Name})
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}
