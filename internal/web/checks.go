package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
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
	}
	return decisionText(d)
}

type checksView struct {
	Rows []checkRow
	// Prev and Next are the numbers of the neighbouring pages, 0 for none.
	Page, Prev, Next int
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
	"approved": "Your approval is recorded.",
	"rejected": "Your rejection is recorded; the pipeline will stop.",
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
	v.TOTPOK = hasTOTP && totpAllowed(req)
	if !v.PasskeyOK && !v.TOTPOK {
		v.NoFactorNote = "This check needs a passkey, and your account has none. Add one on your account page."
		if req.AAL <= 2 {
			v.NoFactorNote = "Your account has no factor that this check accepts. Add one on your account page."
		}
	}
	return v
}

// totpAllowed reports whether a TOTP code can meet req.
func totpAllowed(req *policy.Requirements) bool {
	if req.AAL > totp.AAL {
		return false
	}
	return len(req.Methods) == 0 || slices.ContainsFunc(totp.AMR, func(m string) bool { return slices.Contains(req.Methods, m) })
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
	switch {
	case errors.Is(err, gate.ErrNotFound):
		return failWith(http.StatusNotFound, "There is no such check.", err)
	case err != nil:
		return fmt.Errorf("reading check %s: %w", id, err)
	}
	return nil
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
	v.Message = msg
	v.OIDC = w.oidcName()
	if msg == "" {
		v.Notice = checkNotices[r.URL.Query().Get("done")]
	}
	w.renderAs(rw, r, status, "check", s.user.Name, v)
	return nil
}

// precheck refuses, before any ceremony, an answer that cannot count:
// so that a person does not spend a code, or touch a key, for nothing.
// Record checks all of it again under the check's lock.
func precheck(c *api.Check, u *store.User, method string) error {
	if err := gate.MayApprove(c, &gate.Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true}); err != nil {
		return recordError(err, c)
	}
	req := c.Assessment.Requirements
	if method == "totp" && !totpAllowed(req) {
		if req.AAL > totp.AAL {
			return fail(http.StatusForbidden, "This check needs level 3: a passkey with user verification. An authenticator app code is not enough.")
		}
		return fail(http.StatusForbidden, "This check accepts only these methods: "+strings.Join(req.Methods, ", ")+".")
	}
	return nil
}

func notEligibleMessage(req *policy.Requirements) string {
	if len(req.Groups) > 0 {
		return msgNotEligible + " It needs members of: " + strings.Join(req.Groups, ", ") + "."
	}
	return msgNotEligible + " It needs an admin or a member of the group \"" + gate.DefaultApproverGroup + "\"."
}

// recordError turns a refusal of gate.Record into a message.
func recordError(err error, c *api.Check) error {
	switch {
	case errors.Is(err, gate.ErrSelfApproval):
		return failWith(http.StatusForbidden, msgSelf, err)
	case errors.Is(err, gate.ErrNotPending):
		return failWith(http.StatusConflict, msgNotPending, err)
	case errors.Is(err, gate.ErrNotEligible):
		msg := msgNotEligible
		if c != nil && c.Assessment != nil && c.Assessment.Requirements != nil {
			msg = notEligibleMessage(c.Assessment.Requirements)
		}
		return failWith(http.StatusForbidden, msg, err)
	case errors.Is(err, gate.ErrNotFound):
		return failWith(http.StatusNotFound, "There is no such check.", err)
	case errors.Is(err, gate.ErrBadRequest):
		return failWith(http.StatusBadRequest, "This answer could not be recorded.", err)
	}
	return fmt.Errorf("recording answer: %w", err)
}

// formError shows the review page again with a person's error, or
// returns any other error.
func (w *Web) formError(rw http.ResponseWriter, r *http.Request, s *signedIn, err error) error {
	var ue *userError
	if !errors.As(err, &ue) {
		return err
	}
	w.logFailure(r, ue.status, err)
	return w.showCheck(rw, r, s, ue.status, ue.msg)
}

func evidenceJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding evidence: %v", err)) // maps of strings and a struct of bytes always encode
	}
	return b
}

