package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/client"
	"github.com/stepgate/stepgate/internal/report"
)

// The commands people use: sign in at the organisation's identity
// provider, list and read the checks waiting for them, approve and reject.
// The server's RFC 9470 challenges (a sign-in too weak or too old for a
// check) are followed by signing in again, once.

const peopleExitCodes = `Exit codes:
  0  done
  1  the server or the identity provider could not be reached or failed,
     the sign-in did not finish in time, or you answered no
  2  bad input or usage: a missing argument or flag, no server, no such
     check, no terminal to confirm on without --yes
  3  the server still asks for a stronger or more recent sign-in after
     signing in again (your provider did not honour acr_values/max_age)
  4  refused: your identity is not linked to an account or the account is
     disabled, you may not answer this check (you asked for it, or you are
     not one of its approvers), the plan is not the one you reviewed, or
     the check is no longer pending`

func peopleCommands(env Env) []*cobra.Command {
	review := &cobra.Command{
		Use:   "review",
		Short: "List and read the checks waiting for you",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	review.AddCommand(newReviewListCmd(env), newReviewShowCmd(env))
	return []*cobra.Command{newLoginCmd(env), newLogoutCmd(env), review, newApproveCmd(env), newRejectCmd(env)}
}

// peopleFlags are the flags of the commands people use.
type peopleFlags struct {
	server string
	login  loginFlags
}

func (p *peopleFlags) add(f *pflag.FlagSet) {
	addServerFlag(f, &p.server)
	f.BoolVar(&p.login.noBrowser, "no-browser", false, "print the sign-in URL instead of opening a browser")
	f.DurationVar(&p.login.timeout, "login-timeout", defaultLoginTimeout, "how long a sign-in in the browser may take")
}

// person is one person talking to one server.
type person struct {
	env    Env
	lf     loginFlags
	server string
	base   *client.Client // without a token
	sess   *session
}

func newPerson(env Env, f peopleFlags) (*person, error) {
	server, err := serverURL(env, f.server)
	if err != nil {
		return nil, err
	}
	base, err := newClient(server, "")
	if err != nil {
		return nil, err
	}
	return &person{env: env, lf: f.login, server: server, base: base}, nil
}

func (p *person) login(ctx context.Context, su *stepUp) (string, error) {
	s, path, err := login(ctx, p.env, p.base, p.server, p.lf, su)
	if err != nil {
		return "", err
	}
	p.sess = s
	return path, nil
}

// ensure finds the cached sign-in, or signs in when there is none or it
// expired.
func (p *person) ensure(ctx context.Context) error {
	if p.sess != nil {
		return nil
	}
	s, err := loadSession(p.env, p.server)
	if err != nil {
		fmt.Fprintf(p.env.Stderr, "stepgate: %v\n", err)
	}
	switch {
	case s != nil && s.usable(clockNow(p.env)):
		p.sess = s
		return nil
	case s != nil:
		fmt.Fprintf(p.env.Stderr, "stepgate: your sign-in to %s has expired; signing in again\n", p.server)
	default:
		fmt.Fprintf(p.env.Stderr, "stepgate: not signed in to %s; signing in\n", p.server)
	}
	_, err = p.login(ctx, nil)
	return err
}

// do runs call with the person's ID token. When the server answers with
// a challenge, the person signs in again, once: with prompt=login and the
// challenge's acr_values and max_age for insufficient_user_authentication,
// plainly for an invalid (expired, revoked) token. A second challenge is
// an error.
// ask calls the server through p.do and returns what the call gives.
func ask[T any](ctx context.Context, p *person, doing string, call func(c *client.Client) (T, error)) (T, error) {
	var out T
	err := p.do(ctx, doing, func(c *client.Client) error {
		var err error
		out, err = call(c)
		return err
	})
	return out, err
}

func (p *person) do(ctx context.Context, doing string, call func(c *client.Client) error) error {
	if err := p.ensure(ctx); err != nil {
		return err
	}
	for again := false; ; again = true {
		c, err := p.base.WithToken(p.sess.IDToken)
		if err != nil {
			return exit(ExitInternal, fmt.Errorf("the cached sign-in is damaged (%w): run 'stepgate login'", err))
		}
		err = call(c)
		var ce *client.ChallengeError
		if err == nil || again || !errors.As(err, &ce) {
			return peopleError(doing, err)
		}
		ch := ce.Challenge
		switch ch.Error {
		case api.CodeInsufficientUserAuthentication:
			su := &stepUp{acrValues: ch.ACRValues, maxAge: ch.MaxAge}
			fmt.Fprintf(p.env.Stderr, "stepgate: the server asks for a stronger or more recent sign-in: %s\n", printable(ch.Description))
			fmt.Fprintf(p.env.Stderr, "stepgate: signing in again (prompt=login%s)\n", stepUpWords(su))
			if _, err := p.login(ctx, su); err != nil {
				return err
			}
		case api.CodeInvalidToken, "":
			desc := ch.Description
			if desc == "" {
				desc = "no valid sign-in"
			}
			fmt.Fprintf(p.env.Stderr, "stepgate: the server refused your sign-in (%s); signing in again\n", printable(desc))
			if _, err := p.login(ctx, nil); err != nil {
				return err
			}
		default:
			return peopleError(doing, err)
		}
	}
}

func stepUpWords(su *stepUp) string {
	var s string
	if len(su.acrValues) > 0 {
		s += ", acr_values " + printable(strings.Join(su.acrValues, " "))
	}
	if su.maxAge >= 0 {
		s += fmt.Sprintf(", max_age %d s", su.maxAge)
	}
	return s
}

// peopleError turns an answer of the people API into an exit code.
func peopleError(doing string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var e *client.Error
	if !errors.As(err, &e) {
		return exit(ExitInternal, fmt.Errorf("%s: %w", doing, err))
	}
	switch e.Status {
	case http.StatusUnauthorized:
		var ce *client.ChallengeError
		if errors.As(err, &ce) && ce.Challenge.Error == api.CodeInsufficientUserAuthentication {
			return exit(ExitStepUp, fmt.Errorf("%s: the server still asks for a stronger or more recent sign-in after signing in again (%s); your identity provider did not reach what it asked for", doing, printable(ce.Challenge.Description)))
		}
		return exit(ExitInternal, fmt.Errorf("%s: %w (run 'stepgate login')", doing, err))
	case http.StatusForbidden, http.StatusConflict:
		return exit(ExitDeny, fmt.Errorf("%s: %w", doing, err))
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		return exit(ExitUsage, fmt.Errorf("%s: %w", doing, err))
	}
	return exit(ExitInternal, fmt.Errorf("%s: %w", doing, err))
}

func newLoginCmd(env Env) *cobra.Command {
	var f peopleFlags
	var output string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in at your organisation's identity provider, for review and approve",
		Long: `Sign in at the identity provider of the stepgate server (its OpenID Connect
provider, which the server names at /.well-known/oauth-protected-resource),
in a browser on this machine: the authorization code flow with PKCE, state
and nonce, returning to http://127.0.0.1:PORT/callback.

The ID token is cached for this server in $` + envLoginDir + ` if set, else in
stepgate/logins under your configuration directory (~/.config on Linux,
~/Library/Application Support on macOS, %AppData% on Windows), in a file only
you may read (mode 0600). It is never printed. 'stepgate logout' removes it.

` + peopleExitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			p, err := newPerson(env, f)
			if err != nil {
				return err
			}
			path, err := p.login(cmd.Context(), nil)
			if err != nil {
				return err
			}
			me, err := ask(cmd.Context(), p, "reading your account", func(c *client.Client) (*api.Me, error) { return c.Me(cmd.Context()) })
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONOut(env.Stdout, me)
			}
			fmt.Fprintf(env.Stdout, "Signed in to %s as %s (%s at %s), level %d", p.server, printable(me.Name), printable(me.Subject), printable(me.Issuer), me.AAL)
			if len(me.AMR) > 0 {
				fmt.Fprintf(env.Stdout, " (amr %s)", printable(strings.Join(me.AMR, " ")))
			}
			fmt.Fprintf(env.Stdout, ", until %s.\nThe sign-in is cached in %s.\n", p.sess.Expiry.Local().Format("15:04 MST"), path)
			return nil
		},
	}
	fl := cmd.Flags()
	f.add(fl)
	fl.StringVarP(&output, "output", "o", "text", "text or json (the account)")
	return cmd
}

