package notify

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/report"
)

// Messages for the chat systems people approve from: Slack (and
// Mattermost) incoming webhooks, and Microsoft Teams incoming webhooks or
// Workflows webhooks. Neither kind of webhook can edit a message it posted,
// so a check gets one message when it needs people and a follow-up when it
// is decided.

// maxRisky is how many of a check's findings a message lists.
const maxRisky = 5

// maxLine bounds one line taken from a plan or a pipeline.
const maxLine = 300

// chatCheck is what a chat message says of a check, each string already
// made printable (control and bidi characters shown escaped) and bounded.
type chatCheck struct {
	title   string   // "terraform.apply on billing-prod waits for approval"
	kind    string   // terraform.apply
	space   string   // billing-prod
	what    string   // waits for approval, was approved...
	asked   string   // the requester
	via     string   // the verified pipeline, or what the request claimed
	needs   string   // what the approval needs (pending only)
	risky   []string // the findings' one-line reasons
	more    int      // findings left out
	secrets []string // secret names the grant would release
	decided string   // who decided (follow-ups)
	id      string
	review  string
}

var eventWords = map[string]string{
	Pending:  "waits for approval",
	Approved: "was approved",
	Rejected: "was rejected",
	Expired:  "expired without a decision",
}

// line makes s printable and at most maxLine characters.
func line(s string) string {
	s = report.Printable(strings.TrimSpace(s))
	if utf8.RuneCountInString(s) <= maxLine {
		return s
	}
	r := []rune(s)
	return string(r[:maxLine-1]) + "…"
}

func summarize(event string, c *api.Check, review string) chatCheck {
	m := chatCheck{kind: line(c.Kind), space: line(c.Workspace), what: eventWords[event], asked: line(c.Requester), id: c.ID, review: review}
	if bg := c.BreakGlass; bg != nil && (event == BreakGlassUsed || event == BreakGlassOverdue) {
		m.what = "was approved by BREAK-GLASS by " + line(bg.UsedBy) + " (reason: " + line(bg.Reason) + "); another person must review it"
		if event == BreakGlassOverdue {
			m.what = "was approved by BREAK-GLASS by " + line(bg.UsedBy) + " and its review is OVERDUE (reason: " + line(bg.Reason) + ")"
		}
	}
	m.title = m.kind + " on " + m.space + " " + m.what
	m.via = pipelineLine(c)
	if c.Assessment != nil {
		if c.Assessment.Requirements != nil && event == Pending {
			m.needs = report.Needs(c.Assessment.Requirements)
		}
		for i, f := range c.Assessment.Findings {
			if i == maxRisky {
				m.more = len(c.Assessment.Findings) - maxRisky
				break
			}
			m.risky = append(m.risky, line(f.Reason))
		}
	}
	for _, s := range c.Secrets {
		m.secrets = append(m.secrets, line(s.Name))
	}
	var by []string
	for _, a := range c.Approvals {
		if (event == Approved && a.Approved) || (event == Rejected && !a.Approved) {
			who := line(a.Subject)
			if event == Rejected && a.Reason != "" {
				who += " (" + line(a.Reason) + ")"
			}
			by = append(by, who)
		}
	}
	if len(by) > 0 {
		m.decided = "by " + strings.Join(by, ", ")
	}
	return m
}

