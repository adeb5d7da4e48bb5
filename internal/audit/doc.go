// Package audit owns the tamper-evident log: the event record, its canonical
// encoding, the hash chain that links each event to the one before, and the
// verification of a chain, and the checkpoints that sign its head (their
// canonical encoding, signature and its verification). Storage lives in package store; this package is
// pure functions.
package audit
