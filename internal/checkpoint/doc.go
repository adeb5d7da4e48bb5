// Package checkpoint owns the signed checkpoints of the audit log: the
// Writer that signs the head of the chain (at every grant issued, inside
// the same transaction, and at least every minute from a background loop),
// the sinks outside the database that receive a copy of each checkpoint
// (an append-only file of JSON lines, a webhook), and Verify, which checks
// a whole log against its checkpoints and names what an attacker holding
// the database changed: truncation, re-sealed ("re-chained") events,
// forged or deleted checkpoints.
//
// What a checkpoint proves, and what it cannot: every event up to the
// newest checkpoint is fixed (its removal, edit or re-sealing shows).
// Events after it are "unsealed": someone with write access to the
// database can remove or re-seal them undetected, unless a copy of a later
// checkpoint reached a sink they cannot rewrite.
package checkpoint
