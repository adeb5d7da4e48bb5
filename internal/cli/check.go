package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/client"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/report"
	"github.com/stepgate/stepgate/internal/secret"
)

// Check states, as the API names them.
const (
	stateAllowed  = api.StateAllowed
	statePending  = api.StatePending
	stateApproved = api.StateApproved
	stateRejected = api.StateRejected
	stateDenied   = api.StateDenied
	stateExpired  = api.StateExpired
	stateConsumed = api.StateConsumed
)

type checkOptions struct {
	serverFlags
	plan        string
	planFile    string
	workspace   string
	environment string
	kind        string
	wait        time.Duration
	grantOut    string
	output      string
	secrets     []string
	breakGlass  bool
	reason      string
}

func newCheckCmd(env Env) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check --plan FILE --workspace NAME [flags]",
		Short: "Ask the stepgate server for a grant, waiting for approval if needed",
		Long: `Ask the stepgate server whether an operation may proceed, and get its grant.

The plan (the JSON of "terraform show -json tfplan", or pulumi preview --json)
is streamed to the server, which assesses it with its policy:

  allow     the grant is written to --grant-out (mode 0600) at once.
  step-up   the review URL and what the approval needs are printed, then check
            waits, up to --wait, for people to approve, showing the time spent
            and left; the grant is written as soon as it is approved.
  deny      the reasons are printed; there is no grant.

Give the saved plan with --plan-file too: it is sent with the JSON, the server
checks that both describe the same changes (and refuses the check, exit code 2,
when they do not), its sha256 is bound into the grant, and
'stepgate apply --plan-file' then refuses any other file.

When --wait runs out the check stays pending on the server: running the same
stepgate check again (same token, plan and flags) resumes it rather than asking
people again. Any older grant at --grant-out is removed first, so a failed check
never leaves a usable grant behind.

The server is --server or $STEPGATE_SERVER; the API token is $STEPGATE_TOKEN,
or read from --token-file or the file named by $STEPGATE_TOKEN_FILE. Without
one, the job's CI OIDC token is used: $STEPGATE_ID_TOKEN (GitLab id_tokens),
else asked of GitHub Actions for --id-token-audience (the workflow needs
permissions: id-token: write); see docs/ci.md. In GitHub
Actions, check_id, state, grant_path and review_url are appended to
$GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY.

Exit codes:
  0  allowed or approved: the grant was written to --grant-out
  1  the server could not be reached, failed, or refused the token (never a grant)
  2  bad input or usage: missing flag, unreadable file, a plan the server refused
  3  still pending when --wait ran out (run the same check again to resume)
  4  denied by policy, rejected by a person, or expired before approval`,
		Example: `  terraform plan -out tfplan && terraform show -json tfplan > plan.json
  stepgate check --plan plan.json --plan-file tfplan --workspace billing-prod
  stepgate apply --grant stepgate.grant --plan-file tfplan -- terraform apply tfplan

  # Wait at most 10 minutes, machine-readable result:
  stepgate check --plan plan.json --workspace billing-prod --wait 10m --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), env, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.plan, "plan", "", `plan JSON to submit ("terraform show -json tfplan" output), or "-" for standard input`)
	f.StringVar(&o.planFile, "plan-file", "", "saved binary plan (terraform plan -out FILE) the JSON was shown from: sent, verified against --plan, and bound into the grant")
	f.StringVar(&o.workspace, "workspace", "", "workspace (or stack) the plan is for, e.g. billing-prod (required)")
	f.StringVar(&o.environment, "environment", "", "environment the pipeline deploys to, e.g. prod")
	f.StringVar(&o.kind, "kind", "terraform.apply", "operation kind: "+strings.Join(policy.Kinds, ", "))
	f.DurationVar(&o.wait, "wait", 30*time.Minute, "how long to wait for approval; 0 returns at once")
	f.StringVar(&o.grantOut, "grant-out", "stepgate.grant", "file to write the grant to (mode 0600)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json (the final check, without the grant)")
	f.StringArrayVar(&o.secrets, "secret", nil, "ENV=NAME: the grant also releases secret NAME, into $ENV of the command stepgate apply runs; or STORE:PATH (vault:billing/db), a secret kept elsewhere that the grant names (repeatable; one review covers all)")
	f.BoolVar(&o.breakGlass, "break-glass", false, "ask for the emergency path: one person of the server's break-glass group may satisfy the check alone with a fresh passkey; everyone is told, and another person reviews it (needs --reason)")
	f.StringVar(&o.reason, "reason", "", `why break-glass is needed, at least 20 characters, such as "INC-1234: invoices fail, the deployer role needs s3:PutObject"`)
	o.serverFlags.add(f)
	return cmd
}

func runCheck(ctx context.Context, env Env, o checkOptions) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	if err := (policy.Operation{Kind: o.kind}).Validate(); err != nil {
		return exit(ExitUsage, fmt.Errorf("--kind: %w", err))
	}
	switch {
	case strings.TrimSpace(o.workspace) == "":
		return exit(ExitUsage, errors.New("--workspace is required"))
	case o.plan == "" && o.kind != "secret.read":
		return exit(ExitUsage, fmt.Errorf("--plan is required for a %s (the JSON of terraform show -json)", o.kind))
	case o.wait < 0:
		return exit(ExitUsage, errors.New("--wait must not be negative"))
	case o.grantOut == "":
		return exit(ExitUsage, errors.New("--grant-out must name a file"))
	case o.reason != "" && !o.breakGlass:
		return exit(ExitUsage, errors.New("--reason goes with --break-glass"))
	case o.breakGlass && strings.TrimSpace(o.reason) == "":
		return exit(ExitUsage, errors.New("--break-glass needs --reason: why, with the incident it is for (at least 20 characters)"))
	}
	c, err := o.client(env, true)
	if err != nil {
		return err
	}
	for _, sec := range o.secrets {
		if k, _, ok := strings.Cut(sec, "="); (!ok || k == "") && !secret.External(sec) {
			return exit(ExitUsage, fmt.Errorf("--secret %q: want ENV=NAME, such as TF_VAR_db_password=billing/db, or STORE:PATH for a secret kept elsewhere, such as vault:billing/db", sec))
		}
	}
	req := client.CheckRequest{
		Kind: o.kind, Workspace: o.workspace, Environment: o.environment,
		Pipeline: pipelineIdentity(env.Getenv), Secrets: o.secrets,
		BreakGlass: o.breakGlass, BreakGlassReason: o.reason,
	}
	if o.planFile != "" {
		if req.PlanFileSHA256, err = fileSHA256(resolve(env, o.planFile)); err != nil {
			return exit(ExitUsage, fmt.Errorf("--plan-file: %w", err))
		}
		// The saved plan itself goes too: the server checks that it and
		// the JSON describe the same changes.
		f, err := os.Open(resolve(env, o.planFile))
		if err != nil {
			return exit(ExitUsage, fmt.Errorf("--plan-file: %w", err))
		}
		defer f.Close()
		req.PlanFile = f
	}
	if o.plan != "" {
		body, closePlan, err := openPlanBody(env, o.plan)
		if err != nil {
			return err
		}
		defer closePlan()
		req.Plan = body
	}
	grantPath := resolve(env, o.grantOut)
	if err := prepareGrantOut(grantPath); err != nil {
		return exit(ExitUsage, fmt.Errorf("--grant-out: %w", err))
	}

	ch, err := c.CreateCheck(ctx, req)
	if err != nil {
		return serverError("creating check", err)
	}
	r := &checkRun{env: env, pace: env.pace(), o: o, c: c, grantPath: grantPath, reviewURL: ch.ReviewURL}
	final, err := r.follow(ctx, ch)
	r.finish(final)
	return err
}

// checkRun is one run of stepgate check after the check was created.
type checkRun struct {
	env       Env
	pace      WaitPace
	o         checkOptions
	c         *client.Client
	grantPath string
	reviewURL string // kept: the server shows it only while the check is pending
	granted   bool   // the grant was written to grantPath
}

// info is where messages for people go: stdout for text, stderr when
// stdout carries JSON.
func (r *checkRun) info() io.Writer {
	if r.o.output == "json" {
		return r.env.Stderr
	}
	return r.env.Stdout
}

// follow takes a check from its first answer to its end: the grant, a
// refusal, or --wait running out. It returns the last state seen.
func (r *checkRun) follow(ctx context.Context, ch *api.Check) (*api.Check, error) {
	if err := r.describe(ch); err != nil {
		return ch, err
	}
	if ch.State == statePending {
		var err error
		if ch, err = r.wait(ctx, ch); err != nil {
			return ch, err
		}
	}
	return ch, r.conclude(ch)
}

// describe prints the assessment and where the check stands.
func (r *checkRun) describe(ch *api.Check) error {
	w := r.info()
	if ch.Assessment != nil && r.o.output == "text" {
		opts := report.Options{Color: colorOn(r.env, r.env.Stdout)}
		if err := report.Write(w, "text", ch.Assessment, opts); err != nil {
			return exit(ExitInternal, fmt.Errorf("writing report: %w", err))
		}
		fmt.Fprintln(w)
	}
	line := fmt.Sprintf("Check:      %s (%s)", printable(ch.ID), printable(ch.State))
	if ch.Resumed {
		line += fmt.Sprintf(", resumed: first asked %s", ch.CreatedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w, line)
	if r.o.output == "text" {
		for _, sec := range ch.Secrets {
			if sec.Env == "" {
				fmt.Fprintf(w, "Secret:     %s (kept elsewhere: the grant names it)\n", printable(sec.Name))
				continue
			}
			fmt.Fprintf(w, "Secret:     %s → $%s (released once, by stepgate apply)\n", printable(sec.Name), printable(sec.Env))
		}
	}
	if bg := ch.BreakGlass; bg != nil && r.o.output == "text" {
		switch {
		case bg.UsedBy != "":
			fmt.Fprintf(w, "Break-glass: used by %s; to be reviewed by another person\n", printable(bg.UsedBy))
		case ch.State == statePending:
			fmt.Fprintf(w, "Break-glass: asked (%s); one person of the break-glass group may satisfy it alone\n", printable(bg.Reason))
		}
	}
	if ch.State == statePending {
		if r.o.output == "json" && ch.Assessment != nil {
			fmt.Fprintf(w, "Needs:      %s\n", report.Needs(ch.Assessment.Requirements))
		}
		if ch.ReviewURL != "" {
			fmt.Fprintf(w, "Review:     %s\n", printable(ch.ReviewURL))
		}
		if !ch.ExpiresAt.IsZero() {
			fmt.Fprintf(w, "Expires:    %s\n", ch.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// wait long-polls a pending check in slices until it is decided or --wait
// runs out. A server that cannot be reached for a while (a restart, a load
// balancer) is asked again until --wait runs out.
func (r *checkRun) wait(ctx context.Context, ch *api.Check) (*api.Check, error) {
	start := time.Now()
	deadline := start.Add(r.o.wait)
	p := newProgress(r.env.Stderr, r.env.isTerminal(r.env.Stderr), start, deadline, ch.ReviewURL, r.pace)
	defer p.stop()
	seen := len(ch.Approvals)
	var lastErr error
	pause := r.pace.Retry
	for {
		left := time.Until(deadline)
		if left <= 0 {
			if lastErr != nil {
				return ch, serverError(fmt.Sprintf("waiting for check %s", ch.ID), lastErr)
			}
			return ch, exit(ExitStepUp, fmt.Errorf("check %s is still pending after %s; it stays open until %s: run the same stepgate check again to resume waiting (review: %s)",
				printable(ch.ID), short(r.o.wait), ch.ExpiresAt.UTC().Format(time.RFC3339), printable(r.reviewURL)))
		}
		polled := time.Now()
		next, err := r.c.WaitCheck(ctx, ch.ID, min(left, r.pace.Slice))
		switch {
		case ctx.Err() != nil:
			return ch, exit(ExitInternal, fmt.Errorf("interrupted while waiting; check %s stays pending: run the same stepgate check again to resume", printable(ch.ID)))
		case err != nil && transient(err):
			lastErr = err
			p.printf("stepgate: waiting for check %s: %v; asking again in %s", printable(ch.ID), err, short(pause))
			sleep(ctx, min(pause, time.Until(deadline)))
			pause = min(pause*2, r.pace.Slice)
			continue
		case err != nil:
			return ch, serverError(fmt.Sprintf("waiting for check %s", ch.ID), err)
		case next.ID != ch.ID:
			return ch, exit(ExitInternal, fmt.Errorf("waiting for check %s: the server answered check %q", ch.ID, next.ID))
		}
		lastErr, pause = nil, r.pace.Retry
		ch = next
		if ch.ReviewURL != "" {
			r.reviewURL = ch.ReviewURL
		}
		news := ch.Approvals[min(seen, len(ch.Approvals)):]
		for _, a := range news {
			p.printf("%s", approvalLine(a))
		}
		seen = max(seen, len(ch.Approvals))
		if ch.State != statePending {
			return ch, nil
		}
		p.plain(time.Now())
		if len(news) == 0 {
			// An early answer with nothing new: a server (or proxy) that
			// does not hold the request must not make this a busy loop.
			// After news, ask again at once: the next may be the last
			// approval, and its grant should not wait.
			sleep(ctx, r.pace.MinPoll-time.Since(polled))
		}
	}
}

// conclude writes the grant of a granted check, or says why there is none.
func (r *checkRun) conclude(ch *api.Check) error {
	w := r.info()
	id := printable(ch.ID)
	switch ch.State {
	case stateAllowed, stateApproved:
		if ch.Grant == "" {
			return exit(ExitInternal, fmt.Errorf("check %s is %s but the server sent no grant (only the token that asked receives it)", id, ch.State))
		}
		if err := writePrivate(r.grantPath, []byte(ch.Grant)); err != nil {
			return exit(ExitInternal, fmt.Errorf("writing grant of check %s: %w", id, err))
		}
		r.granted = true
		if ch.State == stateApproved {
			fmt.Fprintf(w, "Approved:   %s\n", approvers(ch.Approvals))
		}
		valid := ""
		if ch.GrantExpiresAt != nil {
			valid = ", valid until " + ch.GrantExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "Grant:      %s (%s%s)\n", r.o.grantOut, printable(ch.GrantID), valid)
		return nil
	case stateDenied:
		// The report printed the findings; with --output json, say why here.
		if r.o.output == "json" && ch.Assessment != nil {
			for _, f := range ch.Assessment.Findings {
				if f.Decision == policy.Deny {
					fmt.Fprintf(w, "Denied:     %s: %s\n", printable(f.Rule), printable(f.Reason))
				}
			}
		}
		return exit(ExitDeny, fmt.Errorf("check %s was denied by policy", id))
	case stateRejected:
		for _, a := range ch.Approvals {
			if !a.Approved {
				fmt.Fprintln(w, approvalLine(a))
			}
		}
		return exit(ExitDeny, fmt.Errorf("check %s was rejected", id))
	case stateExpired:
		return exit(ExitDeny, fmt.Errorf("check %s expired at %s before it was approved; run stepgate check again to ask anew", id, ch.ExpiresAt.UTC().Format(time.RFC3339)))
	case stateConsumed:
		return exit(ExitInternal, fmt.Errorf("the grant of check %s was already used; run stepgate check again for a new one", id))
	}
	return exit(ExitInternal, fmt.Errorf("check %s is in state %q, which this stepgate does not know", id, printable(ch.State)))
}

// finish writes what a pipeline reads after the check: the JSON result and
// the GitHub Actions outputs and summary.
func (r *checkRun) finish(ch *api.Check) {
	if r.o.output == "json" {
		out := *ch
		out.Grant = ""
		if out.ReviewURL == "" {
			out.ReviewURL = r.reviewURL
		}
		if err := writeJSONOut(r.env.Stdout, &out); err != nil {
			fmt.Fprintf(r.env.Stderr, "stepgate: writing result: %v\n", err)
		}
	}
	grantPath := ""
	if r.granted {
		grantPath = r.grantPath
	}
	if path := r.env.Getenv("GITHUB_OUTPUT"); path != "" {
		err := appendGitHubOutput(path, [][2]string{
			{"check_id", ch.ID}, {"state", ch.State}, {"grant_path", grantPath}, {"review_url", r.reviewURL},
		})
		if err != nil {
			fmt.Fprintf(r.env.Stderr, "stepgate: warning: writing $GITHUB_OUTPUT: %v\n", err)
		}
	}
	if path := r.env.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		if err := appendFile(path, stepSummary(ch, r.reviewURL, r.o.grantOut, r.granted)); err != nil {
			fmt.Fprintf(r.env.Stderr, "stepgate: warning: writing $GITHUB_STEP_SUMMARY: %v\n", err)
		}
	}
}

func approvalLine(a api.Approval) string {
	verb := "✓ approved by"
	if !a.Approved {
		verb = "✗ rejected by"
	}
	s := fmt.Sprintf("%s %s (aal %d", verb, printable(a.Subject), a.AAL)
	if len(a.AMR) > 0 {
		s += ", " + printable(strings.Join(a.AMR, " "))
	}
	s += ")"
	if a.Reason != "" {
		s += ": " + printable(a.Reason)
	}
	return s
}

func approvers(as []api.Approval) string {
	var names []string
	for _, a := range as {
		if a.Approved {
			names = append(names, fmt.Sprintf("%s (aal %d)", printable(a.Subject), a.AAL))
		}
	}
	if len(names) == 0 {
		return "(none listed)"
	}
	return strings.Join(names, ", ")
}

// printable keeps text from the server from driving the terminal.
func printable(s string) string { return report.Printable(s) }
