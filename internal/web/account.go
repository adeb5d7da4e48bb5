package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/notify"

	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/store"
)

type factorView struct {
	ID       string
	Kind     string
	Name     string
	Created  time.Time
	LastUsed time.Time
	Locked   bool
}

type accountView struct {
	Name     string
	Email    string
	Groups   []string
	Admin    bool
	SignedIn time.Time
	AAL      int
	Factors  []factorView
	Fresh    bool // the sign-in is recent enough to add a factor
	Message  string
	Notice   string
}

func (v *accountView) title() string { return "Your account" }

var accountNotices = map[string]string{
	"enrolled": "Your factor is saved and you are signed in. You may add another one below, so that losing one device does not lock you out.",
	"added":    "The factor is added.",
	"renamed":  "The factor is renamed.",
	"removed":  "The factor is removed.",
}

func kindName(k store.CredentialKind) string {
	switch k {
	case store.KindWebAuthn:
		return "Passkey"
	case store.KindTOTP:
		return "Authenticator app (TOTP)"
	}
	return string(k)
}

func (w *Web) accountView(r *http.Request, s *signedIn) (*accountView, error) {
	creds, err := w.st.ListCredentials(r.Context(), s.user.ID)
	if err != nil {
		return nil, fmt.Errorf("listing factors: %w", err)
	}
	now := w.now()
	v := &accountView{
		Name: s.user.Name, Email: s.user.Email, Groups: s.user.Groups, Admin: s.user.Admin,
		SignedIn: s.sess.AuthTime, AAL: s.sess.AAL, Fresh: w.fresh(s),
		Notice: accountNotices[r.URL.Query().Get("done")],
	}
	for _, c := range creds {
		v.Factors = append(v.Factors, factorView{ID: c.ID, Kind: kindName(c.Kind), Name: c.Name, Created: c.CreatedAt, LastUsed: c.LastUsedAt, Locked: now.Before(c.LockedUntil)})
	}
	slices.SortFunc(v.Factors, func(a, b factorView) int { return a.Created.Compare(b.Created) })
	return v, nil
}

func (w *Web) account(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	v, err := w.accountView(r, s)
	if err != nil {
		return err
	}
	w.renderAs(rw, r, http.StatusOK, "account", s.user.Name, v)
	return nil
}

// accountMessage shows the account page with a refusal.
func (w *Web) accountMessage(rw http.ResponseWriter, r *http.Request, s *signedIn, status int, msg string) error {
	v, err := w.accountView(r, s)
	if err != nil {
		return err
	}
	v.Message, v.Notice = msg, ""
	w.renderAs(rw, r, status, "account", s.user.Name, v)
	return nil
}

// fresh reports whether the session's proof is recent enough to add or
// remove a factor (FreshAuth): a stolen session must not be enough to
// enroll the thief's factor or remove the owner's.
func (w *Web) fresh(s *signedIn) bool { return w.people.Fresh(s.sess.AuthTime) }

// reauthPath is where a person proves again who they are, then comes back
// to next.
func reauthPath(next string) string { return "/signin?reauth=1&next=" + url.QueryEscape(next) }

var msgNotFresh = fmt.Sprintf("Adding or removing a factor needs a fresh proof of who you are (within %d minutes). Sign in again, then try once more.", int(FreshAuth/time.Minute))

// requireFresh refuses to add or remove a factor with a session whose
// proof is older than FreshAuth; the gate audits the refusal
// (gate.People.RequireFresh, audit.CredentialRefused).
func (w *Web) requireFresh(r *http.Request, s *signedIn, action string) error {
	err := w.people.RequireFresh(r.Context(), s.user, s.sess.AuthTime, action, r.Pattern)
	if errors.Is(err, gate.ErrNotFresh) {
		return &userError{status: http.StatusForbidden, msg: msgNotFresh, err: errNotFresh}
	}
	return err
}

// errNotFresh is the cause of a refusal for want of a fresh step-up.
var errNotFresh = gate.ErrNotFresh

// errNoSuchFactor answers a factor that is not the person's.
func errNoSuchFactor(err error) error {
	return failWith(http.StatusNotFound, "There is no such factor on your account.", err)
}

func (w *Web) renameFactor(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	name := cleanName(r.PostFormValue("name"), "")
	if name == "" {
		return w.accountMessage(rw, r, s, http.StatusBadRequest, "A factor needs a name.")
	}
	err := w.people.RenameFactor(ctx, s.user, r.PathValue("id"), name)
	if errors.Is(err, gate.ErrNoSuchFactor) {
		return errNoSuchFactor(err)
	}
	if err != nil {
		return err
	}
	redirect(rw, r, "/account?done=renamed")
	return nil
}

