package httpapi

import (
	"context"
	"net"
	"net/http"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/gate"
)

// Every refused approval, rejection or use of a grant is written to the
// audit log (gate.AuditRefusal): handle puts an attempt in the request's
// context, caller and person say in it who is trying, and a client error
// (4xx) on one of these routes is audited unless the gate already did.

type attemptKey struct{}

// attempt is who is trying, once authenticated.
type attempt struct{ actor string }

func withAttempt(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), attemptKey{}, &attempt{}))
}

// setActor records who the request's caller is.
func setActor(r *http.Request, name string) {
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		a.actor = name
	}
}

// refusalRoutes are the routes whose client errors refuse an attempt.
var refusalRoutes = map[string]string{
	"POST /v1/people/checks/{id}/approve": gate.ActionApproval,
	"POST /v1/people/checks/{id}/reject":  gate.ActionApproval,
	"POST /v1/grants/consume":             gate.ActionGrant,
	"POST " + api.PathRelease:             gate.ActionGrant,
}

func (a *API) auditRefusal(r *http.Request, status int, msg string, err error) {
	action, ok := refusalRoutes[r.Pattern]
	if !ok || status < 400 || status >= 500 || status == http.StatusRequestEntityTooLarge || gate.Audited(err) {
		return
	}
	actor := ""
	if at, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		actor = at.actor
	}
	a.svc.AuditRefusal(r.Context(), gate.Refusal{
		Action: action, Actor: actor, Subject: r.PathValue("id"), Method: "api", Reason: msg, Status: status,
		Source: peer(r),
	})
}

// peer is the address of the connection's other end: the client, or the
// reverse proxy in front of the server (the API does not read
// X-Forwarded-For; anonymous refusals behind one proxy then share one
// audit budget, which loses detail, never the count).
func peer(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
