package web

import "net/http"

// Routes lists every route of the web side. Every POST goes through
// protect: http.CrossOriginProtection, a same-origin check against
// PublicURL, and the content type the route expects (a form, or JSON for
// the WebAuthn ceremonies).
func (w *Web) Routes() http.Handler {
	mux := http.NewServeMux()
	form := func(pattern string, h pageFunc) {
		mux.Handle(pattern, w.protect("application/x-www-form-urlencoded", w.page(formLimit, h)))
	}
	ceremony := func(pattern string, h pageFunc) {
		mux.Handle(pattern, w.protect("application/json", w.api(h)))
	}
	get := func(pattern string, h pageFunc) { mux.Handle(pattern, w.page(formLimit, h)) }
	authed := w.signedInOnly

	get("GET /{$}", func(rw http.ResponseWriter, r *http.Request) error { redirect(rw, r, "/checks"); return nil })
	mux.Handle("GET /static/", w.serveStatic())

	// Signing in and out.
	get("GET /signin", w.signInPage)
	form("POST /signin/totp", w.signInTOTP)
	ceremony("POST /signin/passkey/begin", w.signInPasskeyBegin)
	ceremony("POST /signin/passkey/finish", w.signInPasskeyFinish)
	form("POST /signout", w.signOut)

	// The one-time enrollment link: the first factor, then signed in.
	get("GET /enroll/{token}", w.enrollPage)
	form("POST /enroll/{token}/totp", w.enrollTOTP)
	ceremony("POST /enroll/{token}/passkey/begin", w.enrollPasskeyBegin)
	ceremony("POST /enroll/{token}/passkey/finish", w.enrollPasskeyFinish)

	// A person's factors.
	get("GET /account", authed(w.account))
	get("GET /account/add", authed(w.addFactorPage))
	form("POST /account/totp", authed(w.addTOTP))
	ceremony("POST /account/passkey/begin", authed(w.addPasskeyBegin))
	ceremony("POST /account/passkey/finish", authed(w.addPasskeyFinish))
	form("POST /account/factors/{id}/rename", authed(w.renameFactor))
	form("POST /account/factors/{id}/remove", authed(w.removeFactor))

	// Checks waiting for people, the review page, and the answers.
	get("GET /checks", authed(w.checksList))
	get("GET /checks/{id}", authed(w.checkPage))
	form("POST /checks/{id}/approve/totp", authed(w.approveTOTP))
	ceremony("POST /checks/{id}/approve/passkey/begin", authed(w.approvePasskeyBegin))
	ceremony("POST /checks/{id}/approve/passkey/finish", authed(w.approvePasskeyFinish))
	form("POST /checks/{id}/reject", authed(w.reject))

	// Break-glass (breakglass.go): the emergency path, and its reviews.
	ceremony("POST /checks/{id}/breakglass/passkey/begin", authed(w.breakGlassBegin))
	ceremony("POST /checks/{id}/breakglass/passkey/finish", authed(w.breakGlassFinish))
	get("GET /reviews", authed(w.reviewsPage))
	form("POST /reviews/{id}/acknowledge", authed(w.acknowledge))

	// The organisation's identity provider, when configured (oidc.go).
	w.oidcRoutes(mux, form, get)

	policy := csp
	if w.oidc != nil {
		// The sign-in and approval forms redirect to the provider, which
		// form-action must allow (Chromium applies it to a form's redirects).
		policy = cspWithFormAction(w.oidc.rp.AuthOrigin())
	}
	return w.recoverer(securityHeaders(policy, mux))
}
