package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/client"
	"github.com/stepgate/stepgate/internal/grant"
	"github.com/stepgate/stepgate/internal/secret"
)

// grantLeeway absorbs clock skew between the runner and the server.
const grantLeeway = 30 * time.Second

// Environment variables apply sets for the command it runs.
const (
	envCheckID = "STEPGATE_CHECK_ID"
	envGrantID = "STEPGATE_GRANT_ID"
)

type applyOptions struct {
	serverFlags
	grant     string
	planFile  string
	plan      string
	workspace string
	audience  string
	issuer    string
}

func newApplyCmd(env Env) *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply --grant FILE [flags] -- COMMAND [ARGS...]",
		Short: "Run a command only under a valid grant, once",
		Long: `Run COMMAND only if the grant allows it, and only once.

Before anything runs, apply verifies the grant written by stepgate check: its
signature (with the keys the server publishes at /.well-known/jwks.json), its
issuer, audience and time, the workspace (with --workspace), and the sha256 of
every plan file given against the digests the grant was issued for. A grant
issued with --plan-file needs the same --plan-file here, and a grant for an
apply (terraform.apply, tofu.apply, pulumi.up) runs nothing unless the plan it
is bound to is given (--plan-file or --plan) and matches; only command and
secret.read grants run without a plan. Then it uses the grant
up on the server (a grant works once), runs COMMAND with standard input, output
and error passed through, forwards SIGINT and SIGTERM to it, reports how it
ended (exit code, duration) to the server, and exits with its code.

COMMAND gets the environment of apply, with $STEPGATE_CHECK_ID and
$STEPGATE_GRANT_ID added and $STEPGATE_TOKEN taken out. Everything apply says
itself goes to standard error, prefixed "stepgate:".

The server is --server or $STEPGATE_SERVER; it is also the issuer expected
unless --issuer says otherwise. The API token is $STEPGATE_TOKEN, or read from
--token-file or the file named by $STEPGATE_TOKEN_FILE, as for stepgate check.

Exit codes:
  N  the exit code of COMMAND once it ran (128+S when a signal S ended it)
  5  the grant was refused: invalid signature, expired, already used, for
     another workspace, issuer or audience, a plan file differs from the
     one approved, or an apply grant was given no plan; COMMAND did not run
  2  bad input or usage: no --grant, COMMAND, server or token, an unreadable
     file, COMMAND not found; COMMAND did not run and the grant was not used
  1  the server could not be reached (for its keys or to use the grant), or
     failed; COMMAND did not run`,
		Example: `  stepgate check --plan plan.json --plan-file tfplan --workspace billing-prod
  stepgate apply --grant stepgate.grant --plan-file tfplan --workspace billing-prod -- terraform apply tfplan

  # OpenTofu, with the plan JSON checked too:
  stepgate apply --grant stepgate.grant --plan-file tfplan --plan plan.json -- tofu apply tfplan`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd.Context(), env, o, args)
		},
	}
	f := cmd.Flags()
	// The first argument that is not a flag starts COMMAND, so that its own
	// flags (terraform apply -auto-approve) are not read as apply's.
	f.SetInterspersed(false)
	f.StringVar(&o.grant, "grant", "", "file holding the grant, as stepgate check wrote it (required)")
	f.StringVar(&o.planFile, "plan-file", "", "saved binary plan COMMAND applies; its sha256 must match the grant")
	f.StringVar(&o.plan, "plan", "", "plan JSON sent by stepgate check; its sha256 must match the grant")
	f.StringVar(&o.workspace, "workspace", "", "workspace the grant must be for (default: not checked)")
	f.StringVar(&o.audience, "audience", "stepgate", "audience (aud) the grant must be for")
	f.StringVar(&o.issuer, "issuer", "", "issuer (iss) the grant must come from (default: the server URL)")
	o.serverFlags.add(f)
	return cmd
}