// approveTOTP approves with an authenticator app code: the code is the
// step-up, whatever the session's age. The code is checked and the
// factor written back (single use, failure counter, audit) in a
// transaction that commits before the approval is recorded: a code spent
// on an approval that is then refused stays spent, which is the safe way
// round.
func (w *Web) approveTOTP(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	c, err := w.review(r)
	if err != nil {
		return err
	}
	if err := precheck(c, s.user, "totp"); err != nil {
		return w.formError(rw, r, s, err)
	}
	code := normalizeCode(r.PostFormValue("code"))
	key, addr := ident.Key(s.user.Name), w.clientAddr(r)
	if w.throttle.Wait(key, addr) > 0 {
		return w.formError(rw, r, s, failWith(http.StatusTooManyRequests, totpMessage(totp.ErrLocked, false), totp.ErrLocked))
	}
	var cred *store.Credential
	var refused error
	err = w.st.InTx(ctx, func(tx store.Tx) error {
		var err error
		cred, refused, err = w.verifyTOTP(ctx, tx, s.user, code, map[string]any{"during": "approval", "check": c.ID})
		return err
	})
	if err != nil {
		return fmt.Errorf("verifying totp for approval: %w", err)
	}
	if errors.Is(refused, totp.ErrInvalid) {
		w.throttle.Fail(key, addr)
	} else if refused == nil {
		w.throttle.Succeed(key, addr)
	}
	if refused != nil {
		return w.formError(rw, r, s, failWith(http.StatusUnauthorized, totpMessage(refused, false), refused))
	}
	now := w.now().UTC()
	proof := &gate.Proof{
		Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin, Approved: true,
		AMR: totp.AMR, AAL: totp.AAL, AuthTime: now,
		Evidence: evidenceJSON(map[string]string{"method": "totp", "credential": cred.ID}),
	}
	if _, err := w.svc.Record(ctx, c.ID, proof); err != nil {
		return w.formError(rw, r, s, recordError(err, c))
	}
	redirect(rw, r, "/checks/"+url.PathEscape(c.ID)+"?done=approved")
	return nil
}

// reject records a no. A signed-in session is enough: saying no needs
// no step-up; the session's own proof is what is recorded.
func (w *Web) reject(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	c, err := w.review(r)
	if err != nil {
		return err
	}
	reason := gate.CleanReason(r.PostFormValue("reason"))
	if reason == "" {
		return w.showCheck(rw, r, s, http.StatusBadRequest, "Say why you reject it: the requester reads your reason.")
	}
	aal := gate.ClampAAL(s.sess.AAL)
	proof := &gate.Proof{
		Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin, Approved: false, Reason: reason,
		AMR: s.sess.AMR, AAL: aal, AuthTime: s.sess.AuthTime,
		Evidence: evidenceJSON(map[string]string{"method": "session"}),
	}
	if _, err := w.svc.Record(r.Context(), c.ID, proof); err != nil {
		return w.formError(rw, r, s, recordError(err, c))
	}
	redirect(rw, r, "/checks/"+url.PathEscape(c.ID)+"?done=rejected")
	return nil
}

// approvePasskeyBegin starts the approval ceremony: a WebAuthn assertion
// whose challenge the webauthn package derives from the check id, its plan
// digest and a server nonce. At aal 3 the options ask for user
// verification ("required").
func (w *Web) approvePasskeyBegin(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	c, err := w.review(r)
	if err != nil {
		return err
	}
	if err := precheck(c, s.user, "passkey"); err != nil {
		return err
	}
	all, err := w.st.ListCredentials(r.Context(), s.user.ID)
	if err != nil {
		return fmt.Errorf("listing factors: %w", err)
	}
	creds := webauthnOnly(all)
	if len(creds) == 0 {
		return fail(http.StatusBadRequest, msgNoPasskey)
	}
	opts, sess, nonce, err := w.wa.BeginApproval(waUser(s.user), creds, c.ID, approvalDigest(c))
	if errors.Is(err, webauthn.ErrNoCredentials) {
		return fail(http.StatusBadRequest, msgNoPasskey)
	}
	if err != nil {
		return fmt.Errorf("beginning passkey approval: %w", err)
	}
	if c.Assessment.Requirements.AAL >= webauthn.AALWithUV {
		if opts, err = requireUV(opts); err != nil {
			return err
		}
	}
	err = w.putCeremony(r.Context(), rw, &ceremony{Purpose: purposeApprove, Bind: s.hash, Subject: c.ID, Data: sess, Nonce: nonce}, ceremonyTTL, ceremonyDir(r))
	if err != nil {
		return err
	}
	writeJSON(rw, http.StatusOK, opts)
	return nil
}

