// Package store owns what stepgate keeps: checks, approvals, API tokens,
// signing keys and the audit log, behind one Store contract with two
// backends (store/sqlite, store/postgres) and one conformance suite
// (store/storetest) that both pass.
package store
