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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stepgate/stepgate/internal/account"
	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/authn/oidc"
	"github.com/stepgate/stepgate/internal/authn/totp"
	"github.com/stepgate/stepgate/internal/authn/webauthn"
	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/httpapi"
	"github.com/stepgate/stepgate/internal/integrations/github"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/requestid"
	"github.com/stepgate/stepgate/internal/secret"
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

// LoadKeyring reads the master key of srv with its previous keys
// (server.previous_master_key_files): it seals with the current key and
// opens with any of them, for a master key rotation without downtime.
func LoadKeyring(srv config.Server, dev bool) (*keys.Master, bool, error) {
	m, created, err := LoadMaster(srv.MasterKeyFile, dev)
	if err != nil {
		return nil, false, err
	}
	var prev []*keys.Master
	for i, p := range srv.PreviousMasterKeyFiles {
		k, err := keys.LoadMaster(p)
		if err != nil {
			return nil, false, fmt.Errorf("server.previous_master_key_files[%d]: %w", i, err)
		}
		prev = append(prev, k)
	}
	return m.WithPrevious(prev...), created, nil
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

	// SavedPlanBinding is plan.saved_plan_binding ("" is verify).
	SavedPlanBinding string
}

// Serve runs the server until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, o ServeOptions) error {
	srv := o.Server
	// A public URL passkeys cannot work with is refused before anything is
	// created (a master key, a signing key, the first admin).
	if err := CheckPublicURL(PublicURL(srv)); err != nil {
		return err
	}
	st, err := OpenServerStore(ctx, srv, o.Log)
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer st.Close() // last: after the server and the background loops
	if srv.MasterKeyFile == "" && o.Dev {
		srv.MasterKeyFile = DevMasterKeyPath(srv.Database)
	}
	master, created, err := LoadKeyring(srv, o.Dev)
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
	// Admin commands print enrollment links on the URL the server is
	// reached at.
	if err := st.SetSetting(ctx, store.SettingPublicURL, strings.TrimRight(srv.PublicURL, "/")); err != nil {
		return fmt.Errorf("recording the public URL: %w", err)
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
		PublicURL: srv.PublicURL, Audience: srv.Audience, SubjectTemplate: srv.GrantSubject, AWSSessionTags: srv.GrantAWSSessionTags,
		CheckTTL: time.Duration(srv.CheckTTL), GrantTTL: time.Duration(srv.GrantTTL), MaxPlanBytes: o.MaxPlan,
		SavedPlanBinding: o.SavedPlanBinding,
		Limits:           gate.Limits{PerMinute: srv.Limits.ChecksPerMinute, Burst: srv.Limits.ChecksBurst, MaxPending: srv.Limits.MaxPendingPerToken},
	}, o.Log, o.Now)
	svc.SetSecrets(secret.New(st, master, o.Now))
	hub := gate.NewHub()
	bg := newBackground(ctx)
	defer bg.stop()
	var told notifiers // the metrics, then the webhooks
	var n *notify.Notifier
	if len(o.Webhooks) > 0 {
		n = notify.New(o.Webhooks, srv.PublicURL, nil, o.Log, o.Now)
		told = append(told, n)
		bg.run(n.Run)
	}
	checkpoints, closeSinks, err := startCheckpoints(ctx, st, master, srv.Audit, n, o, bg)
	if err != nil {
		return err
	}
	defer closeSinks() // before the store closes
	svc.SetSealer(checkpoints)
	bg.run(func(ctx context.Context) {
		if err := hub.Run(ctx, st); err != nil && ctx.Err() == nil {
			o.Log.ErrorContext(ctx, "following check notifications stopped", "err", err)
		}
	})
	bg.run(func(ctx context.Context) { expireLoop(ctx, svc, o.Log) })
	api := httpapi.New(svc, hub, st, o.Log, o.MaxPlan)
	registerCheckpointMetrics(api.Registry(), checkpoints)
	svc.SetNotifier(append(notifiers{api.Observer()}, told...))
	if ciVerifier != nil {
		api.SetCIVerifier(ciVerifier)
	}
	metricsToken, err := MetricsToken(srv)
	if err != nil {
		return err
	}
	api.SetMetricsToken(metricsToken)
	people, rp, err := webUI(ctx, srv, o, svc, st, master, n)
	if err != nil {
		return err
	}
	if rp != nil {
		// People review and approve from the command line with the same
		// provider's ID tokens (RFC 9470 step-up challenges).
		api.SetPeople(rp, srv.OIDC.CLIClientID, o.Now)
	}
	routes := api.Routes()
	if g := srv.Integrations.GitHub; g != nil {
		gh, err := github.FromConfig(g, srv.PublicURL, st, hub, o.Log, o.Now)
		if err != nil {
			return err
		}
		bg.run(gh.Run)
		routes = withRoute(routes, "POST "+github.Path, gh)
	}
	var drain drainer
	hs := &http.Server{
		Handler:           drain.wrap(Handler(routes, people)),
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
	err = shutdown(hs, &drain, hub, bg, grace, o.Log)
	// Seal what the last minute added before going; the store closes after.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if _, cerr := checkpoints.Checkpoint(sctx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("writing the last audit checkpoint: %w", cerr))
	}
	return err
}

