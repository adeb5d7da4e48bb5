package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stepgate/stepgate/internal/ciclaims"
)

// Context is what the policy knows of an operation besides its plan: who
// and what asks, when, and what came before (input.pipeline,
// input.pipeline_unverified, input.requester, input.time, input.history).
type Context struct {
	// Pipeline is the CI identity's verified claims, normalised; nil when
	// the caller is not a CI token (input.pipeline is then null). Never
	// what a request says of itself.
	Pipeline *ciclaims.Pipeline
	// PipelineUnverified is what the request says of its pipeline (the
	// pipeline.* parameters): input.pipeline_unverified, which no built-in
	// rule reads.
	PipelineUnverified map[string]string
	// Requester is who asks, from what was authenticated only.
	Requester Requester
	// At is the time of the evaluation; zero means now.
	At time.Time
	// History is what the store knows of the workspace and the requester:
	// nil offline (stepgate eval), where input.history is null.
	History *History
}

// Requester kinds.
const (
	RequesterToken  = "token"  // an API token acting for no person
	RequesterCI     = "ci"     // a CI token not linked to a person
	RequesterPerson = "person" // a person: the owner of an API token, or the person a CI actor is linked to
)

// Requester is input.requester.
type Requester struct {
	Kind string `json:"kind"`
	// Name is the requester recorded on the check: the person's name, else
	// the token's or CI rule's name.
	Name string `json:"name"`
	// Owner is the person the requester is, for kind person.
	Owner  string   `json:"owner"`
	Groups []string `json:"groups"`
}

// History is input.history.
type History struct {
	// LastAppliedAt and LastAppliedBy: the newest use of a grant for this
	// workspace (zero and empty: never).
	LastAppliedAt time.Time `json:"last_applied_at"`
	LastAppliedBy string    `json:"last_applied_by"`
	// RequesterApplied: this requester has used a grant for this
	// workspace before.
	RequesterApplied bool `json:"requester_applied"`
	// RequesterChecksLastHour counts the checks this requester created in
	// the hour before this one (this one not included).
	RequesterChecksLastHour int `json:"requester_checks_last_hour"`
	// PlanApprovedThenExpired: this workspace had a check of this very plan
	// approved whose grant expired unused.
	PlanApprovedThenExpired bool `json:"plan_approved_then_expired"`
}

// SetContext sets what the policy knows besides the plan.
func (in *Input) SetContext(c Context) { in.ctx = c }

// Context returns what was set with SetContext, At filled in once the
// input was evaluated.
func (in *Input) Context() Context { return in.ctx }

func timeTerm(t time.Time) *ast.Term {
	if t.IsZero() {
		return nullTerm
	}
	return str(t.UTC().Format(time.RFC3339))
}

func stringMapTerm(m map[string]string) *ast.Term {
	items := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		items = append(items, item(k, str(v)))
	}
	return ast.ObjectTerm(items...)
}

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = str(s)
	}
	return ast.ArrayTerm(ts...)
}

// pipelineTerm is input.pipeline.
func pipelineTerm(p *ciclaims.Pipeline) *ast.Term {
	if p == nil {
		return nullTerm
	}
	protected := nullTerm
	if p.RefProtected != nil {
		protected = ast.BooleanTerm(*p.RefProtected)
	}
	return ast.ObjectTerm(
		item("system", str(p.System)),
		item("issuer", str(p.Issuer)),
		item("subject", str(p.Subject)),
		item("repository", str(p.Repository)),
		item("ref", str(p.Ref)),
		item("ref_type", str(p.RefType)),
		item("ref_protected", protected),
		item("event_name", str(p.EventName)),
		item("pull_request", ast.BooleanTerm(p.PullRequest)),
		item("environment", str(p.Environment)),
		item("workflow", str(p.Workflow)),
		item("job_workflow_ref", str(p.JobWorkflowRef)),
		item("actor", str(p.Actor)),
		item("run_id", str(p.RunID)),
		item("run_attempt", str(p.RunAttempt)),
		item("sha", str(p.SHA)),
		item("project_path", str(p.ProjectPath)),
		item("namespace_path", str(p.NamespacePath)),
		item("pipeline_source", str(p.PipelineSource)),
		item("runner_environment", str(p.RunnerEnvironment)),
		item("claims", stringMapTerm(p.Claims)),
	)
}

// TimeInput is input.time.
type TimeInput struct {
	UTC      string `json:"utc"`
	Local    string `json:"local"`
	Timezone string `json:"timezone"`
	Weekday  string `json:"weekday"` // Mon, Tue... in the time zone
	Hour     int    `json:"hour"`    // 0-23 in the time zone
	// Windows are the names of the configured windows (policy.freeze)
	// active now, in configuration order.
	Windows []string `json:"windows"`
}

// timeInput is input.time at t for this engine's configuration.
func (c *clock) timeInput(t time.Time) TimeInput {
	local := t.In(c.loc)
	ti := TimeInput{
		UTC:      t.UTC().Format(time.RFC3339),
		Local:    local.Format(time.RFC3339),
		Timezone: c.loc.String(),
		Weekday:  local.Weekday().String()[:3],
		Hour:     local.Hour(),
		Windows:  []string{},
	}
	for _, w := range c.windows {
		if w.active(t, c.loc) {
			ti.Windows = append(ti.Windows, w.name)
		}
	}
	return ti
}

