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
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Break-glass is the emergency path (docs/people.md): a pipeline asks for
// it with a reason (stepgate check --break-glass --reason), and one person
// of the break-glass group satisfies the check alone, whatever approvals
// it needs, with a passkey with user verification made moments before.
// The grant is short-lived, everyone is told at once, and another person
// must acknowledge the use within a deadline. Break-glass replaces the
// approvers, never the separation of duties: the requester cannot break
// the glass on their own check, nor review it.

// BreakGlassConfig tunes break-glass. An empty Group turns it off.
type BreakGlassConfig struct {
	// Group is the group whose members may break the glass.
	Group string
	// GrantTTL is how long a break-glass grant is valid (default
	// DefaultBreakGlassGrantTTL; never longer than the service's GrantTTL).
	GrantTTL time.Duration
	// ReviewWithin is how long another person has to acknowledge a use
	// (default DefaultBreakGlassReviewWithin).
	ReviewWithin time.Duration
	// FreshPasskey is how old the passkey proof may be (default
	// DefaultBreakGlassFreshPasskey).
	FreshPasskey time.Duration
	// AllowDenyRules are the deny rules break-glass may override; by
	// default none: a deny is never break-glassable.
	AllowDenyRules []string
	// RemindEvery is how often an overdue review is announced again
	// (default DefaultBreakGlassRemindEvery).
	RemindEvery time.Duration
}

// Defaults of BreakGlassConfig, and the bounds of a reason.
const (
	DefaultBreakGlassGrantTTL     = 5 * time.Minute
	DefaultBreakGlassReviewWithin = 24 * time.Hour
	DefaultBreakGlassFreshPasskey = 5 * time.Minute
	DefaultBreakGlassRemindEvery  = time.Hour
	MinBreakGlassReason           = 20
	MaxBreakGlassReason           = 1000
)

func (c BreakGlassConfig) withDefaults(grantTTL time.Duration) BreakGlassConfig {
	if c.GrantTTL <= 0 {
		c.GrantTTL = DefaultBreakGlassGrantTTL
	}
	c.GrantTTL = min(c.GrantTTL, grantTTL)
	if c.ReviewWithin <= 0 {
		c.ReviewWithin = DefaultBreakGlassReviewWithin
	}
	if c.FreshPasskey <= 0 {
		c.FreshPasskey = DefaultBreakGlassFreshPasskey
	}
	if c.RemindEvery <= 0 {
		c.RemindEvery = DefaultBreakGlassRemindEvery
	}
	return c
}

// BreakGlassEnabled reports whether break-glass is configured.
func (s *Service) BreakGlassEnabled() bool { return s.cfg.BreakGlass.Group != "" }

// BreakGlassGroup is the group whose members may break the glass.
func (s *Service) BreakGlassGroup() string { return s.cfg.BreakGlass.Group }

// BreakGlassRequest is a pipeline's request for break-glass on a new check.
type BreakGlassRequest struct {
	Reason string
}

// validBreakGlassReason says what is wrong with a reason, or nil.
func validBreakGlassReason(reason string) error {
	n := utf8.RuneCountInString(strings.TrimSpace(reason))
	switch {
	case n < MinBreakGlassReason:
		return fmt.Errorf("break-glass needs a reason of at least %d characters (an incident reference and what is broken); got %d", MinBreakGlassReason, n)
	case n > MaxBreakGlassReason:
		return fmt.Errorf("the break-glass reason is longer than %d characters", MaxBreakGlassReason)
	}
	for _, r := range reason {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return errors.New("the break-glass reason contains control characters")
		}
	}
	return nil
}

// refuseBreakGlassRequest audits a refused request for break-glass on a
// new check (subject "workspace:NAME") and returns err marked audited.
func (s *Service) refuseBreakGlassRequest(ctx context.Context, caller *Caller, r *CreateRequest, err error) error {
	s.AuditRefusal(ctx, Refusal{Action: ActionBreakGlass, Actor: caller.Name, Subject: "workspace:" + r.Workspace, Method: "request", Reason: err.Error()})
	return audited{err}
}