// startCheckpoints prepares the signed checkpoints of the audit log: the
// checkpoint key (created, sealed under the master key, on the first
// start), the sinks outside the database (the checkpoint file, the
// webhooks that list audit.checkpoint), a first checkpoint of what is
// there (the server refuses to start on a log changed under its newest
// checkpoint), and the loop that checkpoints new events every interval.
// The caller closes the sinks.
func startCheckpoints(ctx context.Context, st store.Store, master *keys.Master, cfg config.Audit, n *notify.Notifier, o ServeOptions, bg *background) (*checkpoint.Writer, func(), error) {
	var sinks []checkpoint.Sink
	closeSinks := func() {}
	if cfg.CheckpointFile != "" {
		f, err := checkpoint.OpenFile(cfg.CheckpointFile)
		if err != nil {
			return nil, nil, fmt.Errorf("server.audit.checkpoint_file: %w", err)
		}
		sinks = append(sinks, f)
		closeSinks = func() {
			if err := f.Close(); err != nil {
				o.Log.Error("closing the audit checkpoint file failed", "err", err)
			}
		}
	}
	if n != nil {
		sinks = append(sinks, n)
	}
	w := checkpoint.NewWriter(st, keys.NewCheckpointKeys(master, o.Now), o.Log, o.Now, sinks...)
	kid, err := w.Ensure(ctx)
	if err != nil {
		closeSinks()
		return nil, nil, err
	}
	if kid != "" {
		fmt.Fprintf(o.Out, "created the audit checkpoint key %s (Ed25519, sealed under the master key)\n", kid)
	}
	if _, err := w.Checkpoint(ctx); err != nil {
		closeSinks()
		return nil, nil, fmt.Errorf("%w (run `stepgate audit verify`)", err)
	}
	interval := time.Duration(cfg.CheckpointInterval)
	if interval <= 0 || interval > config.MaxCheckpointInterval {
		interval = config.MaxCheckpointInterval
	}
	t := time.NewTicker(interval)
	bg.run(func(ctx context.Context) {
		defer t.Stop()
		w.Run(ctx, t.C)
	})
	return w, closeSinks, nil
}

// registerCheckpointMetrics exports the newest checkpoint this server
// wrote or saw: its sequence number and time (its age is time() - that).
func registerCheckpointMetrics(reg prometheus.Registerer, w *checkpoint.Writer) {
	last := func(f func(*audit.Checkpoint) float64) func() float64 {
		return func() float64 {
			if cp := w.Last(); cp != nil {
				return f(cp)
			}
			return 0
		}
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stepgate_audit_checkpoint_seq", Help: "Sequence number of the newest signed audit checkpoint this server wrote or saw (0: none yet).",
		}, last(func(cp *audit.Checkpoint) float64 { return float64(cp.Seq) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stepgate_audit_checkpoint_timestamp_seconds", Help: "Time of the newest signed audit checkpoint this server wrote or saw, in Unix seconds (its age: time() - this).",
		}, last(func(cp *audit.Checkpoint) float64 { return float64(cp.Time.UnixMicro()) / 1e6 })),
	)
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

// CheckPublicURL refuses a public URL people could not use: one that is
// not an absolute http(s) URL, or whose host is an IP address (passkeys are
// bound to a domain name).
func CheckPublicURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("public URL %q: %w", s, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("public URL %q: want an absolute http or https URL, such as https://stepgate.example.com", s)
	case net.ParseIP(u.Hostname()) != nil:
		return fmt.Errorf("public URL %s: passkeys need a domain name, not an IP address (use --public-url https://stepgate.example.com, or http://localhost:PORT on this machine)", s)
	}
	return nil
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
func webUI(ctx context.Context, srv config.Server, o ServeOptions, svc *gate.Service, st store.Store, master *keys.Master, n *notify.Notifier) (http.Handler, *oidc.RP, error) {
	if err := CheckPublicURL(srv.PublicURL); err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse(srv.PublicURL)
	origin := u.Scheme + "://" + u.Host
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
	if n != nil {
		w.SetNotifier(n) // factor.added, factor.removed
	}
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
	return requestid.Middleware(mux) // every request, API or page, has an id on each of its log lines
}

// withRoute serves pattern with h, and everything else with next.
func withRoute(next http.Handler, pattern string, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	mux.Handle("/", next)
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
		// The first admin's link may have been missed: say how to get
		// another while nobody has enrolled a factor.
		for _, u := range users {
			if u.Name != "admin" || !u.DisabledAt.IsZero() {
				continue
			}
			creds, err := st.ListCredentials(ctx, u.ID)
			if err != nil {
				return fmt.Errorf("listing the first admin's factors: %w", err)
			}
			if len(creds) == 0 {
				fmt.Fprintf(o.Out, "dev: the first admin, \"admin\", has not enrolled yet; get a new enrollment link with:\n  stepgate users enroll admin --database %s\n", srv.Database)
			}
		}
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
