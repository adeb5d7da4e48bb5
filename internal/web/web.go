package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/loopback"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/requestid"
	"github.com/stepgate/stepgate/internal/store"
)

// Config tunes the web side.
type Config struct {
	// PublicURL is where people reach stepgate (https://stepgate.example.com):
	// the only origin state-changing requests may come from.
	PublicURL string
	// Dev allows cookies without Secure, but only when PublicURL is http on
	// a loopback address.
	Dev bool
	// TrustedProxies are the addresses of the reverse proxies in front of
	// stepgate: from them, the client address is taken from
	// X-Forwarded-For (it keys the TOTP back-off).
	TrustedProxies []netip.Prefix
}

// Session and ceremony lifetimes.
const (
	// SessionMaxAge is the longest a sign-in lasts.
	SessionMaxAge = 12 * time.Hour
	// SessionIdle ends a session nobody used for this long.
	SessionIdle = 30 * time.Minute
	// seenEvery is how often LastSeenAt is written: at most once a minute.
	seenEvery = time.Minute
	// ceremonyTTL bounds a WebAuthn ceremony or a TOTP set-up in progress.
	ceremonyTTL = 5 * time.Minute
	// FreshAuth is how recent the session's proof must be to add or remove
	// a factor (max_age 300 s, a step-up's default age): a stolen session
	// must not be able to enroll the thief's passkey or remove the owner's.
	FreshAuth = gate.DefaultStepUpAge
)

// FactorNotifier tells people that their factors changed (package
// notify); it must not block.
type FactorNotifier interface {
	NotifyFactor(ctx context.Context, event string, fc notify.FactorChange)
}

// webStore is what the pages use of the store: sign-in sessions, the
// ceremonies of passkeys, enrollment links, people and their factors.
// The pages run no transaction of their own: InTx is what gate.People
// runs the people's side in (factors, sign-ins, approvals, enrollment).
type webStore interface {
	InTx(ctx context.Context, fn func(tx store.Tx) error) error
	GetUser(ctx context.Context, id string) (*store.User, error)
	GetCredential(ctx context.Context, id string) (*store.Credential, error)
	ListCredentials(ctx context.Context, userID string) ([]*store.Credential, error)
	GetEnrollment(ctx context.Context, hash []byte) (*store.Enrollment, error)
	GetSession(ctx context.Context, hash []byte) (*store.Session, error)
	UpdateSession(ctx context.Context, s *store.Session) error
	DeleteSession(ctx context.Context, hash []byte) error
	CreateCeremony(ctx context.Context, c *store.Ceremony) error
	GetCeremony(ctx context.Context, hash []byte) (*store.Ceremony, error)
	UseCeremony(ctx context.Context, hash []byte, now time.Time) (*store.Ceremony, error)
}

// Web serves the pages for people.
type Web struct {
	cfg    Config
	origin string // scheme://host[:port] of PublicURL
	secure bool   // cookies carry Secure
	svc    *gate.Service
	st     webStore
	master *keys.Master
	wa     *webauthn.WebAuthn
	tp     *totp.TOTP
	// people verifies factors and starts sign-ins (the gate's rules,
	// transactions and audit events).
	people *gate.People
	log    *slog.Logger
	now    func() time.Time
	pages  *pages
	oidc   *oidcSide // nil: no identity provider
	notify FactorNotifier
	// throttle slows TOTP guessing per name and client address.
	throttle *totp.Throttle
}

// SetNotifier makes the web side tell people, through n, when a factor is
// added to or removed from their account.
func (w *Web) SetNotifier(n FactorNotifier) { w.notify = n }

// factorChanged tells the person, after the commit, that a factor of
// theirs was added or removed.
func (w *Web) factorChanged(ctx context.Context, event string, u *store.User, c *store.Credential, via string) {
	if w.notify == nil {
		return
	}
	w.notify.NotifyFactor(ctx, event, notify.FactorChange{User: u.Name, Email: u.Email, Kind: string(c.Kind), Name: c.Name, ID: c.ID, Via: via})
}

// New returns the web side. A PublicURL that does not parse leaves every
// POST refused (its origin matches nothing).
func New(cfg Config, svc *gate.Service, st webStore, master *keys.Master, wa *webauthn.WebAuthn, tp *totp.TOTP, log *slog.Logger, now func() time.Time) *Web {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	w := &Web{cfg: cfg, svc: svc, st: st, master: master, wa: wa, tp: tp, log: requestid.Logger(log), now: now, secure: true, throttle: totp.NewThrottle(now)}
	w.people = gate.NewPeople(svc, st, wa, tp, now, markAudited)
	u, err := url.Parse(cfg.PublicURL)
	if err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		w.origin = u.Scheme + "://" + strings.ToLower(u.Host)
		if cfg.Dev && u.Scheme == "http" && loopback.Host(u.Hostname()) {
			w.secure = false
		}
	} else {
		log.Error("the public URL is not an http(s) URL: every form will be refused", "public_url", cfg.PublicURL)
	}
	if w.secure && u != nil && u.Scheme == "http" {
		log.Warn("the public URL is plain http: browsers will not send the Secure session cookie back (use https, or --dev on a loopback address)", "public_url", cfg.PublicURL)
	}
	w.pages = mustParsePages()
	return w
}

// url makes an absolute path of the web side into a full URL.
func (w *Web) url(path string) string { return fmt.Sprintf("%s%s", w.cfg.PublicURL, path) }