func runApply(ctx context.Context, env Env, o applyOptions, args []string) error {
	switch {
	case o.grant == "":
		return exit(ExitUsage, errors.New("--grant is required (the file stepgate check wrote)"))
	case len(args) == 0:
		return exit(ExitUsage, errors.New("no command to run: give it after --, e.g. stepgate apply --grant stepgate.grant -- terraform apply tfplan"))
	}
	token, err := readGrantFile(resolve(env, o.grant))
	if err != nil {
		return err
	}
	// The server records the grant's use and its outcome for the pipeline
	// that asked: its API token is needed, so its absence is found here,
	// before anything else.
	c, err := o.client(env, true)
	if err != nil {
		return err
	}
	issuer := strings.TrimRight(o.issuer, "/")
	if issuer == "" {
		issuer = c.BaseURL()
	}

	// 1. The grant itself. Nothing in it is trusted before its signature
	// holds with a key of the configured server (never one the grant names).
	claims, err := grant.Verify(ctx, token, grant.NewRemoteKeys(c.JWKSURL(), nil), grant.Expect{
		Issuer: issuer, Audience: o.audience, Workspace: o.workspace, Now: time.Now(), Leeway: grantLeeway,
	})
	if err != nil {
		if why := grantRefusal(err); why != "" {
			return exit(ExitGrant, fmt.Errorf("grant refused (%s), %s not run: %w", why, args[0], err))
		}
		return exit(ExitInternal, fmt.Errorf("verifying grant, %s not run: %w", args[0], err))
	}
	// 2. The plans on disk are the ones approved.
	if err := matchPlans(env, o, claims, args[0]); err != nil {
		return err
	}
	// 3. The command exists: a typo must not use the grant up.
	path, err := lookCommand(env, args[0])
	if err != nil {
		return exit(ExitUsage, fmt.Errorf("%w; the grant was not used", err))
	}
	// 4. Use the grant up, once; a grant that names secrets is exchanged
	// for their values instead (the same single use).
	var used *api.ConsumeResponse
	var rel *api.ReleaseResponse
	if slices.ContainsFunc(claims.Secrets, func(n string) bool { return !secret.External(n) }) {
		rel, err = c.Release(ctx, token)
		if err != nil {
			return consumeError(args[0], err)
		}
		defer clearReleased(rel)
		used = &api.ConsumeResponse{CheckID: rel.CheckID, GrantID: rel.GrantID, ConsumedAt: rel.ConsumedAt}
	} else if used, err = c.Consume(ctx, token); err != nil {
		return consumeError(args[0], err)
	}
	if used.CheckID != "" && used.CheckID != claims.Check() {
		return exit(ExitInternal, fmt.Errorf("the server consumed a grant of check %q, not of %q; %s not run", printable(used.CheckID), claims.Check(), args[0]))
	}
	if ctx.Err() != nil {
		return exit(ExitInternal, fmt.Errorf("interrupted before %s started; the grant of check %s is used up", args[0], claims.Check()))
	}
	fmt.Fprintf(env.Stderr, "stepgate: grant %s of check %s (%s, workspace %s) verified and used; running %s\n",
		printable(claims.ID), printable(claims.Check()), printable(claims.Kind), printable(claims.Workspace), printable(strings.Join(args, " ")))

	// 5. Run it, then say how it ended.
	environ := childEnv(os.Environ(), claims)
	if rel != nil {
		if environ, err = secretEnv(environ, rel); err != nil {
			return exit(ExitUsage, fmt.Errorf("%w; %s not run, and the grant is used up", err, args[0]))
		}
		fmt.Fprintf(env.Stderr, "stepgate: released %s into the environment of %s\n", releasedList(rel), printable(args[0]))
	}
	code, took := runCommandEnv(env, path, args, environ)
	clear(environ)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = c.ReportOutcome(rctx, claims.Check(), api.OutcomeRequest{GrantID: claims.ID, ExitCode: code, DurationMS: took.Milliseconds()})
	if err != nil {
		fmt.Fprintf(env.Stderr, "stepgate: warning: reporting the outcome of check %s: %v\n", printable(claims.Check()), err)
	}
	fmt.Fprintf(env.Stderr, "stepgate: %s exited with %d after %s\n", printable(args[0]), code, short(took))
	if code == 0 {
		return nil
	}
	return decisionError{code}
}

func readGrantFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", exit(ExitUsage, fmt.Errorf("reading grant: %w", err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return "", exit(ExitUsage, fmt.Errorf("reading grant: %w", err))
	}
	if len(b) > 64<<10 {
		return "", exit(ExitGrant, fmt.Errorf("grant refused: %s is larger than 64 KiB, not a grant", path))
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", exit(ExitGrant, fmt.Errorf("grant refused: %s is empty", path))
	}
	return t, nil
}

// grantRefusal says in a few words why Verify refused a grant, or nothing
// when the grant could not be judged (the keys could not be fetched).
func grantRefusal(err error) string {
	for _, r := range []struct {
		err error
		why string
	}{
		{grant.ErrMalformed, "malformed"},
		{grant.ErrAlgorithm, "algorithm not accepted"},
		{grant.ErrUnknownKey, "unknown signing key"},
		{grant.ErrSignature, "bad signature"},
		{grant.ErrExpired, "expired"},
		{grant.ErrNotYetValid, "not yet valid"},
		{grant.ErrIssuer, "wrong issuer"},
		{grant.ErrAudience, "wrong audience"},
		{grant.ErrWorkspace, "wrong workspace"},
	} {
		if errors.Is(err, r.err) {
			return r.why
		}
	}
	return ""
}

// matchPlans compares the sha256 of each plan file given with the digest
// the grant carries. A grant bound to a saved plan needs that plan given: it
// is what the command applies.
func matchPlans(env Env, o applyOptions, c *grant.Claims, command string) error {
	refuse := func(why, format string, args ...any) error {
		return exit(ExitGrant, fmt.Errorf("grant refused (%s), %s not run: %s", why, command, fmt.Sprintf(format, args...)))
	}
	for _, p := range []struct{ flag, file, want, what string }{
		{"--plan-file", o.planFile, c.PlanFileSHA256, "saved plan"},
		{"--plan", o.plan, c.PlanSHA256, "plan JSON"},
	} {
		if p.file == "" {
			if p.flag == "--plan-file" && p.want != "" {
				return refuse("saved plan not given", "the grant was issued for a saved plan (sha256 %s): give it with --plan-file", p.want)
			}
			continue
		}
		got, err := fileSHA256(resolve(env, p.file))
		if err != nil {
			return exit(ExitUsage, fmt.Errorf("%s: %w", p.flag, err))
		}
		switch {
		case p.want == "":
			return refuse("no "+p.what+" bound", "%s %s was given, but the grant binds no %s", p.flag, p.file, p.what)
		case !strings.EqualFold(got, p.want):
			return refuse("plan changed", "%s %s has sha256 %s, the grant was issued for %s", p.flag, p.file, got, p.want)
		}
	}
	if o.planFile == "" && o.plan == "" && (c.PlanSHA256 != "" || !runsWithoutPlan(c.Kind)) {
		return refuse("plan not given", "a %s grant is bound to a plan (sha256 %s): give the saved plan the command applies with --plan-file, or the plan JSON with --plan",
			printable(c.Kind), printable(c.PlanSHA256))
	}
	return nil
}

// runsWithoutPlan reports whether a grant of this kind may run a command
// with no plan given: only a declared command and a secret read have none.
// Every other kind (terraform.apply, tofu.apply, pulumi.up, and any kind
// this version does not know) applies a plan, and runs only with it.
func runsWithoutPlan(kind string) bool {
	return kind == "command" || kind == "secret.read"
}

