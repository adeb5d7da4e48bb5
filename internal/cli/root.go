package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/stepgate/stepgate/internal/config"
)

// Exit codes shared by the commands. Each command's --help says which it uses.
const (
	ExitOK       = 0 // allow, success
	ExitInternal = 1 // internal error: stepgate could not decide
	ExitUsage    = 2 // bad input or usage
	ExitStepUp   = 3 // step-up required
	ExitDeny     = 4 // denied
	ExitGrant    = 5 // apply: the grant is invalid, expired, used or does not match
)

// Env is what the commands get from the process: streams, environment
// variables and the working directory. Tests supply their own.
type Env struct {
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	Getenv     func(string) string
	Dir        string
	IsTerminal func(w io.Writer) bool
	// OpenBrowser shows a URL to the person (`stepgate login`); nil: the
	// URL is only printed. Tests follow it with an HTTP client.
	OpenBrowser func(ctx context.Context, url string) error
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Pace paces waiting for approval (nil: DefaultWaitPace).
	Pace *WaitPace
}

func (e Env) pace() WaitPace {
	if e.Pace != nil {
		return *e.Pace
	}
	return DefaultWaitPace
}

// OSEnv returns the Env of this process.
func OSEnv() Env {
	dir, _ := os.Getwd()
	return Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
		Dir:    dir,
		IsTerminal: func(w io.Writer) bool {
			f, ok := w.(*os.File)
			return ok && term.IsTerminal(int(f.Fd()))
		},
		OpenBrowser: openBrowser,
		Now:         time.Now,
	}
}

// isTerminal reports whether w is a terminal.
func (e Env) isTerminal(w io.Writer) bool {
	return e.IsTerminal != nil && e.IsTerminal(w)
}

// colorOn reports whether a report written to w may use colours: w is a
// terminal and $NO_COLOR is not set.
func colorOn(env Env, w io.Writer) bool {
	return env.isTerminal(w) && env.Getenv("NO_COLOR") == ""
}

// checkOutput refuses an --output other than text or json.
func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return exit(ExitUsage, fmt.Errorf("--output %q: want text or json", o))
	}
	return nil
}

// writeJSONOut writes v as indented JSON: the --output json of a command.
func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exitError carries an exit code with the error to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exit(code int, err error) error { return &exitError{code: code, err: err} }

// decisionError ends a command with a non-zero code but prints nothing more:
// the report already said it all.
type decisionError struct{ code int }

func (e decisionError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Run runs the stepgate command line and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	root := newRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var de decisionError
	if errors.As(err, &de) {
		return de.code
	}
	fmt.Fprintf(env.Stderr, "stepgate: %s\n", config.RedactSecrets(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Anything cobra itself refused (unknown command or flag, bad
	// arguments) is a usage error.
	fmt.Fprintln(env.Stderr, "Run 'stepgate --help' for usage.")
	return ExitUsage
}

func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "stepgate",
		Short: "Step-up authentication gate for infrastructure-as-code pipelines",
		Long: `stepgate reads an infrastructure-as-code plan (Terraform, OpenTofu, Pulumi),
decides by policy how risky it is, and answers allow, step-up or deny.

Low-risk changes pass at once. Risky ones (production, IAM, keys, secrets,
network boundaries, destroys of stateful resources, a large blast radius)
need one or more humans to re-prove who they are with a strong factor
before the pipeline may apply them.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	// "stepgate --version" says what "stepgate version" says.
	root.SetVersionTemplate("stepgate {{.Version}}\n")
	// pflag writes a boolean flag as --help[=true|false]; a flag is
	// written as it is used, --help.
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		var buf bytes.Buffer
		out := c.OutOrStdout()
		c.SetOut(&buf)
		help(c, args)
		c.SetOut(out)
		_, _ = io.WriteString(out, strings.ReplaceAll(buf.String(), "[=true|false]", "             "))
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exit(ExitUsage, fmt.Errorf("%w (see 'stepgate %s --help')", err, c.Name()))
	})
	root.AddCommand(newEvalCmd(env), newPolicyCmd(env), newVersionCmd(env), newCheckCmd(env), newApplyCmd(env))
	root.AddCommand(serverCommands(env)...)
	root.AddCommand(peopleCommands(env)...)
	return root
}

// buildVersion is set by release builds (-ldflags "-X
// github.com/stepgate/stepgate/internal/cli.buildVersion=v1.2.3"); else the
// module's version from the build information is used.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" {
		return "(devel)"
	}
	return bi.Main.Version
}

func newVersionCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of stepgate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(env.Stdout, "stepgate %s\n", version())
			return err
		},
	}
}
