package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/stepgate/stepgate/internal/policy"
)

var mdEscaper = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "`", "'", "\n", " ")

func writeMarkdown(w io.Writer, a *policy.Assessment, opts Options) error {
	var b strings.Builder
	icon := map[policy.Decision]string{policy.Allow: "✅", policy.StepUp: "🔐", policy.Deny: "⛔"}[a.Decision]
	fmt.Fprintf(&b, "### %s stepgate: %s\n\n", icon, strings.ToLower(Headline(a.Decision)))
	if a.Decision == policy.StepUp {
		fmt.Fprintf(&b, "**Needs:** %s\n\n", Needs(a.Requirements))
	}
	if len(a.Findings) > 0 {
		b.WriteString("| | severity | rule | reason |\n|---|---|---|---|\n")
		for _, f := range a.Findings {
			mark := map[policy.Decision]string{policy.Deny: "⛔", policy.StepUp: "🔐", policy.Allow: "✅"}[f.Decision]
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", mark, f.Severity, f.Rule, mdEscaper.Replace(f.Reason))
		}
		b.WriteString("\n")
		for _, f := range a.Findings {
			if len(f.Addresses) == 0 {
				continue
			}
			fmt.Fprintf(&b, "<details><summary><code>%s</code>: %d addresses</summary>\n\n", f.Rule, len(f.Addresses))
			for i, addr := range f.Addresses {
				if i == opts.MaxAddresses*5 {
					fmt.Fprintf(&b, "- … and %d more\n", len(f.Addresses)-i)
					break
				}
				fmt.Fprintf(&b, "- `%s`\n", mdEscaper.Replace(addr))
			}
			b.WriteString("\n</details>\n\n")
		}
	}
	s := a.Summary
	counts := ActionCounts(s.ByAction, true)
	if counts == "" {
		counts = "none"
	}
	fmt.Fprintf(&b, "**Changes:** %d (%s)", s.Changes, counts)
	if rest := s.Total - s.Changes; rest > 0 {
		fmt.Fprintf(&b, ", %d unchanged or read", rest)
	}
	b.WriteString("  \n")
	prod := "not production"
	if s.Production {
		prod = "production: " + mdEscaper.Replace(strings.Join(s.ProductionReasons, "; "))
	}
	fmt.Fprintf(&b, "**Operation:** `%s` on workspace `%s` · %s  \n", s.Kind, mdEscaper.Replace(orNone(s.Workspace)), prod)
	if pl := planLine(a.Plan); pl != "" {
		fmt.Fprintf(&b, "**Plan:** %s\n", pl)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
