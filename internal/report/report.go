package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/policy"
)

// Formats lists the output formats.
var Formats = []string{"text", "json", "markdown"}

// Options tune rendering.
type Options struct {
	// Color adds ANSI colours (for a terminal).
	Color bool
	// MaxAddresses caps the addresses listed under each finding in text and
	// markdown; JSON always has them all. Zero means 10.
	MaxAddresses int
}

// Write renders a in the named format.
func Write(w io.Writer, format string, a *policy.Assessment, opts Options) error {
	if opts.MaxAddresses == 0 {
		opts.MaxAddresses = 10
	}
	switch format {
	case "json":
		return writeJSON(w, a)
	case "markdown":
		return writeMarkdown(w, a, opts)
	case "text", "":
		return writeText(w, a, opts)
	}
	return fmt.Errorf("unknown output format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

// Headline is the decision in a few words.
func Headline(d policy.Decision) string {
	switch d {
	case policy.Allow:
		return "ALLOW"
	case policy.StepUp:
		return "STEP-UP REQUIRED"
	}
	return "DENY"
}

// Needs says in words what a step-up requires.
func Needs(r *policy.Requirements) string {
	if r == nil {
		return ""
	}
	parts := []string{fmt.Sprintf("aal %d (%s)", r.AAL, aalWords(r.AAL))}
	switch r.Approvals {
	case 0:
		parts = append(parts, "one proof by the requester or an approver")
	case 1:
		parts = append(parts, "1 approval by someone other than the requester")
	default:
		parts = append(parts, fmt.Sprintf("%d approvals by different people other than the requester", r.Approvals))
	}
	parts = append(parts, "proof at most "+duration(r.MaxAge)+" old")
	if len(r.Methods) > 0 {
		parts = append(parts, "methods "+strings.Join(r.Methods, ", "))
	}
	if len(r.Groups) > 0 {
		parts = append(parts, "approvers in "+strings.Join(r.Groups, ", "))
	}
	return strings.Join(parts, " · ")
}

func aalWords(aal int) string {
	switch aal {
	case 3:
		return "passkey with user verification"
	case 2:
		return "passkey or TOTP"
	}
	return "signed-in session"
}

func duration(sec int) string {
	switch {
	case sec%3600 == 0:
		return fmt.Sprintf("%d h", sec/3600)
	case sec%60 == 0:
		return fmt.Sprintf("%d min", sec/60)
	}
	return fmt.Sprintf("%d s", sec)
}

// ActionCounts writes counts by action in a stable order: "2 create, 1 delete".
func ActionCounts(by map[string]int, changesOnly bool) string {
	var parts []string
	for _, a := range plan.Actions {
		if changesOnly && !a.IsChange() {
			continue
		}
		if n := by[string(a)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	return strings.Join(parts, ", ")
}

// changesLine counts the changes of a summary: "3 (2 create, 1 delete), 5
// unchanged or read".
func changesLine(s policy.Summary) string {
	counts := ActionCounts(s.ByAction, true)
	if counts == "" {
		counts = "none"
	}
	line := fmt.Sprintf("%d (%s)", s.Changes, counts)
	if s.Changes == 0 {
		line = "no changes"
	}
	if rest := s.Total - s.Changes; rest > 0 {
		line += fmt.Sprintf(", %d unchanged or read", rest)
	}
	return line
}

func planLine(p policy.PlanInfo) string {
	if p.Format == "" {
		return ""
	}
	s := p.Format
	if p.FormatVersion != "" {
		s += " format " + p.FormatVersion
	}
	if p.ToolVersion != "" {
		s += " (v" + p.ToolVersion + ")"
	}
	if p.SHA256 != "" {
		s += ", sha256 " + p.SHA256[:min(12, len(p.SHA256))] + "…"
	}
	return s
}

// writeJSON writes a as indented JSON, exactly as encoding/json's
// MarshalIndent would, but streamed: on an assessment listing forty
// thousand addresses, encoding/json's indenting pass took ten times as
// long as the encoding, and materializing the 2 MB twice cost more still
// in a fresh process.
func writeJSON(w io.Writer, a *policy.Assessment) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := json.MarshalWrite(bw, a, jsonv1.DefaultOptionsV1(), jsontext.WithIndent("  ")); err != nil {
		return err
	}
	if err := bw.WriteByte('\n'); err != nil {
		return err
	}
	return bw.Flush()
}
