package policy

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed defaults.yaml
var defaultsYAML []byte

// Config tunes the built-in policy. Its JSON form is what Rego rules read as
// data.stepgate.config.
type Config struct {
	Production     Production                     `json:"production"`
	SensitiveTypes map[string][]string            `json:"sensitive_types"`
	SensitiveWhen  map[string]map[string][]string `json:"sensitive_when"`
	StatefulTypes  []string                       `json:"stateful_types"`
	BlastRadius    BlastRadius                    `json:"blast_radius"`
	Identity       Identity                       `json:"identity"`
	Network        Network                        `json:"network"`
	HelperTypes    []string                       `json:"helper_types"`
	Protections    []Protection                   `json:"protections"`
	SafeguardTypes map[string]string              `json:"safeguard_types"`
	Rules          map[string]Rule                `json:"rules"`
	// Secrets are requirements per secret name pattern (* matches any
	// characters, slashes included), on top of the secret.read rule.
	Secrets map[string]SecretRule `json:"secrets"`
	// Timezone is the IANA time zone of input.time.local and of weekly
	// freeze windows (empty: UTC).
	Timezone string         `json:"timezone"`
	Pipeline PipelineConfig `json:"pipeline"`
	Freeze   Freeze         `json:"freeze"`
	Burst    Burst          `json:"burst"`
}

// PipelineConfig tunes pipeline.untrusted_ref.
type PipelineConfig struct {
	// ReleaseRefs, when set, are the only refs (glob patterns, * matching
	// slashes too: refs/heads/main, refs/tags/v*) a production operation
	// may run for, by the CI token's verified claims.
	ReleaseRefs []string `json:"release_refs" yaml:"release_refs"`
	// RequireVerified makes a production operation without a CI token's
	// verified claims (one asked with an API token) untrusted as well.
	RequireVerified bool `json:"require_verified" yaml:"require_verified"`
}

// Freeze tunes change.freeze: the windows in which changes are frozen.
type Freeze struct {
	// Approvers is the group whose members' approvals alone count for a
	// check that a freeze window holds (empty: the usual approvers).
	Approvers string         `json:"approvers" yaml:"approvers"`
	Windows   []FreezeWindow `json:"windows" yaml:"windows"`
}

// FreezeWindow is one named window: dated (start and end, RFC 3339) or
// weekly (from and to, "Fri 16:00", in policy.timezone).
type FreezeWindow struct {
	Name   string  `json:"name" yaml:"name"`
	Start  string  `json:"start,omitempty" yaml:"start"`
	End    string  `json:"end,omitempty" yaml:"end"`
	Weekly *Weekly `json:"weekly,omitempty" yaml:"weekly"`
	// Decision, when deny, refuses changes during the window instead of
	// asking for the rule's step-up.
	Decision Decision `json:"decision,omitempty" yaml:"decision"`
}

// Weekly is a window that comes back every week.
type Weekly struct {
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
}

// Burst tunes requester.burst.
type Burst struct {
	// MaxChecks is how many checks one requester may create in an hour
	// before the next ones need a step-up (0: off).
	MaxChecks int `json:"max_checks" yaml:"max_checks"`
}

// SecretRule is what reading the secrets whose names match a pattern asks
// for: `policy.secrets: {"billing/db-*": {aal: 3, approvals: 2, groups:
// [dba]}}` in stepgate.yaml.
type SecretRule struct {
	Decision  Decision `json:"decision" yaml:"decision"` // default step_up
	AAL       int      `json:"aal" yaml:"aal"`
	Approvals int      `json:"approvals" yaml:"approvals"`
	MaxAge    int      `json:"max_age" yaml:"max_age"`
	Groups    []string `json:"groups" yaml:"groups"`
	Severity  string   `json:"severity" yaml:"severity"` // default critical
}

// Identity tunes identity.escalation.
type Identity struct {
	// TrustedAccounts are the cloud accounts (AWS account ids) a trust
	// policy may name without it being an escalation. Empty: every
	// account a trust policy names is outside.
	TrustedAccounts []string `json:"trusted_accounts" yaml:"trusted_accounts"`
}

// Network tunes network.exposure.
type Network struct {
	// PublicPorts may be opened to the internet without a finding.
	PublicPorts []int `json:"public_ports" yaml:"public_ports"`
}

