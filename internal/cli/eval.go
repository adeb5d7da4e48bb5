package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stepgate/stepgate/internal/ciclaims"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/plan"
	"github.com/stepgate/stepgate/internal/plan/planfile"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/report"
)

type evalOptions struct {
	plan        string
	planFile    string
	workspace   string
	environment string
	kind        string
	config      string
	policyDirs  []string
	output      string
	tool        string
	maxSize     string
	// What if: the context the policy is asked about.
	pipeline  []string
	requester string
	at        string
	history   []string
}

func newEvalCmd(env Env) *cobra.Command {
	var o evalOptions
	cmd := &cobra.Command{
		Use:   "eval --plan FILE [flags]",
		Short: "Assess a plan offline and print the decision",
		Long: `Assess a plan offline, with no server: read it, evaluate the policy, and print
the decision, what a step-up would need, and the findings behind it.

FILE is the JSON of "terraform show -json tfplan" (or tofu), the redacted plan
JSON of HCP Terraform, or "pulumi preview --json" output; "-" reads standard
input. A saved binary plan ("terraform plan -out tfplan") is turned into JSON
by running "terraform show -json" (or tofu, see --tool) in the current
directory. UTF-8 with or without a byte-order mark and UTF-16 are read.

With --plan-file, the saved plan the JSON was shown from is read too (by
stepgate itself, without terraform) and compared with the JSON, as the server
does: when they do not describe the same changes, eval names the first
difference and exits 2. With plan.saved_plan_binding: json-only in the config,
a saved plan of a format this stepgate does not know adds the finding
plan.unverified instead.

Exit codes:
  0  allow: the operation may proceed
  3  step_up: a human must re-prove who they are (and maybe others approve)
  4  deny: the operation must not proceed
  2  bad input or usage: unreadable plan, bad flag, invalid config or policy,
     a saved plan (--plan-file) that does not match the plan
  1  internal error: the policy could not be evaluated (never an allow)`,
		Example: `  terraform plan -out tfplan && terraform show -json tfplan > plan.json
  stepgate eval --plan plan.json --workspace billing-prod
  stepgate eval --plan plan.json --plan-file tfplan --workspace billing-prod

  terraform show -json tfplan | stepgate eval --plan - --output json
  stepgate eval --plan tfplan --tool tofu --policy ./policies --output markdown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd.Context(), env, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.plan, "plan", "", `plan file to assess, or "-" for standard input`)
	f.StringVar(&o.planFile, "plan-file", "", "saved binary plan (terraform plan -out FILE) that --plan is the JSON of: compared with it")
	f.StringVar(&o.workspace, "workspace", "", "workspace (or stack) the plan is for, e.g. billing-prod")
	f.StringVar(&o.environment, "environment", "", "environment the pipeline deploys to, e.g. prod")
	f.StringVar(&o.kind, "kind", "terraform.apply", "operation kind: "+strings.Join(policy.Kinds, ", "))
	f.StringVar(&o.config, "config", "", "stepgate.yaml to read (default $"+config.EnvFile+")")
	f.StringArrayVar(&o.policyDirs, "policy", nil, "directory of your own .rego modules (repeatable)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: "+strings.Join(report.Formats, ", "))
	f.StringVar(&o.tool, "tool", "", "program that reads saved plans: terraform or tofu (default: the first on PATH)")
	f.StringVar(&o.maxSize, "max-plan-size", "", "largest plan accepted, e.g. 512MiB (default: plan.max_size in the config, 512MiB)")
	f.StringArrayVar(&o.pipeline, "pipeline", nil, "a verified CI claim to assume, KEY=VALUE (repeatable): system=github-actions, ref=refs/heads/main, ref_protected=true, event_name=push...")
	f.StringVar(&o.requester, "requester", "", "who asks: NAME (a person), or token:NAME, ci:NAME, person:NAME")
	f.StringVar(&o.at, "at", "", "evaluate at this time, RFC 3339 (default now): freeze windows")
	f.StringArrayVar(&o.history, "history", nil, "history to assume, KEY=VALUE (repeatable): requester_applied=true|false, requester_checks_last_hour=N, plan_approved_then_expired=true|false, last_applied_by=NAME, last_applied_at=RFC3339")
	return cmd
}

// evalContext reads the what-if flags of eval into the policy context.
// Offline, the --pipeline claims stand for a CI token's verified claims.
func evalContext(o evalOptions, now func() time.Time) (policy.Context, error) {
	var pc policy.Context
	var errs []error
	if len(o.pipeline) > 0 {
		claims := map[string]string{}
		for _, kv := range o.pipeline {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				errs = append(errs, fmt.Errorf("--pipeline %q: want KEY=VALUE", kv))
				continue
			}
			claims[k] = v
		}
		system := claims["system"]
		delete(claims, "system")
		p := ciclaims.Normalize(system, claims)
		pc.Pipeline = &p
	}
	if o.requester != "" {
		kind, name, ok := strings.Cut(o.requester, ":")
		if !ok || !slices.Contains([]string{policy.RequesterToken, policy.RequesterCI, policy.RequesterPerson}, kind) {
			kind, name = policy.RequesterPerson, o.requester
		}
		pc.Requester = policy.Requester{Kind: kind, Name: name, Groups: []string{}}
		if kind == policy.RequesterPerson {
			pc.Requester.Owner = name
		}
	}
	pc.At = now()
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			errs = append(errs, fmt.Errorf("--at %q: not an RFC 3339 time such as 2026-12-24T15:00:00+01:00", o.at))
		}
		pc.At = t
	}
	if len(o.history) > 0 {
		h := &policy.History{}
		for _, kv := range o.history {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "requester_applied":
				h.RequesterApplied, err = strconv.ParseBool(v)
			case "plan_approved_then_expired":
				h.PlanApprovedThenExpired, err = strconv.ParseBool(v)
			case "requester_checks_last_hour":
				h.RequesterChecksLastHour, err = strconv.Atoi(v)
			case "last_applied_by":
				h.LastAppliedBy = v
			case "last_applied_at":
				h.LastAppliedAt, err = time.Parse(time.RFC3339, v)
			default:
				err = errors.New("unknown key")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("--history %q: %w", kv, err))
			}
		}
		pc.History = h
	}
	return pc, errors.Join(errs...)
}

// setup is what eval and the commands after it share: the configuration,
// the policy engine and the limits, all checked before any plan is read.
type setup struct {
	cfg     *config.Config
	engine  *policy.Engine
	maxSize int64
}

// loadConfig reads the configuration file path, else the one
// $STEPGATE_CONFIG names, else none (the defaults).
func loadConfig(env Env, path string) (*config.Config, error) {
	if path == "" {
		path = env.Getenv(config.EnvFile)
	}
	cfg, err := config.Load(resolve(env, path))
	if err != nil {
		return nil, exit(ExitUsage, err)
	}
	return cfg, nil
}

// loadModules reads the .rego modules of the directories dirs, relative to
// the working directory.
func loadModules(env Env, dirs []string) ([]policy.Module, error) {
	abs := make([]string, len(dirs))
	for i, d := range dirs {
		abs[i] = resolve(env, d)
	}
	mods, err := policy.LoadModules(abs, false)
	if err != nil {
		return nil, exit(ExitUsage, err)
	}
	return mods, nil
}

func loadSetup(ctx context.Context, env Env, configPath string, policyDirs []string, maxSize string) (*setup, error) {
	cfg, err := loadConfig(env, configPath)
	if err != nil {
		return nil, err
	}
	pc, err := cfg.PolicyConfig()
	if err != nil {
		return nil, exit(ExitUsage, fmt.Errorf("%w: %w", config.ErrInvalid, err))
	}
	mods, err := loadModules(env, policyDirs)
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, pc, mods)
	if err != nil {
		return nil, exit(ExitUsage, err)
	}
	s := &setup{cfg: cfg, engine: engine, maxSize: int64(cfg.Plan.MaxSize)}
	if maxSize != "" {
		if s.maxSize, err = config.ParseSize(maxSize); err != nil {
			return nil, exit(ExitUsage, fmt.Errorf("--max-plan-size: %w", err))
		}
	}
	return s, nil
}

func runEval(ctx context.Context, env Env, o evalOptions) error {
	if !slices.Contains(report.Formats, o.output) {
		return exit(ExitUsage, fmt.Errorf("--output %q: want one of %s", o.output, strings.Join(report.Formats, ", ")))
	}
	op := policy.Operation{Kind: o.kind, Workspace: o.workspace, Environment: o.environment}
	if err := op.Validate(); err != nil {
		return exit(ExitUsage, fmt.Errorf("--kind: %w", err))
	}
	if o.plan == "" && op.Kind != "secret.read" {
		return exit(ExitUsage, errors.New("--plan is required (a plan file, or - for standard input)"))
	}
	if o.planFile != "" && o.plan == "" {
		return exit(ExitUsage, errors.New("--plan-file goes with --plan, the JSON of the saved plan"))
	}
	// Reading a plan builds each change's terms while the next one is
	// parsed, and evaluating the content rules adds its own garbage:
	// collecting at half the default growth keeps the peak memory of a
	// 20,000-change plan under 100 MiB for the same time
	// (docs/benchmarks.md). GOGC, when set, wins.
	if env.Getenv == nil || env.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(50))
	}
	now := env.Now
	if now == nil {
		now = time.Now
	}
	pc, err := evalContext(o, now)
	if err != nil {
		return exit(ExitUsage, err)
	}
	s, err := loadSetup(ctx, env, o.config, o.policyDirs, o.maxSize)
	if err != nil {
		return err
	}
	in := s.engine.NewInput(op)
	in.SetContext(pc)
	var unverified *policy.Finding
	if o.plan != "" {
		visit, done := in.Stream()
		var raw func(*plan.RawChange) error
		var jp *planfile.JSONPlan
		if o.planFile != "" {
			raw, jp = planfile.Collect()
		}
		p, err := readPlan(ctx, env, o.plan, o.tool, s.maxSize, visit, raw)
		// A change whose terms could not be built stopped decoding: that
		// is the cause, whatever decoding returned.
		if derr := done(); derr != nil {
			code := ExitInternal
			if errors.Is(derr, policy.ErrInput) {
				code = ExitUsage
			}
			err = exit(code, derr)
		}
		if err != nil {
			return err
		}
		if o.planFile != "" {
			if unverified, err = verifySavedPlan(env, o.planFile, p, jp, s.cfg.Plan.SavedPlanBinding); err != nil {
				return err
			}
		}
		in.SetPlan(p)
	}
	a, err := s.engine.Evaluate(ctx, in)
	if err != nil {
		return exit(ExitInternal, err)
	}
	if unverified != nil {
		a.Findings = append(a.Findings, *unverified)
	}
	a.Context = in.Echo()
	opts := report.Options{Color: colorOn(env, env.Stdout)}
	if err := report.Write(env.Stdout, o.output, a, opts); err != nil {
		return exit(ExitInternal, fmt.Errorf("writing report: %w", err))
	}
	switch a.Decision {
	case policy.Allow:
		return nil
	case policy.StepUp:
		return decisionError{ExitStepUp}
	}
	return decisionError{ExitDeny}
}

// readPlan streams a plan from a file or standard input into visit. A saved
// binary plan is first turned into JSON by terraform or tofu; its digest is
// then that of the saved file, the one a grant is later bound to.
func readPlan(ctx context.Context, env Env, name, tool string, maxSize int64, visit func(*plan.Change) error, raw func(*plan.RawChange) error) (*plan.Plan, error) {
	var r io.Reader
	label := name
	if name == "-" {
		r, label = env.Stdin, "standard input"
	} else {
		f, err := os.Open(resolve(env, name))
		if err != nil {
			return nil, exit(ExitUsage, fmt.Errorf("reading plan: %w", err))
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	if !plan.IsSaved(head) {
		p, err := plan.Decode(br, plan.Options{MaxBytes: maxSize, Raw: raw}, visit)
		return p, planErr(label, err)
	}
	if raw != nil {
		return nil, exit(ExitUsage, fmt.Errorf("--plan %s is a saved plan: with --plan-file, give its JSON (terraform show -json) as --plan", name))
	}
	return readSavedPlan(ctx, env, br, name, tool, maxSize, visit)
}

func readSavedPlan(ctx context.Context, env Env, r io.Reader, name, tool string, maxSize int64, visit func(*plan.Change) error) (*plan.Plan, error) {
	bin, err := os.CreateTemp("", "stepgate-*.tfplan")
	if err != nil {
		return nil, exit(ExitInternal, err)
	}
	defer os.Remove(bin.Name())
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(bin, h), io.LimitReader(r, maxSize+1))
	if cerr := bin.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, exit(ExitInternal, fmt.Errorf("copying saved plan: %w", err))
	}
	path := resolve(env, name)
	if name == "-" {
		path = bin.Name()
	}
	toolPath, err := plan.FindTool(tool)
	if err != nil {
		return nil, exit(ExitUsage, fmt.Errorf("%s is a saved plan: %w", name, err))
	}
	out, err := plan.Show(ctx, toolPath, env.Dir, path)
	if err != nil {
		return nil, exit(ExitInternal, err)
	}
	p, err := plan.Decode(out, plan.Options{MaxBytes: maxSize}, visit)
	if cerr := out.Close(); cerr != nil {
		return nil, exit(ExitUsage, fmt.Errorf("%s: %w", name, cerr))
	}
	if err != nil {
		return nil, planErr(name+" (via "+filepath.Base(toolPath)+" show -json)", err)
	}
	p.SHA256 = hex.EncodeToString(h.Sum(nil))
	return p, nil
}

// verifySavedPlan reads the saved plan name and compares it with the plan
// JSON p, as the server does with a check's saved plan. A mismatch, or a
// saved plan that cannot be read, is bad input (exit 2); with the json-only
// binding, a saved plan of an unknown format gives the finding
// plan.unverified instead.
func verifySavedPlan(env Env, name string, p *plan.Plan, jp *planfile.JSONPlan, binding string) (*policy.Finding, error) {
	if p.Format != plan.FormatTerraform && p.Format != plan.FormatHCPTerraform {
		return nil, exit(ExitUsage, fmt.Errorf("--plan-file: a saved plan goes with the JSON of a Terraform or OpenTofu plan, not %s", p.Format))
	}
	jp.Done(p)
	f, err := os.Open(resolve(env, name))
	if err != nil {
		return nil, exit(ExitUsage, fmt.Errorf("--plan-file: %w", err))
	}
	defer f.Close()
	sp, err := planfile.Read(f, planfile.Options{})
	switch {
	case err != nil && errors.Is(err, planfile.ErrUnsupported) && binding == planfile.BindingJSONOnly:
		return gate.UnverifiedFinding(err.Error()), nil
	case err != nil && (errors.Is(err, planfile.ErrInvalid) || errors.Is(err, planfile.ErrUnsupported) || errors.Is(err, planfile.ErrTooLarge)):
		return nil, exit(ExitUsage, fmt.Errorf("--plan-file %s: %w", name, err))
	case err != nil:
		return nil, exit(ExitInternal, fmt.Errorf("--plan-file %s: %w", name, err))
	}
	if err := planfile.Compare(jp, sp); err != nil {
		return nil, exit(ExitUsage, fmt.Errorf("--plan-file %s: %w", name, err))
	}
	return nil, nil
}

func planErr(label string, err error) error {
	switch {
	case err == nil:
		return nil
	case plan.IsBadInput(err):
		return exit(ExitUsage, fmt.Errorf("%s: %w", label, err))
	}
	return exit(ExitInternal, fmt.Errorf("%s: %w", label, err))
}

func resolve(env Env, p string) string {
	if p == "" || p == "-" || filepath.IsAbs(p) || env.Dir == "" {
		return p
	}
	return filepath.Join(env.Dir, p)
}
