// Package requestid gives every HTTP request an id, carries it in the
// request's context, answers it in X-Request-Id, and puts it on every log
// line written with that context, whichever package writes it (the API,
// the web pages, the gate, the store), so that one request's lines can be
// followed.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// Header is the response header that names the request.
const Header = "X-Request-Id"

type key struct{}

// From returns the id of the request ctx belongs to, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// New returns a fresh id: 16 hex digits.
func New() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand never fails on the platforms Go supports
	return hex.EncodeToString(b)
}

// Middleware gives each request an id (a new one: an id sent by the
// client is not trusted to be unique) and answers it in X-Request-Id.
// A request that already has one (an outer Middleware) keeps it.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := From(r.Context())
		if id == "" {
			id = New()
			r = r.WithContext(With(r.Context(), id))
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r)
	})
}

// Handler is a slog.Handler that adds request_id to every record logged
// with a context that carries one.
type Handler struct{ slog.Handler }

// NewHandler wraps h.
func NewHandler(h slog.Handler) *Handler { return &Handler{h} }

// Handle adds the request id, if any, then hands the record on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapping.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapping.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{h.Handler.WithGroup(name)}
}

// Logger returns l with its handler wrapped by Handler, once: a logger
// already wrapped is returned as it is.
func Logger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(*Handler); ok {
		return l
	}
	return slog.New(NewHandler(l.Handler()))
}