// checkBreakGlassRequest refuses, before anything is assessed, a request
// for break-glass that cannot be: off on this server, or a reason too
// short. Each refusal is audited.
func (s *Service) checkBreakGlassRequest(ctx context.Context, caller *Caller, r *CreateRequest) error {
	if r.BreakGlass == nil {
		return nil
	}
	if !s.BreakGlassEnabled() {
		return s.refuseBreakGlassRequest(ctx, caller, r, fmt.Errorf("%w: %w: break-glass is not enabled on this server (server.break_glass.group)", ErrBadRequest, ErrBreakGlass))
	}
	if err := validBreakGlassReason(r.BreakGlass.Reason); err != nil {
		return s.refuseBreakGlassRequest(ctx, caller, r, fmt.Errorf("%w: %w: %w", ErrBadRequest, ErrBreakGlass, err))
	}
	return nil
}

// denyRules are the rules of a's findings whose decision is deny.
func denyRules(a *policy.Assessment) []string {
	var out []string
	for _, f := range a.Findings {
		if f.Decision == policy.Deny && !slices.Contains(out, f.Rule) {
			out = append(out, f.Rule)
		}
	}
	return out
}

// notBreakable are the rules of rules that break-glass may not override.
func (s *Service) notBreakable(rules []string) []string {
	var out []string
	for _, r := range rules {
		if !slices.Contains(s.cfg.BreakGlass.AllowDenyRules, r) {
			out = append(out, r)
		}
	}
	return out
}

// breakGlassRequirements are what a denied check that break-glass may
// override waits for: nothing but a break-glass (Record refuses every
// other answer on a check the policy denied).
func (s *Service) breakGlassRequirements() *policy.Requirements {
	return &policy.Requirements{AAL: 3, Approvals: 1, MaxAge: int(s.cfg.BreakGlass.FreshPasskey / time.Second), Groups: []string{s.cfg.BreakGlass.Group}}
}

// breakGlassOnCreate decides what a request for break-glass does to a new
// check assessed a, before it is recorded: the break-glass record to keep
// with it, and the audit events to add. A step-up waits for people as
// usual, and may be broken; a deny whose every deny rule is allowed waits
// for a break-glass only; a deny with another rule stays denied (the
// refusal audited); an allow needs nothing.
func (s *Service) breakGlassOnCreate(checkID string, a *policy.Assessment, r *CreateRequest, actor string, now time.Time) (*store.BreakGlass, []*audit.Event) {
	if r.BreakGlass == nil {
		return nil, nil
	}
	reason := strings.TrimSpace(r.BreakGlass.Reason)
	bg := &store.BreakGlass{CheckID: checkID, Reason: reason, RequestedAt: now}
	switch a.Decision {
	case policy.StepUp:
	case policy.Deny:
		rules := denyRules(a)
		if out := s.notBreakable(rules); len(out) > 0 {
			return nil, []*audit.Event{s.event(now, audit.BreakGlassRefused, actor, checkID, map[string]any{
				"reason": fmt.Sprintf("the policy denied it by %s, which break_glass.allow_deny_rules does not name", strings.Join(out, ", ")),
				"method": "request", "break_glass_reason": reason,
			})}
		}
		bg.DenyRules = rules
		a.Requirements = s.breakGlassRequirements()
	default:
		return nil, nil
	}
	return bg, []*audit.Event{s.event(now, audit.BreakGlassRequested, actor, checkID, map[string]any{"reason": reason, "deny_rules": bg.DenyRules})}
}

