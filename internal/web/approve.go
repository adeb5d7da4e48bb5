package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/ident"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// precheck refuses, before any ceremony, an answer that cannot count:
// so that a person does not spend a code, or touch a key, for nothing.
// Record checks all of it again under the check's lock.
func precheck(c *api.Check, u *store.User, method string) error {
	if err := gate.MayApprove(c, &gate.Proof{Subject: u.Name, Groups: u.Groups, Admin: u.Admin, Approved: true}); err != nil {
		return recordError(err, c)
	}
	req := c.Assessment.Requirements
	if method == "totp" && !gate.TOTPMeets(req) {
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
	ue := refused(err, func(sentinel error) string {
		switch sentinel {
		case gate.ErrSelfApproval:
			return msgSelf
		case gate.ErrNotPending:
			return msgNotPending
		case gate.ErrNotEligible:
			if c != nil && c.Assessment != nil && c.Assessment.Requirements != nil {
				return notEligibleMessage(c.Assessment.Requirements)
			}
			return msgNotEligible
		case gate.ErrNotFound:
			return "There is no such check."
		case gate.ErrBadRequest:
			return "This answer could not be recorded."
		}
		return ""
	})
	if ue == nil {
		return fmt.Errorf("recording answer: %w", err)
	}
	return ue
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
	verified, refused, err := w.people.ApproveTOTP(ctx, c, s.user, code)
	if errors.Is(refused, totp.ErrInvalid) {
		w.throttle.Fail(key, addr)
	} else if verified {
		w.throttle.Succeed(key, addr)
	}
	if refused != nil {
		return w.formError(rw, r, s, failWith(http.StatusUnauthorized, totpMessage(refused, false), refused))
	}
	if err != nil {
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
	return w.beginCheckPasskey(rw, r, s, c, purposeApprove, c.Assessment.Requirements.AAL >= webauthn.AALWithUV, msgNoPasskey, "passkey approval")
}

// beginCheckPasskey starts a passkey assertion by s's person over check c
// (its id and plan digest), for an approval or a break-glass (purpose):
// user verification required when uv. noPasskey is what a person without
// a passkey reads; what names the ceremony in an error.
func (w *Web) beginCheckPasskey(rw http.ResponseWriter, r *http.Request, s *signedIn, c *api.Check, purpose string, uv bool, noPasskey, what string) error {
	all, err := w.st.ListCredentials(r.Context(), s.user.ID)
	if err != nil {
		return fmt.Errorf("listing factors: %w", err)
	}
	opts, sess, nonce, err := w.wa.BeginApproval(waUser(s.user), webauthnOnly(all), c.ID, gate.PlanDigest(c))
	if errors.Is(err, webauthn.ErrNoCredentials) {
		return fail(http.StatusBadRequest, noPasskey)
	}
	if err != nil {
		return fmt.Errorf("beginning %s: %w", what, err)
	}
	if uv {
		if opts, err = requireUV(opts); err != nil {
			return err
		}
	}
	err = w.putCeremony(r.Context(), rw, &ceremony{Purpose: purpose, Bind: s.hash, Subject: c.ID, Data: sess, Nonce: nonce}, ceremonyTTL, ceremonyDir(r))
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
	as, refused, err := w.people.ApprovePasskey(ctx, c, s.user, &gate.PasskeyProof{Session: cer.Data, Body: body, RequireUV: requireUV}, cer.Nonce)
	switch {
	case refused != nil:
		return passkeyRefusal(refused, requireUV)
	case errors.Is(err, gate.ErrWeakProof):
		return failWith(http.StatusForbidden, fmt.Sprintf("This proof reached level %d (%s); this check needs %s. Nothing was recorded.", as.AAL, strings.Join(as.AMR, ", "), aalText(req.AAL)), err)
	case err != nil:
		return recordError(err, c)
	}
	writeJSON(rw, http.StatusOK, map[string]string{"redirect": "/checks/" + url.PathEscape(c.ID) + "?done=approved"})
	return nil
}