func newLogoutCmd(env Env) *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Forget the cached sign-in to a server",
		Long: `Remove the ID token 'stepgate login' cached for the server. Your session at
the identity provider itself is not ended.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := serverURL(env, server)
			if err != nil {
				return err
			}
			path, err := sessionPath(env, s)
			if err != nil {
				return err
			}
			err = os.Remove(path)
			switch {
			case errors.Is(err, os.ErrNotExist):
				fmt.Fprintf(env.Stdout, "Not signed in to %s.\n", s)
				return nil
			case err != nil:
				return exit(ExitInternal, fmt.Errorf("removing the sign-in: %w", err))
			}
			fmt.Fprintf(env.Stdout, "Signed out of %s (removed %s).\n", s, path)
			return nil
		},
	}
	addServerFlag(cmd.Flags(), &server)
	return cmd
}

func newReviewListCmd(env Env) *cobra.Command {
	var f peopleFlags
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the checks waiting for your approval",
		Long: `List the pending checks you may answer (you are one of their approvers),
newest first. Checks you asked for are marked "yours": you may confirm them
only when nobody else's approval is required.

` + peopleExitCodes,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			p, err := newPerson(env, f)
			if err != nil {
				return err
			}
			list, err := ask(cmd.Context(), p, "listing checks", func(c *client.Client) (*api.ReviewList, error) { return c.ReviewList(cmd.Context()) })
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONOut(env.Stdout, list)
			}
			if len(list.Checks) == 0 {
				fmt.Fprintln(env.Stdout, "No check is waiting for you.")
				return nil
			}
			t := clockNow(env)
			tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CHECK\tWORKSPACE\tENVIRONMENT\tREQUESTER\tNEEDS\tAPPROVED\tEXPIRES IN")
			for _, c := range list.Checks {
				needs, of := "", 1
				if r := c.Requirements; r != nil {
					needs = fmt.Sprintf("aal %d", r.AAL)
					of = max(r.Approvals, 1)
				}
				who := printable(c.Requester)
				if c.Mine {
					who += " (yours)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d of %d\t%s\n", printable(c.ID), printable(c.Workspace), printable(orDash(c.Environment)), who, needs, c.Approved, of, short(c.ExpiresAt.Sub(t)))
			}
			return tw.Flush()
		},
	}
	fl := cmd.Flags()
	f.add(fl)
	fl.StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// fetchCheck reads one check as a reviewer.
func (p *person) fetchCheck(ctx context.Context, id string) (*api.Check, error) {
	ch, err := ask(ctx, p, "reading check "+id, func(c *client.Client) (*api.Check, error) { return c.ReviewCheck(ctx, id) })
	if err != nil {
		return nil, err
	}
	if ch.ID != id {
		return nil, exit(ExitInternal, fmt.Errorf("asked for check %s, the server answered check %q", id, printable(ch.ID)))
	}
	return ch, nil
}

// describeCheck prints what a reviewer must see: the assessment (decision,
// what it needs, every finding with its addresses), then who asked, the
// answers so far and the plan's full digest.
func describeCheck(w io.Writer, env Env, ch *api.Check, color bool) error {
	if ch.Assessment != nil {
		if err := report.Write(w, "text", ch.Assessment, report.Options{Color: color, MaxAddresses: 200}); err != nil {
			return exit(ExitInternal, fmt.Errorf("writing report: %w", err))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Check:      %s (%s), %s\n", printable(ch.ID), printable(ch.State), printable(ch.Kind))
	where := printable(ch.Workspace)
	if ch.Environment != "" {
		where += ", environment " + printable(ch.Environment)
	}
	fmt.Fprintf(w, "Workspace:  %s\n", where)
	fmt.Fprintf(w, "Requester:  %s\n", printable(ch.Requester))
	if len(ch.Pipeline) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(ch.Pipeline)) {
			kv = append(kv, printable(k)+"="+printable(ch.Pipeline[k]))
		}
		fmt.Fprintf(w, "Pipeline:   %s (verified)\n", strings.Join(kv, " "))
	}
	if len(ch.PipelineUnverified) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(ch.PipelineUnverified)) {
			kv = append(kv, printable(k)+"="+printable(ch.PipelineUnverified[k]))
		}
		fmt.Fprintf(w, "Claims:     %s (unverified: what the pipeline says of itself)\n", strings.Join(kv, " "))
	}
	if len(ch.Approvals) == 0 {
		fmt.Fprintln(w, "Answers:    none yet")
	}
	for i, a := range ch.Approvals {
		label := "Answers:   "
		if i > 0 {
			label = "           "
		}
		fmt.Fprintf(w, "%s %s, %s\n", label, approvalLine(a), a.CreatedAt.UTC().Format(time.RFC3339))
	}
	if ch.PlanSHA256 == "" {
		fmt.Fprintf(w, "Plan:       none (a %s has no plan)\n", printable(ch.Kind))
	} else {
		fmt.Fprintf(w, "Plan:       sha256 %s\n", printable(ch.PlanSHA256))
	}
	if ch.PlanFileSHA256 != "" {
		fmt.Fprintf(w, "Plan file:  sha256 %s\n", printable(ch.PlanFileSHA256))
	}
	if ch.State == statePending {
		if ch.ReviewURL != "" {
			fmt.Fprintf(w, "Review:     %s\n", printable(ch.ReviewURL))
		}
		fmt.Fprintf(w, "Expires:    %s (in %s)\n", ch.ExpiresAt.UTC().Format(time.RFC3339), short(ch.ExpiresAt.Sub(clockNow(env))))
	}
	return nil
}

func newReviewShowCmd(env Env) *cobra.Command {
	var f peopleFlags
	var output string
	cmd := &cobra.Command{
		Use:   "show CHECK",
		Short: "Show a check: its findings, what it needs, who asked, the plan's digest",
		Long: `Show one check as its reviewers see it: the decision and what it needs, every
