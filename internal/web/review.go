package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// Messages of refused answers.
const (
	msgSelf        = "You asked for this change; someone else must approve it."
	msgNotPending  = "This check is no longer waiting for people: it was approved, rejected or has expired."
	msgNotEligible = "You are not one of the approvers of this check."
	msgNoPasskey   = "Your account has no passkey. Add one on your account page, or use an authenticator app code if this check accepts it."
)

type checkRow struct {
	ID          string
	Workspace   string
	Environment string
	Kind        string
	Requester   string
	Decision    string
	Needs       string
	Approved    string // "1 of 2"
	TimeLeft    string
	Mine        bool     // the viewer asked for it
	Summary     []string // one line per finding that asks for people, strictest first
}

// maxSummary caps the one-line summaries of a check in the list.
const maxSummary = 3

// summaryLines are the reasons of the findings that make people decide (a
// step-up or a deny), strictest first, at most n: what a reviewer needs to
// know before opening the check.
func summaryLines(a *policy.Assessment, n int) []string {
	var out []string
	for _, d := range []policy.Decision{policy.Deny, policy.StepUp} {
		for _, f := range a.Findings {
			if f.Decision == d && len(out) < n {
				out = append(out, f.Reason)
			}
		}
	}
	return out
}

// stateText says where a check is, for its page's heading: a check that
// needed approval and got it no longer "needs approval".
func stateText(d policy.Decision, state string) string {
	switch state {
	case "approved":
		return "approved: the grant is issued"
	case "consumed":
		return "approved and used"
	case "rejected":
		return "rejected"
	case "expired":
		return "expired before it was approved"
	case "pending":
		if d == policy.Deny { // a deny break-glass may override
			return "denied by the policy: only break-glass can satisfy it"
		}
	}
	return decisionText(d)
}

type checksView struct {
	Rows []checkRow
	// Prev and Next are the numbers of the neighbouring pages, 0 for none.
	Page, Prev, Next int
	// ToReview and Overdue count the uses of break-glass waiting for a
	// review, and those late: shown to everyone who may review them.
	ToReview, Overdue int
}

func (v *checksView) title() string { return "Checks waiting for people" }

// checksList shows the pending checks, newest first.
func (w *Web) checksList(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	page, err := gate.ParsePage(r.URL.Query().Get("page"))
	if err != nil {
		page = 1
	}
	list, more, err := w.svc.PendingPage(r.Context(), page)
	if err != nil {
		return fmt.Errorf("listing pending checks: %w", err)
	}
	slices.SortStableFunc(list, func(a, b *api.Check) int { return b.CreatedAt.Compare(a.CreatedAt) })
	now := w.now()
	v := &checksView{Page: page, Prev: page - 1}
	if v.ToReview, v.Overdue, err = w.reviewsWaiting(r.Context(), s.user); err != nil {
		return err
	}
	if more {
		v.Next = page + 1
	}
	for _, c := range list {
		row := checkRow{
			ID: c.ID, Workspace: c.Workspace, Environment: c.Environment, Kind: c.Kind, Requester: c.Requester,
			TimeLeft: timeLeft(c.ExpiresAt.Sub(now)), Mine: ident.Same(c.Requester, s.user.Name),
		}
		if a := c.Assessment; a != nil {
			row.Decision = decisionText(a.Decision)
			row.Summary = summaryLines(a, maxSummary)
			if req := a.Requirements; req != nil {
				row.Needs = needsShort(req)
				row.Approved = fmt.Sprintf("%d of %d", counted(req, c, now), max(req.Approvals, 1))
			}
		}
		v.Rows = append(v.Rows, row)
	}
	w.renderAs(rw, r, http.StatusOK, "checks", s.user.Name, v)
	return nil
}

func decisionText(d policy.Decision) string {
	switch d {
	case policy.Allow:
		return "allowed"
	case policy.StepUp:
		return "needs approval"
	case policy.Deny:
		return "denied"
	}
	return string(d)
}

func aalText(aal int) string {
	switch aal {
	case 3:
		return "level 3: a passkey with user verification (PIN or biometrics)"
	case 2:
		return "level 2: a passkey or an authenticator app code"
	}
	return "level 1: a signed-in person"
}

