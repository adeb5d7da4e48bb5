package planfile

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/stepgate/stepgate/internal/plan"
)

// JSONPlan is the plan JSON's side of a comparison: its resource changes
// reduced to digests. Collect builds it while plan.Decode reads the JSON.
type JSONPlan struct {
	Changes []Change
	// ActionInvocations counts Terraform 1.14 action invocations.
	ActionInvocations int
	// ToolVersion is the terraform_version the JSON names.
	ToolVersion string
}

// Collect returns a function for plan.Options.Raw that reduces each raw
// change of a plan JSON to digests, into the JSONPlan returned. Finish it
// with Done once plan.Decode has returned the plan.
func Collect() (func(*plan.RawChange) error, *JSONPlan) {
	jp := &JSONPlan{}
	w := &jsonWalker{}
	return func(rc *plan.RawChange) error {
		c, err := w.change(rc)
		if err != nil {
			// The JSON is at fault: a value plan.Decode let through.
			return fmt.Errorf("%w: %w", plan.ErrInvalid, err)
		}
		jp.Changes = append(jp.Changes, c)
		return nil
	}, jp
}

// Done records what the decoded plan says as a whole.
func (jp *JSONPlan) Done(p *plan.Plan) {
	jp.ActionInvocations = p.ActionInvocations
	jp.ToolVersion = p.ToolVersion
}

func (w *jsonWalker) change(rc *plan.RawChange) (Change, error) {
	c := Change{
		Address:         rc.Address,
		PreviousAddress: rc.PreviousAddress,
		Deposed:         rc.Deposed,
		Provider:        rc.Provider,
		Actions:         append([]string(nil), rc.Actions...),
		Importing:       rc.Importing,
	}
	if len(c.Actions) == 0 {
		c.Actions = []string{"no-op"}
	}
	if c.noOp() {
		return c, nil // values are neither read nor applied
	}
	var err error
	if c.Before, err = w.digest(rc.Before, nil); err != nil {
		return Change{}, fmt.Errorf("%s: before: %w", rc.Address, err)
	}
	var unknown any
	if bytes.Contains(rc.AfterUnknown, []byte("true")) {
		if err := json.Unmarshal(rc.AfterUnknown, &unknown); err != nil {
			return Change{}, fmt.Errorf("%s: after_unknown: %w", rc.Address, err)
		}
	}
	if c.After, err = w.digest(rc.After, unknown); err != nil {
		return Change{}, fmt.Errorf("%s: after: %w", rc.Address, err)
	}
	return c, nil
}

// digest reduces a value of the plan JSON to a Digest. unknown is the
// value's after_unknown tree: true where the value is unknown (where
// `show -json` left an attribute out, or wrote null in a list).
func (w *jsonWalker) digest(raw []byte, unknown any) (Digest, error) {
	if unknown == true {
		return Digest{Whole: sumUnknown}, nil
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return Digest{Whole: sumNull}, nil
	}
	// One decoder for every value, reset rather than made anew.
	w.src.Reset(raw)
	if w.dec == nil {
		w.dec = jsontext.NewDecoder(&w.src)
	} else {
		w.dec.Reset(&w.src)
	}
	ms, s, err := w.value(unknown, 0, true)
	if err != nil {
		return Digest{}, err
	}
	if ms != nil {
		return objectDigest(ms), nil
	}
	return Digest{Whole: s}, nil
}

// jsonWalker reads the values of a plan JSON's changes, one at a time.
type jsonWalker struct {
	dec *jsontext.Decoder
	src bytes.Reader
}

// value reads one JSON value with its unknown tree. At the top (top is
// true), an object's members are returned rather than summed.
func (w *jsonWalker) value(unknown any, depth int, top bool) ([]member, Sum, error) {
	if depth > maxDepth {
		return nil, Sum{}, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if unknown == true {
		// Written as null, if at all.
		if err := w.dec.SkipValue(); err != nil {
			return nil, Sum{}, err
		}
		return nil, sumUnknown, nil
	}
	switch w.dec.PeekKind() {
	case '{':
		return w.object(unknown, depth, top)
	case '[':
		return w.array(unknown, depth)
	}
	v, err := w.dec.ReadValue()
	if err != nil {
		return nil, Sum{}, err
	}
	switch v.Kind() {
	case 'n':
		return nil, sumNull, nil
	case 't':
		return nil, sumTrue, nil
	case 'f':
		return nil, sumFalse, nil
	case '0':
		return nil, jsonNumberSum(v), nil
	case '"':
		s, err := jsontext.AppendUnquote(nil, v)
		if err != nil {
			return nil, Sum{}, err
		}
		return nil, stringSum(s), nil
	}
	return nil, Sum{}, fmt.Errorf("unexpected JSON %s", v.Kind())
}

func (w *jsonWalker) object(unknown any, depth int, top bool) ([]member, Sum, error) {
	if _, err := w.dec.ReadToken(); err != nil {
		return nil, Sum{}, err
	}
	um, _ := unknown.(map[string]any)
	var ms []member
	seen := map[string]bool{}
	for w.dec.PeekKind() != '}' {
		tok, err := w.dec.ReadToken()
		if err != nil {
			return nil, Sum{}, err
		}
		k := tok.String()
		seen[k] = true
		_, s, err := w.value(um[k], depth+1, false)
		if err != nil {
			return nil, Sum{}, err
		}
		ms = append(ms, member{key: k, sum: s})
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return nil, Sum{}, err
	}
	// An attribute that is wholly unknown is left out of the object.
	for k, u := range um {
		if u == true && !seen[k] {
			ms = append(ms, member{key: k, sum: sumUnknown})
		}
	}
	if ms == nil {
		ms = []member{}
	}
	if top {
		return ms, Sum{}, nil
	}
	return nil, objectSum(ms), nil
}

func (w *jsonWalker) array(unknown any, depth int) ([]member, Sum, error) {
	if _, err := w.dec.ReadToken(); err != nil {
		return nil, Sum{}, err
	}
	ul, _ := unknown.([]any)
	l := newList()
	for i := 0; w.dec.PeekKind() != ']'; i++ {
		var u any
		if i < len(ul) {
			u = ul[i]
		}
		_, s, err := w.value(u, depth+1, false)
		if err != nil {
			return nil, Sum{}, err
		}
		l.add(s)
	}
	if _, err := w.dec.ReadToken(); err != nil {
		return nil, Sum{}, err
	}
	return nil, l.sum(), nil
}
