package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/store"
)

// enrollment is an open enrollment link and its person.
type enrollment struct {
	token string
	hash  []byte
	e     *store.Enrollment
	user  *store.User
}

// openEnrollment finds the enrollment of the link in the request and
// checks that it can still be used.
func (w *Web) openEnrollment(r *http.Request) (*enrollment, error) {
	ctx := r.Context()
	token := r.PathValue("token")
	if len(token) < 20 || len(token) > 100 {
		return nil, fail(http.StatusNotFound, "This enrollment link is not valid. Ask an administrator for a new one.")
	}
	hash := account.EnrollmentHash(token)
	e, err := w.st.GetEnrollment(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(http.StatusNotFound, "This enrollment link is not valid. Ask an administrator for a new one.")
	}
	if err != nil {
		return nil, fmt.Errorf("reading enrollment: %w", err)
	}
	if err := w.usable(e); err != nil {
		return nil, err
	}
	u, err := w.st.GetUser(ctx, e.UserID)
	if err != nil {
		return nil, fmt.Errorf("reading user of enrollment: %w", err)
	}
	if !u.DisabledAt.IsZero() {
		return nil, errDisabled
	}
	return &enrollment{token: token, hash: hash, e: e, user: u}, nil
}

func (w *Web) usable(e *store.Enrollment) error {
	if !e.UsedAt.IsZero() {
		return fail(http.StatusGone, "This enrollment link was already used. Sign in with the factor you set up; you can add more factors on your account page.")
	}
	if !w.now().Before(e.ExpiresAt) {
		return fail(http.StatusGone, "This enrollment link expired (links last 24 hours). Ask an administrator for a new one.")
	}
	return nil
}

// enrollView is the page that sets up a factor: from an enrollment link
// (the first factor) or from the account page (another one).
type enrollView struct {
	Heading  string
	First    bool // from an enrollment link
	UserName string
	// Passkey ceremony endpoints.
	PasskeyBegin, PasskeyFinish string
	// TOTP set-up.
	TOTPAction string
	QR         template.URL
	Secret     string
	Message    string
	Cancel     string
}

func (v *enrollView) title() string { return v.Heading }

// qrURL vouches for the data URI of the QR code, which html/template would
// otherwise refuse in src: it is a PNG the totp package drew, in base64.
var base64PNG = regexp.MustCompile(`^data:image/png;base64,[A-Za-z0-9+/]+=*$`)

func qrURL(p *totp.Pending) template.URL {
	if !base64PNG.MatchString(p.DataURI) {
		return ""
	}
	return template.URL(p.DataURI) // matched above: our own image, in base64
}