// lookCommand finds COMMAND: a path (relative to the working directory) or
// a name on PATH.
func lookCommand(env Env, name string) (string, error) {
	if strings.ContainsRune(name, os.PathSeparator) || strings.ContainsRune(name, '/') {
		name = resolve(env, name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("command %s: %w", name, err)
	}
	return p, nil
}

func consumeError(command string, err error) error {
	var e *client.Error
	if errors.As(err, &e) {
		switch {
		case e.Status == http.StatusConflict:
			return exit(ExitGrant, fmt.Errorf("grant already used, %s not run: %w", command, err))
		case e.Code == api.CodeInvalidGrant, e.Status == http.StatusBadRequest, e.Status == http.StatusNotFound, e.Status == http.StatusGone:
			return exit(ExitGrant, fmt.Errorf("grant refused by the server, %s not run: %w", command, err))
		case e.Status == http.StatusUnauthorized:
			return exit(ExitInternal, fmt.Errorf("using grant, %s not run: %w (is $%s a valid API token?)", command, err, envToken))
		}
	}
	return exit(ExitInternal, fmt.Errorf("using grant, %s not run: %w", command, err))
}

// runCommand runs the command with the streams passed through and SIGINT
// and SIGTERM forwarded, and returns its exit code (128+signal when a
// signal ended it, 126 when it could not start) and how long it ran.
func runCommand(env Env, path string, args []string, c *grant.Claims) (int, time.Duration) {
	return runCommandEnv(env, path, args, childEnv(os.Environ(), c))
}

// runCommandEnv is runCommand with the command's environment given.
func runCommandEnv(env Env, path string, args []string, environ []string) (int, time.Duration) {
	cmd := exec.Command(path, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Dir = env.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, env.Stdout, env.Stderr
	cmd.Env = environ
	// Streams that are not files are copied through pipes; a process the
	// command left behind must not hold them open for ever.
	cmd.WaitDelay = 2 * time.Second

	// On a terminal, Ctrl-C reaches the whole foreground process group, the
	// command included: forwarding SIGINT as well would deliver it twice,
	// and terraform takes a second interrupt as "stop now, leave the state
	// locked". Elsewhere (CI) the command gets a process group of its own,
	// so a signal the runner sends to the group reaches it once, through
	// stepgate, which can then still report the outcome.
	stdin, ok := env.Stdin.(*os.File)
	onTerminal := ok && env.isTerminal(stdin)
	if !onTerminal {
		cmd.SysProcAttr = ownProcessGroup()
	}
	forward := []os.Signal{syscall.SIGTERM}
	if !onTerminal {
		forward = append(forward, os.Interrupt)
	}
	// Catch both before the command starts, so that none is lost and none
	// ends stepgate before it reports.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(env.Stderr, "stepgate: starting %s: %v\n", printable(args[0]), err)
		return 126, time.Since(start)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				for _, f := range forward {
					if s == f {
						_ = cmd.Process.Signal(s) // it may have exited already
					}
				}
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	took := time.Since(start)
	close(done)
	return exitCode(cmd, err, env), took
}

func exitCode(cmd *exec.Cmd, err error, env Env) int {
	st := cmd.ProcessState
	if st == nil {
		fmt.Fprintf(env.Stderr, "stepgate: waiting for %s: %v\n", cmd.Args[0], err)
		return 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		// It ran, but its output could not be copied; its code stands.
		fmt.Fprintf(env.Stderr, "stepgate: warning: %s: %v\n", cmd.Args[0], err)
	}
	return st.ExitCode()
}

// ownProcessGroup returns process attributes that start the command in a
// process group of its own. Setpgid exists on unix only; it is set through
// reflect so that this file builds everywhere (on Windows, where there are
// no process groups of this kind, it is a no-op).
func ownProcessGroup() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Setpgid"); f.IsValid() && f.Kind() == reflect.Bool {
		f.SetBool(true)
	}
	return attr
}

// childEnv is the environment of the command: apply's own, without the
// API token or $STEPGATE_ID_TOKEN (the command has no use for it, and plugins it runs could
// leak it), with the check and grant it runs under.
func childEnv(environ []string, c *grant.Claims) []string {
	out := make([]string, 0, len(environ)+2)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if k == envToken || k == envIDToken || k == envCheckID || k == envGrantID {
			continue
		}
		out = append(out, kv)
	}
	return append(out, envCheckID+"="+c.Check(), envGrantID+"="+c.ID)
}