// breakGlassRefusal is why proof p may not break the glass on check c
// (assessed a, with break-glass request bg) at time now, or nil.
func (s *Service) breakGlassRefusal(c *store.Check, a *policy.Assessment, p *Proof, now time.Time) error {
	cfg := s.cfg.BreakGlass
	switch {
	case cfg.Group == "":
		return fmt.Errorf("%w: break-glass is not enabled on this server", ErrBreakGlass)
	case ident.Same(p.Subject, c.Requester):
		return fmt.Errorf("%w: %w: break-glass replaces the approvers, not the separation of duties", ErrSelfApproval, ErrBreakGlass)
	case !slices.Contains(p.Groups, cfg.Group):
		return fmt.Errorf("%w: %w: %s is not in the break-glass group %q", ErrNotEligible, ErrBreakGlass, p.Subject, cfg.Group)
	}
	if err := freshPasskey(p, now, cfg.FreshPasskey); err != nil {
		return fmt.Errorf("%w: %w", ErrBreakGlass, err)
	}
	if a.Decision == policy.Deny {
		if out := s.notBreakable(denyRules(a)); len(out) > 0 {
			return fmt.Errorf("%w: the policy denied it by %s, which break_glass.allow_deny_rules does not name", ErrBreakGlass, strings.Join(out, ", "))
		}
	}
	return nil
}

// freshPasskey checks that p is a passkey assertion with user verification
// made within window of now.
func freshPasskey(p *Proof, now time.Time, window time.Duration) error {
	var ev struct {
		Method string `json:"method"`
	}
	if len(p.Evidence) == 0 || json.Unmarshal(p.Evidence, &ev) != nil || ev.Method != "webauthn" {
		return errors.New("break-glass needs a passkey assertion")
	}
	if p.AAL < 3 || !slices.Contains(p.AMR, "hwk") || !slices.Contains(p.AMR, "user") {
		return fmt.Errorf("break-glass needs a passkey with user verification (level 3); this proof reached level %d (%s)", p.AAL, strings.Join(p.AMR, ", "))
	}
	switch {
	case p.AuthTime.IsZero() || now.Sub(p.AuthTime) > window:
		return fmt.Errorf("break-glass needs a passkey proof made within the last %v", window)
	case p.AuthTime.After(now.Add(time.Minute)):
		return errors.New("the passkey proof is dated in the future")
	}
	return nil
}