// Protection is a safeguard attribute: a change that turns it from On to
// anything else removes it (protection.removed).
type Protection struct {
	// Attribute is a path into the resource's values: names and list
	// indexes separated by dots ("versioning.0.enabled").
	Attribute string `json:"attribute" yaml:"attribute"`
	// On is the value the attribute has while the safeguard is on.
	On any `json:"on" yaml:"on"`
	// What names the safeguard in a finding's reason.
	What string `json:"what" yaml:"what"`
	// Types, when set, are the only types (glob patterns) it applies to.
	Types []string `json:"types,omitempty" yaml:"types"`
}

// Production says what makes an operation production.
type Production struct {
	Environments        []string            `json:"environments" yaml:"environments"`
	Workspaces          []string            `json:"workspaces" yaml:"workspaces"`
	TagAttributes       []string            `json:"tag_attributes" yaml:"tag_attributes"`
	TagKeys             []string            `json:"tag_keys" yaml:"tag_keys"`
	NameAttributes      map[string][]string `json:"name_attributes" yaml:"name_attributes"`
	ReferenceAttributes []string            `json:"reference_attributes" yaml:"reference_attributes"`
}

// BlastRadius holds the thresholds of the blast.radius rule.
type BlastRadius struct {
	MaxChanges     int `json:"max_changes" yaml:"max_changes"`
	MaxDestructive int `json:"max_destructive" yaml:"max_destructive"`
}

// Rule is what one built-in rule asks for in each context. A nil context
// means the rule does not fire there.
type Rule struct {
	Enabled           bool         `json:"enabled"`
	OutsideProduction *RuleContext `json:"outside_production,omitempty"`
	Production        *RuleContext `json:"production,omitempty"`
}

// RuleContext is the answer of a rule in one context.
type RuleContext struct {
	Decision  Decision `json:"decision" yaml:"decision"`
	AAL       int      `json:"aal" yaml:"aal"`
	Approvals int      `json:"approvals" yaml:"approvals"`
	MaxAge    int      `json:"max_age" yaml:"max_age"`
	Severity  string   `json:"severity" yaml:"severity"`
}

// defaultsFile is the shape of defaults.yaml.
type defaultsFile struct {
	Production     Production                     `yaml:"production"`
	SensitiveTypes map[string][]string            `yaml:"sensitive_types"`
	SensitiveWhen  map[string]map[string][]string `yaml:"sensitive_when"`
	StatefulTypes  []string                       `yaml:"stateful_types"`
	BlastRadius    BlastRadius                    `yaml:"blast_radius"`
	Identity       Identity                       `yaml:"identity"`
	Network        Network                        `yaml:"network"`
	HelperTypes    []string                       `yaml:"helper_types"`
	Protections    []Protection                   `yaml:"protections"`
	SafeguardTypes map[string]string              `yaml:"safeguard_types"`
	Rules          map[string]struct {
		OutsideProduction *RuleContext `yaml:"outside_production"`
		Production        *RuleContext `yaml:"production"`
	} `yaml:"rules"`
	Timezone string         `yaml:"timezone"`
	Pipeline PipelineConfig `yaml:"pipeline"`
	Freeze   Freeze         `yaml:"freeze"`
	Burst    Burst          `yaml:"burst"`
}

// DefaultConfig returns the built-in tuning, the one documented in
// docs/policy.md.
func DefaultConfig() Config {
	var f defaultsFile
	dec := yaml.NewDecoder(bytes.NewReader(defaultsYAML))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		panic(fmt.Sprintf("policy: embedded defaults.yaml is invalid: %v", err)) // a build defect, caught by tests
	}
	c := Config{
		Production:     f.Production,
		SensitiveTypes: f.SensitiveTypes,
		SensitiveWhen:  f.SensitiveWhen,
		StatefulTypes:  f.StatefulTypes,
		BlastRadius:    f.BlastRadius,
		Identity:       f.Identity,
		Network:        f.Network,
		HelperTypes:    f.HelperTypes,
		Protections:    f.Protections,
		SafeguardTypes: f.SafeguardTypes,
		Rules:          map[string]Rule{},
		Secrets:        map[string]SecretRule{},
		Timezone:       f.Timezone,
		Pipeline:       f.Pipeline,
		Freeze:         f.Freeze,
		Burst:          f.Burst,
	}
	for id, r := range f.Rules {
		c.Rules[id] = Rule{Enabled: true, OutsideProduction: r.OutsideProduction, Production: r.Production}
	}
	return c
}

