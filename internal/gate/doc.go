// Package gate owns the life of a check: assessing an operation with the
// policy, holding it until the requirements hold, recording approvals and
// rejections, issuing the plan-bound grant, consuming it once, and writing
// every step to the audit log in the same transaction as the change it
// records. It is the domain layer under the HTTP API and the admin commands.
package gate