// BreakGlass satisfies a check alone by proof p: a person of the
// break-glass group, not the requester, with a passkey with user
// verification made within break_glass.fresh_passkey, on a pending check
// whose pipeline asked for break-glass (and, for a check the policy
// denied, only over the deny rules break_glass.allow_deny_rules names, as
// configured now). Under the check's row lock it records the approval,
// approves the check with a grant valid break_glass.grant_ttl, starts the
// review's clock and writes breakglass.used; every refusal is audited
// (breakglass.refused). Every webhook is told (break_glass.used).
func (s *Service) BreakGlass(ctx context.Context, checkID string, p *Proof) (*api.Check, error) {
	if strings.TrimSpace(p.Subject) == "" {
		return nil, fmt.Errorf("%w: a break-glass needs a subject", ErrBadRequest)
	}
	now := s.now().UTC()
	var c *store.Check
	var refused error
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
		refuse := func(why error) error {
			refused = why
			return tx.AppendAudit(ctx, s.event(now, audit.BreakGlassRefused, p.Subject, c.ID, map[string]any{
				"reason": why.Error(), "method": "use", "amr": p.AMR, "aal": p.AAL, "auth_time": p.AuthTime.UTC(),
			}))
		}
		bg, err := tx.GetBreakGlass(ctx, c.ID)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(fmt.Errorf("%w: the pipeline did not ask for break-glass on %s (stepgate check --break-glass --reason)", ErrBreakGlass, c.ID))
		}
		if err != nil {
			return err
		}
		if c.State != store.StatePending || !c.ExpiresAt.After(now) {
			return refuse(fmt.Errorf("%w: %s is %s", ErrNotPending, checkID, stateAt(c, now)))
		}
		var a policy.Assessment
		if err := json.Unmarshal(c.Assessment, &a); err != nil {
			return fmt.Errorf("decoding assessment: %w", err)
		}
		if why := s.breakGlassRefusal(c, &a, p, now); why != nil {
			return refuse(why)
		}
		ap := &store.Approval{
			ID: newID("apr_"), CheckID: c.ID, Subject: p.Subject, Approved: true, Reason: "break-glass: " + bg.Reason,
			AMR: p.AMR, AAL: p.AAL, AuthTime: p.AuthTime.UTC(), Evidence: p.Evidence, CreatedAt: now,
		}
		if err := tx.AddApproval(ctx, ap); err != nil {
			return err
		}
		c.State, c.UpdatedAt = store.StateApproved, now
		s.issue(c, now)
		c.GrantExpiresAt = now.Add(s.cfg.BreakGlass.GrantTTL)
		if err := tx.UpdateCheck(ctx, c); err != nil {
			return err
		}
		if err := tx.SetGrantApprovals(ctx, c.ID, []string{ap.ID}); err != nil {
			return err
		}
		bg.Subject, bg.ApprovalID, bg.UsedAt, bg.ReviewDueAt = p.Subject, ap.ID, now, now.Add(s.cfg.BreakGlass.ReviewWithin)
		if err := tx.UpdateBreakGlass(ctx, bg); err != nil {
			return err
		}
		if err := appendAll(ctx, tx, []*audit.Event{
			s.event(now, audit.BreakGlassUsed, p.Subject, c.ID, map[string]any{
				"reason": bg.Reason, "deny_rules": bg.DenyRules, "approval": ap.ID, "aal": p.AAL, "amr": p.AMR,
				"auth_time": ap.AuthTime, "grant_id": c.GrantID, "grant_expires_at": c.GrantExpiresAt, "review_due_at": bg.ReviewDueAt,
			}),
			// The approval, as every approval is recorded (audit verify
			// checks its passkey assertion again).
			s.event(now, audit.CheckApproval, p.Subject, c.ID, map[string]any{
				"approval": ap.ID, "aal": p.AAL, "amr": p.AMR, "auth_time": ap.AuthTime, "reason": ap.Reason, "break_glass": true,
			}),
			s.event(now, audit.CheckApproved, p.Subject, c.ID, map[string]any{"break_glass": true}),
			s.event(now, audit.GrantIssued, p.Subject, c.ID, map[string]any{"grant_id": c.GrantID, "expires_at": c.GrantExpiresAt, "break_glass": true}),
		}); err != nil {
			return err
		}
		return s.sealIn(ctx, tx, &cp)
	})
	if err != nil {
		return nil, err
	}
	v, err := s.decided(ctx, cp, refused, c, slog.LevelWarn, "break-glass used", "check", c.ID, "subject", p.Subject, "workspace", c.Workspace, "requester", c.Requester)
	if err != nil {
		return nil, err
	}
	s.tell(ctx, notify.BreakGlassUsed, v)
	return v, nil
}

// MayBreakGlass reports, before any ceremony, whether a person may break
// the glass on check c (as Review shows it): ErrBreakGlass when break-glass
// is off or the pipeline did not ask for it, ErrNotPending, ErrSelfApproval,
// ErrNotEligible (not in the group). BreakGlass checks it all again, and
// the proof, under the check's lock.
func (s *Service) MayBreakGlass(c *api.Check, p *Proof) error {
	switch {
	case !s.BreakGlassEnabled():
		return fmt.Errorf("%w: break-glass is not enabled on this server", ErrBreakGlass)
	case c.BreakGlass == nil:
		return fmt.Errorf("%w: the pipeline did not ask for break-glass on %s", ErrBreakGlass, c.ID)
	case !AwaitsPeople(c):
		return ErrNotPending
	case ident.Same(p.Subject, c.Requester):
		return fmt.Errorf("%w: %w", ErrSelfApproval, ErrBreakGlass)
	case !slices.Contains(p.Groups, s.cfg.BreakGlass.Group):
		return fmt.Errorf("%w: %w: not in the break-glass group %q", ErrNotEligible, ErrBreakGlass, s.cfg.BreakGlass.Group)
	}
	return nil
}

// BreakGlassFreshness is how old the passkey proof of a break-glass may be.
func (s *Service) BreakGlassFreshness() time.Duration { return s.cfg.BreakGlass.FreshPasskey }

