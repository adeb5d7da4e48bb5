package policy

import "github.com/stepgate/stepgate/internal/assessment"

// The policy's answer is package assessment's: these names keep the
// policy's own code and its callers reading as before.
type (
	Decision     = assessment.Decision
	Requirements = assessment.Requirements
	Finding      = assessment.Finding
	Summary      = assessment.Summary
	PlanInfo     = assessment.PlanInfo
	Assessment   = assessment.Assessment
)

// The three decisions, allow < step_up < deny.
const (
	Allow  = assessment.Allow
	StepUp = assessment.StepUp
	Deny   = assessment.Deny
)

// Severities lists the severities a finding may have, least first.
var Severities = assessment.Severities

// DefaultMaxAge is the max_age used when a requirement sets none.
func DefaultMaxAge(aal int) int { return assessment.DefaultMaxAge(aal) }

// Combine folds findings into one decision and its requirements (see
// assessment.Combine).
func Combine(findings []Finding) (Decision, *Requirements, error) {
	return assessment.Combine(findings)
}

func sortFindings(fs []Finding) { assessment.SortFindings(fs) }
