// Package postgres owns the PostgreSQL backend of store, for several
// stepgate servers sharing one database: a pool of pgx connections, its
// embedded migrations (applied under an advisory lock, so servers starting
// together migrate once), row locks for GetCheckForUpdate and
// GetCredentialForUpdate, an advisory lock that serializes audit appends
// across servers, and check notifications that cross servers through
// LISTEN/NOTIFY.
//
// The tables live in the first schema of the search_path. Stores in
// different schemas of one database are independent: each schema has its
// own notification channel (stepgate_checks_<schema>) and its own lock keys.
package postgres
