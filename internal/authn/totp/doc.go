// Package totp owns the TOTP factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s
// steps, one step of clock skew either way): enrolling a seed behind a QR
// code, confirming it with a first code, and verifying codes at sign-in and
// approval.
//
// It works on store.Credential records and never touches the store: the
// caller reads a credential with GetCredentialForUpdate, lets Verify mutate it
// and writes it back in the same transaction, so the single-use rule (a code
// is accepted only for a step after LastStep) and the failure counter hold
// across replicas.
//
// The seed is sealed under the master key with the credential id as
// associated data; it is opened only for the time it takes to compute the
// codes of three steps. Neither seeds nor codes appear in errors, fmt output
// or logs.
//
// A TOTP code is a second factor of assurance level 2 (AAL), with the
// authentication method reference "otp" (RFC 8176).
package totp
