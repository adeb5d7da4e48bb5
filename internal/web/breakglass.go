package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/store"
)

// Break-glass on the web: the review page of a check whose pipeline asked
// for it offers the members of the break-glass group a passkey ceremony
// with user verification (its challenge covers the check and its plan,
// as an approval's); the gate decides (gate.Service.BreakGlass). /reviews
// lists the uses, and another person acknowledges each with a note.

const msgBreakGlassSelf = "You asked for this check: break-glass replaces the approvers, not the separation of duties. Another person of the break-glass group must do it."

// breakGlassError turns a refusal of the gate into a message.
func (w *Web) breakGlassError(err error) error {
	ue := refused(err, func(sentinel error) string {
		switch sentinel {
		case gate.ErrSelfApproval:
			return msgBreakGlassSelf
		case gate.ErrNotEligible:
			return fmt.Sprintf("Break-glass is for the members of the group %q. Nothing was recorded.", w.svc.BreakGlassGroup())
		case gate.ErrNotPending:
			return msgNotPending
		case gate.ErrNotFound:
			return "There is no such check."
		case gate.ErrBreakGlass:
			return "Break-glass refused: " + strings.TrimPrefix(err.Error(), gate.ErrBreakGlass.Error()+": ") + ". Nothing was recorded."
		}
		return ""
	})
	if ue == nil {
		return fmt.Errorf("breaking the glass: %w", err)
	}
	return ue
}

// breakGlassBegin starts the ceremony: a passkey assertion with user
// verification required, over the check id and its plan digest.
func (w *Web) breakGlassBegin(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	c, err := w.review(r)
	if err != nil {
		return err
	}
	if err := w.svc.MayBreakGlass(c, &gate.Proof{Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin}); err != nil {
		return w.breakGlassError(err)
	}
	return w.beginCheckPasskey(rw, r, s, c, purposeBreakGlass, true, "Break-glass needs a passkey, and your account has none.", "break-glass")
}

// breakGlassFinish verifies the assertion (user verification required)
// and hands the proof, made now, to the gate.
func (w *Web) breakGlassFinish(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	cer, err := w.takeCeremony(rw, r, purposeBreakGlass, s.hash, r.PathValue("id"), s.user.Name)
	if err != nil {
		return ceremonyFailure(err, msgCeremonyGone)
	}
	c, err := w.review(r)
	if err != nil {
		return err
	}
	if err := w.svc.MayBreakGlass(c, &gate.Proof{Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin}); err != nil {
		return w.breakGlassError(err)
	}
	refused, err := w.people.BreakGlassPasskey(ctx, c, s.user, &gate.PasskeyProof{Session: cer.Data, Body: body}, cer.Nonce)
	if refused != nil {
		return passkeyRefusal(refused, true)
	}
	if err != nil {
		return w.breakGlassError(err)
	}
	writeJSON(rw, http.StatusOK, map[string]string{"redirect": "/checks/" + url.PathEscape(c.ID) + "?done=breakglass"})
	return nil
}

// breakGlassView is what the review page shows of a check's break-glass.
type breakGlassView struct {
	Reason      string
	DenyRules   []string
	UsedBy      string
	UsedAt      time.Time
	ReviewDueAt time.Time
	ReviewedBy  string
	Overdue     bool
	// CanBreak: the viewer may break the glass now (a passkey needed).
	CanBreak bool
	Group    string
}

func (w *Web) breakGlassOf(c *api.Check, u *store.User, creds []*store.Credential) *breakGlassView {
	bg := c.BreakGlass
	if bg == nil {
		return nil
	}
	v := &breakGlassView{Reason: bg.Reason, DenyRules: bg.DenyRules, UsedBy: bg.UsedBy, ReviewedBy: bg.ReviewedBy, Overdue: bg.Overdue, Group: w.svc.BreakGlassGroup()}
	if bg.UsedAt != nil {
		v.UsedAt = *bg.UsedAt
	}
	if bg.ReviewDueAt != nil {
		v.ReviewDueAt = *bg.ReviewDueAt
	}
	hasPasskey := len(webauthnOnly(creds)) > 0
	v.CanBreak = hasPasskey && w.svc.MayBreakGlass(c, &gate.Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin}) == nil
	return v
}