// requireUV sets publicKey.userVerification to "required" in WebAuthn
// request options. (FinishApproval enforces it; this makes the browser
// ask for the PIN or biometrics instead of failing afterwards.)
func requireUV(opts json.RawMessage) (json.RawMessage, error) {
	var o map[string]json.RawMessage
	if err := json.Unmarshal(opts, &o); err != nil {
		return nil, fmt.Errorf("reading webauthn options: %w", err)
	}
	var pk map[string]json.RawMessage
	if err := json.Unmarshal(o["publicKey"], &pk); err != nil {
		return nil, fmt.Errorf("reading webauthn options: %w", err)
	}
	pk["userVerification"] = json.RawMessage(`"required"`)
	b, err := json.Marshal(pk)
	if err != nil {
		return nil, err
	}
	o["publicKey"] = b
	return json.Marshal(o)
}

// approvalDigest is the plan digest an approval signature covers: the
// digest of the plan shown, or "none" for an operation without a plan
// (secret.read), since the challenge needs a non-empty value.
func approvalDigest(c *api.Check) string {
	if c.PlanSHA256 == "" {
		return "none"
	}
	return c.PlanSHA256
}

// passkeyEvidence is what is stored with a passkey approval: the
// Assertion's fields as they are (so the evidence decodes as a
// webauthn.Assertion), with what VerifyStoredAssertion needs besides them:
// the nonce, and the check and plan digest the challenge covered.
func passkeyEvidence(as *webauthn.Assertion, checkID, digest, nonce string) (json.RawMessage, error) {
	b, err := json.Marshal(as)
	if err != nil {
		return nil, fmt.Errorf("encoding assertion: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encoding assertion: %w", err)
	}
	for k, v := range map[string]string{"method": "webauthn", "check_id": checkID, "plan_digest": digest, "nonce": nonce} {
		m[k], _ = json.Marshal(v)
	}
	return json.Marshal(m)
}

// approvePasskeyFinish verifies the assertion against the check it was
// begun for and records the approval with the assertion as evidence. The
// person's passkeys are read for update and the one used written back in
// a transaction that commits before the approval is recorded (as for a
// TOTP code: a signature spent on a refused approval stays spent).
func (w *Web) approvePasskeyFinish(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	cer, err := w.takeCeremony(rw, r, purposeApprove, s.hash, id, s.user.Name)
	if err != nil {
		return ceremonyFailure(err, msgCeremonyGone)
	}
	c, err := w.review(r)
	if err != nil {
		return err
	}
	if err := precheck(c, s.user, "passkey"); err != nil {
		return err
	}
	req := c.Assessment.Requirements
	requireUV := req.AAL >= webauthn.AALWithUV
	digest := approvalDigest(c)
	var as *webauthn.Assertion
	var refused error
	err = w.st.InTx(ctx, func(tx store.Tx) error {
		creds, err := lockedPasskeys(ctx, tx, s.user.ID)
		if err != nil {
			return err
		}
		a, cred, err := w.wa.FinishApproval(waUser(s.user), creds, cer.Data, body, c.ID, digest, requireUV)
		if err != nil {
			if refused = passkeyRefusal(err, requireUV); refused == nil {
				return err
			}
			if errors.Is(err, webauthn.ErrCloned) {
				return w.audit(ctx, tx, audit.CredentialSignCount, s.user.Name, "user:"+s.user.ID, map[string]any{"during": "approval", "check": c.ID, "error": err.Error()})
			}
			return nil
		}
		as = a
		return tx.UpdateCredential(ctx, cred)
	})
	if err != nil {
		return fmt.Errorf("verifying passkey approval: %w", err)
	}
	if refused != nil {
		return refused
	}
	now := w.now().UTC()
	if !gate.Qualifies(req, c.Requester, &store.Approval{Subject: s.user.Name, Approved: true, AAL: as.AAL, AMR: as.AMR, AuthTime: now}, now) {
		return fail(http.StatusForbidden, fmt.Sprintf("This proof reached level %d (%s); this check needs %s. Nothing was recorded.", as.AAL, strings.Join(as.AMR, ", "), aalText(req.AAL)))
	}
	evidence, err := passkeyEvidence(as, c.ID, digest, cer.Nonce)
	if err != nil {
		return err
	}
	proof := &gate.Proof{
		Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin, Approved: true,
		AMR: as.AMR, AAL: as.AAL, AuthTime: now, Evidence: evidence,
	}
	if _, err := w.svc.Record(ctx, c.ID, proof); err != nil {
		return recordError(err, c)
	}
	writeJSON(rw, http.StatusOK, map[string]string{"redirect": "/checks/" + url.PathEscape(c.ID) + "?done=approved"})
	return nil
}