// Overrides is the `policy:` section of stepgate.yaml. Every field is
// optional; what is set replaces or adjusts the default.
type Overrides struct {
	Production     *Production                    `yaml:"production"`
	SensitiveTypes *TypeChanges                   `yaml:"sensitive_types"`
	SensitiveWhen  map[string]map[string][]string `yaml:"sensitive_when"`
	StatefulTypes  *TypeChanges                   `yaml:"stateful_types"`
	BlastRadius    *struct {
		MaxChanges     *int `yaml:"max_changes"`
		MaxDestructive *int `yaml:"max_destructive"`
	} `yaml:"blast_radius"`
	Identity       *Identity               `yaml:"identity"`
	Network        *Network                `yaml:"network"`
	HelperTypes    *TypeChanges            `yaml:"helper_types"`
	Protections    []Protection            `yaml:"protections"`
	SafeguardTypes map[string]string       `yaml:"safeguard_types"`
	Rules          map[string]RuleOverride `yaml:"rules"`
	// Secrets add requirements per secret name pattern.
	Secrets  map[string]SecretRule `yaml:"secrets"`
	Timezone *string               `yaml:"timezone"`
	Pipeline *PipelineConfig       `yaml:"pipeline"`
	Freeze   *Freeze               `yaml:"freeze"`
	Burst    *Burst                `yaml:"burst"`
}

// TypeChanges adds patterns to a type list and removes default ones.
type TypeChanges struct {
	Add    []string `yaml:"add"`
	Remove []string `yaml:"remove"`
}

// RuleOverride changes one rule. A context set to null stops the rule from
// firing there; fields left out keep their default.
type RuleOverride struct {
	Enabled           *bool            `yaml:"enabled"`
	OutsideProduction *ContextOverride `yaml:"outside_production"`
	Production        *ContextOverride `yaml:"production"`
}

// ContextOverride is a partial RuleContext.
type ContextOverride struct {
	Off       bool      `yaml:"-"`
	Decision  *Decision `yaml:"decision"`
	AAL       *int      `yaml:"aal"`
	Approvals *int      `yaml:"approvals"`
	MaxAge    *int      `yaml:"max_age"`
	Severity  *string   `yaml:"severity"`
}

// UnmarshalYAML reads `production: off` (or null) as "never fires here",
// and otherwise a mapping of the known fields only: a misspelt key is an
// error, never a setting silently ignored.
func (o *ContextOverride) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "off" || n.Value == "none") {
		o.Off = true
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping such as {decision: step_up, aal: 2}, or off", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst any
		switch k.Value {
		case "decision":
			o.Decision = new(Decision)
			dst = o.Decision
		case "aal":
			o.AAL = new(int)
			dst = o.AAL
		case "approvals":
			o.Approvals = new(int)
			dst = o.Approvals
		case "max_age":
			o.MaxAge = new(int)
			dst = o.MaxAge
		case "severity":
			o.Severity = new(string)
			dst = o.Severity
		default:
			return fmt.Errorf("line %d: unknown key %q (want decision, aal, approvals, max_age or severity)", k.Line, k.Value)
		}
		if err := v.Decode(dst); err != nil {
			return fmt.Errorf("line %d: %s: %w", v.Line, k.Value, err)
		}
	}
	return nil
}

