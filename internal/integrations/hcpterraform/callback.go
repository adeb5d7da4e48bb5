package hcpterraform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
)

// Task result statuses: only these are accepted by HCP Terraform.
const (
	StatusPassed  = "passed"
	StatusFailed  = "failed"
	StatusRunning = "running"
)

// jsonAPI is the media type of the callback.
const jsonAPI = "application/vnd.api+json"

// maxOutcomes is how many outcomes a result may carry.
const maxOutcomes = 10

// Result is the body of a task result callback (PATCH
// task_result_callback_url): a JSON:API task-results resource.
type Result struct {
	Data ResultData `json:"data"`
}

// ResultData is the task-results resource.
type ResultData struct {
	Type          string               `json:"type"` // task-results
	Attributes    ResultAttributes     `json:"attributes"`
	Relationships *ResultRelationships `json:"relationships,omitempty"`
}

// ResultAttributes are its status, message and URL.
type ResultAttributes struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	URL     string `json:"url,omitempty"`
}

// ResultRelationships holds the detailed outcomes.
type ResultRelationships struct {
	Outcomes OutcomeList `json:"outcomes"`
}

// OutcomeList is the outcomes relationship's data.
type OutcomeList struct {
	Data []Outcome `json:"data"`
}

// Outcome is a task-result-outcomes resource: one finding.
type Outcome struct {
	Type       string            `json:"type"` // task-result-outcomes
	Attributes OutcomeAttributes `json:"attributes"`
}

// OutcomeAttributes are one finding's fields, with go-tfe's names.
type OutcomeAttributes struct {
	OutcomeID   string           `json:"outcome-id"`
	Description string           `json:"description"`
	Body        string           `json:"body,omitempty"` // markdown
	URL         string           `json:"url,omitempty"`
	Tags        map[string][]Tag `json:"tags,omitempty"`
}

// Tag is one label of an outcome; a "Severity" or "Status" tag is shown
// in HCP Terraform's list of outcomes.
type Tag struct {
	Label string `json:"label"`
	Level string `json:"level,omitempty"` // none, info, warning, error
}

// result builds a callback body; the outcomes only when HCP Terraform
// accepts them.
func result(status, message, url string, v *api.Check, withOutcomes bool) *Result {
	r := &Result{Data: ResultData{Type: "task-results", Attributes: ResultAttributes{
		Status: status, Message: truncate(oneLine(message), 250), URL: url,
	}}}
	if withOutcomes && v != nil && v.Assessment != nil && len(v.Assessment.Findings) > 0 {
		var out []Outcome
		for _, f := range v.Assessment.Findings {
			if len(out) == maxOutcomes {
				break
			}
			var body strings.Builder
			fmt.Fprintf(&body, "**%s** (%s): %s\n", mdText(f.Rule), mdText(string(f.Decision)), mdText(f.Reason))
			for i, a := range f.Addresses {
				if i == 20 {
					fmt.Fprintf(&body, "\n… and %d more", len(f.Addresses)-i)
					break
				}
				fmt.Fprintf(&body, "\n- `%s`", strings.ReplaceAll(a, "`", "'"))
			}
			out = append(out, Outcome{Type: "task-result-outcomes", Attributes: OutcomeAttributes{
				OutcomeID:   truncate(f.Rule, 100),
				Description: truncate(oneLine(f.Reason), 200),
				Body:        truncate(body.String(), 8000),
				URL:         url,
				Tags:        map[string][]Tag{"Severity": {{Label: severityLabel(f.Severity), Level: severityLevel(f.Severity)}}},
			}})
		}
		r.Data.Relationships = &ResultRelationships{Outcomes: OutcomeList{Data: out}}
	}
	return r
}

func severityLabel(s string) string {
	if s == "" {
		return "Unknown"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func severityLevel(s string) string {
	switch strings.ToLower(s) {
	case "critical", "high":
		return "error"
	case "medium":
		return "warning"
	}
	return "info"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// mdText escapes what a plan or policy wrote so that it reads as text in
// markdown: no links, images, emphasis or HTML of its own.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range oneLine(s) {
		if strings.ContainsRune("\\`*_{}[]()<>#+-.!|~", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// errPermanent: HCP Terraform refused the callback (401, 404, 422...):
// sending it again cannot help.
var errPermanent = errors.New("refused by HCP Terraform")

// send PATCHes body to the callback URL, with bounded retries on network
// errors and 429 or 5xx answers, until ctx ends.
func (r *Runner) send(ctx context.Context, req *Request, body *Result) error {
	u, ok := r.hosts.allowedURL(req.TaskResultCallbackURL)
	if !ok {
		return fmt.Errorf("%w: callback host not allowed", errPermanent)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encoding task result: %w", err)
	}
	delay := r.cfg.RetryBackoff
	var last error
	for attempt := 1; attempt <= r.cfg.Attempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(last, ctx.Err())
			case <-t.C:
			}
			delay *= 2
		}
		last = r.patch(ctx, u.String(), req.AccessToken, b)
		if last == nil || errors.Is(last, errPermanent) || ctx.Err() != nil {
			return last
		}
		r.log.WarnContext(ctx, "run task callback failed; retrying", "task", req.TaskResultID, "attempt", attempt, "err", last)
	}
	return fmt.Errorf("callback failed %d times: %w", r.cfg.Attempts, last)
}

func (r *Runner) patch(ctx context.Context, url, token string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPatch, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Content-Type", jsonAPI)
	hr.Header.Set("Accept", jsonAPI)
	resp, err := r.noRedirects.Do(hr)
	if err != nil {
		return fmt.Errorf("sending callback: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("callback answered %s", resp.Status)
	default:
		return fmt.Errorf("%w: callback answered %s: %s", errPermanent, resp.Status, truncate(oneLine(string(msg)), 300))
	}
}
