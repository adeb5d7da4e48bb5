package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// The people API: people review, approve and reject checks from the
// command line with an ID token of the organisation's OpenID Connect
// provider as their bearer token. Approving is a step-up: the token's
// acr/amr must reach the check's level and its auth_time be within the
// check's max_age; otherwise the answer is an RFC 9470 challenge
// (insufficient_user_authentication, with acr_values and max_age) that the
// client follows by signing in again. The rules mirror the web's approval
// by re-authentication (internal/web/oidc.go); those both follow are in
// package gate (answer.go).

type peopleSide struct {
	rp          *oidc.RP
	bearer      *oidc.Bearer
	cliClientID string
	now         func() time.Time
}

// SetPeople enables the people API and the protected resource metadata
// with the relying party of server.oidc: ID tokens issued to its client or
// to cliClientID (the command line's public client; "" for none) are
// accepted as bearer tokens. Without it the people API answers 404. Call
// it before serving.
func (a *API) SetPeople(rp *oidc.RP, cliClientID string, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	a.people = &peopleSide{rp: rp, bearer: rp.Bearer(cliClientID), cliClientID: cliClientID, now: now}
}

var errNoPeople = fmt.Errorf("%w: this server has no OpenID Connect provider for people (server.oidc)", gate.ErrNotFound)

// forPeople serves a route of the people API, or answers 404 without
// SetPeople.
func (a *API) forPeople(h func(http.ResponseWriter, *http.Request, *peopleSide) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if a.people == nil {
			return errNoPeople
		}
		return h(w, r, a.people)
	}
}

// resourceMetadataURL is where the protected resource metadata is.
func (a *API) resourceMetadataURL() string {
	return a.svc.Issuer() + api.PathProtectedResource
}

// protectedResource is the RFC 9728 metadata: the issuer whose tokens the
// people API accepts, and the client the command line signs in with.
func (a *API) protectedResource(w http.ResponseWriter, r *http.Request, p *peopleSide) error {
	md := api.ProtectedResource{
		Resource:               a.svc.Issuer(),
		AuthorizationServers:   []string{p.rp.Issuer()},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "stepgate",
		ScopesSupported:        p.rp.Scopes(),
	}
	if p.cliClientID != "" {
		md.CLIClientID = p.cliClientID
		md.CLIScopes = p.rp.Scopes()
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, md)
	return nil
}

// challenge is a refusal that carries a WWW-Authenticate: Bearer challenge
// (RFC 6750 section 3, RFC 9470 section 3). handle writes it.
type challenge struct {
	status int
	code   string // of the JSON body, and the challenge's error
	msg    string // of the JSON body, and the challenge's error_description
	params [][2]string
	cause  error
	// noError leaves error and error_description out of the header (RFC
	// 6750 section 3.1: a request without any token).
	noError bool
}

func (c *challenge) Error() string {
	if c.cause != nil {
		return c.code + ": " + c.msg + ": " + c.cause.Error()
	}
	return c.code + ": " + c.msg
}

func (c *challenge) Unwrap() error { return c.cause }