// reviewsWaiting counts, for a person who may review them (an admin, an
// approver, a member of the break-glass group), the uses of break-glass
// waiting for a review and those overdue; zeros for anyone else.
func (w *Web) reviewsWaiting(ctx context.Context, u *store.User) (waiting, overdue int, err error) {
	if !w.svc.BreakGlassEnabled() || (!u.Admin && !slices.Contains(u.Groups, gate.DefaultApproverGroup) && !slices.Contains(u.Groups, w.svc.BreakGlassGroup())) {
		return 0, 0, nil
	}
	list, err := w.svc.Reviews(ctx, false)
	if err != nil {
		return 0, 0, err
	}
	for _, r := range list {
		waiting++
		if r.BreakGlass.Overdue {
			overdue++
		}
	}
	return waiting, overdue, nil
}

// reviewsView is the review queue.
type reviewsView struct {
	Rows    []reviewRow
	Overdue int
	Message string
	Notice  string
}

func (v *reviewsView) title() string { return "Break-glass reviews" }

type reviewRow struct {
	ID, Workspace, Environment, Requester string
	Reason                                string
	UsedBy                                string
	UsedAt, DueAt                         time.Time
	Overdue                               bool
	Reviewed                              bool
	ReviewedBy, Note                      string
	ReviewedAt                            time.Time
	// Yours: the viewer broke the glass or asked, and may not review it.
	Yours bool
}

func (w *Web) reviewsPage(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	notice := ""
	if r.URL.Query().Get("done") == "acknowledged" {
		notice = "Your review is recorded."
	}
	return w.showReviews(rw, r, s, http.StatusOK, "", notice)
}

func (w *Web) showReviews(rw http.ResponseWriter, r *http.Request, s *signedIn, status int, msg, notice string) error {
	list, err := w.svc.Reviews(r.Context(), true)
	if err != nil {
		return err
	}
	v := &reviewsView{Message: msg, Notice: notice}
	for _, rv := range list {
		bg := rv.BreakGlass
		row := reviewRow{
			ID: rv.Check.ID, Workspace: rv.Check.Workspace, Environment: rv.Check.Environment, Requester: rv.Check.Requester,
			Reason: bg.Reason, UsedBy: bg.UsedBy, Overdue: bg.Overdue, Reviewed: bg.ReviewedAt != nil, ReviewedBy: bg.ReviewedBy, Note: bg.ReviewNote,
			Yours: ident.Same(bg.UsedBy, s.user.Name) || ident.Same(rv.Check.Requester, s.user.Name),
		}
		for _, t := range []struct {
			dst *time.Time
			src *time.Time
		}{{&row.UsedAt, bg.UsedAt}, {&row.DueAt, bg.ReviewDueAt}, {&row.ReviewedAt, bg.ReviewedAt}} {
			if t.src != nil {
				*t.dst = *t.src
			}
		}
		if row.Overdue {
			v.Overdue++
		}
		v.Rows = append(v.Rows, row)
	}
	w.renderAs(rw, r, status, "reviews", s.user.Name, v)
	return nil
}

// acknowledge records the viewer's review of a use of break-glass.
func (w *Web) acknowledge(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	id := r.PathValue("id")
	_, err := w.svc.AcknowledgeBreakGlass(r.Context(), id, &gate.Reviewer{Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin}, r.PostFormValue("note"))
	if err == nil {
		redirect(rw, r, "/reviews?done=acknowledged")
		return nil
	}
	ue := refused(err, func(sentinel error) string {
		switch sentinel {
		case gate.ErrSelfReview:
			return "You broke the glass on this check, or asked for it: another person reviews it."
		case gate.ErrNotEligible:
			return "A review is given by an admin, an approver or a member of the break-glass group."
		case gate.ErrBadRequest:
			return "Write a note: what you checked, and what was done."
		case gate.ErrConflict:
			return "Someone reviewed it already."
		case gate.ErrNotFound:
			return "Nobody broke the glass on this check."
		}
		return ""
	})
	if ue == nil {
		return err
	}
	var u *userError
	errors.As(ue, &u)
	w.logFailure(r, u.status, err)
	return w.showReviews(rw, r, s, u.status, u.msg, "")
}
