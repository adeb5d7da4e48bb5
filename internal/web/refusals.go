package web

import (
	"context"
	"net/http"
	"strings"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/gate"
)

// Every refused attempt at an approval, a sign-in, an enrollment link or a
// change of factors is written to the audit log (gate.AuditRefusal). The
// adapters (page, api) put an attempt in the request's context; the
// session check and the handlers say in it who tries what, and when the
// request fails with a client error, auditRefusal writes it, unless the
// gate already did (gate.Audited).

type attemptKey struct{}

// attempt is what is known of who tries what, filled in as a request goes.
type attempt struct {
	actor   string // the signed-in person, or the name given
	action  string // a gate.Action*, when a handler knows better than the route
	subject string // a check id, "user:NAME"
	method  string // totp, webauthn, oidc
	// audited is set when a handler wrote the refusal itself (a replayed
	// ceremony, a factor change without a fresh step-up, a wrong code):
	// it is not written twice.
	audited bool
}

// refusalTypes are the audit events by which handlers write a refusal of
// their own.
var refusalTypes = map[string]bool{
	audit.CeremonyRefused: true, audit.CredentialRefused: true,
	audit.CredentialTOTPFailure: true, audit.CredentialSignCount: true,
}

// markAudited notes in the request's attempt that an event of type typ was
// written, if it is a refusal.
func markAudited(ctx context.Context, typ string) {
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok && refusalTypes[typ] {
		a.audited = true
	}
}

// withAttempt gives a request an attempt to fill in.
func withAttempt(r *http.Request) (*http.Request, *attempt) {
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		return r, a
	}
	a := &attempt{}
	return r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)), a
}

// attemptOf returns the request's attempt (a throwaway one outside the
// adapters).
func attemptOf(r *http.Request) *attempt {
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		return a
	}
	return &attempt{}
}

// refusalAction is what a POST to a route attempts, and how; "" for a
// route whose failures are not refusals of anything people do. A GET
// attempts nothing, unless its handler says so in the attempt (the
// identity provider's callback finishes a sign-in or an approval).
func refusalAction(r *http.Request) (action, method string) {
	if r.Method != http.MethodPost {
		return "", ""
	}
	_, path, _ := strings.Cut(r.Pattern, " ")
	first := func(rest string) string { m, _, _ := strings.Cut(rest, "/"); return m }
	switch {
	case strings.HasPrefix(path, "/checks/{id}/approve/"):
		return gate.ActionApproval, first(strings.TrimPrefix(path, "/checks/{id}/approve/"))
	case path == "/checks/{id}/reject":
		return gate.ActionApproval, "reject"
	case strings.HasPrefix(path, "/checks/{id}/breakglass/"):
		return gate.ActionBreakGlass, first(strings.TrimPrefix(path, "/checks/{id}/breakglass/"))
	case path == "/reviews/{id}/acknowledge":
		return gate.ActionBreakGlass, "review"
	case strings.HasPrefix(path, "/signin/"):
		return gate.ActionSignIn, first(strings.TrimPrefix(path, "/signin/"))
	case strings.HasPrefix(path, "/enroll/{token}/"):
		return gate.ActionEnrollment, first(strings.TrimPrefix(path, "/enroll/{token}/"))
	case strings.HasPrefix(path, "/account/"):
		return gate.ActionFactor, first(strings.TrimPrefix(path, "/account/"))
	}
	return "", ""
}

// auditRefusal writes a failed request to the audit log when it refused
// something people attempt: a client error (4xx) on one of the routes of
// refusalAction, or of a handler that named its action, not already
// audited by the gate. reason is what the person was told.
func (w *Web) auditRefusal(r *http.Request, status int, reason string, err error) {
	if status < 400 || status >= 500 || status == http.StatusRequestEntityTooLarge || gate.Audited(err) {
		return
	}
	action, method := refusalAction(r)
	a := attemptOf(r)
	if a.audited {
		return
	}
	if a.action != "" {
		action = a.action
	}
	if action == "" {
		return
	}
	if a.method != "" {
		method = a.method
	}
	subject := a.subject
	if subject == "" && (action == gate.ActionApproval || action == gate.ActionBreakGlass) {
		subject = r.PathValue("id")
	}
	w.svc.AuditRefusal(r.Context(), gate.Refusal{
		Action: action, Actor: a.actor, Subject: subject, Method: method, Reason: reason, Status: status,
		Source: w.clientAddr(r),
	})
}
