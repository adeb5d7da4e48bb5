package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/logtest"
)

// A client that goes away mid-request (a CLI interrupted while it waits) is
// not a server failure: it is logged as the client's doing, at info level,
// not as a 500 "context canceled" an operator would be paged for.
func TestClientGoneIsNotAServerError(t *testing.T) {
	var logs logtest.Buffer
	a := &API{log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	h := a.handle(1<<10, func(w http.ResponseWriter, r *http.Request) error {
		cancel() // the client hangs up while the handler works
		<-r.Context().Done()
		return fmt.Errorf("waiting for check: %w", r.Context().Err())
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/checks/x/wait", nil))

	got := logs.String()
	if strings.Contains(got, "level=ERROR") || strings.Contains(got, "status=500") {
		t.Errorf("a client that went away was logged as a server error:\n%s", got)
	}
	if !strings.Contains(got, "client went away") {
		t.Errorf("log does not say the client went away:\n%s", got)
	}
}

// A handler's own context error while the client is still there (a store
// call that timed out) stays a server error.
func TestHandlerTimeoutIsStillAServerError(t *testing.T) {
	var logs logtest.Buffer
	a := &API{log: slog.New(slog.NewTextHandler(&logs, nil))}
	h := a.handle(1<<10, func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("store: %w", context.DeadlineExceeded)
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/checks/x", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("status %d, logs:\n%s", rec.Code, logs.String())
	}
}
