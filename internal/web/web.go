package web

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
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
	// freshAuth is how recent the sign-in must be to add a factor: a
	// stolen session must not be able to enroll the thief's passkey.
	freshAuth = 10 * time.Minute
)

// Web serves the pages for people.
type Web struct {
	cfg    Config
	origin string // scheme://host[:port] of PublicURL
	secure bool   // cookies carry Secure
	svc    *gate.Service
	st     store.Store
	master *keys.Master
	wa     *webauthn.WebAuthn
	tp     *totp.TOTP
	log    *slog.Logger
	now    func() time.Time
	pages  *pages
	oidc   *oidcSide // nil: no identity provider
	// throttle slows TOTP guessing per name and client address.
	throttle *totp.Throttle
}

// New returns the web side. A PublicURL that does not parse leaves every
// POST refused (its origin matches nothing).
func New(cfg Config, svc *gate.Service, st store.Store, master *keys.Master, wa *webauthn.WebAuthn, tp *totp.TOTP, log *slog.Logger, now func() time.Time) *Web {
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	w := &Web{cfg: cfg, svc: svc, st: st, master: master, wa: wa, tp: tp, log: log, now: now, secure: true, throttle: totp.NewThrottle(now)}
	u, err := url.Parse(cfg.PublicURL)
	if err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		w.origin = u.Scheme + "://" + strings.ToLower(u.Host)
		if cfg.Dev && u.Scheme == "http" && isLoopback(u.Hostname()) {
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

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// url makes an absolute path of the web side into a full URL.
func (w *Web) url(path string) string { return fmt.Sprintf("%s%s", w.cfg.PublicURL, path) }
