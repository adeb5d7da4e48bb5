package sqlstore

import (
	"context"
	"time"
)

// Violation is the constraint a failed statement broke, if any.
type Violation int

const (
	NoViolation Violation = iota
	UniqueViolation
	ForeignKeyViolation
)

// Dialect is what differs between the backends for the shared queries.
type Dialect struct {
	// ForUpdate follows a SELECT of one row to lock it until the
	// transaction ends: " FOR UPDATE" on PostgreSQL; empty on SQLite, where
	// every transaction already holds the database's write lock.
	ForUpdate string
	// SkipLocked follows a SELECT of the rows a statement will delete, so
	// that concurrent deleters of the same rows skip those another one
	// holds instead of waiting for it: " FOR UPDATE SKIP LOCKED" on
	// PostgreSQL; empty on SQLite, where writers take turns.
	SkipLocked string
	// Time turns a non-zero time, already in UTC and truncated to the
	// microsecond, into a statement argument. Zero times are bound as NULL
	// before Time is called.
	Time func(t time.Time) any
	// LockAudit serializes audit appends across every process sharing the
	// database. It runs inside the appending transaction, before the head of
	// the chain is read, and holds until that transaction ends.
	LockAudit func(ctx context.Context, q Querier) error
	// Classify says which constraint err reports a violation of.
	Classify func(err error) Violation
}
