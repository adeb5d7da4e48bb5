// Package secret owns the secrets stepgate keeps in its own database: how
// they are sealed at rest, written, listed, removed, re-sealed under a new
// master key, and looked up and opened for a release.
//
// Envelope encryption: each version of a secret has a fresh random 256-bit
// data key; the value is sealed under it with AES-256-GCM, and the data key
// is sealed under the master key (package keys), whose id is kept with it.
// Both seals authenticate the secret's name, version and workspace as
// associated data, so a sealed value or data key copied onto another name,
// version or workspace does not open. Rotating the master key re-seals only
// the data keys; values are never re-encrypted, and never leave this
// package but to the gate's release.
//
// Nothing here logs, audits or formats a value: errors name secrets and
// versions, never what they hold.
package secret
