package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// envPprof names the address of the profiling listener of `stepgate
// serve` (--pprof-listen): off unless set.
const envPprof = "STEPGATE_PPROF_LISTEN"

// startPprof serves Go's runtime profiles (net/http/pprof) on addr, a
// loopback address only: profiles show the server's internals (goroutine
// stacks, where memory goes), so they are never on the public listener and
// never on an address other hosts can reach. It returns a function that
// stops the listener, waiting at most a few seconds.
func startPprof(ctx context.Context, addr string, log *slog.Logger) (func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--pprof-listen %q: profiles are served on a loopback address only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the profiling listener stopped", "err", err)
		}
	}()
	log.Warn("serving Go runtime profiles (--pprof-listen): for measuring, not for production", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close() // a profile still being written is cut short
		}
		<-done
	}, nil
}
