// Package e2e drives the built stepgate binary end to end: a real server on
// a real database, the real CLI in a pipeline's place, and approvals made
// through the domain layer, as people will make them through the web UI.
package e2e
