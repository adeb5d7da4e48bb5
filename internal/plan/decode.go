package plan

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Options tune reading.
type Options struct {
	// MaxBytes caps the size of the document; zero means DefaultMaxBytes.
	MaxBytes int64
	// Raw, when set, is called with every resource change of a Terraform
	// or OpenTofu plan (no-ops included), in document order, as the
	// document wrote it: values unmasked, for a comparison with the saved
	// plan (package planfile). An error from it stops decoding.
	Raw func(*RawChange) error
}

// RawChange is one element of resource_changes before it is normalized.
// Its values hold sensitive values in clear; they are valid only during
// the call to Options.Raw.
type RawChange struct {
	Address         string
	PreviousAddress string
	Deposed         string
	Provider        string
	Actions         []string
	Importing       bool
	// Before, After and AfterUnknown are the JSON text of the change's
	// before, after and after_unknown; nil for a no-op, whose values are
	// not read.
	Before, After, AfterUnknown []byte
}

// Read reads a whole plan and keeps every change that is not a no-op in
// Plan.Changes.
func Read(r io.Reader, opts Options) (*Plan, error) {
	var changes []Change
	p, err := Decode(r, opts, func(c *Change) error {
		changes = append(changes, *c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.Changes = changes
	return p, nil
}

// Decode streams a plan from r. It calls visit once for each resource change
// whose action is not no-op, in document order, as soon as it is read, and
// returns what the document says as a whole (with Changes left empty). An
// error from visit stops decoding and is returned as is. A large document
// is read ahead from r by a goroutine of Decode's own, which has ended when
// Decode returns: r is no longer read then.
func Decode(r io.Reader, opts Options, visit func(*Change) error) (*Plan, error) {
	cr := newRawReader(r, opts.MaxBytes)
	cr.prime()
	defer cr.stop()
	text, err := newTextReader(cr)
	if err != nil {
		return nil, err
	}
	d := &decoder{
		dec:   jsontext.NewDecoder(text),
		visit: visit,
		raw:   opts.Raw,
		plan:  &Plan{ByAction: map[Action]int{}, Applyable: true, Complete: true},
	}
	if err := d.document(); err != nil {
		return nil, d.wrap(err)
	}
	cr.stop()
	d.plan.SHA256 = hex.EncodeToString(cr.h.Sum(nil))
	d.plan.Size = cr.n
	return d.plan, nil
}

// visitError marks an error returned by the caller's visit function so that
// it is passed through untouched.
type visitError struct{ err error }

func (e visitError) Error() string { return e.err.Error() }
func (e visitError) Unwrap() error { return e.err }

type decoder struct {
	dec   *jsontext.Decoder
	visit func(*Change) error
	raw   func(*RawChange) error
	plan  *Plan
	walk  walker // for the values of one change at a time

	rc      tfResourceChange  // the change being read
	scratch []byte            // an unescaped string, until the next read
	strs    map[string]string // the strings internString keeps

	// seen is where each object (address, and deposed key) was changed
	// first: a plan that changes one object twice could show a reviewer
	// one change and apply the other, so it is refused.
	seen map[string]int

	// what the top-level keys say the document is
	terraformKeys []string
	pulumiKeys    []string
	hasValues     bool
	hasFormat     bool
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(\.\d+)?$`)

func checkVersion(field, v string) error {
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return fmt.Errorf("%w: %s %q is not a version number", ErrUnsupported, field, v)
	}
	if major, _ := strconv.Atoi(m[1]); major > 1 {
		return fmt.Errorf("%w: %s %s is newer than this stepgate reads (0.x and 1.x); upgrade stepgate", ErrUnsupported, field, v)
	}
	return nil
}

func (d *decoder) document() error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no JSON document in the input", ErrEmpty)
		}
		return err
	}
	if tok.Kind() == '[' {
		// Text such as "[command]terraform show" from a wrapper script is
		// not an array: surface its syntax error first.
		if _, err := d.dec.ReadToken(); err != nil {
			return err
		}
	}
	if tok.Kind() != '{' {
		return fmt.Errorf("%w: the document is a JSON %s, want an object such as `terraform show -json` writes", ErrNotPlan, kindName(tok.Kind()))
	}
	for d.dec.PeekKind() != '}' {
		name, err := d.dec.ReadToken()
		if err != nil {
			return err
		}
		// `terraform plan -json` writes UI messages, one object per
		// line, each with "@level", "@message"...: no plan has such keys.
		if strings.HasPrefix(name.String(), "@") {
			return fmt.Errorf("%w: this is the log of terraform plan; give the output of terraform show -json", ErrNotPlan)
		}
		if err := d.member(name.String()); err != nil {
			return err
		}
	}
	if _, err := d.dec.ReadToken(); err != nil { // '}'
		return err
	}
	// Nothing may follow the plan: a second document or stray text means the
	// input was stitched together, and which part is "the plan" is unclear.
	if _, err := d.dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			return fmt.Errorf("%w: more data follows the plan object at byte offset %d (several documents in one file?)", ErrSyntax, d.dec.InputOffset())
		}
		return err
	}
	return d.finish()
}

func (d *decoder) member(name string) error {
	p := d.plan
	switch name {
	case "format_version":
		v, err := d.readString(name)
		if err != nil {
			return err
		}
		if err := checkVersion(name, v); err != nil {
			return err
		}
		p.FormatVersion, d.hasFormat = v, true
		return nil
	case "plan_format_version":
		v, err := d.readString(name)
		if err != nil {
			return err
		}
		if err := checkVersion(name, v); err != nil {
			return err
		}
		p.Format, p.FormatVersion = FormatHCPTerraform, v
		d.terraformKeys = append(d.terraformKeys, name)
		return nil
	case "terraform_version":
		v, err := d.readString(name)
		p.ToolVersion = v
		return err
	case "errored":
		v, err := d.readBool(name)
		p.Errored = v
		d.terraformKeys = append(d.terraformKeys, name)
		return err
	case "applyable":
		v, err := d.readBool(name)
		p.Applyable = v
		d.terraformKeys = append(d.terraformKeys, name)
		return err
	case "complete":
		v, err := d.readBool(name)
		p.Complete = v
		return err
	case "resource_changes":
		d.terraformKeys = append(d.terraformKeys, name)
		return d.terraformChanges()
	case "action_invocations":
		n, err := d.countArray(name)
		p.ActionInvocations = n
		return err
	case "planned_values", "prior_state", "configuration", "output_changes", "resource_drift", "relevant_attributes", "deferred_changes":
		d.terraformKeys = append(d.terraformKeys, name)
		if name == "deferred_changes" {
			p.Complete = false
		}
		return d.dec.SkipValue()
	case "values":
		d.hasValues = true
		return d.dec.SkipValue()
	case "steps":
		d.pulumiKeys = append(d.pulumiKeys, name)
		return d.pulumiSteps()
	case "changeSummary":
		d.pulumiKeys = append(d.pulumiKeys, name)
		return d.dec.SkipValue()
	case "diagnostics":
		return d.pulumiDiagnostics()
	default:
		return d.dec.SkipValue()
	}
}

func (d *decoder) finish() error {
	p := d.plan
	switch {
	case len(d.pulumiKeys) > 0 && len(d.terraformKeys) > 0:
		return fmt.Errorf("%w: the document has both Terraform (%s) and Pulumi (%s) sections", ErrNotPlan, d.terraformKeys[0], d.pulumiKeys[0])
	case len(d.pulumiKeys) > 0:
		p.Format = FormatPulumi
	case len(d.terraformKeys) > 0:
		if p.Format == "" {
			p.Format = FormatTerraform
		}
	case d.hasValues && d.hasFormat:
		return fmt.Errorf("%w: this is Terraform state (it has `values` but no `resource_changes` or `planned_values`); save a plan with `terraform plan -out tfplan` and pass `terraform show -json tfplan`", ErrNotPlan)
	default:
		return fmt.Errorf("%w: the object has none of the sections of a Terraform, OpenTofu or Pulumi plan (resource_changes, planned_values, steps)", ErrNotPlan)
	}
	return nil
}

func (d *decoder) readString(field string) (string, error) {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return "", err
	}
	if tok.Kind() != '"' {
		return "", fmt.Errorf("%w: %s is a JSON %s, want a string", ErrInvalid, field, kindName(tok.Kind()))
	}
	return tok.String(), nil
}

func (d *decoder) readBool(field string) (bool, error) {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return false, err
	}
	switch tok.Kind() {
	case 't', 'f':
		return tok.Bool(), nil
	}
	return false, fmt.Errorf("%w: %s is a JSON %s, want true or false", ErrInvalid, field, kindName(tok.Kind()))
}

// openArray reads the start of an array. It reports false for null.
func (d *decoder) openArray(field string) (bool, error) {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return false, err
	}
	switch tok.Kind() {
	case 'n':
		return false, nil
	case '[':
		return true, nil
	}
	return false, fmt.Errorf("%w: %s is a JSON %s, want an array", ErrInvalid, field, kindName(tok.Kind()))
}

func (d *decoder) countArray(field string) (int, error) {
	ok, err := d.openArray(field)
	if err != nil || !ok {
		return 0, err
	}
	n := 0
	for d.dec.PeekKind() != ']' {
		if err := d.dec.SkipValue(); err != nil {
			return n, err
		}
		n++
	}
	_, err = d.dec.ReadToken()
	return n, err
}

// once refuses the second change of one object: key names the object, i is
// the position of this change in its section.
func (d *decoder) once(section, key, what string, i int) error {
	if d.seen == nil {
		d.seen = map[string]int{}
	}
	if first, dup := d.seen[key]; dup {
		return fmt.Errorf("%w: %s[%d]: %s is changed twice (first at %s[%d]); a plan changes each object once",
			ErrInvalid, section, i, what, section, first)
	}
	d.seen[key] = i
	return nil
}

func (d *decoder) emit(c *Change) error {
	d.plan.ByAction[c.Action]++
	if c.Action == ActionNoOp || d.visit == nil {
		return nil
	}
	if err := d.visit(c); err != nil {
		return visitError{err}
	}
	return nil
}

// wrap turns what the JSON reader says into the errors of this package, with
// the byte offset where the input went wrong. The byte counter's error
// (ErrTooLarge) is already one of them.
func (d *decoder) wrap(err error) error {
	var ve visitError
	if errors.As(err, &ve) {
		return ve.err
	}
	if IsBadInput(err) {
		return err
	}
	var se *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the document ends at byte offset %d before it is complete (truncated?)", ErrSyntax, d.dec.InputOffset())
	case errors.As(err, &se):
		msg := se.Err.Error()
		if se.ByteOffset < 16 {
			msg += startHint(msg)
		}
		if ptr := string(se.JSONPointer); ptr != "" {
			return fmt.Errorf("%w: at byte offset %d (at %s): %s", ErrSyntax, se.ByteOffset, ptr, msg)
		}
		return fmt.Errorf("%w: at byte offset %d: %s", ErrSyntax, se.ByteOffset, msg)
	}
	return fmt.Errorf("reading plan: %w", err)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "value"
}

// badStart is the character a document that is not JSON starts with, as the
// JSON reader quotes it.
var badStart = regexp.MustCompile(`invalid character '(\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|[^'])`)

// startHint says what a document that is not JSON from its first bytes
// may be: text printed before the plan (a CI wrapper), or a binary file.
func startHint(msg string) string {
	m := badStart.FindStringSubmatch(msg)
	if m != nil && (strings.HasPrefix(m[1], `\x`) || strings.HasPrefix(m[1], `\u`)) {
		return " (this is a binary file, not a plan's JSON: a saved plan goes to --plan-file, and its JSON, from `terraform show -json`, to --plan)"
	}
	return " (is something printing text before the plan, such as hashicorp/setup-terraform's wrapper? set terraform_wrapper: false)"
}