func (t TimeInput) term() *ast.Term {
	return ast.ObjectTerm(
		item("utc", str(t.UTC)),
		item("local", str(t.Local)),
		item("timezone", str(t.Timezone)),
		item("weekday", str(t.Weekday)),
		item("hour", ast.IntNumberTerm(t.Hour)),
		item("windows", stringsTerm(t.Windows)),
	)
}

func (r Requester) term() *ast.Term {
	return ast.ObjectTerm(
		item("kind", str(r.Kind)),
		item("name", str(r.Name)),
		item("owner", str(r.Owner)),
		item("groups", stringsTerm(r.Groups)),
	)
}

func historyTerm(h *History) *ast.Term {
	if h == nil {
		return nullTerm
	}
	return ast.ObjectTerm(
		item("last_applied_at", timeTerm(h.LastAppliedAt)),
		item("last_applied_by", str(h.LastAppliedBy)),
		item("requester_applied", ast.BooleanTerm(h.RequesterApplied)),
		item("requester_checks_last_hour", ast.IntNumberTerm(h.RequesterChecksLastHour)),
		item("plan_approved_then_expired", ast.BooleanTerm(h.PlanApprovedThenExpired)),
	)
}

// clock is the time zone and windows of the configuration, parsed once.
type clock struct {
	loc     *time.Location
	windows []window
}

// window is one freeze window: dated (start, end) or weekly (from, to as
// minutes since Sunday 00:00 in the configured time zone).
type window struct {
	name       string
	start, end time.Time
	weekly     bool
	from, to   int
}

func (w window) active(t time.Time, loc *time.Location) bool {
	if !w.weekly {
		return !t.Before(w.start) && t.Before(w.end)
	}
	l := t.In(loc)
	m := int(l.Weekday())*24*60 + l.Hour()*60 + l.Minute()
	if w.from <= w.to {
		return m >= w.from && m < w.to
	}
	return m >= w.from || m < w.to // wraps over the week's end
}

func newClock(c Config) (*clock, error) {
	loc, err := location(c.Timezone)
	if err != nil {
		return nil, err
	}
	cl := &clock{loc: loc}
	for _, fw := range c.Freeze.Windows {
		w, err := parseWindow(fw)
		if err != nil {
			return nil, err
		}
		cl.windows = append(cl.windows, w)
	}
	return cl, nil
}

func location(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("policy.timezone: %q is not a time zone (want an IANA name such as Europe/Berlin): %w", tz, err)
	}
	return loc, nil
}

func parseWindow(fw FreezeWindow) (window, error) {
	w := window{name: fw.Name}
	if fw.Weekly != nil {
		if fw.Start != "" || fw.End != "" {
			return w, fmt.Errorf("set either start and end, or weekly, not both")
		}
		var err error
		w.weekly = true
		if w.from, err = weekMinute(fw.Weekly.From); err != nil {
			return w, fmt.Errorf("weekly.from: %w", err)
		}
		if w.to, err = weekMinute(fw.Weekly.To); err != nil {
			return w, fmt.Errorf("weekly.to: %w", err)
		}
		if w.from == w.to {
			return w, fmt.Errorf("weekly: from and to are the same time")
		}
		return w, nil
	}
	var err error
	if w.start, err = time.Parse(time.RFC3339, fw.Start); err != nil {
		return w, fmt.Errorf("start: %q is not an RFC 3339 time such as 2026-12-20T00:00:00+01:00", fw.Start)
	}
	if w.end, err = time.Parse(time.RFC3339, fw.End); err != nil {
		return w, fmt.Errorf("end: %q is not an RFC 3339 time such as 2027-01-04T08:00:00+01:00", fw.End)
	}
	if !w.end.After(w.start) {
		return w, fmt.Errorf("end %s is not after start %s", fw.End, fw.Start)
	}
	return w, nil
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// weekMinute reads "Fri 16:00" as minutes since Sunday 00:00.
func weekMinute(s string) (int, error) {
	day, hm, ok := strings.Cut(strings.TrimSpace(s), " ")
	d := slices.Index(weekdays, strings.ToLower(day))
	if len(day) > 3 {
		d = slices.Index(weekdays, strings.ToLower(day[:3]))
		if !strings.HasPrefix(strings.ToLower(time.Weekday(max(d, 0)).String()), strings.ToLower(day)) {
			d = -1
		}
	}
	h, m, ok2 := strings.Cut(strings.TrimSpace(hm), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || !ok2 || d < 0 || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a day and time such as \"Fri 16:00\"", s)
	}
	return d*24*60 + hh*60 + mm, nil
}

// Time returns input.time as the last evaluation of this input saw it.
func (in *Input) Time() TimeInput { return in.time }

// ContextEcho is the context an evaluation used, as stepgate eval prints
// it (the "context" of its JSON output).
type ContextEcho struct {
	Pipeline           *ciclaims.Pipeline `json:"pipeline"`
	PipelineUnverified map[string]string  `json:"pipeline_unverified,omitempty"`
	Requester          Requester          `json:"requester"`
	Time               TimeInput          `json:"time"`
	History            *History           `json:"history"`
}

// Echo returns the context the last evaluation of this input used.
func (in *Input) Echo() ContextEcho {
	return ContextEcho{Pipeline: in.ctx.Pipeline, PipelineUnverified: in.ctx.PipelineUnverified, Requester: in.ctx.Requester, Time: in.time, History: in.ctx.History}
}
