package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/httpapi"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/notify"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/requestid"
	"github.com/stepgate/stepgate/internal/secret"
	"github.com/stepgate/stepgate/internal/store"
)

// Options is what NewServer builds a server from: the configuration serve
// reads, and the parts tests and benchmarks inject instead. Zero values are
// serve's defaults.
type Options struct {
	Server   config.Server // Server.PublicURL must be set: NewServer does not listen
	Policy   policy.Config
	Modules  []policy.Module
	Webhooks []*notify.Webhook
	MaxPlan  int64
	Dev      bool
	Log      *slog.Logger     // nil: discarded
	Out      io.Writer        // where to say what was created; nil: discarded
	Now      func() time.Time // nil: time.Now

	// SavedPlanBinding is plan.saved_plan_binding ("" is verify).
	SavedPlanBinding string

	// Store is the database to use; nil opens Server.Database (and Close
	// closes it). A store given here is the caller's to close.
	Store store.Store
	// Master is the master key; nil loads Server.MasterKeyFile with
	// Server.PreviousMasterKeyFiles (created in dev mode).
	Master *keys.Master
	// Engine is the policy engine; nil builds one from Policy and Modules.
	Engine *policy.Engine
	// CIVerifier verifies CI tokens; nil builds one from Server.CIIssuers.
	CIVerifier *ciauth.Verifier
	// ExpireEvery is how often pending checks are expired; 0 is 30 s.
	ExpireEvery time.Duration
	// RecheckInterval is gate.Config.RecheckInterval: 0 is the default,
	// negative turns the re-read off, so that only notifications wake a
	// waiter (for the tests of the notification path).
	RecheckInterval time.Duration
	// NoCheckpoints leaves the audit log unsealed: for the benchmark that
	// measures what sealing costs, never for a server.
	NoCheckpoints bool

	// Extensions add routes and background loops to the server once its
	// parts exist (integrations, workers), in order.
	Extensions []Extension
}

// Extension adds what a feature needs to a built server, with
// Server.Handle and Server.Go. It runs before the server starts.
type Extension func(s *Server) error

// Server is the whole stepgate server: the handler of every route, the
// domain service and the parts around it, and the background loops, which
// run from Start until Close.
type Server struct {
	Gate        *gate.Service
	Hub         *gate.Hub
	API         *httpapi.API
	Store       store.Store
	Ring        *keys.Ring
	Master      *keys.Master
	Engine      *policy.Engine
	Checkpoints *checkpoint.Writer // nil with NoCheckpoints
	PublicURL   string

	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	drain   drainer
	loops   []loop
	bg      *background
	closers []func() error // run last first by Close

	closeOnce sync.Once
	closeErr  error
}

type loop struct {
	name string
	fn   func(ctx context.Context) error
}

// Handler serves every route: the API's paths with the API, extensions'
// routes with theirs, everything else with the pages. Every request has an
// id on each of its log lines; once the server drains, new requests are
// refused.
func (s *Server) Handler() http.Handler { return s.handler }

// Handle serves pattern (an http.ServeMux pattern, such as
// "POST /v1/integrations/tfc") with h. Call it before Start.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Go runs fn in the background from Start until Close; fn returns when its
// context ends. An error it returns while the server runs is logged.
func (s *Server) Go(name string, fn func(ctx context.Context) error) {
	s.loops = append(s.loops, loop{name: name, fn: fn})
}

