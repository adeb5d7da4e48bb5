package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDrainerRefusesNewRequests: once shutdown begins, a request that
// still reaches the server gets 503 with Connection: close (a load
// balancer sends it elsewhere), never the handler.
func TestDrainerRefusesNewRequests(t *testing.T) {
	var d drainer
	served := 0
	h := d.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++ }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/checks/x", nil))
	if rec.Code != 200 || served != 1 {
		t.Fatalf("before shutdown: %d, served %d; want 200, 1", rec.Code, served)
	}
	d.on.Store(true)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/checks", nil))
	if rec.Code != 503 || rec.Header().Get("Connection") != "close" || rec.Header().Get("Retry-After") == "" || served != 1 {
		t.Errorf("during shutdown: %d %v, served %d; want 503, Connection: close, Retry-After, not served", rec.Code, rec.Header(), served)
	}
}
