// Package account owns the people who approve checks: local accounts,
// their groups and admin flag, the identities that link them to pipeline
// runs (github:alice), and the one-time links with which they enroll their
// first factor. Every change is written to the audit log.
package account
