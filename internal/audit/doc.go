// Package audit owns the tamper-evident log: the event record, its canonical
// encoding, the hash chain that links each event to the one before, the
// verification of a chain, and the checkpoints that sign the head of the
// chain (their canonical encoding, signature and verification). Storage
// lives in package store; this package is pure functions.
package audit
