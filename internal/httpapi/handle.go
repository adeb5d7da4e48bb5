package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/ciauth"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle caps the body, runs h, and turns its error into an answer: one
// place maps errors to a status and a safe message, and logs the cause.
func (a *API) handle(limit int64, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		r = withAttempt(r)
		err := h(w, r)
		if err == nil {
			return
		}
		if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
			// The client hung up (an interrupted CLI, a closed browser tab):
			// nobody reads an answer, and it is not the server's failure.
			a.log.InfoContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		status, code, msg := classify(err)
		var ch *challenge
		if errors.As(err, &ch) {
			status, code, msg = ch.status, ch.code, ch.msg
		}
		a.auditRefusal(r, status, msg, err)
		if errors.Is(err, store.ErrUnavailable) {
			a.ops.unavailable.Inc()
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		a.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		var limited *gate.LimitError
		switch {
		case errors.As(err, &limited):
			w.Header().Set("Retry-After", strconv.Itoa(max(int(limited.RetryAfter.Seconds()), 1)))
		case ch != nil:
			w.Header().Set("WWW-Authenticate", ch.header())
		case status == http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="stepgate"`)
		}
		writeJSON(w, status, api.Error{Error: api.ErrorBody{Code: code, Message: msg}})
	})
}

// classify maps an error to an answer: a refusal of the gate by its class
// (gate.Classify, which the pages use too). Messages of client errors are
// the error's own words (they describe the request); server errors say
// nothing of their cause.
func classify(err error) (status int, code, msg string) {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) || errors.Is(err, plan.ErrTooLarge) {
		return http.StatusRequestEntityTooLarge, api.CodeTooLarge, "the request body is too large"
	}
	if cl, ok := gate.Classify(err); ok {
		return cl.Status, cl.Code, refusalWords(err, cl.Sentinel)
	}
	switch {
	case errors.Is(err, errUnavailable), errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, api.CodeUnavailable, "the database cannot record anything now; nothing is allowed, try again shortly"
	case errors.Is(err, policy.ErrEvaluation):
		return http.StatusInternalServerError, api.CodeInternal, "the policy could not be evaluated; nothing is allowed"
	}
	return http.StatusInternalServerError, api.CodeInternal, "internal error; nothing is allowed"
}

// refusalWords is the message of a refusal of the gate: without the
// leading words of a generic sentinel, which the status and code already
// say; the whole error for a precise one (it names the rule); one
// sentence for a missing or wrong token, whatever went wrong.
func refusalWords(err, sentinel error) string {
	switch sentinel {
	case gate.ErrBadRequest, gate.ErrForbidden, gate.ErrNotFound, gate.ErrInvalidGrant, gate.ErrConflict:
		return words(err, sentinel)
	case gate.ErrUnauthorized:
		return "a valid stepgate token is required (Authorization: Bearer sgt_...)"
	}
	return err.Error()
}

var errUnavailable = errors.New("store unavailable")

// words is the message of a client error without the leading words of the
// sentinel that classified it, which the status and code already say:
// "token x may not ask for workspace y", not "forbidden: token x ...".
func words(err, sentinel error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, sentinel.Error()+": "); ok && rest != "" {
		return rest
	}
	return msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return err
		}
		return fmt.Errorf("%w: body: %w", gate.ErrBadRequest, err)
	}
	return nil
}

// caller authenticates the request's bearer token.
func (a *API) caller(r *http.Request) (*gate.Caller, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, fmt.Errorf("%w: no bearer token", gate.ErrUnauthorized)
	}
	tok = strings.TrimSpace(tok)
	var c *gate.Caller
	var err error
	if a.ci != nil && !strings.HasPrefix(tok, "sgt_") && ciauth.LooksLikeJWT(tok) {
		c, err = a.ciCaller(r, tok)
	} else {
		c, err = a.svc.Authenticate(r.Context(), tok)
	}
	if err == nil {
		setActor(r, c.Name)
	}
	return c, err
}

func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, api.Error{Error: api.ErrorBody{Code: api.CodeInternal, Message: "internal error; nothing is allowed"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
