package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/store"
)

type signInView struct {
	Next    string
	Name    string
	Message string // an error to show
	Notice  string // a neutral notice (signed out...)
	OIDC    string // the identity provider's name, when configured
	// Reauth: a fresh proof is asked for (to change factors); the
	// provider is then asked to sign the person in again (prompt=login).
	Reauth bool
}

func (v *signInView) title() string { return "Sign in" }

var notices = map[string]string{
	"signedout": "You are signed out.",
	"expired":   "Your session ended. Please sign in again.",
	"reauth":    "Prove who you are again: adding or removing a factor needs a proof from the last 5 minutes.",
}

// signInPage shows the two ways in: a passkey, or a username and a code.
func (w *Web) signInPage(rw http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	next := localPath(q.Get("next"))
	notice := notices[q.Get("done")]
	reauth := q.Get("reauth") == "1"
	if reauth {
		// A fresh step-up (to change factors): the form, even when signed
		// in; signing in again replaces the session.
		notice = notices["reauth"]
	} else if _, err := w.session(rw, r); err == nil {
		redirect(rw, r, orDefault(next, "/checks"))
		return nil
	}
	w.render(rw, r, http.StatusOK, "signin", &signInView{Next: next, Notice: notice, OIDC: w.oidcName(), Reauth: reauth})
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// errBadSignIn is the one answer to a wrong username or code, so that the
// page does not tell which accounts exist.
const msgBadSignIn = "That username and code do not match. Check the code in your authenticator app and try again."

// signInTOTP signs in with a username and a TOTP code. A failure is
// written (the credential's failure counter, an audit event) before the
// answer: the transaction commits either way.
func (w *Web) signInTOTP(rw http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name := strings.TrimSpace(r.PostFormValue("username"))
	code := normalizeCode(r.PostFormValue("code"))
	next := localPath(r.PostFormValue("next"))
	old := cookieHash(r)
	// Guessing is slowed per name and client address, for names of
	// nobody as for real ones: the answers do not tell them apart.
	key, addr := ident.Key(name), w.clientAddr(r)
	if wait := w.throttle.Wait(key, addr); wait > 0 {
		// Anonymous (the name is only typed): audited per address at
		// most once a minute, with the count.
		w.svc.AuditRefusal(ctx, gate.Refusal{Action: gate.ActionSignIn, Subject: "user:" + printableName(name), Method: "totp", Reason: "too many wrong codes for this name from " + addr, Status: http.StatusTooManyRequests, Source: addr})
		rw.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		w.render(rw, r, http.StatusTooManyRequests, "signin", &signInView{Next: next, Name: name, Message: totpMessage(totp.ErrLocked, true)})
		return nil
	}
	var secret string
	refused, err := w.people.SignInTOTP(ctx, name, printableName(name), addr, code, old, w.sessionMaker(&secret))
	if err != nil {
		return err
	}
	if errors.Is(refused, totp.ErrInvalid) {
		w.throttle.Fail(key, addr)
	}
	if refused != nil {
		// A wrong code of a person, and a name that is nobody's, are
		// audited by the gate; the page says the same in both cases.
		w.render(rw, r, http.StatusUnauthorized, "signin", &signInView{Next: next, Name: name, Message: totpMessage(refused, true)})
		return nil
	}
	w.throttle.Succeed(key, addr)
	w.setSessionCookie(rw, secret)
	redirect(rw, r, orDefault(next, "/checks"))
	return nil
}

// sessionMaker makes the session of a sign-in, keeping its secret (for
// the cookie) in *secret.
func (w *Web) sessionMaker(secret *string) gate.NewSession {
	return func(userID string, aal int, amr []string) *store.Session {
		sec, s := w.newSession(userID, aal, amr)
		*secret = sec
		return s
	}
}

func normalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// totpMessage says why a code was refused. At sign-in a wrong code and an
// unknown name read the same.
func totpMessage(err error, signIn bool) string {
	switch {
	case errors.Is(err, totp.ErrReused):
		return "That code was already used: each code works once. Wait for the next code in your authenticator app."
	case errors.Is(err, totp.ErrLocked):
		return "Too many wrong codes from here: wait a minute or more before trying again, or use a passkey."
	case signIn:
		return msgBadSignIn
	}
	return "That code is not right. Check your authenticator app (and your phone's clock) and enter the current code."
}

// signInPasskeyBegin starts a usernameless sign-in: any discoverable
// credential of this site may answer.
func (w *Web) signInPasskeyBegin(rw http.ResponseWriter, r *http.Request) error {
	opts, sess, err := w.wa.BeginLogin()
	if err != nil {
		return fmt.Errorf("beginning passkey sign-in: %w", err)
	}
	if err := w.putCeremony(r.Context(), rw, &ceremony{Purpose: purposeLogin, Data: sess}, ceremonyTTL, ceremonyDir(r)); err != nil {
		return err
	}
	writeJSON(rw, http.StatusOK, opts)
	return nil
}

const msgCeremonyGone = "This passkey request expired or was started in another tab. Please try again."

const msgSignCount = "This passkey was refused: its signature counter did not move forward, which happens when an authenticator was copied. Your administrator can see it in the audit log."

// waUser is a person as the webauthn package knows them.
func waUser(u *store.User) webauthn.User {
	return webauthn.User{ID: u.ID, Name: u.Name, DisplayName: u.Name}
}

// errDisabled refuses a disabled account.
var errDisabled = fail(http.StatusForbidden, "This account is disabled.")

// passkeyRefusal turns a refusal of the webauthn package into a message;
// it returns nil for an error that is no refusal (the store failed...).
func passkeyRefusal(err error, requireUV bool) error {
	switch {
	case errors.Is(err, webauthn.ErrCloned):
		return failWith(http.StatusUnauthorized, msgSignCount, err)
	case errors.Is(err, webauthn.ErrUserVerification):
		return failWith(http.StatusUnauthorized, "This check needs user verification: your passkey must ask for its PIN or biometrics. Try again, or use a passkey that can.", err)
	case errors.Is(err, webauthn.ErrSession), errors.Is(err, webauthn.ErrExpired), errors.Is(err, webauthn.ErrChallenge):
		return failWith(http.StatusBadRequest, msgCeremonyGone, err)
	case errors.Is(err, webauthn.ErrInvalid):
		msg := "Your passkey's answer could not be verified. Please try again with a passkey registered for your stepgate account."
		if requireUV {
			msg += " This check needs user verification (PIN or biometrics)."
		}
		return failWith(http.StatusUnauthorized, msg, err)
	}
	return nil
}

// signInPasskeyFinish checks the assertion and signs the person in. The
// passkey's owner and their passkeys are read for update, and the one used
// is written back (sign count, last use) with the new session, in one
// transaction; a sign count that did not move forward is audited (the
// transaction commits) and refused.
func (w *Web) signInPasskeyFinish(rw http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	c, err := w.takeCeremony(rw, r, purposeLogin, nil, "", w.assertionOwner(ctx, body))
	if err != nil {
		return ceremonyFailure(err, msgCeremonyGone)
	}
	var secret string
	refused, err := w.people.SignInPasskey(ctx, c.Data, body, cookieHash(r), w.sessionMaker(&secret))
	if err != nil {
		return err
	}
	switch {
	case errors.Is(refused, gate.ErrUnknownPasskey):
		return failWith(http.StatusUnauthorized, "This passkey is not registered with stepgate. Use one you registered, or an authenticator app code.", refused)
	case errors.Is(refused, gate.ErrAccountDisabled):
		return errDisabled
	case refused != nil:
		return passkeyRefusal(refused, false)
	}
	w.setSessionCookie(rw, secret)
	next := orDefault(localPath(r.URL.Query().Get("next")), "/checks")
	writeJSON(rw, http.StatusOK, map[string]string{"redirect": next})
	return nil
}

// assertionOwner names, for the audit log, the person whose passkey an
// assertion says it comes from (its credential id), or "" when it names
// none of ours: a sign-in ceremony is bound to nobody until it is
// verified.
func (w *Web) assertionOwner(ctx context.Context, body []byte) string {
	var a struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &a) != nil || a.ID == "" || len(a.ID) > 1024 {
		return ""
	}
	cred, err := w.st.GetCredential(ctx, a.ID)
	if err != nil {
		return ""
	}
	u, err := w.st.GetUser(ctx, cred.UserID)
	if err != nil {
		return ""
	}
	return u.Name
}

// signOut ends the session.
func (w *Web) signOut(rw http.ResponseWriter, r *http.Request) error {
	if h := cookieHash(r); h != nil {
		w.endSession(r.Context(), rw, h)
	}
	redirect(rw, r, "/signin?done=signedout")
	return nil
}

// printableName is a name someone typed, as the audit log keeps it: at most
// 64 characters.
func printableName(s string) string {
	if rs := []rune(s); len(rs) > 64 {
		return string(rs[:64])
	}
	return s
}
