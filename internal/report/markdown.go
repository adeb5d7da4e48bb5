package report

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/stepgate/stepgate/internal/policy"
)

// Text from plans and rules is data: it must not change the structure of
// the comment it is written into.
var (
	// mdText escapes prose in a table cell or a line.
	mdText = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "&", "&amp;", "`", "'", "\n", " ", "\r", " ")
	// mdCodeCell escapes the inside of a code span in a table cell.
	mdCodeCell = strings.NewReplacer("|", `\|`, "`", "'", "\n", " ", "\r", " ")
	// mdCode escapes the inside of a code span elsewhere.
	mdCode = strings.NewReplacer("`", "'", "\n", " ", "\r", " ")
)

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

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
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s |\n", mark, mdText.Replace(f.Severity), mdCodeCell.Replace(Printable(f.Rule)), mdText.Replace(Printable(f.Reason)))
		}
		b.WriteString("\n")
		for _, f := range a.Findings {
			if len(f.Addresses) == 0 {
				continue
			}
			fmt.Fprintf(&b, "<details><summary><code>%s</code>: %s</summary>\n\n", html.EscapeString(Printable(f.Rule)), plural(len(f.Addresses), "address", "addresses"))
			for i, addr := range f.Addresses {
				if i == opts.MaxAddresses*5 {
					fmt.Fprintf(&b, "- … and %d more\n", len(f.Addresses)-i)
					break
				}
				fmt.Fprintf(&b, "- `%s`\n", mdCode.Replace(Printable(addr)))
			}
			b.WriteString("\n</details>\n\n")
		}
	}
	s := a.Summary
	fmt.Fprintf(&b, "**Changes:** %s  \n", changesLine(s))
	prod := "not production"
	if s.Production {
		prod = "production: " + mdText.Replace(Printable(strings.Join(s.ProductionReasons, "; ")))
	}
	fmt.Fprintf(&b, "**Operation:** `%s` on workspace `%s` · %s  \n", mdCode.Replace(s.Kind), mdCode.Replace(Printable(orNone(s.Workspace))), prod)
	if pl := planLine(a.Plan); pl != "" {
		fmt.Fprintf(&b, "**Plan:** %s\n", pl)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
