package cli

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/report"
)

// appendGitHubOutput appends name=value pairs to $GITHUB_OUTPUT; a value
// with a line break is written in the multi-line form with a random
// delimiter, so that no value can add an output of its own.
func appendGitHubOutput(path string, kv [][2]string) error {
	var b strings.Builder
	for _, p := range kv {
		if !strings.ContainsAny(p[1], "\r\n") {
			fmt.Fprintf(&b, "%s=%s\n", p[0], p[1])
			continue
		}
		delim := "ghadelimiter_" + rand.Text()
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", p[0], delim, p[1], delim)
	}
	return appendFile(path, b.String())
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var mdEscape = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "&", "&amp;", "`", "'", "[", `\[`, "]", `\]`, "\n", " ", "\r", " ")

// stepSummary is the markdown for $GITHUB_STEP_SUMMARY: where the check
// stands, its review link, then the assessment (decision, requirements,
// findings table) as stepgate eval writes it.
func stepSummary(ch *api.Check, reviewURL, grantOut string, granted bool) string {
	var b strings.Builder
	icon := map[string]string{stateAllowed: "✅", stateApproved: "✅", statePending: "⏳"}[ch.State]
	if icon == "" {
		icon = "⛔"
	}
	fmt.Fprintf(&b, "**stepgate check** `%s`: %s **%s**", mdEscape.Replace(printable(ch.ID)), icon, mdEscape.Replace(printable(ch.State)))
	if u, err := url.Parse(reviewURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		fmt.Fprintf(&b, " · [review](%s)", strings.NewReplacer("(", "%28", ")", "%29", " ", "%20").Replace(u.String()))
	}
	b.WriteString("  \n")
	for _, a := range ch.Approvals {
		fmt.Fprintf(&b, "%s  \n", mdEscape.Replace(approvalLine(a)))
	}
	if granted {
		fmt.Fprintf(&b, "**Grant:** written to `%s`", mdEscape.Replace(grantOut))
		if ch.GrantExpiresAt != nil {
			fmt.Fprintf(&b, ", valid until %s", ch.GrantExpiresAt.UTC().Format(time.RFC3339))
		}
		b.WriteString("  \n")
	}
	b.WriteString("\n")
	if ch.Assessment != nil {
		var a strings.Builder
		if report.Write(&a, "markdown", ch.Assessment, report.Options{}) == nil {
			b.WriteString(a.String())
		}
	}
	b.WriteString("\n")
	return b.String()
}
