// Package audit owns the tamper-evident log: the event record, its canonical
// encoding, the hash chain that links each event to the one before, and the
// verification of a chain. Storage lives in package store; this package is
// pure functions.
package audit