// pipelineLine says which run asked: the verified CI identity, or, apart
// and named as such, what the request claimed.
func pipelineLine(c *api.Check) string {
	p, how := c.Pipeline, ""
	if len(p) == 0 {
		p, how = c.PipelineUnverified, " (claimed, not verified)"
	}
	if len(p) == 0 {
		return ""
	}
	var parts []string
	for _, k := range []string{"system", "repository", "ref", "pull_request", "run_id", "actor"} {
		if v := p[k]; v != "" {
			if k == "pull_request" {
				v = "pull request " + v
			}
			if k == "run_id" {
				v = "run " + v
			}
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return line(strings.Join(parts, " · ")) + how
}

// slackMessage is a check's event for Slack-compatible incoming webhooks:
// text (what notifications and Mattermost show) and blocks (Block Kit,
// what Slack shows).
func slackMessage(event string, c *api.Check, review string) map[string]any {
	m := summarize(event, c, review)
	text := fmt.Sprintf("*%s* on `%s` requested by %s %s.", escapeSlack(m.kind), escapeSlack(m.space), escapeSlack(m.asked), escapeSlack(m.what))
	if len(m.secrets) > 0 {
		text += "\nReleases secrets: " + slackCodes(m.secrets)
	}
	if m.needs != "" {
		text += "\nNeeds: " + m.needs
	}
	for _, r := range m.risky {
		text += "\n• " + escapeSlack(r)
	}
	text += fmt.Sprintf("\n<%s|Review %s>", review, m.id)

	head := fmt.Sprintf("*%s* on `%s` %s", escapeSlack(m.kind), escapeSlack(m.space), escapeSlack(m.what))
	if m.decided != "" {
		head += " " + escapeSlack(m.decided)
	}
	head += fmt.Sprintf(".\n<%s|Review %s>", review, m.id)
	blocks := []map[string]any{slackSection(head)}
	var facts []string
	facts = append(facts, "*Requested by* "+escapeSlack(m.asked))
	if m.via != "" {
		facts = append(facts, "*Pipeline* "+escapeSlack(m.via))
	}
	if m.needs != "" {
		facts = append(facts, "*Needs* "+m.needs)
	}
	if len(m.secrets) > 0 {
		facts = append(facts, "*Releases secrets* "+slackCodes(m.secrets))
	}
	if event == Pending && len(m.risky) > 0 {
		var b strings.Builder
		b.WriteString("*Risky changes*")
		for _, r := range m.risky {
			b.WriteString("\n• " + escapeSlack(r))
		}
		if m.more > 0 {
			fmt.Fprintf(&b, "\n… and %d more on the review page", m.more)
		}
		blocks = append(blocks, slackSection(b.String()))
	}
	ctx := make([]map[string]any, 0, len(facts))
	for _, f := range facts {
		ctx = append(ctx, map[string]any{"type": "mrkdwn", "text": clip(f, 3000)})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": ctx})
	return map[string]any{"text": clip(text, 3000), "blocks": blocks}
}

func slackSection(text string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": clip(text, 3000)}}
}

func slackCodes(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "`" + escapeSlack(n) + "`"
	}
	return strings.Join(q, ", ")
}

// clip bounds s to n bytes (Slack's limit on a text object is 3000
// characters), cutting at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Adaptive Card envelope of a Teams incoming webhook or Workflows webhook
// ("Send Adaptive Cards using an Incoming Webhook"): a message whose one
// attachment is the card.
const (
	teamsCardType   = "application/vnd.microsoft.card.adaptive"
	teamsCardSchema = "http://adaptivecards.io/schemas/adaptive-card.json"
	// teamsCardVersion is the schema version of the cards sent: every
	// element used (TextBlock, RichTextBlock, FactSet, Action.OpenUrl)
	// exists in 1.2, which Teams renders.
	teamsCardVersion = "1.2"
)

func teamsEnvelope(body []map[string]any, actions []map[string]any) map[string]any {
	card := map[string]any{
		"$schema": teamsCardSchema,
		"type":    "AdaptiveCard",
		"version": teamsCardVersion,
		"body":    body,
	}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": teamsCardType,
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}

// teamsPlain is text shown as it is: a RichTextBlock's TextRun takes no
// markdown, so a name from a plan cannot become a link or formatting.
func teamsPlain(text string, bold bool) map[string]any {
	run := map[string]any{"type": "TextRun", "text": text}
	if bold {
		run["weight"] = "Bolder"
	}
	return map[string]any{"type": "RichTextBlock", "inlines": []map[string]any{run}}
}

// teamsMessage is a check's event as an Adaptive Card for Teams. What a
// plan or a pipeline wrote goes in TextRuns only (never markdown).
func teamsMessage(event string, c *api.Check, review string) map[string]any {
	m := summarize(event, c, review)
	title := m.title
	if m.decided != "" {
		title += " " + m.decided
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": "stepgate", "size": "Small", "isSubtle": true, "wrap": true},
		teamsPlain(title, true),
	}
	rows := [][2]string{{"Requested by", m.asked}}
	if m.via != "" {
		rows = append(rows, [2]string{"Pipeline", m.via})
	}
	if m.needs != "" {
		rows = append(rows, [2]string{"Needs", m.needs})
	}
	if len(m.secrets) > 0 {
		rows = append(rows, [2]string{"Releases secrets", strings.Join(m.secrets, ", ")})
	}
	rows = append(rows, [2]string{"Check", m.id})
	for _, r := range rows {
		body = append(body, teamsPlainPair(r[0], r[1]))
	}
	if event == Pending && len(m.risky) > 0 {
		body = append(body, map[string]any{"type": "TextBlock", "text": "Risky changes", "weight": "Bolder", "wrap": true, "spacing": "Medium"})
		for _, r := range m.risky {
			body = append(body, teamsPlain("• "+r, false))
		}
		if m.more > 0 {
			body = append(body, map[string]any{"type": "TextBlock", "text": fmt.Sprintf("… and %d more on the review page", m.more), "isSubtle": true, "wrap": true})
		}
	}
	return teamsEnvelope(body, []map[string]any{{"type": "Action.OpenUrl", "title": "Review " + m.id, "url": review}})
}

// teamsPlainPair is "label: value" with the value shown as it is.
func teamsPlainPair(label, value string) map[string]any {
	return map[string]any{"type": "RichTextBlock", "inlines": []map[string]any{
		{"type": "TextRun", "text": label + ": ", "weight": "Bolder"},
		{"type": "TextRun", "text": value},
	}}
}

// teamsFactorMessage is a factor's event as an Adaptive Card for Teams.
func teamsFactorMessage(event string, fc *FactorChange, account string) map[string]any {
	text := slackFactorMessage(event, fc, account)["text"].(string)
	// The Slack text, without its link markup and escapes.
	text, _, _ = strings.Cut(text, "\n<")
	text = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
	return teamsEnvelope([]map[string]any{
		{"type": "TextBlock", "text": "stepgate", "size": "Small", "isSubtle": true, "wrap": true},
		teamsPlain(line(text), false),
	}, []map[string]any{{"type": "Action.OpenUrl", "title": "Review your factors", "url": account}})
}

// Formats of a webhook.
var Formats = []string{"json", "slack", "teams"}

func validFormat(f string) bool { return f == "" || slices.Contains(Formats, f) }
