package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/store"
)

// Sign-in and step-up through the organisation's OpenID Connect provider
// (package authn/oidc). The flow in progress (state, nonce, PKCE
// verifier, and for an approval the check, level and max age) is a
// ceremony sealed with the master key like the WebAuthn ones, in a cookie
// sent back only to the callback path, SameSite=Lax (the provider's
// redirect is a cross-site navigation: a Strict cookie would not come
// back), for five minutes, cleared when the callback reads it.

const purposeOIDC = "oidc"

// DefaultOIDCCallback is the callback path when none is configured.
const DefaultOIDCCallback = "/oidc/callback"

type oidcSide struct {
	rp       *oidc.RP
	callback string // path
}

// SetOIDC enables sign-in and approval through an OpenID Connect
// provider, with its callback at callbackPath (DefaultOIDCCallback when
// empty; it must be the path of the RP's redirect URL). Call it before
// Routes.
func (w *Web) SetOIDC(rp *oidc.RP, callbackPath string) {
	if callbackPath == "" {
		callbackPath = DefaultOIDCCallback
	}
	w.oidc = &oidcSide{rp: rp, callback: callbackPath}
}

func (w *Web) oidcName() string {
	if w.oidc == nil {
		return ""
	}
	return w.oidc.rp.Name()
}

func (w *Web) oidcRoutes(mux *http.ServeMux, form, get func(string, pageFunc)) {
	if w.oidc == nil {
		return
	}
	form("POST /signin/oidc", w.signInOIDC)
	form("POST /checks/{id}/approve/oidc", w.signedInOnly(w.approveOIDC))
	get("GET "+w.oidc.callback, w.oidcCallback)
}

// oidcFlow is what the ceremony cookie keeps.
type oidcFlow struct {
	Flow *oidc.Flow `json:"f"`
	Next string     `json:"n,omitempty"`
}

func (w *Web) putOIDCFlow(ctx context.Context, rw http.ResponseWriter, bind []byte, subject string, f *oidcFlow) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	c := &ceremony{Purpose: purposeOIDC, Bind: bind, Subject: subject, Data: data}
	return w.beginCeremony(ctx, rw, c, ceremonyTTL, w.oidc.callback, http.SameSiteLaxMode)
}

// takeOIDCFlow clears the flow cookie and uses its ceremony: one flow, one
// callback. A flow begun for an approval (its subject is the check) must
// come back to the session that began it.
func (w *Web) takeOIDCFlow(rw http.ResponseWriter, r *http.Request) (*ceremony, *oidcFlow, *signedIn, error) {
	w.clearCookie(rw, ceremonyCookie(purposeOIDC), w.oidc.callback, http.SameSiteLaxMode)
	// The person, when signed in, is who the audit of a refusal names.
	var s *signedIn
	actor := ""
	if ceremonyID(r, purposeOIDC) != nil && cookieHash(r) != nil {
		if got, err := w.session(rw, r); err == nil {
			s, actor = got, got.user.Name
		}
	}
	rec, err := w.useRecord(r, purposeOIDC, actor)
	if err != nil {
		return nil, nil, nil, err
	}
	var bind []byte
	if rec.Subject != "" { // an approval
		if s == nil {
			return nil, nil, nil, errSignIn
		}
		bind = s.hash
	}
	c, err := w.openCeremony(r.Context(), rec, purposeOIDC, bind, rec.Subject, actor)
	if err != nil {
		return nil, nil, nil, err
	}
	var f oidcFlow
	if err := json.Unmarshal(c.Data, &f); err != nil || f.Flow == nil || f.Flow.Check != c.Subject {
		return nil, nil, nil, errNoCeremony
	}
	return c, &f, s, nil
}

const msgOIDCGone = "This sign-in with your identity provider expired or was started in another tab. Please try again."

// signInOIDC sends the browser to the provider.
func (w *Web) signInOIDC(rw http.ResponseWriter, r *http.Request) error {
	u, f := w.oidc.rp.BeginSignIn()
	if r.PostFormValue("reauth") == "1" {
		// A fresh proof, to change factors: the provider must sign the
		// person in again (prompt=login, max_age). The session's proof is
		// the token's auth_time, which the factor pages check.
		u, f = w.oidc.rp.BeginStepUp(1, FreshAuth, "")
	}
	if err := w.putOIDCFlow(r.Context(), rw, nil, "", &oidcFlow{Flow: f, Next: localPath(r.PostFormValue("next"))}); err != nil {
		return err
	}
	http.Redirect(rw, r, u, http.StatusSeeOther)
	return nil
}

// approveOIDC starts a re-authentication at the provider for a check:
// prompt=login, the check's max_age (five minutes when it has none) and
// the acr_values of its level.
func (w *Web) approveOIDC(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	c, err := w.review(r)
	if err != nil {
		return err
	}
	if err := precheck(c, s.user, "oidc"); err != nil {
		return w.formError(rw, r, s, err)
	}
	if !hasOIDCLink(s.user) {
		return w.formError(rw, r, s, fail(http.StatusForbidden, "Your stepgate account is not linked to an account at "+w.oidc.rp.Name()+". Sign in with it once, or ask an admin to link it."))
	}
	req := c.Assessment.Requirements
	u, f := w.oidc.rp.BeginStepUp(gate.ClampAAL(req.AAL), gate.StepUpAge(req), c.ID)
	if err := w.putOIDCFlow(r.Context(), rw, s.hash, c.ID, &oidcFlow{Flow: f}); err != nil {
		return err
	}
	http.Redirect(rw, r, u, http.StatusSeeOther)
	return nil
}

