package github

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stepgate/stepgate/internal/store"
)

// attempt is a check's verified run attempt (0 when the token had none).
func attempt(c *store.Check) int {
	n, err := strconv.Atoi(c.Pipeline["run_attempt"])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// system is the verified pipeline system of GitHub Actions' tokens.
const system = "github-actions"

// maxLinks bounds the review links of a status report.
const maxLinks = 5

// maxChecks bounds the checks of one run read to answer.
const maxChecks = 200

// Answers to a deployment protection rule.
const (
	Approved = "approved"
	Rejected = "rejected"
	Pending  = "" // people are needed: a status report, no state
)

// Verdict is the answer for a run's deployment.
type Verdict struct {
	State   string // Approved, Rejected or Pending
	Comment string
	// Checks are the ids of the checks it was decided from; Waiting those
	// still pending.
	Checks  []string
	Waiting []string
}

// Decide answers from the checks created for a run by CI tokens whose
// claims were verified (ChecksOfRun reads Check.Pipeline only): the checks
// of that commit count. Approved when every one is allowed or approved
// (or consumed: approved, and its grant used); rejected when one is
// denied, rejected or expired, or when there is none; pending otherwise.
//
// Only the newest attempt of the run counts (the verified run_attempt):
// re-running a workflow whose check was rejected asks again, and an
// attempt that re-runs only the deploying job keeps the checks of the
// attempt that planned.
func Decide(checks []*store.Check, sha, publicURL string) Verdict {
	var v Verdict
	var bad []string
	var ofRun []*store.Check
	newest := 0
	for _, c := range checks {
		if sha == "" || c.Pipeline["sha"] != sha || c.Pipeline["system"] != system {
			continue
		}
		ofRun = append(ofRun, c)
		newest = max(newest, attempt(c))
	}
	for _, c := range ofRun {
		if attempt(c) != newest {
			continue
		}
		v.Checks = append(v.Checks, c.ID)
		switch c.State {
		case store.StateAllowed, store.StateApproved, store.StateConsumed:
		case store.StatePending:
			v.Waiting = append(v.Waiting, c.ID)
		default:
			bad = append(bad, fmt.Sprintf("%s (%s)", c.ID, c.State))
		}
	}
	base := strings.TrimRight(publicURL, "/")
	switch {
	case len(v.Checks) == 0:
		v.State = Rejected
		v.Comment = "stepgate: no check of this workflow run at this commit was made with a verified CI token; run stepgate check in the run first"
	case len(bad) > 0:
		v.State = Rejected
		v.Comment = "stepgate: refused: " + strings.Join(bad, ", ")
	case len(v.Waiting) > 0:
		v.State = Pending
		var links []string
		for _, id := range v.Waiting[:min(len(v.Waiting), maxLinks)] {
			links = append(links, base+"/checks/"+id)
		}
		if more := len(v.Waiting) - len(links); more > 0 {
			links = append(links, fmt.Sprintf("(and %d more)", more))
		}
		v.Comment = "stepgate: waiting for approval: " + strings.Join(links, " ")
	default:
		v.State = Approved
		v.Comment = fmt.Sprintf("stepgate: %d check(s) of this run allowed or approved: %s", len(v.Checks), strings.Join(v.Checks, ", "))
	}
	return v
}
