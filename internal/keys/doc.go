// Package keys owns stepgate's key material at rest: the master key that
// seals secrets (AES-256-GCM), and the ring of keys that sign grants (Ed25519
// for EdDSA, the default, or RSA 3072 for RS256, which clouds require).
//
// The master key lives in a file outside the database (32 random bytes,
// base64 on one line, mode 0600). Everything secret that reaches the store
// (signing keys, and any other sealed secret) is sealed under it with an
// associated-data string that names what the secret belongs to, so a sealed
// blob copied onto another record does not open.
//
// A master key has an id (ID: an HMAC of the key, which reveals nothing of
// it), so that what it sealed can say which key sealed it. During a master
// key rotation the server holds a keyring (WithPrevious): it seals with the
// new key and opens with either, while `stepgate secrets rotate-master`
// re-seals what the old key sealed (Ring.Reseal for signing keys).
//
// The Ring keeps grant-signing keys in the store with their private halves
// sealed; a private key exists in clear only in memory, after Open, for the
// time it takes to sign. A key's id (kid) is its RFC 7638 JWK thumbprint.
// Rotation never removes a key abruptly: the retired key stays in the JWKS
// until every grant it signed has expired.
//
// CheckpointKeys keeps the Ed25519 keys that sign audit checkpoints the same
// way (sealed under the master key, with an associated data of their own so
// that no grant key opens as one), in a table of their own, never
// published: a key row that someone added to the database without the
// master key does not open, and is not trusted.
package keys