finding with its reason and addresses, who asked and from which pipeline,
the answers so far, and the SHA-256 of the plan.

` + peopleExitCodes,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			p, err := newPerson(env, f)
			if err != nil {
				return err
			}
			ch, err := p.fetchCheck(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSONOut(env.Stdout, ch)
			}
			return describeCheck(env.Stdout, env, ch, colorOn(env, env.Stdout))
		},
	}
	fl := cmd.Flags()
	f.add(fl)
	fl.StringVarP(&output, "output", "o", "text", "text or json (the API's check)")
	return cmd
}

// answerFlags are the flags of approve and reject.
type answerFlags struct {
	peopleFlags
	planSHA256 string
	output     string
}

func (a *answerFlags) add(f *pflag.FlagSet) {
	a.peopleFlags.add(f)
	f.StringVar(&a.planSHA256, "plan-sha256", "", "the SHA-256 of the plan you reviewed; the answer is refused when the check's differs (default: the digest shown)")
	f.StringVarP(&a.output, "output", "o", "text", "text or json (the check after the answer)")
}

// samePlan compares the digest the person gave with the check's.
func (a *answerFlags) samePlan(ch *api.Check) error {
	if a.planSHA256 == "" {
		return nil
	}
	if want := strings.ToLower(strings.TrimSpace(a.planSHA256)); want != ch.PlanSHA256 {
		return exit(ExitDeny, fmt.Errorf("check %s is for plan sha256 %s, not %s (--plan-sha256): nothing was answered", printable(ch.ID), printable(ch.PlanSHA256), printable(want)))
	}
	return nil
}

func stdinIsTerminal(env Env) bool {
	w, ok := env.Stdin.(io.Writer) // an *os.File is both
	return ok && env.isTerminal(w)
}

func newApproveCmd(env Env) *cobra.Command {
	var f answerFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "approve CHECK",
		Short: "Approve a check, signing in again as strongly as it needs",
		Long: `Show a check (decision, findings with their addresses, the plan's SHA-256) and
approve exactly that plan: the digest shown is sent with the approval, and
the server refuses it if the check's plan is another.

On a terminal, approve asks you to type "yes" first; elsewhere it needs --yes.
Approving is a step-up: your sign-in must reach the check's level (acr/amr)
and be recent enough (its max_age, five minutes when it has none). When it
is not, the server answers an RFC 9470 challenge; approve says why, signs you
in again (prompt=login, with the acr_values and max_age the server asked
for) and sends the approval again, once.

` + peopleExitCodes,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if !yes && !stdinIsTerminal(env) {
				return exit(ExitUsage, errors.New("approving needs your confirmation: run it on a terminal, or pass --yes"))
			}
			p, err := newPerson(env, f.peopleFlags)
			if err != nil {
				return err
			}
			ch, err := p.fetchCheck(ctx, args[0])
			if err != nil {
				return err
			}
			info := env.Stdout
			if f.output == "json" {
				info = env.Stderr
			}
			if err := describeCheck(info, env, ch, colorOn(env, info)); err != nil {
				return err
			}
			if ch.State != statePending {
				return exit(ExitDeny, fmt.Errorf("check %s is %s: it no longer waits for people", printable(ch.ID), printable(ch.State)))
			}
			if err := f.samePlan(ch); err != nil {
				return err
			}
			if !yes {
				what := "exactly this plan (sha256 " + printable(ch.PlanSHA256) + ")"
				if ch.PlanSHA256 == "" {
					what = "this " + printable(ch.Kind) + ", which has no plan"
				}
				fmt.Fprintf(env.Stderr, "\nApprove check %s for %s?\nOnly \"yes\" approves: ", printable(ch.ID), what)
				line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if strings.TrimSpace(line) != "yes" {
					return exit(ExitInternal, errors.New("not approved: you did not answer yes"))
				}
			}
			out, err := ask(ctx, p, "approving check "+ch.ID, func(c *client.Client) (*api.Check, error) { return c.Approve(ctx, ch.ID, ch.PlanSHA256) })
			if err != nil {
				return err
			}
			if f.output == "json" {
				return writeJSONOut(env.Stdout, out)
			}
			fmt.Fprintf(env.Stdout, "\n✓ Approved check %s (plan sha256 %s).\n", printable(out.ID), printable(out.PlanSHA256))
			switch out.State {
			case stateApproved:
				fmt.Fprintln(env.Stdout, "The check is approved: its grant is issued to the pipeline that asked.")
			case statePending:
				fmt.Fprintln(env.Stdout, "The check still waits for other approvals.")
			default:
				fmt.Fprintf(env.Stdout, "The check is %s.\n", printable(out.State))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	f.add(fl)
	fl.BoolVarP(&yes, "yes", "y", false, "approve without asking (required when standard input is not a terminal)")
	return cmd
}

func newRejectCmd(env Env) *cobra.Command {
	var f answerFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "reject CHECK --reason TEXT",
		Short: "Reject a check, with a reason the requester reads",
		Long: `Reject a check: it ends at once, and the pipeline waiting on it exits 4 with
your reason. Saying no needs no step-up: your current sign-in is enough.

` + peopleExitCodes,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if strings.TrimSpace(reason) == "" {
				return exit(ExitUsage, errors.New("--reason is required: the requester reads it"))
			}
			p, err := newPerson(env, f.peopleFlags)
			if err != nil {
				return err
			}
			ch, err := p.fetchCheck(ctx, args[0])
			if err != nil {
				return err
			}
			if err := f.samePlan(ch); err != nil {
				return err
			}
			out, err := ask(ctx, p, "rejecting check "+ch.ID, func(c *client.Client) (*api.Check, error) { return c.Reject(ctx, ch.ID, ch.PlanSHA256, reason) })
			if err != nil {
				return err
			}
			if f.output == "json" {
				return writeJSONOut(env.Stdout, out)
			}
			fmt.Fprintf(env.Stdout, "✗ Rejected check %s (plan sha256 %s): the check is %s.\n", printable(out.ID), printable(out.PlanSHA256), printable(out.State))
			return nil
		},
	}
	fl := cmd.Flags()
	f.add(fl)
	fl.StringVar(&reason, "reason", "", "why (required); the requester reads it")
	return cmd
}
