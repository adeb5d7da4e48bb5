package policy

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// foldedPaths folds the built-in policy with mods and returns the paths
// folded, as text.
func foldedPaths(t *testing.T, mods ...Module) []string {
	t.Helper()
	parsed, store, err := load(DefaultConfig(), append(BuiltinModules(false), mods...))
	if err != nil {
		t.Fatal(err)
	}
	_, folded, err := fold(context.Background(), parsed, store, newBuiltins().options())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range folded {
		out = append(out, p.String())
	}
	return out
}

// TestFoldOnlyWhatCannotChange: the rules folded are those whose value
// is the same at every evaluation, and no other. A rule that reads the
// input, directly or through a rule or function it calls, or that calls
// a function whose answer changes, must be computed at each evaluation.
func TestFoldOnlyWhatCannotChange(t *testing.T) {
	user := Module{Filename: "acme.rego", Source: `package stepgate.rules.acme

import data.stepgate.lib

fixed_names := {n | some n in ["a", "b"]}

from_config := {e | some e in lib.cfg.production.environments}

reads_input := {c.address | some c in input.changes}

ws(_) := input.operation.workspace

through_function := ws(1)

through_rule := count(reads_input)

clock := time.now_ns()

after_clock := clock + 1

random := rand.intn("acme", 100)

has_default := object.get({}, "x", 1)

through_else := 1 if {
	false
} else := through_rule

fixed_else := 1 if {
	false
} else := count(fixed_names)
`}
	got := foldedPaths(t, user)
	for _, want := range []string{
		"data.stepgate.rules.acme.fixed_names",
		"data.stepgate.rules.acme.from_config",
		"data.stepgate.rules.acme.has_default",
		"data.stepgate.rules.acme.fixed_else",
		"data.stepgate.rules.builtin.content_types",
		"data.stepgate.lib.env_names",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("%s not folded; folded: %v", want, got)
		}
	}
	for _, never := range []string{
		"data.stepgate.rules.acme.reads_input",
		"data.stepgate.rules.acme.through_function",
		"data.stepgate.rules.acme.through_rule",
		"data.stepgate.rules.acme.through_else",
		"data.stepgate.rules.acme.clock",
		"data.stepgate.rules.acme.after_clock",
		"data.stepgate.rules.acme.random",
		"data.stepgate.rules.acme.ws",
		"data.stepgate.rules.builtin.findings",
		"data.stepgate.rules.builtin.risk_types",
		"data.stepgate.lib.production_reasons",
		"data.stepgate.lib.plan_types",
	} {
		if slices.Contains(got, never) {
			t.Errorf("%s folded, but its value can change between evaluations", never)
		}
	}
}

// TestFoldNothingUnderWith: `with` on data replaces, for one expression,
// what folded rules were computed from; then nothing is folded, and the
// rule under it sees the value the with gives.
func TestFoldNothingUnderWith(t *testing.T) {
	user := Module{Filename: "acme.rego", Source: `package stepgate.rules.acme

import data.stepgate.lib

findings contains f if {
	envs := lib.env_names with data.stepgate.config.production.environments as ["staging"]
	f := {
		"rule": "acme.envs",
		"decision": "allow",
		"severity": "low",
		"addresses": [],
		"reason": concat(",", envs),
		"requirements": {"aal": 0, "approvals": 0, "max_age": 0},
	}
}
`}
	if got := foldedPaths(t, user); len(got) != 0 {
		t.Errorf("folded %v with a `with` on data in the policy", got)
	}
	e, err := New(context.Background(), DefaultConfig(), []Module{user})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Evaluate(context.Background(), e.NewInput(Operation{Kind: "terraform.apply", Workspace: "w"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Findings) != 1 || a.Findings[0].Reason != "staging" {
		t.Errorf("findings %+v, want one whose reason is staging (the environments given by with)", a.Findings)
	}

	// with on input only leaves folding on.
	user.Source = `package stepgate.rules.acme

import data.stepgate.lib

empty := x if {
	x := lib.change_addresses with input.changes as []
}
`
	if got := foldedPaths(t, user); !slices.Contains(got, "data.stepgate.lib.env_names") {
		t.Errorf("nothing folded with a `with` on input only: %v", got)
	}
}

// TestFoldedEngineAnswersEachInput: through a rule of the user's that
// reads the input through a function, and one that reads a folded rule,
// each evaluation answers for its own input.
func TestFoldedEngineAnswersEachInput(t *testing.T) {
	user := Module{Filename: "acme.rego", Source: `package stepgate.rules.acme

import data.stepgate.lib

# METADATA
# title: a documented rule that is folded
envs := {e | some e in lib.env_names}

ws(_) := input.operation.workspace

findings contains f if {
	w := ws(0)
	startswith(w, "acme-")
	f := {
		"rule": "acme.workspace",
		"decision": "step_up",
		"severity": "low",
		"addresses": [],
		"reason": sprintf("workspace %s, %d environment names", [w, count(envs)]),
		"requirements": {"aal": 2, "approvals": 1, "max_age": 0},
	}
}
`}
	e, err := New(context.Background(), DefaultConfig(), []Module{user})
	if err != nil {
		t.Fatal(err)
	}
	n := len(DefaultConfig().Production.Environments)
	for _, ws := range []string{"acme-one", "other", "acme-two"} {
		a, err := e.Evaluate(context.Background(), e.NewInput(Operation{Kind: "terraform.apply", Workspace: ws}))
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, f := range a.Findings {
			if f.Rule == "acme.workspace" {
				reasons = append(reasons, f.Reason)
			}
		}
		want := []string(nil)
		if strings.HasPrefix(ws, "acme-") {
			want = []string{"workspace " + ws + ", " + strconv.Itoa(n) + " environment names"}
		}
		if !slices.Equal(reasons, want) {
			t.Errorf("workspace %s: findings %q, want %q", ws, reasons, want)
		}
	}
}

// TestFoldKeepsTypesOpen: a user's rule may read a key the configuration
// does not have (it is undefined); folding lib.cfg must not turn that
// into a type error that stops the policy from loading.
func TestFoldKeepsTypesOpen(t *testing.T) {
	user := Module{Filename: "acme.rego", Source: `package stepgate.rules.acme

import data.stepgate.lib

extra := lib.cfg.acme_settings.threshold

names := lib.env_names

findings contains f if {
	not extra
	"prod" in names
	f := {
		"rule": "acme.extra",
		"decision": "allow",
		"severity": "low",
		"addresses": [],
		"reason": "no acme_settings",
		"requirements": {"aal": 0, "approvals": 0, "max_age": 0},
	}
}
`}
	if got := foldedPaths(t, user); !slices.Contains(got, "data.stepgate.lib.cfg") {
		t.Fatalf("lib.cfg not folded: %v", got)
	}
	e, err := New(context.Background(), DefaultConfig(), []Module{user})
	if err != nil {
		t.Fatalf("New with a rule reading a configuration key that is not there: %v", err)
	}
	a, err := e.Evaluate(context.Background(), e.NewInput(Operation{Kind: "terraform.apply", Workspace: "w"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Findings) != 1 || a.Findings[0].Rule != "acme.extra" {
		t.Errorf("findings %+v, want acme.extra", a.Findings)
	}
}