// header is the WWW-Authenticate value: Bearer error="...",
// error_description="...", then the other parameters in order.
func (c *challenge) header() string {
	var parts []string
	if !c.noError {
		parts = append(parts, `error=`+quote(c.code), `error_description=`+quote(c.msg))
	}
	for _, p := range c.params {
		parts = append(parts, p[0]+"="+quote(p[1]))
	}
	if len(parts) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// quote makes a quoted-string (RFC 9110 section 5.6.4) of s within the
// characters RFC 6750 section 3 allows in its attributes (%x20-21 /
// %x23-5B / %x5D-7E): a quote or backslash becomes ', anything else
// outside them a space.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\'')
		case r < 0x20 || r > 0x7e:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// bearerToken is the token of Authorization: Bearer (RFC 6750 section
// 2.1; the only method accepted).
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// person authenticates the request's bearer ID token and returns the
// stepgate account linked to its subject.
func (a *API) person(r *http.Request, p *peopleSide) (*store.User, *oidc.Identity, error) {
	meta := [2]string{"resource_metadata", a.resourceMetadataURL()}
	tok := bearerToken(r)
	if tok == "" {
		// RFC 6750 section 3.1: no error code when the request has no
		// authentication at all.
		return nil, nil, &challenge{status: http.StatusUnauthorized, code: api.CodeInvalidToken, noError: true, msg: "an ID token of " + p.rp.Name() + " is required (Authorization: Bearer ...; stepgate login gets one)", params: [][2]string{meta}}
	}
	id, err := p.bearer.Verify(r.Context(), tok)
	if err != nil {
		msg := "the ID token is invalid"
		if errors.Is(err, oidc.ErrExpired) {
			msg = "the ID token has expired"
		}
		return nil, nil, &challenge{status: http.StatusUnauthorized, code: api.CodeInvalidToken, msg: msg, params: [][2]string{meta}, cause: err}
	}
	link := "oidc:" + id.Subject
	setActor(r, link) // until the account is known
	u, err := a.st.FindUserByLink(r.Context(), link)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, fmt.Errorf("%w: your identity at %s (%s) is not linked to a stepgate account: sign in once on the web at %s/signin, or ask an admin to run: stepgate users link NAME %s",
			gate.ErrForbidden, p.rp.Name(), link, a.svc.Issuer(), link)
	case err != nil:
		return nil, nil, fmt.Errorf("finding the account linked to %s: %w", link, err)
	case !u.DisabledAt.IsZero():
		return nil, nil, fmt.Errorf("%w: the stepgate account %s is disabled", gate.ErrForbidden, u.Name)
	}
	if p.rp.SyncsGroups() && !slices.Equal(u.Groups, id.Groups) {
		// The provider decides the groups, as at a web sign-in: those of
		// this token, never older ones kept in the account. They are kept
		// in the account too, as a web sign-in keeps them: whether an
		// approval still counts is decided with the account's groups.
		if err := gate.SyncGroups(r.Context(), a.st, p.now(), u, id.Groups, id.Issuer); err != nil {
			return nil, nil, err
		}
	}
	setActor(r, u.Name)
	return u, id, nil
}

func (a *API) peopleMe(w http.ResponseWriter, r *http.Request, p *peopleSide) error {
	u, id, err := a.person(r, p)
	if err != nil {
		return err
	}
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	amr := id.AMR
	if amr == nil {
		amr = []string{}
	}
	writeJSON(w, http.StatusOK, api.Me{
		Name: u.Name, Groups: groups, Admin: u.Admin, Issuer: id.Issuer, Subject: id.Subject,
		ACR: id.ACR, AMR: amr, AAL: gate.ClampAAL(id.Level), AuthTime: id.AuthTime,
	})
	return nil
}

// asProof is what gate.Eligible needs of a person.
func asProof(u *store.User) *gate.Proof {
	return &gate.Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true}
}

