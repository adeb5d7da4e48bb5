package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/httpapi"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/postgres"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/web"
)

// OpenStore opens the database a URL names: sqlite://PATH or postgres://...
func OpenStore(ctx context.Context, dsn string) (store.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, errors.New("sqlite:// needs a path, such as sqlite://./stepgate.db")
		}
		return sqlite.Open(ctx, path)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	}
	return nil, fmt.Errorf("database %q: want sqlite://PATH or postgres://...", config.Redacted(dsn))
}

// DevMasterKeyPath is where --dev keeps the master key: next to a SQLite
// database, or in the working directory.
func DevMasterKeyPath(dsn string) string {
	if path, ok := strings.CutPrefix(dsn, "sqlite://"); ok && path != "" {
		return strings.TrimSuffix(path, filepath.Ext(path)) + ".master.key"
	}
	return "stepgate.master.key"
}

// LoadMaster reads the master key file, creating it first in dev mode.
// It reports whether it created it.
func LoadMaster(path string, dev bool) (*keys.Master, bool, error) {
	if path == "" {
		return nil, false, errors.New("no master key: set server.master_key_file, STEPGATE_MASTER_KEY_FILE or --master-key-file (serve --dev creates one)")
	}
	created := false
	if dev {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := keys.GenerateMasterFile(path); err != nil {
				return nil, false, fmt.Errorf("creating master key %s: %w", path, err)
			}
			created = true
		}
	}
	m, err := keys.LoadMaster(path)
	if err != nil {
		return nil, false, err
	}
	return m, created, nil
}

// ServeOptions is what `stepgate serve` runs.
type ServeOptions struct {
	Webhooks []*notify.Webhook
	Server   config.Server
	Policy   policy.Config
	Modules  []policy.Module
	MaxPlan  int64
	Dev      bool
	Log      *slog.Logger
	Out      io.Writer // where to say what was done and where it listens
	Now      func() time.Time
	OnListen func(addr string) // tests learn the port here
}

