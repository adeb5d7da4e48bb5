package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

// TestNewServerExtensions: an extension's route is served behind the
// server's middlewares (a request id; refused once draining), and its
// loop runs from Start until Close, which waits for it.
func TestNewServerExtensions(t *testing.T) {
	ctx := context.Background()
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	started, stopped := make(chan struct{}), make(chan struct{})
	ext := func(s *Server) error {
		s.Handle("GET /v1/ext/ping", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "pong") }))
		s.Go("ext", func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			close(stopped)
			return nil
		})
		return nil
	}
	s, err := NewServer(ctx, Options{
		Server: config.Server{PublicURL: "http://localhost:8080", Database: "sqlite://" + filepath.Join(t.TempDir(), "stepgate.db")},
		Policy: policy.DefaultConfig(), Master: master, Extensions: []Extension{ext},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Store.Setting(ctx, store.SettingPublicURL); err != nil || v != "http://localhost:8080" {
		t.Errorf("recorded public URL = %q, %v; want the server's", v, err)
	}
	get := func(path string) *http.Response {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Result()
	}
	res := get("/v1/ext/ping")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(body) != "pong" || res.Header.Get("X-Request-Id") == "" {
		t.Errorf("extension route: %d %q, request id %q; want 200 pong with a request id", res.StatusCode, body, res.Header.Get("X-Request-Id"))
	}
	if res := get("/v1/checks/nope"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("the API behind the extension: %d, want 401", res.StatusCode)
	}
	select {
	case <-started:
		t.Fatal("the extension's loop ran before Start")
	default:
	}
	s.Start(ctx)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the extension's loop did not start")
	}
	s.Drain()
	if res := get("/v1/ext/ping"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("extension route while draining: %d, want 503", res.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	default:
		t.Error("Close returned before the extension's loop stopped")
	}
}
