// Package sqlite owns the SQLite backend of store: one database file opened
// with modernc.org/sqlite (pure Go, no cgo), in WAL mode with foreign keys
// on, its embedded migrations, and in-process check notifications.
//
// Every transaction takes the database's write lock at BEGIN (BEGIN
// IMMEDIATE), so transactions never interleave their reads and writes:
// GetCheckForUpdate and GetCredentialForUpdate need no row lock and audit
// appends need no other lock. Reads outside a transaction do not wait for
// writers (WAL).
//
// One process per database file: notifications (NotifyCheck, WatchChecks)
// reach only the watchers of the process that sent them. Several processes
// would still keep the data and the audit chain consistent (they wait for
// each other's write lock up to the busy timeout), but would not wake each
// other's waiters. Use PostgreSQL to run several servers.
package sqlite
