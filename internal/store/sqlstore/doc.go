// Package sqlstore owns what the SQL backends of store share: the queries
// on checks (and their changes), approvals, tokens, signing keys, the
// audit log and its checkpoints, users, credentials, enrollments and
// sessions, written once in SQL that SQLite and PostgreSQL both accept
// (numbered $n parameters, no dialect-specific syntax) over a small
// Querier interface each backend adapts its driver to; the Dialect hooks
// for what does differ (row locks, the audit lock, how a time is bound,
// which constraint a statement broke); the migration runner; and the
// in-process fan-out of check notifications (Hub).
//
// Nothing here rewrites SQL text: where the dialects differ, each backend
// says so in its own Dialect or in its own migrations.
package sqlstore