func oidcLink(sub string) string { return "oidc:" + sub }

func hasOIDCLink(u *store.User) bool {
	return slices.ContainsFunc(u.Links, func(l string) bool { return strings.HasPrefix(l, "oidc:") })
}

// oidcCallback finishes a sign-in or an approval.
func (w *Web) oidcCallback(rw http.ResponseWriter, r *http.Request) error {
	_, fl, s, err := w.takeOIDCFlow(rw, r)
	if errors.Is(err, errSignIn) {
		return err
	}
	if err != nil {
		return ceremonyFailure(err, msgOIDCGone)
	}
	q := r.URL.Query()
	id, err := w.oidc.rp.Finish(r.Context(), fl.Flow, q.Get("state"), q.Get("code"), q.Get("error"), q.Get("error_description"))
	switch {
	case errors.Is(err, oidc.ErrState):
		return failWith(http.StatusBadRequest, msgOIDCGone, err)
	case errors.Is(err, oidc.ErrReplay):
		return failWith(http.StatusBadRequest, "This answer of your identity provider was already used. Please try again.", err)
	case errors.Is(err, oidc.ErrProvider):
		return failWith(http.StatusUnauthorized, w.oidc.rp.Name()+" did not sign you in. Please try again.", err)
	case err != nil:
		return failWith(http.StatusUnauthorized, "The answer of "+w.oidc.rp.Name()+" could not be verified. Please try again.", err)
	}
	if fl.Flow.Check == "" {
		return w.oidcSignIn(rw, r, id, fl.Next)
	}
	return w.oidcApprove(rw, r, s, fl.Flow, id)
}

// oidcSignIn signs in the account linked to the token's subject, creating
// it on the first sign-in. With a groups claim configured, the mapped
// groups replace the account's groups at each sign-in.
func (w *Web) oidcSignIn(rw http.ResponseWriter, r *http.Request, id *oidc.Identity, next string) error {
	ctx := r.Context()
	link := oidcLink(id.Subject)
	var secret string
	refused, err := w.people.SignInOIDC(ctx, id, link, w.oidcGroupsSynced(), cookieHash(r), w.sessionMaker(&secret))
	if err != nil {
		return err
	}
	switch {
	case errors.Is(refused, gate.ErrNameTaken):
		name := oidc.AccountName(id)
		return failWith(http.StatusConflict, fmt.Sprintf("A stepgate account named %q exists and is not linked to this identity. An admin can link it: stepgate users link %s %s", name, name, link), refused)
	case errors.Is(refused, gate.ErrAccountDisabled):
		return errDisabled
	}
	w.setSessionCookie(rw, secret)
	redirect(rw, r, orDefault(next, "/checks"))
	return nil
}

func (w *Web) oidcGroupsSynced() bool { return w.oidc != nil && w.oidc.rp.SyncsGroups() }

// oidcApprove records an approval proven by a re-authentication: the
// token's subject must be the signed-in person's linked identity, its
// auth_time fresh and its acr/amr at the check's level.
func (w *Web) oidcApprove(rw http.ResponseWriter, r *http.Request, s *signedIn, f *oidc.Flow, id *oidc.Identity) error {
	ctx := r.Context()
	if !slices.Contains(s.user.Links, oidcLink(id.Subject)) {
		return fail(http.StatusForbidden, "You signed in at "+w.oidc.rp.Name()+" as someone else than the stepgate account "+s.user.Name+". Nothing was recorded.")
	}
	if err := w.oidc.rp.StepUp(f, id); err != nil {
		msg := "Your sign-in at " + w.oidc.rp.Name() + " is not recent enough for this check. Nothing was recorded; please try again."
		if errors.Is(err, oidc.ErrLevel) {
			msg = fmt.Sprintf("Your sign-in at %s reached level %d (acr %q, amr %s); this check needs level %d. Nothing was recorded.", w.oidc.rp.Name(), id.Level, id.ACR, strings.Join(id.AMR, ", "), f.Level)
		}
		return failWith(http.StatusForbidden, msg, err)
	}
	c, err := w.reviewCheck(ctx, f.Check)
	if err != nil {
		return err
	}
	if err := precheck(c, s.user, "oidc"); err != nil {
		return err
	}
	req := c.Assessment.Requirements
	aal := gate.ClampAAL(id.Level)
	now := w.now().UTC()
	proof := &gate.Proof{
		Subject: s.user.Name, Groups: s.user.Groups, Admin: s.user.Admin, Approved: true,
		AMR: id.AMR, AAL: aal, AuthTime: id.AuthTime,
		Evidence: gate.OIDCEvidence(id),
	}
	if err := gate.Counts(c, proof, now); err != nil {
		return failWith(http.StatusForbidden, fmt.Sprintf("This proof reached level %d (%s); this check needs %s. Nothing was recorded.", aal, strings.Join(id.AMR, ", "), aalText(req.AAL)), err)
	}
	if _, err := w.svc.Record(ctx, c.ID, proof); err != nil {
		return recordError(err, c)
	}
	redirect(rw, r, "/checks/"+url.PathEscape(c.ID)+"?done=approved")
	return nil
}