func needsShort(req *policy.Requirements) string {
	n := "the requester or 1 approver"
	if req.Approvals > 0 {
		n = fmt.Sprintf("%d approver", req.Approvals)
		if req.Approvals > 1 {
			n += "s"
		}
	}
	return fmt.Sprintf("AAL%d, %s", req.AAL, n)
}

// counted is how many distinct people's approvals count now.
func counted(req *policy.Requirements, c *api.Check, now time.Time) int {
	ok := map[string]bool{}
	for _, a := range c.Approvals {
		if counts(req, c, a, now) {
			ok[a.Subject] = true
		}
	}
	return len(ok)
}

// counts reports whether an answer to c counts now towards req: its
// person's standing (a.Withdrawn) and its proof.
func counts(req *policy.Requirements, c *api.Check, a api.Approval, now time.Time) bool {
	return a.Withdrawn == "" && gate.Qualifies(req, c.Requester, &store.Approval{Subject: a.Subject, Approved: a.Approved, AAL: a.AAL, AMR: a.AMR, AuthTime: a.AuthTime}, now)
}

// timeLeft says how long until d runs out, for a person.
func timeLeft(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return "less than a minute left"
	case d < time.Hour:
		return fmt.Sprintf("%d min left", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min left", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%d days left", int(d/(24*time.Hour)))
}

