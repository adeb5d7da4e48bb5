package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/stepgate/stepgate/internal/gate"
)

// Body limits.
const (
	formLimit = 16 << 10 // a form: a code, a name, a reason
	jsonLimit = 64 << 10 // a WebAuthn response
)

// csp allows the embedded script and style only: no inline script, no
// inline handler, no framing. img-src data: is for the TOTP QR code.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// userError is an error whose message a person may read.
type userError struct {
	status int
	msg    string
	err    error // the cause, for the log only
}

func (e *userError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %v", e.msg, e.err)
	}
	return e.msg
}

func (e *userError) Unwrap() error { return e.err }

// fail is an error a person reads as msg.
func fail(status int, msg string) error { return &userError{status: status, msg: msg} }

// failWith keeps the cause for the log.
func failWith(status int, msg string, err error) error {
	return &userError{status: status, msg: msg, err: err}
}

// refused turns a refusal of the gate into a person's error: the status
// of its class (gate.Classify, by which the API answers it too) and the
// sentence say has for the sentinel that classified it. It returns nil
// when err is no refusal of the gate or say has no sentence for it: the
// caller's own failure.
func refused(err error, say func(sentinel error) string) error {
	cl, ok := gate.Classify(err)
	if !ok {
		return nil
	}
	msg := say(cl.Sentinel)
	if msg == "" {
		return nil
	}
	return failWith(cl.Status, msg, err)
}

// errSignIn asks the browser to sign in (again).
var errSignIn = errors.New("not signed in")

// classify turns an error into a status and a message a person may read:
// internal causes never reach the page.
func classify(err error) (int, string) {
	var ue *userError
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &ue):
		return ue.status, ue.msg
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, "The request is too large."
	case errors.Is(err, errSignIn):
		return http.StatusUnauthorized, "Please sign in."
	}
	return http.StatusInternalServerError, "Something went wrong on our side; nothing was changed. Try again in a moment."
}

// logFailure logs a failed request: the route pattern, never the path (an
// enrollment link carries its secret in the path) nor any form value; and
// writes it to the audit log when it refused an attempt (auditRefusal).
func (w *Web) logFailure(r *http.Request, status int, err error) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	w.log.Log(r.Context(), level, "web request failed", "method", r.Method, "route", r.Pattern, "status", status, "err", err)
	_, msg := classify(err)
	w.auditRefusal(r, status, msg, err)
}

type pageFunc func(rw http.ResponseWriter, r *http.Request) error

// page serves an HTML page: an error renders the message page.
func (w *Web) page(limit int64, h pageFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(rw, r.Body, limit)
		r, _ = withAttempt(r)
		err := h(rw, r)
		if err == nil {
			return
		}
		if errors.Is(err, errSignIn) {
			w.auditRefusal(r, http.StatusUnauthorized, "not signed in", err)
			w.redirectToSignIn(rw, r)
			return
		}
		status, msg := classify(err)
		w.logFailure(r, status, err)
		w.render(rw, r, status, "message", &messageView{Title: http.StatusText(status), Message: msg})
	})
}

// api serves a JSON endpoint of a ceremony: an error answers {"error": msg}.
func (w *Web) api(h pageFunc) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(rw, r.Body, jsonLimit)
		r, _ = withAttempt(r)
		err := h(rw, r)
		if err == nil {
			return
		}
		status, msg := classify(err)
		w.logFailure(r, status, err)
		body := map[string]string{"error": msg}
		if errors.Is(err, errSignIn) {
			body["redirect"] = "/signin"
		}
		writeJSON(rw, status, body)
	})
}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString(`{"error":"internal error"}`)
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = rw.Write(buf.Bytes())
}

// decodeJSON reads a JSON body into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return err
		}
		return failWith(http.StatusBadRequest, "The request is not valid JSON.", err)
	}
	return nil
}

// redirect answers 303 See Other: after a POST the browser GETs the target.
func redirect(rw http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(rw, r, to, http.StatusSeeOther)
}

func (w *Web) redirectToSignIn(rw http.ResponseWriter, r *http.Request) {
	to := "/signin"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	redirect(rw, r, to)
}

// localPath returns next when it is a path of this site, else "".
// It refuses "//host" and "/\host" (browsers read both as another host).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	if strings.ContainsAny(next, "\r\n\t") {
		return ""
	}
	return next
}

// cspWithFormAction is csp with one more origin a form may be sent to,
// redirects included. An empty origin, or one that would break the
// policy's syntax, adds nothing.
func cspWithFormAction(origin string) string {
	if origin == "" || strings.ContainsAny(origin, ";, '") {
		return csp
	}
	return strings.Replace(csp, "form-action 'self'", "form-action 'self' "+origin, 1)
}

// securityHeaders sets the headers of every answer, with policy as the
// Content-Security-Policy.
func securityHeaders(policy string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(rw, r)
	})
}

// protect guards a state-changing route. http.CrossOriginProtection refuses
// what the browser says is cross-site (Sec-Fetch-Site) or whose Origin is
// another host; it lets through requests that carry neither header, so this
// also requires one of them to say the request comes from PublicURL's
// origin: a same-origin Sec-Fetch-Site, or Origin equal to it. (With
// Referrer-Policy: no-referrer, browsers may send "Origin: null" on a
// same-origin form POST; they all send Sec-Fetch-Site then.) Finally, the
// body must be a form or JSON, as the route expects.
func (w *Web) protect(contentType string, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	if w.origin != "" {
		// Behind a proxy that rewrites Host, an Origin equal to the public
		// URL's is still this site.
		_ = cop.AddTrustedOrigin(w.origin)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.refuse(rw, r, http.StatusForbidden, "cross-origin request refused")
	}))
	return cop.Handler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !w.sameOrigin(r) {
			w.refuse(rw, r, http.StatusForbidden, "request without a same-origin Origin or Sec-Fetch-Site refused")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != contentType {
			w.refuse(rw, r, http.StatusUnsupportedMediaType, "unexpected content type")
			return
		}
		next.ServeHTTP(rw, r)
	}))
}

func (w *Web) sameOrigin(r *http.Request) bool {
	if w.origin == "" {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		// CrossOriginProtection already refused an Origin of another host.
		o := r.Header.Get("Origin")
		return o == "" || o == "null" || strings.EqualFold(o, w.origin)
	case "":
		return strings.EqualFold(r.Header.Get("Origin"), w.origin)
	}
	return false // same-site (a sibling subdomain), cross-site, none
}

func (w *Web) refuse(rw http.ResponseWriter, r *http.Request, status int, why string) {
	w.log.InfoContext(r.Context(), "web request refused", "method", r.Method, "route", r.Pattern, "status", status, "why", why)
	w.auditRefusal(r, status, why, nil)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(rw, status, map[string]string{"error": "This request was refused: it did not come from a stepgate page."})
		return
	}
	w.render(rw, r, status, "message", &messageView{Title: http.StatusText(status), Message: "This request was refused: it did not come from a stepgate page. Go back, reload the page and try again."})
}

// recoverer turns a panic into a 500 page.
func (w *Web) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				w.log.ErrorContext(r.Context(), "panic serving web request", "route", r.Pattern, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				w.render(rw, r, http.StatusInternalServerError, "message", &messageView{Title: "Internal error", Message: "Something went wrong on our side; nothing was changed."})
			}
		}()
		next.ServeHTTP(rw, r)
	})
}