// errLastFactor refuses to remove a person's only factor.
var errLastFactor = fail(http.StatusConflict, "This is your only factor: removing it would lock you out. Add another factor first, then remove this one.")

// removeFactor removes one of the person's factors, never the last
// (gate.People.RemoveFactor).
func (w *Web) removeFactor(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := w.requireFresh(r, s, "remove"); err != nil {
		return w.notFresh(rw, r, s, err)
	}
	found, err := w.people.RemoveFactor(ctx, s.user, id)
	switch {
	case errors.Is(err, gate.ErrNoSuchFactor):
		err = errNoSuchFactor(err)
	case errors.Is(err, gate.ErrLastFactor):
		err = errLastFactor
	}
	var ue *userError
	if errors.As(err, &ue) {
		return w.accountMessage(rw, r, s, ue.status, ue.msg)
	}
	if err != nil {
		return err
	}
	w.factorChanged(ctx, notify.FactorRemoved, s.user, found, "account")
	redirect(rw, r, "/account?done=removed")
	return nil
}

// notFresh answers a refusal of requireFresh on a page: the account page
// with the message and a way to sign in again (a JSON ceremony gets the
// message). Another error is returned as it is.
func (w *Web) notFresh(rw http.ResponseWriter, r *http.Request, s *signedIn, err error) error {
	if !errors.Is(err, errNotFresh) {
		return err
	}
	w.logFailure(r, http.StatusForbidden, err)
	v, verr := w.accountView(r, s)
	if verr != nil {
		return verr
	}
	v.Message, v.Notice = msgNotFresh, ""
	w.renderAs(rw, r, http.StatusForbidden, "account", s.user.Name, v)
	return nil
}

// addView is the set-up page of another factor, from the account page.
func addView(s *signedIn, p *totp.Pending, msg string) *enrollView {
	v := &enrollView{
		Heading: "Add a factor", UserName: s.user.Name,
		PasskeyBegin: "/account/passkey/begin", PasskeyFinish: "/account/passkey/finish",
		TOTPAction: "/account/totp", Message: msg, Cancel: "/account",
	}
	if p != nil {
		v.QR, v.Secret = qrURL(p), secretText(p)
	}
	return v
}

// addFactorPage begins setting up another factor: a passkey, or an
// authenticator app.
func (w *Web) addFactorPage(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	if !w.fresh(s) {
		// Not a change yet: ask for the proof, then come back here.
		redirect(rw, r, reauthPath("/account/add"))
		return nil
	}
	p, err := w.beginTOTP(r.Context(), rw, s.user, s.hash, "/account/totp")
	if err != nil {
		return err
	}
	w.renderAs(rw, r, http.StatusOK, "enroll", s.user.Name, addView(s, p, ""))
	return nil
}

// addTOTP saves another authenticator app.
func (w *Web) addTOTP(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	if err := w.requireFresh(r, s, "add"); err != nil {
		return w.notFresh(rw, r, s, err)
	}
	cred, p, msg, err := w.confirmTOTP(rw, r, s.user, s.hash)
	if err != nil {
		return err
	}
	if cred == nil {
		w.renderAs(rw, r, http.StatusBadRequest, "enroll", s.user.Name, addView(s, p, msg))
		return nil
	}
	if err := factorError(w.people.AddFactor(r.Context(), s.user, cred)); err != nil {
		return err
	}
	w.factorChanged(r.Context(), notify.FactorAdded, s.user, cred, "account")
	redirect(rw, r, "/account?done=added")
	return nil
}

func (w *Web) addPasskeyBegin(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	if err := w.requireFresh(r, s, "add"); err != nil {
		return err
	}
	return w.beginRegistration(rw, r, s.user, s.hash)
}

func (w *Web) addPasskeyFinish(rw http.ResponseWriter, r *http.Request, s *signedIn) error {
	if err := w.requireFresh(r, s, "add"); err != nil {
		return err
	}
	cred, err := w.finishRegistration(rw, r, s.user, s.hash)
	if err != nil {
		return err
	}
	if err := factorError(w.people.AddFactor(r.Context(), s.user, cred)); err != nil {
		return err
	}
	w.factorChanged(r.Context(), notify.FactorAdded, s.user, cred, "account")
	writeJSON(rw, http.StatusOK, map[string]string{"redirect": "/account?done=added"})
	return nil
}