// breakGlassView is a break-glass record in its API form at time now.
func (s *Service) breakGlassView(bg *store.BreakGlass, now time.Time) *api.BreakGlass {
	v := &api.BreakGlass{Reason: bg.Reason, DenyRules: bg.DenyRules, RequestedAt: bg.RequestedAt, UsedBy: bg.Subject, ReviewedBy: bg.Reviewer, ReviewNote: bg.ReviewNote}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	v.UsedAt, v.ReviewDueAt, v.ReviewedAt = opt(bg.UsedAt), opt(bg.ReviewDueAt), opt(bg.ReviewedAt)
	if !bg.UsedAt.IsZero() {
		v.ReviewURL = s.cfg.PublicURL + "/reviews"
		v.Overdue = bg.ReviewedAt.IsZero() && !bg.ReviewDueAt.After(now)
	}
	return v
}

// Review is one use of break-glass as the review queue shows it.
type Review struct {
	Check      *store.Check
	BreakGlass *api.BreakGlass
}

// MaxReviews is how many uses the review queue reads at most.
const MaxReviews = 500

// Reviews lists the uses of break-glass waiting for a review, oldest
// first, then (when done is set) the latest reviewed ones, newest review
// first; at most MaxReviews of each.
func (s *Service) Reviews(ctx context.Context, done bool) ([]Review, error) {
	bgs, err := s.st.ListBreakGlassUsed(ctx, true, MaxReviews)
	if err != nil {
		return nil, fmt.Errorf("listing break-glass uses: %w", err)
	}
	if done {
		reviewed, err := s.st.ListBreakGlassReviewed(ctx, MaxReviews)
		if err != nil {
			return nil, fmt.Errorf("listing reviewed break-glass uses: %w", err)
		}
		bgs = append(bgs, reviewed...)
	}
	now := s.now().UTC()
	out := make([]Review, 0, len(bgs))
	for _, bg := range bgs {
		c, err := s.st.GetCheck(ctx, bg.CheckID)
		if err != nil {
			return nil, fmt.Errorf("reading check %s: %w", bg.CheckID, err)
		}
		out = append(out, Review{Check: c, BreakGlass: s.breakGlassView(bg, now)})
	}
	return out, nil
}

// OverdueReviews counts the uses of break-glass whose review is late.
func (s *Service) OverdueReviews(ctx context.Context) (int, error) {
	bgs, err := s.st.ListBreakGlassUsed(ctx, true, MaxReviews)
	if err != nil {
		return 0, fmt.Errorf("listing break-glass uses: %w", err)
	}
	now, n := s.now(), 0
	for _, bg := range bgs {
		if !bg.ReviewDueAt.After(now) {
			n++
		}
	}
	return n, nil
}

// MaxReviewNote caps a review's note, in characters.
const MaxReviewNote = 2000

// Reviewer is a person acknowledging a use of break-glass: a signed-in
// session is enough (a review grants nothing).
type Reviewer struct {
	Subject string
	Groups  []string
	Admin   bool
}

