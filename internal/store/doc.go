// Package store owns what stepgate keeps: checks, approvals, API tokens,
// signing keys, the audit log with its signed checkpoints and their keys,
// behind one Store contract with two backends (store/sqlite,
// store/postgres) and one conformance suite (store/storetest) that both
// pass; storetest also attacks the audit log through each backend's
// database directly (RunAttacks).
package store