// peopleChecks lists the pending checks the person may answer, newest
// first (as gate.Service.Pending lists them).
func (a *API) peopleChecks(w http.ResponseWriter, r *http.Request, p *peopleSide) error {
	u, _, err := a.person(r, p)
	if err != nil {
		return err
	}
	page, err := gate.ParsePage(r.URL.Query().Get("page"))
	if err != nil {
		return err
	}
	list, more, err := a.svc.PendingPage(r.Context(), page)
	if err != nil {
		return err
	}
	out := api.ReviewList{Checks: []api.ReviewItem{}}
	if more {
		out.NextPage = page + 1
	}
	for _, c := range list {
		if c.Assessment == nil || c.Assessment.Requirements == nil || !gate.Eligible(c.Assessment.Requirements, c.Requester, asProof(u)) {
			continue
		}
		approved := 0
		for _, ap := range c.Approvals {
			if ap.Approved {
				approved++
			}
		}
		out.Checks = append(out.Checks, api.ReviewItem{
			ID: c.ID, Kind: c.Kind, Workspace: c.Workspace, Environment: c.Environment, Requester: c.Requester,
			Decision: c.Assessment.Decision, Requirements: c.Assessment.Requirements, Findings: len(c.Assessment.Findings),
			PlanSHA256: c.PlanSHA256, Approved: approved, Mine: ident.Same(c.Requester, u.Name), ReviewURL: c.ReviewURL,
			CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// peopleCheck shows one check: its assessment (decision, requirements,
// findings with their addresses), the plan's digest, who asked and the
// answers so far. Never its grant.
func (a *API) peopleCheck(w http.ResponseWriter, r *http.Request, p *peopleSide) error {
	if _, _, err := a.person(r, p); err != nil {
		return err
	}
	c, err := a.svc.ReviewCheck(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	c.Grant = ""
	writeJSON(w, http.StatusOK, c)
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// personAnswer is an approve or reject request: who answers, proven by
// which ID token, about which check, and the reason of a rejection.
type personAnswer struct {
	user   *store.User
	id     *oidc.Identity
	check  *api.Check
	reason string
}

// answer reads an approve or reject request and the check it is about,
// refusing it when the plan is not the one the person reviewed.
func (a *API) answer(r *http.Request, p *peopleSide) (*personAnswer, error) {
	u, id, err := a.person(r, p)
	if err != nil {
		return nil, err
	}
	var body api.AnswerRequest
	if err := decodeJSON(r, &body); err != nil {
		return nil, err
	}
	sum := strings.ToLower(strings.TrimSpace(body.PlanSHA256))
	if sum != "" && !sha256Hex.MatchString(sum) {
		return nil, fmt.Errorf("%w: plan_sha256 must be the hex SHA-256 of the plan you reviewed (the check's plan_sha256)", gate.ErrBadRequest)
	}
	c, err := a.svc.ReviewCheck(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	switch {
	case sum == "" && c.PlanSHA256 != "":
		return nil, fmt.Errorf("%w: plan_sha256 must be the hex SHA-256 of the plan you reviewed (the check's plan_sha256)", gate.ErrBadRequest)
	case sum != c.PlanSHA256:
		return nil, fmt.Errorf("%w: check %s is for plan sha256 %s, not %s, the plan you reviewed; nothing was recorded", gate.ErrConflict, c.ID, c.PlanSHA256, sum)
	}
	return &personAnswer{user: u, id: id, check: c, reason: body.Reason}, nil
}

// notWaiting refuses an answer to a check that no longer waits for people.
func notWaiting(c *api.Check) error {
	return fmt.Errorf("%w: check %s is %s, no longer waiting for people", gate.ErrNotPending, c.ID, c.State)
}

// precheck refuses, before any step-up, an answer that cannot count, as
// the web does: so that a person does not sign in again for nothing.
func precheck(c *api.Check, u *store.User) error {
	err := gate.MayApprove(c, asProof(u))
	switch {
	case errors.Is(err, gate.ErrNotPending):
		return notWaiting(c)
	case errors.Is(err, gate.ErrSelfApproval):
		return fmt.Errorf("%w: you asked for this change (check %s); someone else must approve it", gate.ErrForbidden, c.ID)
	case errors.Is(err, gate.ErrNotEligible):
		return fmt.Errorf("%w: %s", gate.ErrForbidden, notEligible(c.Assessment.Requirements))
	}
	return nil
}

func notEligible(req *policy.Requirements) string {
	if len(req.Groups) > 0 {
		return "you are not one of the approvers of this check: it needs members of " + strings.Join(req.Groups, ", ")
	}
	return `you are not one of the approvers of this check: it needs an admin or a member of the group "` + gate.DefaultApproverGroup + `"`
}

// recordError maps a refusal of gate.Service.Record.
func recordError(err error, req *policy.Requirements) error {
	switch {
	case errors.Is(err, gate.ErrSelfApproval):
		return fmt.Errorf("%w: you asked for this change; someone else must approve it: %w", gate.ErrForbidden, err)
	case errors.Is(err, gate.ErrNotEligible):
		return fmt.Errorf("%w: %s: %w", gate.ErrForbidden, notEligible(req), err)
	}
	return err
}

// peopleApprove records an approval whose step-up is the bearer ID token:
// its acr/amr at the check's level, its auth_time within the check's
// max_age (five minutes when it has none). Otherwise it answers the RFC
// 9470 challenge with the acr_values and max_age to sign in again with.
func (a *API) peopleApprove(w http.ResponseWriter, r *http.Request, p *peopleSide) error {
	ans, err := a.answer(r, p)
	if err != nil {
		return err
	}
	u, id, c := ans.user, ans.id, ans.check
	if err := precheck(c, u); err != nil {
		return err
	}
	req := c.Assessment.Requirements
	level := gate.ClampAAL(req.AAL)
	maxAge := gate.StepUpAge(req)
	if err := p.rp.Fresh(id, level, maxAge); err != nil {
		desc := fmt.Sprintf("check %s needs a sign-in at %s at level %d within the last %d seconds", c.ID, p.rp.Name(), level, int64(maxAge/time.Second))
		if errors.Is(err, oidc.ErrLevel) {
			desc = fmt.Sprintf("your sign-in reached level %d; check %s needs level %d: sign in again with a stronger method", gate.ClampAAL(id.Level), c.ID, level)
		} else if !id.AuthTime.IsZero() {
			desc = fmt.Sprintf("your sign-in is older than check %s accepts (%d seconds): sign in again", c.ID, int64(maxAge/time.Second))
		}
		var params [][2]string
		if acr := p.rp.ACRValues(level); acr != "" {
			params = append(params, [2]string{"acr_values", acr})
		}
		params = append(params, [2]string{"max_age", strconv.FormatInt(int64(maxAge/time.Second), 10)}, [2]string{"resource_metadata", a.resourceMetadataURL()})
		return &challenge{status: http.StatusUnauthorized, code: api.CodeInsufficientUserAuthentication, msg: desc, params: params, cause: err}
	}
	aal := gate.ClampAAL(id.Level)
	now := p.now().UTC()
	proof := &gate.Proof{
		Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true,
		AMR: id.AMR, AAL: aal, AuthTime: id.AuthTime, Evidence: gate.OIDCEvidence(id),
	}
	if gate.Counts(c, proof, now) != nil {
		return fmt.Errorf("%w: this sign-in (level %d, amr %s) cannot count for check %s, which accepts only the methods %s; nothing was recorded",
			gate.ErrForbidden, aal, strings.Join(id.AMR, " "), c.ID, strings.Join(req.Methods, ", "))
	}
	v, err := a.svc.Record(r.Context(), c.ID, proof)
	if err != nil {
		return recordError(err, req)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// peopleReject records a no. As on the web, saying no needs no step-up:
// a valid ID token is enough, and what it proves is recorded.
func (a *API) peopleReject(w http.ResponseWriter, r *http.Request, p *peopleSide) error {
	ans, err := a.answer(r, p)
	if err != nil {
		return err
	}
	u, id, c := ans.user, ans.id, ans.check
	reason := gate.CleanReason(ans.reason)
	if reason == "" {
		return fmt.Errorf("%w: a rejection needs a reason: the requester reads it", gate.ErrBadRequest)
	}
	if !gate.AwaitsPeople(c) {
		return notWaiting(c)
	}
	proof := &gate.Proof{
		Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: false, Reason: reason,
		AMR: id.AMR, AAL: gate.ClampAAL(id.Level), AuthTime: id.AuthTime, Evidence: gate.OIDCEvidence(id),
	}
	v, err := a.svc.Record(r.Context(), c.ID, proof)
	if err != nil {
		return recordError(err, c.Assessment.Requirements)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