// NewServer builds the server o describes: it opens the store (unless
// given), prepares the signing and checkpoint keys, the policy, the gate,
// the API and the pages, and records the public URL. Nothing runs in the
// background until Start. Close releases what it built, including on an
// error of NewServer's own (it closes what it had opened).
func NewServer(ctx context.Context, o Options) (s *Server, err error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	srv := o.Server
	if srv.PublicURL == "" {
		return nil, errors.New("building the server: no public URL")
	}
	// Refused before anything is created.
	if err := CheckPublicURL(srv.PublicURL); err != nil {
		return nil, err
	}
	if err := gate.ValidSubjectTemplate(srv.GrantSubject); err != nil {
		return nil, fmt.Errorf("server.grant_subject: %w", err)
	}
	s = &Server{PublicURL: srv.PublicURL, log: o.Log, mux: http.NewServeMux()}
	defer func() {
		if err != nil {
			_ = s.Close()
			s = nil
		}
	}()
	s.Store = o.Store
	if s.Store == nil {
		st, err := OpenServerStore(ctx, srv, o.Log)
		if err != nil {
			return s, fmt.Errorf("opening store: %w", err)
		}
		s.Store = st
		s.closers = append(s.closers, st.Close) // last: after the loops and the last checkpoint
	}
	st := s.Store
	s.Master = o.Master
	if s.Master == nil {
		if srv.MasterKeyFile == "" && o.Dev {
			srv.MasterKeyFile = DevMasterKeyPath(srv.Database)
		}
		master, created, err := LoadKeyring(srv, o.Dev)
		if err != nil {
			return s, err
		}
		if created {
			fmt.Fprintf(o.Out, "dev: created master key %s (mode 0600); keep it: it decrypts the signing keys\n", srv.MasterKeyFile)
		}
		s.Master = master
	}
	master := s.Master
	s.Ring = keys.NewRing(master, o.Now, keys.WithAlgorithm(srv.GrantAlgorithm))
	made, err := s.Ring.Ensure(ctx, st)
	if err != nil {
		return s, fmt.Errorf("preparing signing key: %w", err)
	}
	if made {
		fmt.Fprintf(o.Out, "created the first grant-signing key (%s, sealed under the master key)\n", s.Ring.Algorithm())
	}
	s.Engine = o.Engine
	if s.Engine == nil {
		if s.Engine, err = policy.New(ctx, o.Policy, o.Modules); err != nil {
			return s, err
		}
	}
	ciVerifier := o.CIVerifier
	if ciVerifier == nil {
		if ciVerifier, err = CIVerifier(srv.CIIssuers); err != nil {
			return s, err
		}
	}
	metricsToken, err := MetricsToken(srv)
	if err != nil {
		return s, err
	}
	// Admin commands print enrollment links on the URL the server is
	// reached at.
	if err := st.SetSetting(ctx, store.SettingPublicURL, strings.TrimRight(srv.PublicURL, "/")); err != nil {
		return s, fmt.Errorf("recording the public URL: %w", err)
	}

	svc := gate.New(st, s.Engine, s.Ring, gate.Config{
		PublicURL: srv.PublicURL, Audience: srv.Audience, SubjectTemplate: srv.GrantSubject, AWSSessionTags: srv.GrantAWSSessionTags,
		CheckTTL: time.Duration(srv.CheckTTL), GrantTTL: time.Duration(srv.GrantTTL), MaxPlanBytes: o.MaxPlan,
		SavedPlanBinding: o.SavedPlanBinding, RecheckInterval: o.RecheckInterval,
		Limits:     gate.Limits{PerMinute: srv.Limits.ChecksPerMinute, Burst: srv.Limits.ChecksBurst, MaxPending: srv.Limits.MaxPendingPerToken},
		BreakGlass: BreakGlass(srv.BreakGlass),
	}, o.Log, o.Now)
	svc.SetSecrets(secret.New(st, master, o.Now))
	s.Gate = svc
	s.Hub = gate.NewHub()

	var told notifiers // the metrics, then the webhooks
	var n *notify.Notifier
	if len(o.Webhooks) > 0 {
		n = notify.New(o.Webhooks, srv.PublicURL, nil, o.Log, o.Now)
		told = append(told, n)
		s.Go("notifications", func(ctx context.Context) error { n.Run(ctx); return nil })
	}
	if !o.NoCheckpoints {
		if err := s.prepareCheckpoints(ctx, master, srv.Audit, n, o); err != nil {
			return s, err
		}
		svc.SetSealer(s.Checkpoints)
	}
	s.Go("check notifications", func(ctx context.Context) error { return s.Hub.Run(ctx, st) })
	every := o.ExpireEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	s.Go("expiry", func(ctx context.Context) error { expireLoop(ctx, svc, every, o.Log); return nil })
	if svc.BreakGlassEnabled() {
		// Overdue break-glass reviews are announced again; each tick reads
		// at most gate.MaxReviews of them.
		s.Go("break-glass reminders", func(ctx context.Context) error {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			svc.RemindLoop(ctx, t.C)
			return nil
		})
	}

	s.API = httpapi.New(svc, s.Hub, st, o.Log, o.MaxPlan)
	if s.Checkpoints != nil {
		registerCheckpointMetrics(s.API.Registry(), s.Checkpoints)
	}
	svc.SetNotifier(append(notifiers{s.API.Observer()}, told...))
	if ciVerifier != nil {
		s.API.SetCIVerifier(ciVerifier)
	}
	s.API.SetMetricsToken(metricsToken)
	people, rp, err := webUI(ctx, srv, o, svc, st, master, n)
	if err != nil {
		return s, err
	}
	if rp != nil {
		// People review and approve from the command line with the same
		// provider's ID tokens (RFC 9470 step-up challenges).
		s.API.SetPeople(rp, srv.OIDC.CLIClientID, o.Now)
	}
	api := s.API.Routes()
	for _, p := range []string{"/v1/", "/.well-known/", "/healthz", "/readyz", "/metrics"} {
		s.mux.Handle(p, api)
	}
	s.mux.Handle("/", people)
	// Every request, API or page, has an id on each of its log lines.
	s.handler = s.drain.wrap(requestid.Middleware(s.mux))
	if err := integrations(s, srv, o); err != nil {
		return s, err
	}
	for _, ext := range o.Extensions {
		if err := ext(s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Start runs the background loops (notifications, the hub, expiry,
// checkpoints, the extensions'). Their context keeps ctx's values only:
// they run until Close, and keep running while the HTTP server drains.
func (s *Server) Start(ctx context.Context) {
	if s.bg != nil {
		return
	}
	s.bg = newBackground(ctx)
	for _, l := range s.loops {
		s.bg.run(func(ctx context.Context) {
			if err := l.fn(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "background loop stopped", "loop", l.name, "err", err)
			}
		})
	}
}

// Drain refuses new requests and answers every waiter with its check's
// current state: the first step of a shutdown.
func (s *Server) Drain() {
	s.drain.on.Store(true)
	s.Hub.Stop()
}

// stopLoops stops the background loops and waits for them until ctx ends.
func (s *Server) stopLoops(ctx context.Context) error {
	if s.bg == nil {
		return nil
	}
	s.bg.stop()
	drained := make(chan struct{})
	go func() { s.bg.wg.Wait(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-ctx.Done():
		return errors.New("background work did not stop in time")
	}
}

// Close stops the server's loops, seals what the last minute added with a
// checkpoint, and closes what NewServer opened (the checkpoint file, the
// store), in that order. It waits up to DefaultShutdownGrace for the
// loops. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.Hub != nil {
			s.Drain()
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownGrace)
		defer cancel()
		if err := s.stopLoops(ctx); err != nil {
			errs = append(errs, err)
		}
		if s.Checkpoints != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := s.Checkpoints.Checkpoint(cctx); err != nil {
				errs = append(errs, fmt.Errorf("writing the last audit checkpoint: %w", err))
			}
			ccancel()
		}
		for i := len(s.closers) - 1; i >= 0; i-- {
			if err := s.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// prepareCheckpoints prepares the signed checkpoints of the audit log: the
// checkpoint key (created, sealed under the master key, on the first
// start), the sinks outside the database (the checkpoint file, the
// webhooks that list audit.checkpoint), a first checkpoint of what is
// there (the server refuses to start on a log changed under its newest
// checkpoint), and the loop that checkpoints new events every interval.
func (s *Server) prepareCheckpoints(ctx context.Context, master *keys.Master, cfg config.Audit, n *notify.Notifier, o Options) error {
	var sinks []checkpoint.Sink
	if cfg.CheckpointFile != "" {
		f, err := checkpoint.OpenFile(cfg.CheckpointFile)
		if err != nil {
			return fmt.Errorf("server.audit.checkpoint_file: %w", err)
		}
		sinks = append(sinks, f)
		s.closers = append(s.closers, func() error {
			if err := f.Close(); err != nil {
				return fmt.Errorf("closing the audit checkpoint file: %w", err)
			}
			return nil
		})
	}
	if n != nil {
		sinks = append(sinks, n)
	}
	w := checkpoint.NewWriter(s.Store, keys.NewCheckpointKeys(master, o.Now), o.Log, o.Now, sinks...)
	kid, err := w.Ensure(ctx)
	if err != nil {
		return err
	}
	if kid != "" {
		fmt.Fprintf(o.Out, "created the audit checkpoint key %s (Ed25519, sealed under the master key)\n", kid)
	}
	if _, err := w.Checkpoint(ctx); err != nil {
		return fmt.Errorf("%w (run `stepgate audit verify`)", err)
	}
	s.Checkpoints = w
	interval := time.Duration(cfg.CheckpointInterval)
	if interval <= 0 || interval > config.MaxCheckpointInterval {
		interval = config.MaxCheckpointInterval
	}
	s.Go("audit checkpoints", func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		w.Run(ctx, t.C)
		return nil
	})
	return nil
}
