package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestPprofOnlyOnLoopback: runtime profiles show the server's internals;
// --pprof-listen refuses any address other hosts could reach.
func TestPprofOnlyOnLoopback(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "10.1.2.3:0", "example.com:0", "127.0.0.1", "localhost.example.com:0"} {
		stop, err := startPprof(context.Background(), addr, log)
		if err == nil {
			stop()
			t.Errorf("--pprof-listen %q accepted, want refused", addr)
		}
	}
	stop, err := startPprof(context.Background(), "127.0.0.1:0", log)
	if err != nil {
		t.Fatalf("--pprof-listen 127.0.0.1:0: %v", err)
	}
	stop()
}

// TestPprofServesProfiles: on a loopback address the profiles answer, and
// stop closes the listener.
func TestPprofServesProfiles(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	stop, err := startPprof(context.Background(), "127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	_, addr, ok := strings.Cut(logs.String(), "addr=")
	if !ok {
		stop()
		t.Fatalf("no address logged: %s", logs.String())
	}
	url := "http://" + strings.TrimSpace(addr) + "/debug/pprof/goroutine?debug=1"
	resp, err := http.Get(url)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET %s: %d %.200s", url, resp.StatusCode, body)
	}
	stop()
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("GET %s after stop answered %d", url, resp.StatusCode)
	}
}
