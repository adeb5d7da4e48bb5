// Package assessment holds the policy's answer for an operation, as the
// server stores it, the API shows it and clients read it: the decision,
// its requirements and the findings behind it, and how findings combine.
// It imports nothing heavy, so that a client of the API does not pull in
// the policy engine (package policy evaluates; this package is its answer).
package assessment

import (
	"cmp"
	"fmt"
	"slices"
)

// Decision is the policy's answer. Allow < StepUp < Deny.
type Decision string

const (
	Allow  Decision = "allow"
	StepUp Decision = "step_up"
	Deny   Decision = "deny"
)

// Valid reports whether d is one of the three decisions.
func (d Decision) Valid() bool { return d == Allow || d == StepUp || d == Deny }

func (d Decision) rank() int {
	switch d {
	case Allow:
		return 0
	case StepUp:
		return 1
	}
	return 2 // deny, and anything unknown: fail closed
}

// Severities lists the severities a finding may have, least first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// DefaultMaxAge is the max_age used when a requirement sets none.
func DefaultMaxAge(aal int) int {
	switch aal {
	case 3:
		return 300
	case 2:
		return 900
	}
	return 3600
}

// Requirements say what a step-up needs before a grant is issued.
type Requirements struct {
	// AAL is the authenticator assurance level (NIST SP 800-63B), 1 to 3.
	AAL int `json:"aal"`
	// Approvals is the number of distinct humans other than the requester
	// who must approve; 0 means one proof by the requester or by any
	// eligible approver.
	Approvals int `json:"approvals"`
	// MaxAge is the most seconds since each human's proof.
	MaxAge int `json:"max_age"`
	// Methods, when set, are the only factors accepted (amr values).
	Methods []string `json:"methods,omitempty"`
	// Groups, when set, are groups every approver must belong to.
	Groups []string `json:"groups,omitempty"`
}

// Finding is one rule's answer.
type Finding struct {
	Rule         string        `json:"rule"`
	Decision     Decision      `json:"decision"`
	Severity     string        `json:"severity"`
	Addresses    []string      `json:"addresses"`
	Reason       string        `json:"reason"`
	Requirements *Requirements `json:"requirements,omitempty"`
}

// Summary describes the operation and its plan in numbers.
type Summary struct {
	Kind              string         `json:"kind"`
	Workspace         string         `json:"workspace,omitempty"`
	Environment       string         `json:"environment,omitempty"`
	Production        bool           `json:"production"`
	ProductionReasons []string       `json:"production_reasons,omitempty"`
	Changes           int            `json:"changes"`
	Total             int            `json:"total"`
	ByAction          map[string]int `json:"by_action"`
}

// PlanInfo identifies the plan that was assessed.
type PlanInfo struct {
	Format        string `json:"format"`
	FormatVersion string `json:"format_version"`
	ToolVersion   string `json:"tool_version,omitempty"`
	SHA256        string `json:"sha256"`
	Errored       bool   `json:"errored"`
	Applyable     bool   `json:"applyable"`
}

// Assessment is the policy's answer for an operation.
type Assessment struct {
	Decision     Decision      `json:"decision"`
	Requirements *Requirements `json:"requirements,omitempty"`
	Findings     []Finding     `json:"findings"`
	Summary      Summary       `json:"summary"`
	Plan         PlanInfo      `json:"plan"`
	// Context is what stepgate eval assumed besides the plan (its
	// --pipeline, --requester, --at and --history): set by eval only, so
	// that its answer says what it was the answer to.
	Context any `json:"context,omitempty"`
}

// Combine folds findings into one decision and its requirements: deny beats
// step_up beats allow; the highest aal, the most approvals and the smallest
// max_age win; methods narrow to those every finding accepts and groups add
// up. Combining requirements that no factor could meet is an error.
func Combine(findings []Finding) (Decision, *Requirements, error) {
	decision := Allow
	for _, f := range findings {
		if f.Decision.rank() > decision.rank() {
			decision = f.Decision
		}
	}
	if decision != StepUp {
		return decision, nil, nil
	}
	var req *Requirements
	for _, f := range findings {
		if f.Decision != StepUp || f.Requirements == nil {
			continue
		}
		r := f.Requirements
		if req == nil {
			c := *r
			c.Methods = slices.Clone(r.Methods)
			c.Groups = slices.Clone(r.Groups)
			req = &c
			continue
		}
		req.AAL = max(req.AAL, r.AAL)
		req.Approvals = max(req.Approvals, r.Approvals)
		req.MaxAge = min(req.MaxAge, r.MaxAge)
		switch {
		case len(req.Methods) == 0:
			req.Methods = slices.Clone(r.Methods)
		case len(r.Methods) > 0:
			var both []string
			for _, m := range req.Methods {
				if slices.Contains(r.Methods, m) {
					both = append(both, m)
				}
			}
			if len(both) == 0 {
				return Deny, nil, fmt.Errorf("rule %s accepts methods %v and another rule only %v: no factor can meet both", f.Rule, r.Methods, req.Methods)
			}
			req.Methods = both
		}
		for _, g := range r.Groups {
			if !slices.Contains(req.Groups, g) {
				req.Groups = append(req.Groups, g)
			}
		}
	}
	if req == nil {
		req = &Requirements{AAL: 2, MaxAge: DefaultMaxAge(2)}
	}
	slices.Sort(req.Groups)
	return decision, req, nil
}

// SortFindings puts the strictest findings first, then by severity and rule.
func SortFindings(fs []Finding) {
	sev := func(s string) int { return slices.Index(Severities, s) }
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Decision.rank(), a.Decision.rank()),
			cmp.Compare(sev(b.Severity), sev(a.Severity)),
			cmp.Compare(a.Rule, b.Rule),
		)
	})
}