// Apply returns c changed by o.
func (o *Overrides) Apply(c Config) Config {
	if o == nil {
		return c
	}
	if p := o.Production; p != nil {
		set := func(dst *[]string, src []string) {
			if src != nil {
				*dst = src
			}
		}
		set(&c.Production.Environments, p.Environments)
		set(&c.Production.Workspaces, p.Workspaces)
		set(&c.Production.TagAttributes, p.TagAttributes)
		set(&c.Production.TagKeys, p.TagKeys)
		set(&c.Production.ReferenceAttributes, p.ReferenceAttributes)
		if p.NameAttributes != nil {
			c.Production.NameAttributes = merge(c.Production.NameAttributes, p.NameAttributes)
		}
	}
	if t := o.SensitiveTypes; t != nil {
		m := map[string][]string{}
		for cat, pats := range c.SensitiveTypes {
			m[cat] = remove(pats, t.Remove)
		}
		if len(t.Add) > 0 {
			m["custom"] = append(m["custom"], t.Add...)
		}
		c.SensitiveTypes = m
	}
	if o.SensitiveWhen != nil {
		c.SensitiveWhen = merge(c.SensitiveWhen, o.SensitiveWhen)
	}
	if t := o.StatefulTypes; t != nil {
		c.StatefulTypes = append(remove(c.StatefulTypes, t.Remove), t.Add...)
	}
	if b := o.BlastRadius; b != nil {
		if b.MaxChanges != nil {
			c.BlastRadius.MaxChanges = *b.MaxChanges
		}
		if b.MaxDestructive != nil {
			c.BlastRadius.MaxDestructive = *b.MaxDestructive
		}
	}
	if o.Identity != nil && o.Identity.TrustedAccounts != nil {
		c.Identity.TrustedAccounts = o.Identity.TrustedAccounts
	}
	if o.Network != nil && o.Network.PublicPorts != nil {
		c.Network.PublicPorts = o.Network.PublicPorts
	}
	if t := o.HelperTypes; t != nil {
		c.HelperTypes = append(remove(c.HelperTypes, t.Remove), t.Add...)
	}
	if o.Protections != nil {
		c.Protections = append(slices.Clone(c.Protections), o.Protections...)
	}
	if o.SafeguardTypes != nil {
		m := maps.Clone(c.SafeguardTypes)
		if m == nil {
			m = map[string]string{}
		}
		for k, v := range o.SafeguardTypes {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		c.SafeguardTypes = m
	}
	if o.Rules != nil {
		rules := map[string]Rule{}
		for k, v := range c.Rules {
			rules[k] = v
		}
		for id, ro := range o.Rules {
			r, ok := rules[id]
			if !ok {
				r = Rule{Enabled: true}
			}
			if ro.Enabled != nil {
				r.Enabled = *ro.Enabled
			}
			r.OutsideProduction = ro.OutsideProduction.apply(r.OutsideProduction)
			r.Production = ro.Production.apply(r.Production)
			rules[id] = r
		}
		c.Rules = rules
	}
	if o.Secrets != nil {
		m := make(map[string]SecretRule, len(c.Secrets)+len(o.Secrets))
		maps.Copy(m, c.Secrets)
		for p, r := range o.Secrets {
			if r.Decision == "" {
				r.Decision = StepUp
			}
			if r.Severity == "" {
				r.Severity = "critical"
			}
			m[p] = r
		}
		c.Secrets = m
	}
	if o.Timezone != nil {
		c.Timezone = *o.Timezone
	}
	if o.Pipeline != nil {
		c.Pipeline = *o.Pipeline
	}
	if o.Freeze != nil {
		c.Freeze = *o.Freeze
	}
	if o.Burst != nil {
		c.Burst = *o.Burst
	}
	return c
}

func (o *ContextOverride) apply(c *RuleContext) *RuleContext {
	if o == nil {
		return c
	}
	if o.Off {
		return nil
	}
	var n RuleContext
	if c != nil {
		n = *c
	}
	if o.Decision != nil {
		n.Decision = *o.Decision
	}
	if o.AAL != nil {
		n.AAL = *o.AAL
	}
	if o.Approvals != nil {
		n.Approvals = *o.Approvals
	}
	if o.MaxAge != nil {
		n.MaxAge = *o.MaxAge
	}
	if o.Severity != nil {
		n.Severity = *o.Severity
	}
	return &n
}

// merge returns a copy of base with the entries of over set, except that an
// empty value in over removes its key.
func merge[V []string | map[string][]string](base, over map[string]V) map[string]V {
	m := make(map[string]V, len(base))
	maps.Copy(m, base)
	for k, v := range over {
		if len(v) == 0 {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func remove(list, drop []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Production.Environments) == 0 {
		errs = append(errs, errors.New("policy.production.environments: must name at least one environment"))
	}
	for _, p := range c.Production.Workspaces {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("policy.production.workspaces: bad pattern %q", p))
		}
	}
	if c.BlastRadius.MaxChanges < 0 {
		errs = append(errs, fmt.Errorf("policy.blast_radius.max_changes: %d is negative", c.BlastRadius.MaxChanges))
	}
	if c.BlastRadius.MaxDestructive < 0 {
		errs = append(errs, fmt.Errorf("policy.blast_radius.max_destructive: %d is negative", c.BlastRadius.MaxDestructive))
	}
	for cat, pats := range c.SensitiveTypes {
		for _, p := range pats {
			if p == "" {
				errs = append(errs, fmt.Errorf("policy.sensitive_types.%s: empty pattern", cat))
			} else if err := checkTypePattern(p); err != nil {
				errs = append(errs, fmt.Errorf("policy.sensitive_types.%s: %w", cat, err))
			}
		}
	}
	for _, p := range c.StatefulTypes {
		if p == "" {
			errs = append(errs, errors.New("policy.stateful_types: empty pattern"))
		} else if err := checkTypePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("policy.stateful_types: %w", err))
		}
	}
	for _, p := range c.Network.PublicPorts {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("policy.network.public_ports: %d is not a port", p))
		}
	}
	for _, p := range c.HelperTypes {
		if p == "" {
			errs = append(errs, errors.New("policy.helper_types: empty pattern"))
		} else if err := checkTypePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("policy.helper_types: %w", err))
		}
	}
	for i, p := range c.Protections {
		if p.Attribute == "" || p.What == "" || p.On == nil {
			errs = append(errs, fmt.Errorf("policy.protections[%d]: attribute, on and what are all needed", i))
		}
	}
	ids := make([]string, 0, len(c.Rules))
	for id := range c.Rules {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := c.Rules[id]
		for name, ctx := range map[string]*RuleContext{"outside_production": r.OutsideProduction, "production": r.Production} {
			if ctx == nil {
				continue
			}
			if err := ctx.validate(); err != nil {
				errs = append(errs, fmt.Errorf("policy.rules.%s.%s: %w", id, name, err))
			}
		}
	}
	if _, err := location(c.Timezone); err != nil {
		errs = append(errs, err)
	}
	for i, p := range c.Pipeline.ReleaseRefs {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, fmt.Errorf("policy.pipeline.release_refs[%d]: empty pattern", i))
		}
	}
	names := map[string]bool{}
	for i, w := range c.Freeze.Windows {
		key := fmt.Sprintf("policy.freeze.windows[%d]", i)
		switch {
		case strings.TrimSpace(w.Name) == "":
			errs = append(errs, fmt.Errorf("%s.name: every window needs a name", key))
		case names[w.Name]:
			errs = append(errs, fmt.Errorf("%s.name: %q names two windows", key, w.Name))
		}
		names[w.Name] = true
		if _, err := parseWindow(w); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		if w.Decision != "" && w.Decision != StepUp && w.Decision != Deny {
			errs = append(errs, fmt.Errorf("%s.decision: %q is not step_up or deny", key, w.Decision))
		}
	}
	if c.Burst.MaxChecks < 0 {
		errs = append(errs, fmt.Errorf("policy.burst.max_checks: %d is negative", c.Burst.MaxChecks))
	}
	for _, p := range slices.Sorted(maps.Keys(c.Secrets)) {
		if err := c.Secrets[p].validate(p); err != nil {
			errs = append(errs, fmt.Errorf("policy.secrets[%q]: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func (r SecretRule) validate(pattern string) error {
	var errs []error
	if pattern == "" {
		errs = append(errs, errors.New("empty pattern"))
	}
	ctx := RuleContext{Decision: r.Decision, AAL: r.AAL, Approvals: r.Approvals, MaxAge: r.MaxAge, Severity: r.Severity}
	if ctx.Decision == "" {
		ctx.Decision = StepUp
	}
	if err := ctx.validate(); err != nil {
		errs = append(errs, err)
	}
	for _, g := range r.Groups {
		if g == "" {
			errs = append(errs, errors.New("groups: empty group name"))
		}
	}
	return errors.Join(errs...)
}

func (r *RuleContext) validate() error {
	var errs []error
	if !r.Decision.Valid() {
		errs = append(errs, fmt.Errorf("decision %q is not one of allow, step_up, deny", r.Decision))
	}
	if (r.Decision == StepUp || r.AAL != 0) && (r.AAL < 1 || r.AAL > 3) {
		errs = append(errs, fmt.Errorf("aal %d is not 1, 2 or 3", r.AAL))
	}
	if r.Approvals < 0 {
		errs = append(errs, fmt.Errorf("approvals %d is negative", r.Approvals))
	}
	if r.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age %d is negative", r.MaxAge))
	}
	if r.Severity != "" && !slices.Contains(Severities, r.Severity) {
		errs = append(errs, fmt.Errorf("severity %q is not one of %v", r.Severity, Severities))
	}
	return errors.Join(errs...)
}

// DefaultsYAML returns the embedded defaults.yaml, comments included.
func DefaultsYAML() []byte { return append([]byte(nil), defaultsYAML...) }
