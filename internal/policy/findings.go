package policy

import (
	"errors"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// keepTerms makes a query's results the Rego terms themselves: findings are
// read from them directly (see decodeFindings), without turning forty
// thousand addresses into Go values and then JSON first.
func keepTerms(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// wireFinding is a finding as a rule writes it; pointers tell a missing field
// from a zero one.
type wireFinding struct {
	Rule         *string
	Decision     *string
	Severity     string
	Addresses    []string
	Reason       *string
	Requirements *wireRequirements
}

type wireRequirements struct {
	AAL       *int
	Approvals *int
	MaxAge    *int
	Methods   []string
	Groups    []string
}

// decodeFindings checks what the rules produced. A malformed finding is an
// error, so a broken rule can never turn into an allow.
func decodeFindings(v any) ([]Finding, error) {
	t, ok := v.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("findings are a %T, want a list", v)
	}
	list, ok := t.Value.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("findings are %s, want a list", valueName(t.Value))
	}
	out := make([]Finding, 0, list.Len())
	for i := range list.Len() {
		raw := list.Elem(i)
		w, err := readFinding(raw.Value)
		if err != nil {
			return nil, fmt.Errorf("finding %d (%s): %w", i, truncate(raw.String(), 200), err)
		}
		f, err := w.finding()
		if err != nil {
			name := fmt.Sprint(i)
			if w.Rule != nil {
				name = *w.Rule
			}
			return nil, fmt.Errorf("finding of rule %s: %w", name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// readFinding reads the fields stepgate knows from a finding object; others
// are ignored. A field of the wrong type is an error naming it.
func readFinding(v ast.Value) (wireFinding, error) {
	var w wireFinding
	obj, ok := v.(ast.Object)
	if !ok {
		return w, fmt.Errorf("a finding is %s, want an object", valueName(v))
	}
	fields := object{obj}
	var err error
	if w.Rule, err = fields.str("rule"); err != nil {
		return w, err
	}
	if w.Decision, err = fields.str("decision"); err != nil {
		return w, err
	}
	if w.Reason, err = fields.str("reason"); err != nil {
		return w, err
	}
	if sev, err := fields.str("severity"); err != nil {
		return w, err
	} else if sev != nil {
		w.Severity = *sev
	}
	if w.Addresses, err = fields.strings("addresses"); err != nil {
		return w, err
	}
	rv := obj.Get(ast.InternedTerm("requirements"))
	if rv == nil || rv.Value.Compare(ast.Null{}) == 0 {
		return w, nil
	}
	robj, ok := rv.Value.(ast.Object)
	if !ok {
		return w, fmt.Errorf("requirements is %s, want an object", valueName(rv.Value))
	}
	req := object{robj}
	r := &wireRequirements{}
	if r.AAL, err = req.integer("aal"); err != nil {
		return w, err
	}
	if r.Approvals, err = req.integer("approvals"); err != nil {
		return w, err
	}
	if r.MaxAge, err = req.integer("max_age"); err != nil {
		return w, err
	}
	if r.Methods, err = req.strings("methods"); err != nil {
		return w, err
	}
	if r.Groups, err = req.strings("groups"); err != nil {
		return w, err
	}
	w.Requirements = r
	return w, nil
}

// object reads typed fields of a Rego object; a missing or null field reads
// as nil.
type object struct{ ast.Object }

func (o object) get(k string) ast.Value {
	t := o.Get(ast.InternedTerm(k))
	if t == nil {
		return nil
	}
	if _, null := t.Value.(ast.Null); null {
		return nil
	}
	return t.Value
}

func (o object) str(k string) (*string, error) {
	v := o.get(k)
	if v == nil {
		return nil, nil
	}
	s, ok := v.(ast.String)
	if !ok {
		return nil, fmt.Errorf("%s is %s, want a string", k, valueName(v))
	}
	str := string(s)
	return &str, nil
}

func (o object) integer(k string) (*int, error) {
	v := o.get(k)
	if v == nil {
		return nil, nil
	}
	n, ok := v.(ast.Number)
	if !ok {
		return nil, fmt.Errorf("%s is %s, want a whole number", k, valueName(v))
	}
	i, ok := n.Int()
	if !ok {
		return nil, fmt.Errorf("%s is %s, want a whole number", k, n)
	}
	return &i, nil
}

// strings reads a list (or set) of strings.
func (o object) strings(k string) ([]string, error) {
	v := o.get(k)
	if v == nil {
		return nil, nil
	}
	var out []string
	add := func(t *ast.Term) error {
		s, ok := t.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%s holds %s, want strings", k, valueName(t.Value))
		}
		out = append(out, string(s))
		return nil
	}
	var err error
	switch c := v.(type) {
	case *ast.Array:
		out = make([]string, 0, c.Len())
		err = c.Iter(add)
	case ast.Set:
		out = make([]string, 0, c.Len())
		err = c.Iter(add)
	default:
		return nil, fmt.Errorf("%s is %s, want a list of strings", k, valueName(v))
	}
	return out, err
}

// stringSet reads the production reasons: a set (or list) of strings.
func stringSet(v any) []string {
	t, ok := v.(*ast.Term)
	if !ok {
		return nil
	}
	var out []string
	add := func(e *ast.Term) error {
		if s, ok := e.Value.(ast.String); ok {
			out = append(out, string(s))
		}
		return nil
	}
	switch c := t.Value.(type) {
	case ast.Set:
		_ = c.Iter(add)
	case *ast.Array:
		_ = c.Iter(add)
	}
	return out
}
func (w wireFinding) finding() (Finding, error) {
	if w.Rule == nil || *w.Rule == "" {
		return Finding{}, errors.New("it has no rule id")
	}
	if w.Decision == nil || !Decision(*w.Decision).Valid() {
		return Finding{}, errors.New(`its decision is not "allow", "step_up" or "deny"`)
	}
	if w.Reason == nil || *w.Reason == "" {
		return Finding{}, errors.New("it has no reason")
	}
	f := Finding{
		Rule:      *w.Rule,
		Decision:  Decision(*w.Decision),
		Severity:  w.Severity,
		Addresses: w.Addresses,
		Reason:    *w.Reason,
	}
	if f.Addresses == nil {
		f.Addresses = []string{}
	}
	switch {
	case f.Severity == "" && f.Decision == Deny:
		f.Severity = "critical"
	case f.Severity == "" && f.Decision == StepUp:
		f.Severity = "high"
	case f.Severity == "":
		f.Severity = "info"
	case !slices.Contains(Severities, f.Severity):
		return Finding{}, fmt.Errorf("severity %q is not one of %v", f.Severity, Severities)
	}
	if f.Decision != StepUp {
		return f, nil
	}
	r := &Requirements{AAL: 2}
	if w.Requirements != nil {
		if p := w.Requirements.AAL; p != nil {
			r.AAL = *p
		}
		if p := w.Requirements.Approvals; p != nil {
			r.Approvals = *p
		}
		if p := w.Requirements.MaxAge; p != nil {
			r.MaxAge = *p
		}
		r.Methods, r.Groups = w.Requirements.Methods, w.Requirements.Groups
	}
	switch {
	case r.AAL < 1 || r.AAL > 3:
		return Finding{}, fmt.Errorf("aal %d is not 1, 2 or 3", r.AAL)
	case r.Approvals < 0:
		return Finding{}, fmt.Errorf("approvals %d is negative", r.Approvals)
	case r.MaxAge < 0:
		return Finding{}, fmt.Errorf("max_age %d is negative", r.MaxAge)
	}
	if r.MaxAge == 0 {
		r.MaxAge = DefaultMaxAge(r.AAL)
	}
	f.Requirements = r
	return f, nil
}
