package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/store"
)

// sessionCookie holds a random 32-byte secret (base64url); the store keeps
// only the SHA-256 of that text.
const sessionCookie = "stepgate_session"

// signedIn is the person behind a request.
type signedIn struct {
	hash []byte // SHA-256 of the cookie's secret
	sess *store.Session
	user *store.User
}

// newSecret returns a random secret in its text form and the SHA-256 of
// that text, which is all the store keeps.
func newSecret() (string, []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // nothing is safe without randomness
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	return s, hashSecret(s)
}

func hashSecret(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// newSession makes a session for a person who just proved who they are.
// The caller creates it in the store, in the transaction that saw the
// proof, then sets the cookie.
func (w *Web) newSession(userID string, aal int, amr []string) (string, *store.Session) {
	now := w.now().UTC()
	secret, hash := newSecret()
	return secret, &store.Session{Hash: hash, UserID: userID, CreatedAt: now, LastSeenAt: now, AAL: aal, AMR: amr, AuthTime: now}
}

func (w *Web) setSessionCookie(rw http.ResponseWriter, secret string) {
	http.SetCookie(rw, &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", MaxAge: int(SessionMaxAge / time.Second),
		HttpOnly: true, Secure: w.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (w *Web) clearCookie(rw http.ResponseWriter, name, path string, sameSite http.SameSite) {
	http.SetCookie(rw, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: w.secure, SameSite: sameSite})
}

// cookieHash returns the SHA-256 of the session cookie's secret, or nil.
func cookieHash(r *http.Request) []byte {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(32) {
		return nil
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return nil
	}
	return hashSecret(c.Value)
}

// session finds the signed-in person of a request. Both limits are
// enforced here from the store's record, whatever the cookie says: 12 h
// since sign-in, 30 min since the last request. LastSeenAt is written at
// most once a minute.
func (w *Web) session(rw http.ResponseWriter, r *http.Request) (*signedIn, error) {
	ctx := r.Context()
	hash := cookieHash(r)
	if hash == nil {
		return nil, errSignIn
	}
	s, err := w.st.GetSession(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		w.clearCookie(rw, sessionCookie, "/", http.SameSiteLaxMode)
		return nil, errSignIn
	}
	if err != nil {
		return nil, fmt.Errorf("reading session: %w", err)
	}
	now := w.now()
	if !now.Before(s.CreatedAt.Add(SessionMaxAge)) || !now.Before(s.LastSeenAt.Add(SessionIdle)) {
		w.endSession(ctx, rw, hash)
		return nil, errSignIn
	}
	u, err := w.st.GetUser(ctx, s.UserID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !u.DisabledAt.IsZero()) {
		w.endSession(ctx, rw, hash)
		return nil, errSignIn
	}
	if err != nil {
		return nil, fmt.Errorf("reading user of session: %w", err)
	}
	if now.Sub(s.LastSeenAt) >= seenEvery {
		s.LastSeenAt = now.UTC()
		if err := w.st.UpdateSession(ctx, s); err != nil {
			return nil, fmt.Errorf("updating session: %w", err)
		}
	}
	return &signedIn{hash: hash, sess: s, user: u}, nil
}

// endSession deletes a session and its cookie.
func (w *Web) endSession(ctx context.Context, rw http.ResponseWriter, hash []byte) {
	if err := w.st.DeleteSession(ctx, hash); err != nil && !errors.Is(err, store.ErrNotFound) {
		w.log.WarnContext(ctx, "deleting session failed", "err", err)
	}
	w.clearCookie(rw, sessionCookie, "/", http.SameSiteLaxMode)
}

type authedFunc func(rw http.ResponseWriter, r *http.Request, s *signedIn) error

// signedInOnly runs h for a signed-in person; others are sent to sign in.
func (w *Web) signedInOnly(h authedFunc) pageFunc {
	return func(rw http.ResponseWriter, r *http.Request) error {
		s, err := w.session(rw, r)
		if err != nil {
			return err
		}
		attemptOf(r).actor = s.user.Name
		return h(rw, r, s)
	}
}

// A ceremony in progress: what the server must remember between the two
// requests of a WebAuthn ceremony (its session data: the challenge, the
// user and credentials expected), of a TOTP set-up (the new seed) or of a
// sign-in at the OpenID Connect provider (state, nonce, PKCE verifier).
//
// It is a record in the store (store.Ceremony), its state sealed with the
// master key (AES-256-GCM; the purpose and the record's hash are the
// associated data): any server behind a load balancer can finish a
// ceremony another began. The browser holds only a random id in a cookie,
// SameSite=Strict (Lax for the provider's redirect), sent back only to the
// ceremony's own path. The record is bound to what it was begun for (the
// browser's session, or the enrollment link, and the check or person),
// expires after five minutes (a TOTP set-up after totp.PendingTTL), and is
// used once, atomically (store.UseCeremony): of two finishes with the same
// cookie, even at once on two servers, one wins and the other is refused
// and audited as a replay.
type ceremony struct {
	Purpose string
	// Bind is the SHA-256 of the session cookie or of the enrollment link
	// that began it (nil for a sign-in).
	Bind []byte
	// Subject is the check being approved, or the user registering.
	Subject string
	Data    []byte
	Nonce   string
	// hash identifies the record (the SHA-256 of the cookie's id).
	hash    []byte
	begunAt time.Time
}

// ceremonyState is what is sealed in the record.
type ceremonyState struct {
	Data  []byte `json:"d"`
	Nonce string `json:"n,omitempty"`
}

// Ceremony purposes.
const (
	purposeLogin    = "login"
	purposeRegister = "register"
	purposeApprove  = "approve"
	// purposeBreakGlass: a break-glass ceremony, never taken for an
	// approval's (nor the other way round).
	purposeBreakGlass = "breakglass"
	purposeTOTP       = "totp"
)

func ceremonyCookie(purpose string) string { return "stepgate_ceremony_" + purpose }

func ceremonyAAD(purpose string, hash []byte) []byte {
	return []byte("stepgate/web/ceremony/v2/" + purpose + "/" + hex.EncodeToString(hash))
}

// putCeremony begins a ceremony: its record in the store, and the cookie
// with its id, SameSite=Strict, sent back only to cookiePath (the
// directory of a WebAuthn ceremony's begin and finish, or the TOTP
// confirmation): ceremonies of two checks in two tabs do not collide.
func (w *Web) putCeremony(ctx context.Context, rw http.ResponseWriter, c *ceremony, ttl time.Duration, cookiePath string) error {
	return w.beginCeremony(ctx, rw, c, ttl, cookiePath, http.SameSiteStrictMode)
}

// beginCeremony stores c, expiring after ttl, and sets the cookie of its
// purpose with its id.
func (w *Web) beginCeremony(ctx context.Context, rw http.ResponseWriter, c *ceremony, ttl time.Duration, cookiePath string, sameSite http.SameSite) error {
	id, hash := newSecret()
	plain, err := json.Marshal(ceremonyState{Data: c.Data, Nonce: c.Nonce})
	if err != nil {
		return fmt.Errorf("encoding ceremony: %w", err)
	}
	sealed, err := w.master.Seal(plain, ceremonyAAD(c.Purpose, hash))
	clear(plain)
	if err != nil {
		return fmt.Errorf("sealing ceremony: %w", err)
	}
	now := w.now().UTC()
	rec := &store.Ceremony{Hash: hash, Purpose: c.Purpose, Bind: c.Bind, Subject: c.Subject, Data: sealed, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := w.st.CreateCeremony(ctx, rec); err != nil {
		return fmt.Errorf("storing ceremony: %w", err)
	}
	c.hash, c.begunAt = hash, now
	http.SetCookie(rw, &http.Cookie{
		Name: ceremonyCookie(c.Purpose), Value: id, Path: cookiePath,
		MaxAge: int(ttl / time.Second), HttpOnly: true, Secure: w.secure, SameSite: sameSite,
	})
	return nil
}

// errNoCeremony: the ceremony cookie is missing or names no record (never
// begun here, or long expired). Nothing server-side was touched: it is
// logged, not audited.
var errNoCeremony = errors.New("no ceremony in progress")

// Why a ceremony's finish is refused once its record is found.
const (
	reasonReplayed = gate.ReasonReplayed
	reasonExpired  = gate.ReasonExpired
	reasonElsewise = "begun for another session, person or check"
)

// ceremonyRefused is a refused finish of a ceremony whose record exists:
// audited (audit.CeremonyRefused).
type ceremonyRefused struct {
	purpose, reason string
}

func (e *ceremonyRefused) Error() string {
	return fmt.Sprintf("%s ceremony refused: %s", e.purpose, e.reason)
}

// replayed reports whether err is a refused replay of a ceremony.
func replayed(err error) bool {
	var cr *ceremonyRefused
	return errors.As(err, &cr) && cr.reason == reasonReplayed
}

// ceremonyID returns the SHA-256 of the ceremony cookie's id, or nil.
func ceremonyID(r *http.Request, purpose string) []byte {
	c, err := r.Cookie(ceremonyCookie(purpose))
	if err != nil || len(c.Value) != base64.RawURLEncoding.EncodedLen(32) {
		return nil
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return nil
	}
	return hashSecret(c.Value)
}

// takeCeremony finishes a WebAuthn ceremony: it clears the cookie, uses
// the record once (store.UseCeremony) and checks that it was begun for
// purpose, bind and subject. A replay, an expired record or one begun for
// something else is audited, naming actor (the person, when known), and
// returned as a *ceremonyRefused.
func (w *Web) takeCeremony(rw http.ResponseWriter, r *http.Request, purpose string, bind []byte, subject, actor string) (*ceremony, error) {
	w.clearCookie(rw, ceremonyCookie(purpose), ceremonyDir(r), http.SameSiteStrictMode)
	return w.useCeremony(r, purpose, bind, subject, actor)
}

// useCeremony uses the record of the request's ceremony cookie of purpose
// and checks what it was begun for.
func (w *Web) useCeremony(r *http.Request, purpose string, bind []byte, subject, actor string) (*ceremony, error) {
	rec, err := w.useRecord(r, purpose, actor)
	if err != nil {
		return nil, err
	}
	return w.openCeremony(r.Context(), rec, purpose, bind, subject, actor)
}

// useRecord uses the record of the request's ceremony cookie of purpose,
// once: errNoCeremony without one; a replay or an expired one is audited
// and refused.
func (w *Web) useRecord(r *http.Request, purpose, actor string) (*store.Ceremony, error) {
	ctx := r.Context()
	hash := ceremonyID(r, purpose)
	if hash == nil {
		return nil, errNoCeremony
	}
	rec, err := w.st.UseCeremony(ctx, hash, w.now().UTC())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNoCeremony
	case errors.Is(err, store.ErrUsed):
		return nil, w.refuseCeremony(ctx, rec, purpose, reasonReplayed, actor)
	case errors.Is(err, store.ErrExpired):
		return nil, w.refuseCeremony(ctx, rec, purpose, reasonExpired, actor)
	case err != nil:
		return nil, fmt.Errorf("using ceremony: %w", err)
	}
	return rec, nil
}

// msgReplayed answers a ceremony's finish sent a second time.
const msgReplayed = "This answer was already used: each one counts once, so nothing was done. If this was you, start again."

// ceremonyFailure turns a refused ceremony into the message a person
// reads: gone (expired, or begun elsewhere), or a replay.
func ceremonyFailure(err error, gone string) error {
	var cr *ceremonyRefused
	switch {
	case errors.Is(err, errNoCeremony):
		return failWith(http.StatusBadRequest, gone, err)
	case errors.As(err, &cr) && cr.reason == reasonReplayed:
		return failWith(http.StatusConflict, msgReplayed, err)
	case errors.As(err, &cr):
		return failWith(http.StatusBadRequest, gone, err)
	}
	return err
}

// peekCeremony reads the record of the request's ceremony cookie of
// purpose without using it (a TOTP set-up is used when its code is right:
// see useCeremony). An expired one is errNoCeremony (the set-up starts
// over); a used one or one begun for something else is refused and
// audited.
func (w *Web) peekCeremony(r *http.Request, purpose string, bind []byte, subject, actor string) (*ceremony, error) {
	ctx := r.Context()
	hash := ceremonyID(r, purpose)
	if hash == nil {
		return nil, errNoCeremony
	}
	rec, err := w.st.GetCeremony(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNoCeremony
	case err != nil:
		return nil, fmt.Errorf("reading ceremony: %w", err)
	case !rec.UsedAt.IsZero():
		return nil, w.refuseCeremony(ctx, rec, purpose, reasonReplayed, actor)
	case !w.now().Before(rec.ExpiresAt):
		return nil, errNoCeremony
	}
	return w.openCeremony(ctx, rec, purpose, bind, subject, actor)
}

// openCeremony checks what a record was begun for and unseals its state.
func (w *Web) openCeremony(ctx context.Context, rec *store.Ceremony, purpose string, bind []byte, subject, actor string) (*ceremony, error) {
	if rec.Purpose != purpose || subtle.ConstantTimeCompare(rec.Bind, bind) != 1 || rec.Subject != subject {
		return nil, w.refuseCeremony(ctx, rec, purpose, reasonElsewise, actor)
	}
	plain, err := w.master.Open(rec.Data, ceremonyAAD(rec.Purpose, rec.Hash))
	if err != nil {
		return nil, fmt.Errorf("opening ceremony: %w", err)
	}
	defer clear(plain)
	var st ceremonyState
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, fmt.Errorf("decoding ceremony: %w", err)
	}
	return &ceremony{Purpose: rec.Purpose, Bind: rec.Bind, Subject: rec.Subject, Data: st.Data, Nonce: st.Nonce, hash: rec.Hash, begunAt: rec.CreatedAt}, nil
}

// refuseCeremony audits a refused finish of ceremony rec and returns the
// refusal.
func (w *Web) refuseCeremony(ctx context.Context, rec *store.Ceremony, purpose, reason, actor string) error {
	refusal := &ceremonyRefused{purpose: purpose, reason: reason}
	if actor == "" {
		actor = "unknown"
	}
	data := map[string]any{"purpose": purpose, "reason": reason, "begun_at": rec.CreatedAt, "expires_at": rec.ExpiresAt}
	if rec.Purpose != purpose {
		data["begun_for"] = rec.Purpose
	}
	if rec.Subject != "" {
		data["ceremony_subject"] = rec.Subject
	}
	if !rec.UsedAt.IsZero() {
		data["used_at"] = rec.UsedAt
	}
	subject := rec.Subject
	if purpose == purposeRegister || purpose == purposeTOTP {
		subject = "user:" + rec.Subject
	}
	if err := w.people.RefuseCeremony(ctx, actor, subject, data); err != nil {
		return fmt.Errorf("auditing refused ceremony (%v): %w", refusal, err)
	}
	w.log.WarnContext(ctx, "ceremony refused", "purpose", purpose, "reason", reason, "actor", actor)
	return refusal
}

// ceremonyDir is the cookie path of a WebAuthn ceremony: the directory of
// its begin and finish endpoints ("/checks/ID/approve/passkey/").
func ceremonyDir(r *http.Request) string { return path.Dir(r.URL.EscapedPath()) + "/" }
