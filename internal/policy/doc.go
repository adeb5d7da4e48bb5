// Package policy decides how risky an operation is: it owns the Rego
// policy (the built-in rules under rego/, tuned by defaults.yaml and the
// `policy:` section of stepgate.yaml, plus the user's own modules), the
// input the policy sees, and the assessment it answers with.
//
// An Engine is compiled once (New) and evaluates many inputs. The input is
// projected, not the plan as it came: package plan streams the document and
// hands over normalized changes one at a time (Input.Stream), and this
// package keeps, per change, only what the rules read (its address, type,
// action, the values the rules of its type name, its tags and names), as
// Rego terms built directly (jsonterm.go) rather than through JSON. The
// passes that would cost OPA one evaluation step per change (selecting by
// type or action, collecting distinct values, tagged resources, splitting
// names into tokens) are Go built-ins the Rego calls (builtins.go:
// stepgate.where, stepgate.distinct, stepgate.tagged, stepgate.tokens); the
// Rego still names what counts.
//
// Every rule yields findings (rule id, decision, severity, addresses, a
// reason a person can read). Findings combine into one Assessment: the
// strictest decision wins (allow < step_up < deny), with the highest aal
// and approvals and the smallest max_age of the step-ups. An evaluation
// that fails, or answers with something that is not a valid assessment, is
// ErrEvaluation: never an allow.
//
// RunTests runs Rego unit tests (`stepgate policy test`).
package policy
