// Package web owns the people's side of stepgate: signing in (a passkey, or
// a username and a TOTP code), the one-time enrollment link, a person's
// factors, the list of checks waiting for people, and the review page where
// a check is approved, with a fresh step-up ceremony, or rejected.
//
// Pages are rendered on the server with html/template from embedded files;
// one plain script (static/webauthn.js) runs the WebAuthn ceremonies. Every
// POST passes http.CrossOriginProtection and a same-origin check against the
// public URL; every answer carries a strict Content-Security-Policy.
//
// The WebAuthn ceremony state (the challenge and what the relying party
// expects) and a TOTP seed being set up live in short-lived cookies sealed
// with the master key (AES-256-GCM, bound to their purpose and to the
// browser's session or enrollment link), so any server behind a load
// balancer can finish a ceremony another one began.
package web