// Serve runs the server until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, o ServeOptions) error {
	srv := o.Server
	st, err := OpenServerStore(ctx, srv, o.Log)
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer st.Close() // last: after the server and the background loops
	if srv.MasterKeyFile == "" && o.Dev {
		srv.MasterKeyFile = DevMasterKeyPath(srv.Database)
	}
	master, created, err := LoadMaster(srv.MasterKeyFile, o.Dev)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(o.Out, "dev: created master key %s (mode 0600); keep it: it decrypts the signing keys\n", srv.MasterKeyFile)
	}
	ring := keys.NewRing(master, o.Now, keys.WithAlgorithm(srv.GrantAlgorithm))
	made, err := ring.Ensure(ctx, st)
	if err != nil {
		return fmt.Errorf("preparing signing key: %w", err)
	}
	if made {
		fmt.Fprintf(o.Out, "created the first grant-signing key (%s, sealed under the master key)\n", ring.Algorithm())
	}
	engine, err := policy.New(ctx, o.Policy, o.Modules)
	if err != nil {
		return err
	}
	ciVerifier, err := CIVerifier(srv.CIIssuers)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", srv.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", srv.Listen, err)
	}
	defer ln.Close() // on an early return; Shutdown has closed it otherwise
	if srv.PublicURL == "" {
		srv.PublicURL = defaultPublicURL(ln.Addr().(*net.TCPAddr))
	}
	if o.Dev {
		if err := firstAdmin(ctx, st, srv, o); err != nil {
			return err
		}
	}
	if err := gate.ValidSubjectTemplate(srv.GrantSubject); err != nil {
		return fmt.Errorf("server.grant_subject: %w", err)
	}
	svc := gate.New(st, engine, ring, gate.Config{
		PublicURL: srv.PublicURL, Audience: srv.Audience, SubjectTemplate: srv.GrantSubject,
		CheckTTL: time.Duration(srv.CheckTTL), GrantTTL: time.Duration(srv.GrantTTL), MaxPlanBytes: o.MaxPlan,
		Limits: gate.Limits{PerMinute: srv.Limits.ChecksPerMinute, Burst: srv.Limits.ChecksBurst, MaxPending: srv.Limits.MaxPendingPerToken},
	}, o.Log, o.Now)
	hub := gate.NewHub()
	bg := newBackground(ctx)
	defer bg.stop()
	var told notifiers // the metrics, then the webhooks
	if len(o.Webhooks) > 0 {
		n := notify.New(o.Webhooks, srv.PublicURL, nil, o.Log, o.Now)
		told = append(told, n)
		bg.run(n.Run)
	}
	bg.run(func(ctx context.Context) {
		if err := hub.Run(ctx, st); err != nil && ctx.Err() == nil {
			o.Log.ErrorContext(ctx, "following check notifications stopped", "err", err)
		}
	})
	bg.run(func(ctx context.Context) { expireLoop(ctx, svc, o.Log) })
	api := httpapi.New(svc, hub, st, o.Log, o.MaxPlan)
	svc.SetNotifier(append(notifiers{api.Observer()}, told...))
	if ciVerifier != nil {
		api.SetCIVerifier(ciVerifier)
	}
	metricsToken, err := MetricsToken(srv)
	if err != nil {
		return err
	}
	api.SetMetricsToken(metricsToken)
	people, rp, err := webUI(ctx, srv, o, svc, st, master)
	if err != nil {
		return err
	}
	if rp != nil {
		// People review and approve from the command line with the same
		// provider's ID tokens (RFC 9470 step-up challenges).
		api.SetPeople(rp, srv.OIDC.CLIClientID, o.Now)
	}
	var drain drainer
	hs := &http.Server{
		Handler:           drain.wrap(Handler(api.Routes(), people)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // a large plan on a slow link
		WriteTimeout:      gate.MaxWait + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(o.Out, "stepgate listening on %s (public URL %s, database %s)\n", ln.Addr(), srv.PublicURL, config.Redacted(srv.Database))
	if o.OnListen != nil {
		o.OnListen(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	grace := time.Duration(srv.ShutdownGrace)
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	return shutdown(hs, &drain, hub, bg, grace, o.Log)
}

// defaultPublicURL is where a server without --public-url is reached:
// localhost for a loopback address (passkeys need a domain name, and
// browsers treat http://localhost as a secure context), the address
// otherwise.
func defaultPublicURL(a *net.TCPAddr) string {
	if a.IP.IsLoopback() {
		return fmt.Sprintf("http://localhost:%d", a.Port)
	}
	return "http://" + a.String()
}

// PublicURL is the public URL of a server configured with srv: its
// public_url, or the default for its listen address (as serve picks it).
func PublicURL(srv config.Server) string {
	if srv.PublicURL != "" {
		return strings.TrimRight(srv.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(srv.Listen)
	if err != nil {
		return "http://" + srv.Listen
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		return "http://localhost:" + port
	}
	return "http://" + srv.Listen
}

// webUI builds the pages for people: sign-in, enrollment, review and
// approval, with WebAuthn bound to the public URL's host. It returns the
// relying party of server.oidc too (nil when unset), for the people API.
func webUI(ctx context.Context, srv config.Server, o ServeOptions, svc *gate.Service, st store.Store, master *keys.Master) (http.Handler, *oidc.RP, error) {
	u, err := url.Parse(srv.PublicURL)
	if err != nil || u.Host == "" {
		return nil, nil, fmt.Errorf("public URL %q: %w", srv.PublicURL, err)
	}
	origin := u.Scheme + "://" + u.Host
	if net.ParseIP(u.Hostname()) != nil {
		return nil, nil, fmt.Errorf("public URL %s: passkeys need a domain name, not an IP address (use --public-url https://stepgate.example.com, or http://localhost:PORT on this machine)", srv.PublicURL)
	}
	wa, err := webauthn.New(u.Hostname(), origin, "stepgate", o.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("preparing WebAuthn for %s: %w", origin, err)
	}
	tp := totp.New(master, "stepgate", o.Now)
	proxies, err := srv.TrustedProxyPrefixes()
	if err != nil {
		return nil, nil, err
	}
	w := web.New(web.Config{PublicURL: srv.PublicURL, Dev: o.Dev, TrustedProxies: proxies}, svc, st, master, wa, tp, o.Log, o.Now)
	if srv.OIDC != nil {
		rp, path, err := oidcRelyingParty(ctx, srv, st, o.Now)
		if err != nil {
			return nil, nil, err
		}
		w.SetOIDC(rp, path)
		return w.Routes(), rp, nil
	}
	return w.Routes(), nil, nil
}

// oidcRelyingParty builds the relying party of server.oidc (discovering
// the provider) and returns it with its callback path. Used nonces are
// kept in nonces, the database every server shares (the store).
func oidcRelyingParty(ctx context.Context, srv config.Server, nonces oidc.NonceDB, now func() time.Time) (*oidc.RP, string, error) {
	if nonces == nil {
		return nil, "", errors.New("server.oidc: no database to keep used nonces in")
	}
	c := srv.OIDC
	path := c.RedirectPath
	if path == "" {
		path = web.DefaultOIDCCallback
	}
	var secret string
	if c.ClientSecretFile != "" {
		b, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return nil, "", fmt.Errorf("server.oidc.client_secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rp, err := oidc.New(ctx, oidc.Config{
		Name: c.Name, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: secret,
		RedirectURL: strings.TrimRight(srv.PublicURL, "/") + path, Scopes: c.Scopes,
		GroupsClaim: c.GroupsClaim, GroupMap: c.Groups, ACR: c.ACR, AMRLevels: c.AMR,
		Nonces: oidc.StoredNonces(nonces, now),
	}, now)
	if err != nil {
		return nil, "", fmt.Errorf("server.oidc: %w", err)
	}
	return rp, path, nil
}

// Handler serves the API's paths with the API and everything else with the
// web UI: each keeps its own headers (the pages' CSP allows their script,
// the API's allows nothing).
func Handler(api, people http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/v1/", "/.well-known/", "/healthz", "/readyz", "/metrics"} {
		mux.Handle(p, api)
	}
	mux.Handle("/", people)
	return mux
}

// firstAdmin creates the account "admin" on a database with no user, in dev
// mode, and prints its enrollment link.
func firstAdmin(ctx context.Context, st store.Store, srv config.Server, o ServeOptions) error {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("listing users: %w", err)
	}
	if len(users) > 0 {
		return nil
	}
	_, secret, err := account.New(st, o.Now).Create(ctx, "admin", "", []string{gate.DefaultApproverGroup}, true, "serve --dev")
	if err != nil {
		return fmt.Errorf("creating the first admin: %w", err)
	}
	fmt.Fprintf(o.Out, "dev: created the first admin, \"admin\"; enroll a passkey or TOTP within 24 h at:\n  %s/enroll/%s\n", strings.TrimRight(srv.PublicURL, "/"), secret)
	return nil
}

func expireLoop(ctx context.Context, svc *gate.Service, log *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := svc.ExpireDue(ctx); err != nil && ctx.Err() == nil {
				log.ErrorContext(ctx, "expiring checks failed", "err", err)
			} else if n > 0 {
				log.InfoContext(ctx, "expired pending checks", "count", n)
			}
		}
	}
}

// Webhooks reads the configured webhooks and their secrets.
func Webhooks(cfg []config.Webhook, resolve func(string) string) ([]*notify.Webhook, error) {
	var out []*notify.Webhook
	for i, c := range cfg {
		w := &notify.Webhook{URL: c.URL, Format: c.Format, Events: c.Events}
		if c.SecretFile != "" {
			b, err := os.ReadFile(resolve(c.SecretFile))
			if err != nil {
				return nil, fmt.Errorf("notifications.webhooks[%d].secret_file: %w", i, err)
			}
			w.Secret = []byte(strings.TrimSpace(string(b)))
		}
		if err := w.Validate(); err != nil {
			return nil, fmt.Errorf("notifications.webhooks[%d]: %w", i, err)
		}
		out = append(out, w)
	}
	return out, nil
}

// CIVerifier builds the verifier of CI tokens from server.ci_issuers; nil
// when none is configured.
func CIVerifier(cfg []config.CIIssuer) (*ciauth.Verifier, error) {
	if len(cfg) == 0 {
		return nil, nil
	}
	issuers := make([]ciauth.Issuer, 0, len(cfg))
	for _, c := range cfg {
		is := ciauth.Issuer{URL: c.URL, Audience: c.Audience, System: c.System}
		for _, r := range c.Rules {
			is.Rules = append(is.Rules, ciauth.Rule{Claims: r.Claims, Workspaces: r.Workspaces, Name: r.Name})
		}
		issuers = append(issuers, is)
	}
	v, err := ciauth.New(issuers, ciauth.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w: server.ci_issuers: %w", config.ErrInvalid, err)
	}
	return v, nil
}
