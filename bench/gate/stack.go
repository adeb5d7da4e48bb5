package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/checkpoint"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/httpapi"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// stack is one server as internal/app wires it: a store, the keyring, the
// policy engine, the gate service, the hub that follows the store's
// notifications, and the HTTP API on a real socket of 127.0.0.1.
type stack struct {
	name   string
	st     store.Store
	ring   *keys.Ring
	engine *policy.Engine
	svc    *gate.Service
	hub    *gate.Hub
	url    string
	timed  *timedStore // st, when it is one

	// waits receives the id of every wait request as it reaches the API,
	// so that the wake-up measurement knows the client is waiting.
	waits chan string

	hs      *http.Server
	stop    context.CancelFunc
	hubDone chan error
}

// newStack starts a server over st. publicURL is the issuer of grants; ""
// means the server's own address (several servers behind one name share
// it).
func newStack(ctx context.Context, name string, st store.Store, master *keys.Master, publicURL string, checkpoints bool) (*stack, error) {
	ring := keys.NewRing(master, time.Now)
	if _, err := ring.Ensure(ctx, st); err != nil {
		return nil, fmt.Errorf("%s: preparing signing key: %w", name, err)
	}
	engine, err := policy.New(ctx, policy.DefaultConfig(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: policy: %w", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: listening: %w", name, err)
	}
	url := "http://" + ln.Addr().String()
	if publicURL == "" {
		publicURL = url
	}
	// The real server writes JSON lines to stderr: format them the same way,
	// and throw them away.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	maxPlan := int64(plan.DefaultMaxBytes)
	svc := gate.New(st, engine, ring, gate.Config{PublicURL: publicURL, MaxPlanBytes: maxPlan, Limits: gate.Limits{PerMinute: -1, MaxPending: -1}}, log, time.Now)
	if checkpoints {
		w := checkpoint.NewWriter(st, keys.NewCheckpointKeys(master, time.Now), log, time.Now)
		if _, err := w.Ensure(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		svc.SetSealer(w)
	}
	hub := gate.NewHub()
	s := &stack{name: name, st: st, ring: ring, engine: engine, svc: svc, hub: hub, url: url,
		waits: make(chan string, 16), hubDone: make(chan error, 1)}
	s.timed, _ = st.(*timedStore)
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	go func() { s.hubDone <- hub.Run(hctx, st) }()

	routes := httpapi.New(svc, hub, st, log, maxPlan).Routes()
	s.hs = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/checks/"), "/wait"); ok && r.Method == http.MethodGet {
				select {
				case s.waits <- id:
				default:
				}
			}
			routes.ServeHTTP(w, r)
		}),
		// As internal/app sets them.
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      gate.MaxWait + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("%s: serving: %v\n", name, err)
		}
	}()
	return s, nil
}

// close stops the HTTP server and the hub; the store stays open.
func (s *stack) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.hs.Shutdown(ctx)
	s.stop()
	<-s.hubDone
}