// durationText says a duration in words: "90 s", "5 min", "1 h 30 min".
func durationText(d time.Duration) string {
	switch {
	case d < 2*time.Minute && d%time.Minute != 0:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d h %d min", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

type answerView struct {
	Subject  string
	Approved bool
	Reason   string
	AAL      int
	AMR      string
	At       time.Time
	Counts   bool
	// Withdrawn says why the person's approval no longer counts
	// ("disabled", "not eligible"...).
	Withdrawn string
}

type findingView struct {
	Rule      string
	Severity  string
	Decision  string
	Reason    string
	Addresses []string
	More      int // addresses not shown
}

type kv struct{ Key, Value string }

type actionCount struct {
	Action string
	Count  int
}

type actionGroup struct {
	Action  string
	Count   int
	Changes []*changeView
}

// checkView is the review page.
type checkView struct {
	ID          string
	State       string
	Pending     bool
	Kind        string
	Workspace   string
	Environment string
	Decision    string

	// What it needs.
	HasReq    bool
	AAL       int
	AALText   string
	Approvals int // distinct approvers needed (0: the requester may confirm)
	Needed    int // approvals to count, at least 1
	Counted   int
	MaxAge    string
	Methods   []string
	Groups    []string
	TimeLeft  string
	ExpiresAt time.Time
	Answers   []answerView

	// Secrets are what the grant would release (a secret.read, or an
	// apply that also reads secrets).
	Secrets []secretView

	Findings  []findingView
	Risky     []*changeView
	RiskyMore int
	// All changes, by action.
	ChangesKnown bool
	ByAction     []actionCount
	ChangeGroups []actionGroup
	Listed       int // changes listed in ChangeGroups
	NotListed    int
	// The list of every change is paged, maxListed a page: ChangesPage is
	// this page (1 on), PrevChanges and NextChanges the others (0: none).
	ChangesPage, PrevChanges, NextChanges int

	Requester      string
	RequesterIsYou bool
	Pipeline       []kv // from a CI token's verified claims
	// PipelineUnverified is what the pipeline said of itself: shown as
	// such, never as a link.
	PipelineUnverified []kv
	RunURL             string // an https link, from verified claims
	RunText            string // a run URL that is not https: text only
	PlanSHA256         string
	PlanFileSHA256     string
	Production         bool
	ProdReasons        []string

	// What the viewer may do.
	Viewer          string
	Self            bool
	NotEligible     bool
	AlreadyApproved bool
	PasskeyOK       bool
	TOTPOK          bool
	UVRequired      bool
	NoFactorNote    string
	OIDC            string // the identity provider's name, when configured

	// BreakGlass is the check's break-glass request, if any.
	BreakGlass *breakGlassView

	Message string
	Notice  string
}

// secretView is one secret a check would release, and where to.
type secretView struct {
	Name string
	Env  string // empty: printed by stepgate secrets get
}

func (v *checkView) title() string { return "Check " + v.ID }

var checkNotices = map[string]string{
	"approved":   "Your approval is recorded.",
	"rejected":   "Your rejection is recorded; the pipeline will stop.",
	"breakglass": "You broke the glass: the check is approved. Everyone is told, and another person must review it.",
}

// Caps that keep a review page readable on a phone and bounded in size.
const (
	maxRisky     = 50
	maxListed    = 300
	maxAddresses = 20
)

func (w *Web) buildCheckView(c *api.Check, changes []plan.Change, u *store.User, creds []*store.Credential, changesPage int) *checkView {
	now := w.now()
	v := &checkView{
		ID: c.ID, State: c.State, Pending: c.State == string(store.StatePending), Kind: c.Kind,
		Workspace: c.Workspace, Environment: c.Environment, Requester: c.Requester,
		PlanSHA256: c.PlanSHA256, PlanFileSHA256: c.PlanFileSHA256, Viewer: u.Name,
		TimeLeft: timeLeft(c.ExpiresAt.Sub(now)), ExpiresAt: c.ExpiresAt,
	}
	a := c.Assessment
	if a == nil {
		a = &policy.Assessment{}
	}
	v.Decision = stateText(a.Decision, c.State)
	v.Production, v.ProdReasons = a.Summary.Production, a.Summary.ProductionReasons
	req := a.Requirements
	if req != nil {
		v.HasReq, v.AAL, v.AALText, v.Approvals, v.Needed = true, req.AAL, aalText(req.AAL), req.Approvals, max(req.Approvals, 1)
		v.Counted = counted(req, c, now)
		if req.MaxAge > 0 {
			v.MaxAge = durationText(time.Duration(req.MaxAge) * time.Second)
		}
		v.Methods, v.Groups = req.Methods, req.Groups
	}
	for _, ap := range c.Approvals {
		ok := req != nil && counts(req, c, ap, now)
		v.Answers = append(v.Answers, answerView{Subject: ap.Subject, Approved: ap.Approved, Reason: ap.Reason, AAL: ap.AAL, AMR: strings.Join(ap.AMR, ", "), At: ap.CreatedAt, Counts: ok, Withdrawn: ap.Withdrawn})
		if ap.Subject == u.Name && ap.Approved && ok {
			v.AlreadyApproved = true
		}
	}

	// Findings, and the addresses they name, in their order.
	reasons := map[string][]string{}
	var named []string
	for _, f := range a.Findings {
		fv := findingView{Rule: f.Rule, Severity: f.Severity, Decision: decisionText(f.Decision), Reason: f.Reason}
		for i, addr := range f.Addresses {
			if i < maxAddresses {
				fv.Addresses = append(fv.Addresses, addr)
			} else {
				fv.More++
			}
			if _, seen := reasons[addr]; !seen {
				named = append(named, addr)
			}
			reasons[addr] = append(reasons[addr], f.Rule+": "+f.Reason)
		}
		v.Findings = append(v.Findings, fv)
	}

	// Changes: the risky ones first, then every one by action.
	v.ChangesKnown = changes != nil
	byAddr := map[string]*plan.Change{}
	for i := range changes {
		ch := &changes[i]
		byAddr[ch.Address] = ch
		if ch.PreviousAddress != "" {
			if _, ok := byAddr[ch.PreviousAddress]; !ok {
				byAddr[ch.PreviousAddress] = ch
			}
		}
	}
	shown := map[*plan.Change]bool{}
	for _, addr := range named {
		ch, ok := byAddr[addr]
		if !ok || shown[ch] {
			continue
		}
		shown[ch] = true
		if len(v.Risky) >= maxRisky {
			v.RiskyMore++
			continue
		}
		cv := newChangeView(ch)
		cv.Reasons = reasons[addr]
		v.Risky = append(v.Risky, cv)
	}
	for _, act := range plan.Actions {
		if n := a.Summary.ByAction[string(act)]; n > 0 {
			v.ByAction = append(v.ByAction, actionCount{Action: string(act), Count: n})
		}
	}
	groups := map[plan.Action]*actionGroup{}
	pages := max((len(changes)+maxListed-1)/maxListed, 1)
	v.ChangesPage = min(max(changesPage, 1), pages)
	if v.ChangesPage > 1 {
		v.PrevChanges = v.ChangesPage - 1
	}
	if v.ChangesPage < pages {
		v.NextChanges = v.ChangesPage + 1
	}
	first := (v.ChangesPage - 1) * maxListed
	for i := range changes {
		ch := &changes[i]
		g := groups[ch.Action]
		if g == nil {
			g = &actionGroup{Action: string(ch.Action)}
			groups[ch.Action] = g
		}
		g.Count++
		if i < first || i >= first+maxListed {
			v.NotListed++
			continue
		}
		v.Listed++
		g.Changes = append(g.Changes, newChangeView(ch))
	}
	for _, act := range plan.Actions {
		if g := groups[act]; g != nil {
			v.ChangeGroups = append(v.ChangeGroups, *g)
			delete(groups, act)
		}
	}
	for _, g := range groups { // an action this stepgate does not know
		v.ChangeGroups = append(v.ChangeGroups, *g)
	}

	for _, sec := range c.Secrets {
		v.Secrets = append(v.Secrets, secretView{Name: sec.Name, Env: sec.Env})
	}

	// Who asked.
	for k, val := range c.Pipeline {
		if k == "run_url" {
			if isHTTPS(val) {
				v.RunURL = val
			} else {
				v.RunText = val
			}
			continue
		}
		v.Pipeline = append(v.Pipeline, kv{k, val})
	}
	slices.SortFunc(v.Pipeline, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	for k, val := range c.PipelineUnverified {
		v.PipelineUnverified = append(v.PipelineUnverified, kv{k, val})
	}
	slices.SortFunc(v.PipelineUnverified, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
	v.RequesterIsYou = ident.Same(c.Requester, u.Name)

	// What the viewer may do.
	if !v.Pending || req == nil {
		return v
	}
	p := &gate.Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true}
	switch {
	case req.Approvals > 0 && ident.Same(c.Requester, u.Name):
		v.Self = true
	case !gate.Eligible(req, c.Requester, p):
		v.NotEligible = true
	}
	v.UVRequired = req.AAL >= 3
	hasPasskey := slices.ContainsFunc(creds, func(c *store.Credential) bool { return c.Kind == store.KindWebAuthn })
	hasTOTP := slices.ContainsFunc(creds, func(c *store.Credential) bool { return c.Kind == store.KindTOTP })
	v.PasskeyOK = hasPasskey
	v.TOTPOK = hasTOTP && gate.TOTPMeets(req)
	if !v.PasskeyOK && !v.TOTPOK {
		v.NoFactorNote = "This check needs a passkey, and your account has none. Add one on your account page."
		if req.AAL <= 2 {
			v.NoFactorNote = "Your account has no factor that this check accepts. Add one on your account page."
		}
	}
	return v
}

// isHTTPS reports whether s is an absolute https URL, the only kind of
// pipeline link the page makes clickable.
func isHTTPS(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
}

// review reads the check of the request's path, to answer it (without
// its plan's changes, which only the page shows).
func (w *Web) review(r *http.Request) (*api.Check, error) {
	return w.reviewCheck(r.Context(), r.PathValue("id"))
}

// reviewCheck reads a check, to answer it.
func (w *Web) reviewCheck(ctx context.Context, id string) (*api.Check, error) {
	c, err := w.svc.ReviewCheck(ctx, id)
	return c, checkReadError(id, err)
}

// checkReadError turns an error reading check id into the page's answer.
func checkReadError(id string, err error) error {
	if err == nil {
		return nil
	}
	if ue := refused(err, func(sentinel error) string {
		if sentinel == gate.ErrNotFound {
			return "There is no such check."
		}
		return ""
	}); ue != nil {
		return ue
	}
	return fmt.Errorf("reading check %s: %w", id, err)
}

func (w *Web) checkPage(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	return w.showCheck(rw, r, s, http.StatusOK, "")
}

// showCheck renders the review page, with a message when msg is set.
func (w *Web) showCheck(rw http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string) error {
	id := r.PathValue("id")
	c, changes, err := w.svc.Review(r.Context(), id)
	if err := checkReadError(id, err); err != nil {
		return err
	}
	creds, err := w.st.ListCredentials(r.Context(), s.user.ID)
	if err != nil {
		return fmt.Errorf("listing factors: %w", err)
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("changes"))
	v := w.buildCheckView(c, changes, s.user, creds, page)
	v.BreakGlass = w.breakGlassOf(c, s.user, creds)
	v.Message = msg
	v.OIDC = w.oidcName()
	if msg == "" {
		v.Notice = checkNotices[r.URL.Query().Get("done")]
	}
	w.renderAs(rw, r, status, "check", s.user.Name, v)
	return nil
}
