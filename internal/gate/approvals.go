package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Proof is one person's answer with the step-up they made to give it.
type Proof struct {
	Subject string
	// Groups and Admin say whom the person is: an approver must be an admin
	// or in the group "approvers", or, when the requirements name groups,
	// in every one of them.
	Groups   []string
	Admin    bool
	Approved bool
	Reason   string
	// AMR are the methods of the proof (RFC 8176: "hwk", "otp", "user"...).
	AMR []string
	// AAL is the level the proof reached.
	AAL int
	// AuthTime is when the person made the proof.
	AuthTime time.Time
	// Evidence is the proof itself (a WebAuthn assertion...), kept with the
	// approval so that it can be verified again later.
	Evidence json.RawMessage
}

// Record adds a person's approval or rejection to a pending check. A
// rejection ends the check; an approval that completes the requirements
// approves it and issues its grant. The requester's own approval is refused
// when the requirements ask for the approval of others.
func (s *Service) Record(ctx context.Context, checkID string, p *Proof) (*api.Check, error) {
	if strings.TrimSpace(p.Subject) == "" {
		return nil, fmt.Errorf("%w: an approval needs a subject", ErrBadRequest)
	}
	if p.AAL < 1 || p.AAL > 3 {
		return nil, fmt.Errorf("%w: aal %d is not 1, 2 or 3", ErrBadRequest, p.AAL)
	}
	now := s.now().UTC()
	var c *store.Check
	var refused error // committed to the audit log, then returned
	var cp *audit.Checkpoint
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		c, err = tx.GetCheckForUpdate(ctx, checkID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no check %s", ErrNotFound, checkID)
		}
		if err != nil {
			return err
		}
		if c.State != store.StatePending || !c.ExpiresAt.After(now) {
			refused = fmt.Errorf("%w: %s is %s", ErrNotPending, checkID, stateAt(c, now))
			return tx.AppendAudit(ctx, s.event(now, audit.ApprovalRefused, p.Subject, c.ID, map[string]any{"reason": refused.Error(), "approved": p.Approved, "amr": p.AMR, "aal": p.AAL}))
		}
		var a policy.Assessment
		if err := json.Unmarshal(c.Assessment, &a); err != nil {
			return fmt.Errorf("decoding assessment: %w", err)
		}
		req := a.Requirements
		if req == nil {
			return fmt.Errorf("check %s is pending without requirements", checkID)
		}
		if refused = refusal(req, c.Requester, p); refused != nil {
			return tx.AppendAudit(ctx, s.event(now, audit.ApprovalRefused, p.Subject, c.ID, map[string]any{"reason": refused.Error(), "approved": p.Approved, "amr": p.AMR, "aal": p.AAL}))
		}
		ap := &store.Approval{
			ID: newID("apr_"), CheckID: c.ID, Subject: p.Subject, Approved: p.Approved, Reason: p.Reason,
			AMR: p.AMR, AAL: p.AAL, AuthTime: p.AuthTime.UTC(), Evidence: p.Evidence, CreatedAt: now,
		}
		if err := tx.AddApproval(ctx, ap); err != nil {
			return err
		}
		typ := audit.CheckApproval
		if !p.Approved {
			typ = audit.CheckRejection
		}
		if err := tx.AppendAudit(ctx, s.event(now, typ, p.Subject, c.ID, map[string]any{
			"approval": ap.ID, "aal": p.AAL, "amr": p.AMR, "auth_time": ap.AuthTime, "reason": p.Reason,
		})); err != nil {
			return err
		}
		if !p.Approved {
			c.State, c.UpdatedAt = store.StateRejected, now
			return tx.UpdateCheck(ctx, c)
		}
		all, err := tx.ListApprovals(ctx, c.ID)
		if err != nil {
			return err
		}
		// Only the approvals of people enabled and eligible now count.
		out, err := Withdrawn(ctx, tx, req, c.Requester, all)
		if err != nil {
			return err
		}
		if !Satisfied(req, c.Requester, Standing(all, out), now) {
			c.UpdatedAt = now
			if len(out) > 0 {
				if err := tx.AppendAudit(ctx, s.event(now, audit.CheckApprovalsWithdrawn, p.Subject, c.ID, map[string]any{"not_counted": out})); err != nil {
					return err
				}
			}
			return tx.UpdateCheck(ctx, c)
		}
		c.State, c.UpdatedAt = store.StateApproved, now
		s.issue(c, now)
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		// The grant carries the approvals that counted now, whatever
		// happens to their people afterwards.
		var counted []string
		for _, a := range Standing(all, out) {
			if Qualifies(req, c.Requester, a, now) {
				counted = append(counted, a.ID)
			}
		}
		if err := tx.SetGrantApprovals(ctx, c.ID, counted); err != nil {
			return err
		}
		if err := appendAll(ctx, tx, []*audit.Event{
			s.event(now, audit.CheckApproved, p.Subject, c.ID, nil),
			s.event(now, audit.GrantIssued, p.Subject, c.ID, map[string]any{"grant_id": c.GrantID, "expires_at": c.GrantExpiresAt}),
		}); err != nil {
			return err
		}
		return s.sealIn(ctx, tx, &cp)
	})
	if err != nil {
		return nil, err
	}
	s.publish(ctx, cp)
	if refused != nil {
		return nil, audited{refused}
	}
	s.wake(ctx, c.ID)
	s.log.InfoContext(ctx, "approval recorded", "check", c.ID, "subject", p.Subject, "approved", p.Approved, "state", c.State)
	v, err := s.view(ctx, nil, c)
	if err != nil {
		return nil, err
	}
	switch c.State {
	case store.StateApproved:
		s.tell(ctx, notify.Approved, v)
	case store.StateRejected:
		s.tell(ctx, notify.Rejected, v)
	}
	return v, nil
}

