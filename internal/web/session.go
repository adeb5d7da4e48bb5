package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"

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
// user and credentials expected) or of a TOTP set-up (the new seed).
//
// It lives in a cookie sealed with the master key (AES-256-GCM; the
// purpose is the associated data), not in process memory: any server
// behind a load balancer can finish a ceremony another began. It is bound
// to what it was begun for (the browser's session, or the enrollment
// link, and the check), expires after five minutes (a TOTP set-up after
// totp.PendingTTL), and a WebAuthn ceremony is cleared when it is used:
// one begin, one finish.
type ceremony struct {
	Purpose string `json:"p"`
	// Bind is the hex SHA-256 of the session cookie or of the enrollment
	// link that began it ("" for a sign-in).
	Bind string `json:"b"`
	// Subject is the check being approved, or the user registering.
	Subject string    `json:"s,omitempty"`
	Data    []byte    `json:"d"`
	Nonce   string    `json:"n,omitempty"`
	Expires time.Time `json:"e"`
}

// Ceremony purposes.
const (
	purposeLogin    = "login"
	purposeRegister = "register"
	purposeApprove  = "approve"
	purposeTOTP     = "totp"
)

func ceremonyCookie(purpose string) string { return "stepgate_ceremony_" + purpose }

func ceremonyAAD(purpose string) []byte { return []byte("stepgate/web/ceremony/v1/" + purpose) }

// putCeremony sets the ceremony cookie, SameSite=Strict, sent back only to
// cookiePath (the directory of a WebAuthn ceremony's begin and finish, or
// the TOTP confirmation): ceremonies of two checks in two tabs do not
// collide.
func (w *Web) putCeremony(rw http.ResponseWriter, c *ceremony, ttl time.Duration, cookiePath string) error {
	return w.setCeremonyCookie(rw, c, ttl, cookiePath, http.SameSiteStrictMode)
}

// setCeremonyCookie seals c, expiring after ttl, into the cookie of its
// purpose.
func (w *Web) setCeremonyCookie(rw http.ResponseWriter, c *ceremony, ttl time.Duration, cookiePath string, sameSite http.SameSite) error {
	c.Expires = w.now().Add(ttl).UTC()
	plain, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding ceremony: %w", err)
	}
	sealed, err := w.master.Seal(plain, ceremonyAAD(c.Purpose))
	clear(plain)
	if err != nil {
		return fmt.Errorf("sealing ceremony: %w", err)
	}
	http.SetCookie(rw, &http.Cookie{
		Name: ceremonyCookie(c.Purpose), Value: base64.RawURLEncoding.EncodeToString(sealed), Path: cookiePath,
		MaxAge: int(ttl / time.Second), HttpOnly: true, Secure: w.secure, SameSite: sameSite,
	})
	return nil
}

// errNoCeremony: the ceremony cookie is missing, altered, expired or was
// begun for something else.
var errNoCeremony = errors.New("no ceremony in progress")

// takeCeremony opens the ceremony cookie of a WebAuthn ceremony, checks
// that it was begun for bind and subject and is not expired, and clears it.
func (w *Web) takeCeremony(rw http.ResponseWriter, r *http.Request, purpose string, bind []byte, subject string) (*ceremony, error) {
	c, err := w.peekCeremony(r, purpose, bind, subject)
	w.clearCookie(rw, ceremonyCookie(purpose), ceremonyDir(r), http.SameSiteStrictMode)
	return c, err
}

// ceremonyDir is the cookie path of a WebAuthn ceremony: the directory of
// its begin and finish endpoints ("/checks/ID/approve/passkey/").
func ceremonyDir(r *http.Request) string { return path.Dir(r.URL.EscapedPath()) + "/" }

// peekCeremony is takeCeremony without clearing the cookie.
func (w *Web) peekCeremony(r *http.Request, purpose string, bind []byte, subject string) (*ceremony, error) {
	c, err := w.openCeremony(r, purpose)
	if err != nil {
		return nil, err
	}
	if c.Bind != hex.EncodeToString(bind) || c.Subject != subject {
		return nil, errNoCeremony
	}
	return c, nil
}

// openCeremony opens the ceremony cookie of purpose and checks that it is
// not expired.
func (w *Web) openCeremony(r *http.Request, purpose string) (*ceremony, error) {
	ck, err := r.Cookie(ceremonyCookie(purpose))
	if err != nil {
		return nil, errNoCeremony
	}
	sealed, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return nil, errNoCeremony
	}
	plain, err := w.master.Open(sealed, ceremonyAAD(purpose))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoCeremony, err)
	}
	defer clear(plain)
	var c ceremony
	if err := json.Unmarshal(plain, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoCeremony, err)
	}
	if c.Purpose != purpose || !w.now().Before(c.Expires) {
		return nil, errNoCeremony
	}
	return &c, nil
}