// AcknowledgeBreakGlass records another person's review of a use of
// break-glass, with their note. The reviewer is an admin, an approver
// (group "approvers") or a member of the break-glass group, neither the
// person who broke the glass nor the requester. Each refusal is audited.
func (s *Service) AcknowledgeBreakGlass(ctx context.Context, checkID string, r *Reviewer, note string) (*api.BreakGlass, error) {
	note = strings.TrimSpace(note)
	now := s.now().UTC()
	var refused error
	var view *api.BreakGlass
	err := s.st.InTx(ctx, func(tx store.Tx) error {
		c, err := tx.GetCheckForUpdate(ctx, checkID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no check %s", ErrNotFound, checkID)
		}
		if err != nil {
			return err
		}
		refuse := func(why error) error {
			refused = why
			return tx.AppendAudit(ctx, s.event(now, audit.BreakGlassRefused, r.Subject, c.ID, map[string]any{"reason": why.Error(), "method": "review"}))
		}
		bg, err := tx.GetBreakGlass(ctx, c.ID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && bg.UsedAt.IsZero()) {
			return refuse(fmt.Errorf("%w: nobody broke the glass on %s", ErrNotFound, c.ID))
		}
		if err != nil {
			return err
		}
		switch {
		case !bg.ReviewedAt.IsZero():
			return refuse(fmt.Errorf("%w: %s reviewed it already", ErrConflict, bg.Reviewer))
		case ident.Same(r.Subject, bg.Subject):
			return refuse(fmt.Errorf("%w: %s broke the glass", ErrSelfReview, r.Subject))
		case ident.Same(r.Subject, c.Requester):
			return refuse(fmt.Errorf("%w: %s asked for the check", ErrSelfReview, r.Subject))
		case !r.Admin && !slices.Contains(r.Groups, DefaultApproverGroup) && !slices.Contains(r.Groups, s.cfg.BreakGlass.Group):
			return refuse(fmt.Errorf("%w: a review is given by an admin, an approver or a member of the break-glass group", ErrNotEligible))
		case note == "":
			return refuse(fmt.Errorf("%w: a review needs a note", ErrBadRequest))
		case utf8.RuneCountInString(note) > MaxReviewNote:
			return refuse(fmt.Errorf("%w: the note is longer than %d characters", ErrBadRequest, MaxReviewNote))
		}
		late := !bg.ReviewDueAt.After(now)
		bg.Reviewer, bg.ReviewNote, bg.ReviewedAt = r.Subject, note, now
		if err := tx.UpdateBreakGlass(ctx, bg); err != nil {
			return err
		}
		view = s.breakGlassView(bg, now)
		return tx.AppendAudit(ctx, s.event(now, audit.BreakGlassReviewed, r.Subject, c.ID, map[string]any{
			"note": note, "late": late, "used_by": bg.Subject, "used_at": bg.UsedAt, "review_due_at": bg.ReviewDueAt,
		}))
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, audited{refused}
	}
	s.log.InfoContext(ctx, "break-glass reviewed", "check", checkID, "reviewer", r.Subject)
	return view, nil
}

// RemindOverdue announces (break_glass.review_overdue) every use of
// break-glass whose review is late and was not announced within
// break_glass.remind_every, and returns how many it announced. Several
// servers may run it at once: each reminder is claimed under the check's
// row lock.
func (s *Service) RemindOverdue(ctx context.Context) (int, error) {
	bgs, err := s.st.ListBreakGlassUsed(ctx, true, MaxReviews)
	if err != nil {
		return 0, fmt.Errorf("listing break-glass uses: %w", err)
	}
	n := 0
	for _, bg := range bgs {
		now := s.now().UTC()
		if bg.ReviewDueAt.After(now) || now.Sub(bg.RemindedAt) < s.cfg.BreakGlass.RemindEvery {
			continue
		}
		var c *store.Check
		claimed := false
		err := s.st.InTx(ctx, func(tx store.Tx) error {
			var err error
			if c, err = tx.GetCheckForUpdate(ctx, bg.CheckID); err != nil {
				return err
			}
			cur, err := tx.GetBreakGlass(ctx, bg.CheckID)
			if err != nil {
				return err
			}
			if !cur.ReviewedAt.IsZero() || now.Sub(cur.RemindedAt) < s.cfg.BreakGlass.RemindEvery {
				return nil
			}
			cur.RemindedAt, claimed = now, true
			return tx.UpdateBreakGlass(ctx, cur)
		})
		if err != nil {
			return n, fmt.Errorf("claiming the reminder of %s: %w", bg.CheckID, err)
		}
		if !claimed {
			continue
		}
		s.announce(ctx, notify.BreakGlassOverdue, c)
		n++
	}
	return n, nil
}

// RemindLoop runs RemindOverdue at each tick until ctx ends.
func (s *Service) RemindLoop(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if n, err := s.RemindOverdue(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "reminding overdue break-glass reviews failed", "err", err)
			} else if n > 0 {
				s.log.WarnContext(ctx, "break-glass reviews are overdue", "announced", n)
			}
		}
	}
}