// secretText is the seed in base32, in groups of four, for typing in.
func secretText(p *totp.Pending) string {
	u, err := url.Parse(p.URL)
	if err != nil {
		return ""
	}
	s := u.Query().Get("secret")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// beginTOTP starts a TOTP set-up: a new seed, sealed (totp.SealPending)
// in a ceremony bound to bind, whose cookie is sent back only to
// confirmPath.
func (w *Web) beginTOTP(ctx context.Context, rw http.ResponseWriter, u *store.User, bind []byte, confirmPath string) (*totp.Pending, error) {
	p, err := w.tp.Begin(u.Name)
	if err != nil {
		return nil, err
	}
	sealed, err := w.tp.SealPending(p, u.ID)
	if err != nil {
		return nil, err
	}
	err = w.putCeremony(ctx, rw, &ceremony{Purpose: purposeTOTP, Bind: bind, Subject: u.ID, Data: sealed}, totp.PendingTTL, confirmPath)
	return p, err
}

// confirmTOTP checks the first code of a set-up in progress. It returns
// the credential to save, or the Pending to show again with a message. A
// right code uses the set-up's ceremony: a confirmation sent again is a
// replay, refused and audited.
func (w *Web) confirmTOTP(rw http.ResponseWriter, r *http.Request, u *store.User, bind []byte) (*store.Credential, *totp.Pending, string, error) {
	c, err := w.peekCeremony(r, purposeTOTP, bind, u.ID, u.Name)
	var cr *ceremonyRefused
	if errors.As(err, &cr) {
		return nil, nil, "", ceremonyFailure(err, msgTOTPGone)
	}
	var p *totp.Pending
	if err == nil {
		p, err = w.tp.OpenPending(c.Data, u.ID)
	}
	if err != nil {
		// Gone or expired: start over with a new seed.
		p, err := w.beginTOTP(r.Context(), rw, u, bind, r.URL.EscapedPath())
		return nil, p, "This set-up expired. Add this new code to your authenticator app, then enter the code it shows.", err
	}
	name := cleanName(r.PostFormValue("name"), "Authenticator app")
	cred, err := w.tp.Confirm(p, normalizeCode(r.PostFormValue("code")), u.ID, name)
	switch {
	case errors.Is(err, totp.ErrInvalid):
		return nil, p, "That code is not right. Enter the 6-digit code your authenticator app shows now for stepgate.", nil
	case errors.Is(err, totp.ErrExpired):
		p, err := w.beginTOTP(r.Context(), rw, u, bind, r.URL.EscapedPath())
		return nil, p, "This set-up expired. Add this new code to your authenticator app, then enter the code it shows.", err
	case err != nil:
		return nil, nil, "", fmt.Errorf("confirming totp: %w", err)
	}
	w.clearCookie(rw, ceremonyCookie(purposeTOTP), r.URL.EscapedPath(), http.SameSiteStrictMode)
	if _, err := w.useCeremony(r, purposeTOTP, bind, u.ID, u.Name); err != nil {
		return nil, nil, "", ceremonyFailure(err, msgTOTPGone)
	}
	return cred, nil, "", nil
}

const msgTOTPGone = "This set-up expired or was started in another tab. Start again from the beginning."

// cleanName makes a factor's name: printable, trimmed, at most 64
// characters; def when empty.
func cleanName(s, def string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	if s == "" {
		return def
	}
	return s
}

// enrollPage shows the enrollment link's page: a passkey, an authenticator
// app, or both.
func (w *Web) enrollPage(rw http.ResponseWriter, r *http.Request) error {
	en, err := w.openEnrollment(r)
	if err != nil {
		return err
	}
	p, err := w.beginTOTP(r.Context(), rw, en.user, en.hash, "/enroll/"+en.token+"/totp")
	if err != nil {
		return err
	}
	w.render(rw, r, http.StatusOK, "enroll", w.enrollView(en, p, ""))
	return nil
}

func (w *Web) enrollView(en *enrollment, p *totp.Pending, msg string) *enrollView {
	base := "/enroll/" + en.token
	v := &enrollView{
		Heading: "Set up your sign-in", First: true, UserName: en.user.Name,
		PasskeyBegin: base + "/passkey/begin", PasskeyFinish: base + "/passkey/finish",
		TOTPAction: base + "/totp", Message: msg,
	}
	if p != nil {
		v.QR, v.Secret = qrURL(p), secretText(p)
	}
	return v
}

// enrollTOTP saves the first factor: an authenticator app.
func (w *Web) enrollTOTP(rw http.ResponseWriter, r *http.Request) error {
	en, err := w.openEnrollment(r)
	if err != nil {
		return err
	}
	cred, p, msg, err := w.confirmTOTP(rw, r, en.user, en.hash)
	if err != nil {
		return err
	}
	if cred == nil {
		w.render(rw, r, http.StatusBadRequest, "enroll", w.enrollView(en, p, msg))
		return nil
	}
	secret, err := w.finishEnrollment(r, en, cred)
	if err != nil {
		return err
	}
	w.factorChanged(r.Context(), notify.FactorAdded, en.user, cred, "enrollment")
	w.setSessionCookie(rw, secret)
	redirect(rw, r, "/account?done=enrolled")
	return nil
}

// finishEnrollment saves the first factor, uses up the link and signs the
// person in, in one transaction (gate.People.Enroll).
func (w *Web) finishEnrollment(r *http.Request, en *enrollment, cred *store.Credential) (string, error) {
	var secret string
	e, refused, err := w.people.Enroll(r.Context(), en.hash, en.user, cred, cookieHash(r), w.sessionMaker(&secret))
	if err != nil {
		return "", factorError(err)
	}
	if refused != nil {
		return "", w.usable(e)
	}
	return secret, nil
}

// factorError words a factor registered already.
func factorError(err error) error {
	if errors.Is(err, gate.ErrFactorExists) {
		return fail(http.StatusConflict, "This factor is already registered.")
	}
	return err
}

// registerRequest is the body of a passkey registration's finish.
type registerRequest struct {
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

// beginRegistration starts a passkey registration for u, bound to bind.
func (w *Web) beginRegistration(rw http.ResponseWriter, r *http.Request, u *store.User, bind []byte) error {
	existing, err := w.st.ListCredentials(r.Context(), u.ID)
	if err != nil {
		return fmt.Errorf("listing factors: %w", err)
	}
	opts, sess, err := w.wa.BeginRegistration(waUser(u), webauthnOnly(existing))
	if err != nil {
		return fmt.Errorf("beginning passkey registration: %w", err)
	}
	if err := w.putCeremony(r.Context(), rw, &ceremony{Purpose: purposeRegister, Bind: bind, Subject: u.ID, Data: sess}, ceremonyTTL, ceremonyDir(r)); err != nil {
		return err
	}
	writeJSON(rw, http.StatusOK, opts)
	return nil
}

// finishRegistration checks the new passkey and returns it, not saved.
func (w *Web) finishRegistration(rw http.ResponseWriter, r *http.Request, u *store.User, bind []byte) (*store.Credential, error) {
	var req registerRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	c, err := w.takeCeremony(rw, r, purposeRegister, bind, u.ID, u.Name)
	if err != nil {
		return nil, ceremonyFailure(err, msgCeremonyGone)
	}
	cred, err := w.wa.FinishRegistration(waUser(u), c.Data, req.Credential, cleanName(req.Name, "Passkey"))
	if errors.Is(err, webauthn.ErrSession) || errors.Is(err, webauthn.ErrExpired) {
		return nil, failWith(http.StatusBadRequest, msgCeremonyGone, err)
	}
	if err != nil {
		return nil, failWith(http.StatusBadRequest, "This passkey could not be registered. Please try again.", err)
	}
	return cred, nil
}

func webauthnOnly(all []*store.Credential) []*store.Credential {
	var out []*store.Credential
	for _, c := range all {
		if c.Kind == store.KindWebAuthn {
			out = append(out, c)
		}
	}
	return out
}

func (w *Web) enrollPasskeyBegin(rw http.ResponseWriter, r *http.Request) error {
	en, err := w.openEnrollment(r)
	if err != nil {
		return err
	}
	return w.beginRegistration(rw, r, en.user, en.hash)
}

func (w *Web) enrollPasskeyFinish(rw http.ResponseWriter, r *http.Request) error {
	en, err := w.openEnrollment(r)
	if err != nil {
		return err
	}
	cred, err := w.finishRegistration(rw, r, en.user, en.hash)
	if err != nil {
		return err
	}
	secret, err := w.finishEnrollment(r, en, cred)
	if err != nil {
		return err
	}
	w.factorChanged(r.Context(), notify.FactorAdded, en.user, cred, "enrollment")
	w.setSessionCookie(rw, secret)
	writeJSON(rw, http.StatusOK, map[string]string{"redirect": "/account?done=enrolled"})
	return nil
}
