package requestid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Every line logged during a request, by any logger built on the handler,
// carries the id the response names.
func TestRequestIDOnEveryLine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil)))
	inner := log.With("component", "gate").WithGroup("g")
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "first")
		inner.InfoContext(r.Context(), "second", "k", "v")
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set(Header, "forged-by-client")
	h.ServeHTTP(rec, req)
	id := rec.Header().Get(Header)
	if len(id) != 16 || id == "forged-by-client" {
		t.Fatalf("X-Request-Id = %q, want a fresh 16-digit id", id)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want 2:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		got := m["request_id"]
		if g, ok := m["g"].(map[string]any); ok && got == nil {
			got = g["request_id"]
		}
		if got != id {
			t.Errorf("line %s: request_id = %v, want %s", l, got, id)
		}
	}
	// Outside a request: no id.
	buf.Reset()
	log.InfoContext(context.Background(), "idle")
	if strings.Contains(buf.String(), "request_id") {
		t.Errorf("a line outside a request has a request id: %s", buf.String())
	}
}

// An outer middleware's id is kept by an inner one.
func TestNestedMiddlewareKeepsTheID(t *testing.T) {
	var seen string
	h := Middleware(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = From(r.Context()) })))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if seen == "" || seen != rec.Header().Get(Header) {
		t.Errorf("handler saw %q, response names %q; want one id", seen, rec.Header().Get(Header))
	}
}
