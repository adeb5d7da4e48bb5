package cli

import (
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/policy"
)

func newPolicyCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with policies: run their tests, show the defaults",
	}
	cmd.AddCommand(newPolicyTestCmd(env), newPolicyDefaultsCmd(env))
	return cmd
}

func newPolicyTestCmd(env Env) *cobra.Command {
	var (
		configPath string
		run        string
		output     string
		verbose    bool
		builtin    bool
	)
	cmd := &cobra.Command{
		Use:   "test DIR...",
		Short: "Run the Rego unit tests of your policy modules",
		Long: `Run the Rego unit tests (rules named test_*) in the .rego files of each DIR,
with the built-in policy and your configuration loaded exactly as "stepgate
eval" loads them, so a test can use data.stepgate.lib and
data.stepgate.rules.builtin. Files ending in _test.rego hold tests by custom.

Exit codes:
  0  every test passed
  1  a test failed or errored, or there was no test to run
  2  bad input or usage: a module does not parse or compile, bad config`,
		Example: `  stepgate policy test ./policies
  stepgate policy test ./policies --run 'test_public_bucket' -v`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, dirs []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, err := loadConfig(env, configPath)
			if err != nil {
				return err
			}
			pc, err := cfg.PolicyConfig()
			if err != nil {
				return exit(ExitUsage, err)
			}
			for i := range dirs {
				dirs[i] = resolve(env, dirs[i])
			}
			mods, err := policy.LoadModules(dirs, true)
			if err != nil {
				return exit(ExitUsage, err)
			}
			results, err := policy.RunTests(cmd.Context(), pc, mods, builtin, run)
			if err != nil {
				return exit(ExitUsage, err)
			}
			ch := make(chan *tester.Result, len(results))
			failed := 0
			for _, r := range results {
				if !r.Pass() && !r.Skip {
					failed++
				}
				ch <- r
			}
			close(ch)
			var rep tester.Reporter = tester.PrettyReporter{Output: env.Stdout, Verbose: verbose, FailureLine: true}
			if output == "json" {
				rep = tester.JSONReporter{Output: env.Stdout}
			}
			if err := rep.Report(ch); err != nil {
				return exit(ExitInternal, err)
			}
			switch {
			case len(results) == 0:
				return exit(ExitInternal, fmt.Errorf("no test to run in %s: name test rules test_*", strings.Join(dirs, ", ")))
			case failed > 0:
				return decisionError{ExitInternal}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "stepgate.yaml to read (default $"+config.EnvFile+")")
	f.StringVar(&run, "run", "", "run only tests whose name matches this regular expression")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.BoolVarP(&verbose, "verbose", "v", false, "list every test, not only failures")
	f.BoolVar(&builtin, "builtin", false, "also run the built-in policy's own tests")
	return cmd
}

func newPolicyDefaultsCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:   "defaults",
		Short: "Print the default policy configuration (YAML)",
		Long: `Print the built-in tuning of the default policy: what counts as production,
the sensitive and stateful resource types, the blast-radius thresholds and
what each rule asks for. Change any of it in the policy: section of
stepgate.yaml (see docs/policy.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := env.Stdout.Write(policy.DefaultsYAML())
			return err
		},
	}
}
