package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/store"
)

// Keys returns the public keys that verify grants.
func (s *Service) Keys(ctx context.Context) (grant.StaticKeys, error) {
	set, err := s.ring.JWKS(ctx, s.st)
	if err != nil {
		return nil, fmt.Errorf("loading public keys: %w", err)
	}
	return grant.StaticKeys(set.Keys), nil
}

// Consume uses a grant, once. The grant must verify, belong to a check of a
// workspace the caller may use, and not have been used before.
func (s *Service) Consume(ctx context.Context, caller *Caller, token string) (*api.ConsumeResponse, error) {
	now := s.now().UTC()
	ks, err := s.Keys(ctx)
	if err != nil {
		return nil, err
	}
	claims, err := grant.Verify(ctx, token, ks, grant.Expect{Issuer: s.cfg.PublicURL, Audience: s.cfg.Audience, Now: now, Leeway: 30 * time.Second})
	if err != nil {
		s.refused(ctx, caller, "", err)
		return nil, audited{fmt.Errorf("%w: %w", ErrInvalidGrant, err)}
	}
	if !caller.MayUse(claims.Workspace) {
		s.refused(ctx, caller, claims.Check(), ErrForbidden)
		return nil, audited{fmt.Errorf("%w: token %q may not use grants of workspace %q", ErrForbidden, caller.Name, claims.Workspace)}
	}
	var out *api.ConsumeResponse
	err = s.st.InTx(ctx, func(tx store.Tx) error {
		c, err := lockGrantCheck(ctx, tx, claims, nil)
		if err != nil {
			return err
		}
		c.State, c.ConsumedAt, c.UpdatedAt = store.StateConsumed, now, now
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		out = &api.ConsumeResponse{CheckID: c.ID, GrantID: c.GrantID, ConsumedAt: now}
		return tx.AppendAudit(ctx, s.event(now, audit.GrantConsumed, caller.Name, c.ID, map[string]any{"grant_id": c.GrantID}))
	})
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidGrant) {
			s.refused(ctx, caller, claims.Check(), err)
			return nil, audited{err}
		}
		return nil, err
	}
	s.wake(ctx, claims.Check())
	return out, nil
}

// lockGrantCheck reads the check of a verified grant under its row lock and
// refuses it unless the grant is the one issued for it, and unused:
// ErrInvalidGrant, or ErrConflict once it was used. also, when set, is one
// more rule of the caller's, checked after the grant matches.
func lockGrantCheck(ctx context.Context, tx store.Tx, claims *grant.Claims, also func(*store.Check) error) (*store.Check, error) {
	c, err := tx.GetCheckForUpdate(ctx, claims.Check())
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the grant's check %s does not exist", ErrInvalidGrant, claims.Check())
	}
	if err != nil {
		return nil, err
	}
	if c.GrantID != claims.ID {
		return nil, fmt.Errorf("%w: the grant is not the one issued for check %s", ErrInvalidGrant, c.ID)
	}
	if also != nil {
		if err := also(c); err != nil {
			return nil, err
		}
	}
	switch {
	case c.State == store.StateConsumed:
		return nil, fmt.Errorf("%w: grant already used at %s", ErrConflict, c.ConsumedAt.Format(time.RFC3339))
	case c.State != store.StateAllowed && c.State != store.StateApproved:
		return nil, fmt.Errorf("%w: check %s is %s", ErrConflict, c.ID, c.State)
	}
	return c, nil
}

// refused writes a refused use of a grant to the audit log.
func (s *Service) refused(ctx context.Context, caller *Caller, checkID string, reason error) {
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		return tx.AppendAudit(ctx, s.event(s.now().UTC(), audit.GrantRefused, caller.Name, checkID, map[string]any{"reason": reason.Error()}))
	})
	if err != nil {
		s.log.ErrorContext(ctx, "auditing a refused grant failed", "err", err)
	}
}

// ReportOutcome records how the command run under a consumed grant ended.
func (s *Service) ReportOutcome(ctx context.Context, caller *Caller, checkID string, r *api.OutcomeRequest) error {
	if r.DurationMS < 0 {
		return fmt.Errorf("%w: duration_ms is negative", ErrBadRequest)
	}
	now := s.now().UTC()
	return s.st.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetCheckForUpdate(ctx, checkID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no check %s", ErrNotFound, checkID)
		}
		if err != nil {
			return err
		}
		if !caller.MayUse(c.Workspace) {
			return fmt.Errorf("%w: no check %s", ErrNotFound, checkID)
		}
		if c.State != store.StateConsumed || c.GrantID != r.GrantID {
			return fmt.Errorf("%w: check %s has no consumed grant %s", ErrConflict, checkID, r.GrantID)
		}
		if c.OutcomeExitCode != nil {
			return fmt.Errorf("%w: the outcome of %s was already reported", ErrConflict, checkID)
		}
		code := r.ExitCode
		c.OutcomeExitCode, c.OutcomeDurationMS, c.OutcomeAt, c.UpdatedAt = &code, r.DurationMS, now, now
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(now, audit.ApplyOutcome, caller.Name, c.ID, map[string]any{"exit_code": code, "duration_ms": r.DurationMS}))
	})
}
