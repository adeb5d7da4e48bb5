// Package webauthn owns the passkey factor: registering a passkey, signing
// in with one (discoverable, usernameless), and the approval step-up, whose
// signature covers the check and the plan digest the person was shown. It
// wraps github.com/go-webauthn/webauthn and works on store.Credential
// records without touching the store.
//
// Every ceremony is Begin → browser → Finish. Begin returns the options for
// navigator.credentials (JSON) and an opaque session blob that the caller
// keeps server-side, tied to the browser session, for at most SessionTTL, and
// hands back to Finish once. Finish methods that verify an assertion update
// the matching credential in place (sign count, flags, LastUsedAt): the
// caller read it with GetCredentialForUpdate and writes it back in the same
// transaction.
//
// An approval challenge is SHA-256("stepgate approval v1\n" + check id + "\n"
// + plan digest + "\n" + nonce), with a random 32-byte server nonce. The
// resulting Assertion (raw authenticator data, client data and signature) is
// evidence the caller stores with the approval; VerifyStoredAssertion checks
// it again later against the credential's public key (stepgate audit verify).
//
// Assurance (DESIGN.md): an assertion with user verification reaches aal 3,
// AMR ["hwk", "user", "mfa"]; without, aal 2, AMR ["hwk", "user"] (RFC 8176).
//
// A sign count that does not increase (unless it stays 0, as synced passkeys
// report) is refused with ErrCloned, which the caller audits.
package webauthn