// Why an approval no longer counts, whatever its proof: its person's
// standing changed after they gave it.
const (
	WithdrawnDisabled    = "disabled"     // the account is disabled
	WithdrawnNotEligible = "not eligible" // no longer in the groups the check needs
	WithdrawnNoAccount   = "no account"   // no account has this name (deleted or renamed)
)

// userReader reads accounts: a store.Tx or a store.Store.
type userReader interface {
	GetUserByName(ctx context.Context, name string) (*store.User, error)
}

// Withdrawn says, by subject, why the approvals of some people no longer
// count: their account is disabled or gone, or they are no longer eligible
// (Eligible, with the account's groups and admin flag now). Rejections are
// left out: a rejection ends a check when it is given.
func Withdrawn(ctx context.Context, users userReader, req *policy.Requirements, requester string, approvals []*store.Approval) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	for _, a := range approvals {
		if !a.Approved || seen[a.Subject] {
			continue
		}
		seen[a.Subject] = true
		u, err := users.GetUserByName(ctx, a.Subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
			out[a.Subject] = WithdrawnNoAccount
		case err != nil:
			return nil, fmt.Errorf("reading the account of approver %q: %w", a.Subject, err)
		case !u.DisabledAt.IsZero():
			out[a.Subject] = WithdrawnDisabled
		case !Eligible(req, requester, &Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true}):
			out[a.Subject] = WithdrawnNotEligible
		}
	}
	return out, nil
}

// Standing returns the approvals whose subject is not in withdrawn.
func Standing(approvals []*store.Approval, withdrawn map[string]string) []*store.Approval {
	if len(withdrawn) == 0 {
		return approvals
	}
	var out []*store.Approval
	for _, a := range approvals {
		if _, gone := withdrawn[a.Subject]; !gone {
			out = append(out, a)
		}
	}
	return out
}

// Satisfied reports whether approvals meet the requirements at time now:
// enough distinct people, none of them the requester when others must
// approve, each proof at or above the level, fresh enough, and by an
// accepted method. (Whether each person may approve at all is checked,
// by Eligible, before their approval is recorded, and again, with their
// account as it is when the requirements are evaluated, by Withdrawn.)
func Satisfied(req *policy.Requirements, requester string, approvals []*store.Approval, now time.Time) bool {
	ok := map[string]bool{}
	for _, a := range approvals {
		if Qualifies(req, requester, a, now) {
			ok[a.Subject] = true
		}
	}
	if req.Approvals == 0 {
		return len(ok) >= 1
	}
	return len(ok) >= req.Approvals
}

// Qualifies reports whether one approval counts toward the requirements at
// time now.
func Qualifies(req *policy.Requirements, requester string, a *store.Approval, now time.Time) bool {
	switch {
	case !a.Approved || a.AAL < req.AAL:
		return false
	case req.MaxAge > 0 && now.Sub(a.AuthTime) > time.Duration(req.MaxAge)*time.Second:
		return false
	case a.AuthTime.After(now.Add(time.Minute)): // a proof from the future is not a proof
		return false
	case len(req.Methods) > 0 && !slices.ContainsFunc(a.AMR, func(m string) bool { return slices.Contains(req.Methods, m) }):
		return false
	case req.Approvals > 0 && ident.Same(a.Subject, requester):
		return false
	}
	return true
}

// DefaultApproverGroup is the group whose members may approve when the
// requirements name none. Admins may always approve then.
const DefaultApproverGroup = "approvers"

// Eligible reports whether a person may answer a check at all: when the
// requirements name groups, a member of every one of them; otherwise an
// admin or a member of "approvers". The requester may confirm their own
// check when nobody else's approval is required.
func Eligible(req *policy.Requirements, requester string, p *Proof) bool {
	if len(req.Groups) > 0 {
		return containsAll(p.Groups, req.Groups)
	}
	if req.Approvals == 0 && ident.Same(p.Subject, requester) {
		return true
	}
	return p.Admin || slices.Contains(p.Groups, DefaultApproverGroup)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func stateAt(c *store.Check, now time.Time) store.CheckState {
	if c.State == store.StatePending && !c.ExpiresAt.After(now) {
		return store.StateExpired
	}
	return c.State
}

// expire marks a pending check whose time ran out as expired.
func (s *Service) expire(ctx context.Context, id string) (*store.Check, error) {
	now := s.now().UTC()
	var c *store.Check
	changed := false
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		if c, err = tx.GetCheckForUpdate(ctx, id); err != nil {
			return err
		}
		if c.State != store.StatePending || c.ExpiresAt.After(now) {
			return nil
		}
		c.State, c.UpdatedAt, changed = store.StateExpired, now, true
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, s.event(now, audit.CheckExpired, "stepgate", c.ID, nil))
	})
	if err != nil {
		return nil, fmt.Errorf("expiring check %s: %w", id, err)
	}
	if changed {
		s.wake(ctx, id)
		s.announce(ctx, notify.Expired, c)
	}
	return c, nil
}

// ExpireDue expires every pending check whose time ran out, and returns
// how many it expired. The server runs it periodically; several servers
// may run it at once (each check is expired once, under its row lock).
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	due, err := s.st.ExpiredChecks(ctx, s.now(), 100)
	if err != nil {
		return 0, fmt.Errorf("listing expired checks: %w", err)
	}
	n := 0
	for _, c := range due {
		if _, err := s.expire(ctx, c.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

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
