package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// stack is one server as serve builds it (app.NewServer): a store, the
// keyring, the policy engine, the gate service, the hub that follows the
// store's notifications, and the HTTP API on a real socket of 127.0.0.1.
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

	server *app.Server
	hs     *http.Server
}

// newStack starts a server over st. publicURL is the issuer of grants; ""
// means the server's own address (several servers behind one name share
// it).
func newStack(ctx context.Context, name string, st store.Store, master *keys.Master, publicURL string, checkpoints bool) (*stack, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%s: listening: %w", name, err)
	}
	url := "http://" + ln.Addr().String()
	if publicURL == "" {
		// As serve names a loopback address.
		publicURL = "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	// The real server writes JSON lines to stderr: format them the same way,
	// and throw them away.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	server, err := app.NewServer(ctx, app.Options{
		Server: config.Server{
			PublicURL: publicURL,
			// No per-token limits: the benchmark asks as fast as it can.
			Limits: config.Limits{ChecksPerMinute: -1, MaxPendingPerToken: -1},
		},
		Policy: policy.DefaultConfig(), MaxPlan: int64(plan.DefaultMaxBytes),
		Log: log, Now: time.Now, Store: st, Master: master, NoCheckpoints: !checkpoints,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &stack{name: name, st: st, ring: server.Ring, engine: server.Engine, svc: server.Gate, hub: server.Hub, url: url,
		waits: make(chan string, 16), server: server}
	s.timed, _ = st.(*timedStore)
	server.Start(ctx)
	routes := server.Handler()
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

// close stops the HTTP server and the background loops; the store stays
// open.
func (s *stack) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.server.Drain()
	_ = s.hs.Shutdown(ctx)
	if err := s.server.Close(); err != nil {
		fmt.Printf("%s: closing: %v\n", s.name, err)
	}
}
