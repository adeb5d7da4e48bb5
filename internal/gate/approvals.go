package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
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
		if a.Decision != policy.StepUp {
			refused = errBreakGlassOnly
		} else {
			refused = refusal(req, c.Requester, p)
		}
		if refused != nil {
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
	v, err := s.decided(ctx, cp, refused, c, slog.LevelInfo, "approval recorded", "check", c.ID, "subject", p.Subject, "approved", p.Approved, "state", c.State)
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

// decided ends a decision on check c taken in one transaction: it
// publishes the checkpoint sealed in it, returns refused (already audited
// in it) as it is, and otherwise wakes the pipeline waiting on c, logs msg
// with args at level and returns c as everyone sees it.
func (s *Service) decided(ctx context.Context, cp *audit.Checkpoint, refused error, c *store.Check, level slog.Level, msg string, args ...any) (*api.Check, error) {
	s.publish(ctx, cp)
	if refused != nil {
		return nil, audited{refused}
	}
	s.wake(ctx, c.ID)
	s.log.Log(ctx, level, msg, args...)
	return s.view(ctx, nil, c)
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
