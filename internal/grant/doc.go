// Package grant owns the grant token: the short-lived, single-use JWT that
// lets exactly one operation proceed. It signs grants (compact JWS, EdDSA
// with an Ed25519 key or RS256 with an RSA key, with the kid of the signing
// key) and verifies them against public keys from
// a KeySource: a static set (the server's own ring) or a JWKS URL
// (RemoteKeys, for the CLI and other verifiers).
//
// Verify trusts nothing in a token before its signature checks out with a
// key from the KeySource named by the header's kid, of the type the alg
// needs. It accepts only alg EdDSA (Ed25519 keys) and RS256 (RSA keys of
// 2048 to 8192 bits) and refuses any header that carries or points to a key (jwk,
// jku, x5u, x5c...). Then it checks issuer, audience, the time claims with
// leeway and the workspace. Every failure wraps one of the Err sentinels, so
// callers can tell an expired grant from a forged one with errors.Is.
//
// Single use is not checked here: the server records consumption.
package grant
