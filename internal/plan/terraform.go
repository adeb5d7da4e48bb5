package plan

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// tfResourceChange is one element of resource_changes as Terraform and
// OpenTofu write it (format_version 0.1 to 1.x).
type tfResourceChange struct {
	Address         string
	PreviousAddress string
	Deposed         string
	ModuleAddress   string
	Mode            string
	Type            string
	Name            string
	// Index is the count index or for_each key, decoded as it is read;
	// IndexErr says why it could not be (reported only for a change that
	// is not a no-op).
	Index        any
	IndexErr     error
	ProviderName string
	ActionReason string
	HasChange    bool
	Change       tfChange
}

type tfChange struct {
	Actions         []string
	Before          jsontext.Value
	After           jsontext.Value
	AfterUnknown    []string       // the paths of after_unknown's true leaves
	UnknownErr      error          // why after_unknown could not be read
	UnknownRaw      jsontext.Value // after_unknown as written, kept for Options.Raw
	BeforeSensitive jsontext.Value
	AfterSensitive  jsontext.Value
	ReplacePaths    []string // formatted with formatPath
	Importing       bool     // importing is there and not null
}

func (d *decoder) terraformChanges() error {
	ok, err := d.openArray("resource_changes")
	if err != nil || !ok {
		return err
	}
	for i := 0; d.dec.PeekKind() != ']'; i++ {
		rc := &d.rc
		*rc = tfResourceChange{}
		if err := d.readResourceChange(rc); err != nil {
			if streamErr(err) {
				return err
			}
			return fmt.Errorf("%w: resource_changes[%d]: %w", ErrInvalid, i, err)
		}
		c, err := normalizeTerraform(rc, &d.walk)
		if err != nil {
			return fmt.Errorf("%w: resource_changes[%d]: %w", ErrInvalid, i, err)
		}
		key, what := rc.Address, rc.Address
		if rc.Deposed != "" {
			key, what = rc.Address+"\x00"+rc.Deposed, rc.Address+" (deposed object "+rc.Deposed+")"
		}
		if err := d.once("resource_changes", key, what, i); err != nil {
			return err
		}
		if d.raw != nil {
			if err := d.emitRaw(rc, c); err != nil {
				return err
			}
		}
		if err := d.emit(c); err != nil {
			return err
		}
	}
	_, err = d.dec.ReadToken()
	return err
}

// streamErr reports whether err is about the document as a whole (bad JSON,
// truncation, size) rather than about the change being read.
func streamErr(err error) bool {
	var se *jsontext.SyntacticError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrTooLarge)
}

// readResourceChange reads one element of resource_changes token by token:
// the stream is parsed once, and only the values kept are copied.
func (d *decoder) readResourceChange(rc *tfResourceChange) error {
	if err := d.openObject("the change"); err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		k, err := d.readName()
		if err != nil {
			return err
		}
		switch string(k) {
		case "address":
			rc.Address, err = d.optString("address")
		case "previous_address":
			rc.PreviousAddress, err = d.optString("previous_address")
		case "deposed":
			rc.Deposed, err = d.optString("deposed")
		case "module_address":
			rc.ModuleAddress, err = d.internString("module_address")
		case "mode":
			rc.Mode, err = d.internString("mode")
		case "type":
			rc.Type, err = d.internString("type")
		case "name":
			rc.Name, err = d.optString("name")
		case "provider_name":
			rc.ProviderName, err = d.internString("provider_name")
		case "action_reason":
			rc.ActionReason, err = d.internString("action_reason")
		case "index":
			var raw jsontext.Value
			if raw, err = d.dec.ReadValue(); err == nil {
				rc.Index, rc.IndexErr = d.decodeIndex(raw)
			}
		case "change":
			rc.HasChange = true
			err = d.readChangeBody(&rc.Change)
		default:
			err = d.dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// noOpSkips reports whether a member of a no-op change is not read.
func noOpSkips(k []byte) bool {
	switch string(k) {
	case "before", "after", "after_unknown", "before_sensitive", "after_sensitive":
		return true
	}
	return false
}

func (d *decoder) readChangeBody(ch *tfChange) error {
	if err := d.openObject("change"); err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		k, err := d.readName()
		if err != nil {
			return err
		}
		// A no-op's values are never passed on (normalizeTerraform counts
		// it and stops): when its actions came first, as Terraform writes
		// them, its values are skipped rather than copied.
		if len(ch.Actions) == 1 && ch.Actions[0] == "no-op" && noOpSkips(k) {
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		switch string(k) {
		case "actions":
			ch.Actions, err = d.stringArray("actions")
		case "before":
			ch.Before, err = d.keepValue()
		case "after":
			ch.After, err = d.keepValue()
		case "after_unknown":
			// Walked as it is read, rather than copied to be walked later.
			var raw jsontext.Value
			if raw, err = d.dec.ReadValue(); err == nil && marksSomething(raw) {
				ch.AfterUnknown, ch.UnknownErr = d.walk.unknownPathList(raw)
				if d.raw != nil {
					ch.UnknownRaw = bytes.Clone(raw)
				}
			}
		case "before_sensitive":
			ch.BeforeSensitive, err = d.keepIfTrue()
		case "after_sensitive":
			ch.AfterSensitive, err = d.keepIfTrue()
		case "importing":
			var raw jsontext.Value
			if raw, err = d.dec.ReadValue(); err == nil {
				ch.Importing = raw.Kind() != 'n'
			}
		case "replace_paths":
			var raw jsontext.Value
			if raw, err = d.dec.ReadValue(); err == nil && raw.Kind() != 'n' {
				if ch.ReplacePaths, err = d.walk.replacePaths(raw); err != nil {
					err = fmt.Errorf("replace_paths: %w", err)
				}
			}
		default:
			err = d.dec.SkipValue()
		}
		if err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
}

// readName reads an object member's name. The bytes are valid until the
// next read: a name is compared, never kept.
func (d *decoder) readName() ([]byte, error) {
	if d.dec.PeekKind() != '"' {
		// Not a name: ReadToken says what is wrong where, as it did.
		tok, err := d.dec.ReadToken()
		return []byte(tok.String()), err
	}
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	return d.unquote(raw)
}

// unquote returns the text of a JSON string just read, valid until the
// next read.
func (d *decoder) unquote(raw jsontext.Value) ([]byte, error) {
	if b := raw[1 : len(raw)-1]; bytes.IndexByte(b, '\\') < 0 {
		return b, nil
	}
	var err error
	d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], raw)
	return d.scratch, err
}

// maxInterned caps the strings that internString keeps.
const maxInterned = 4096

// internString is optString for the fields whose few values repeat from
// one change to the next (types, providers, modes): each distinct value is
// allocated once.
func (d *decoder) internString(field string) (string, error) {
	if d.dec.PeekKind() != '"' {
		return d.optString(field)
	}
	raw, err := d.dec.ReadValue()
	if err != nil {
		return "", err
	}
	b, err := d.unquote(raw)
	if err != nil {
		return "", err
	}
	if s, ok := d.strs[string(b)]; ok {
		return s, nil
	}
	s := string(b)
	if len(d.strs) < maxInterned {
		if d.strs == nil {
			d.strs = map[string]string{}
		}
		d.strs[s] = s
	}
	return s, nil
}

func (d *decoder) openObject(what string) error {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '{' {
		return fmt.Errorf("%s is a JSON %s, want an object", what, kindName(tok.Kind()))
	}
	return nil
}

// optString reads a string; null reads as "".
func (d *decoder) optString(field string) (string, error) {
	if d.dec.PeekKind() == '"' {
		// Unescaped once, into scratch, rather than by Token.String.
		raw, err := d.dec.ReadValue()
		if err != nil {
			return "", err
		}
		b, err := d.unquote(raw)
		return string(b), err
	}
	tok, err := d.dec.ReadToken()
	if err != nil {
		return "", err
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 'n':
		return "", nil
	}
	return "", fmt.Errorf("%s is a JSON %s, want a string", field, kindName(tok.Kind()))
}

func (d *decoder) stringArray(field string) ([]string, error) {
	ok, err := d.openArray(field)
	if err != nil || !ok {
		return nil, err
	}
	out := []string{}
	for d.dec.PeekKind() != ']' {
		s, err := d.internString(field)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	_, err = d.dec.ReadToken()
	return out, err
}

// keepValue reads a value and keeps a copy of its JSON text (the decoder
// reuses its buffer).
func (d *decoder) keepValue() (jsontext.Value, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(raw), nil
}

// keepIfTrue keeps a marker tree (*_sensitive) only when it marks
// something: most are {} or false.
func (d *decoder) keepIfTrue() (jsontext.Value, error) {
	raw, err := d.dec.ReadValue()
	if err != nil || !marksSomething(raw) {
		return nil, err
	}
	return bytes.Clone(raw), nil
}

// marksSomething reports whether a marker tree may have a true leaf.
func marksSomething(raw jsontext.Value) bool { return bytes.Contains(raw, []byte("true")) }

func normalizeTerraform(rc *tfResourceChange, w *walker) (*Change, error) {
	if rc.Address == "" {
		return nil, fmt.Errorf("has no address")
	}
	if !rc.HasChange {
		return nil, fmt.Errorf("%s has no change", rc.Address)
	}
	mode := Mode(rc.Mode)
	switch mode {
	case ModeManaged, ModeData:
	case "":
		mode = ModeManaged
	default:
		return nil, fmt.Errorf("%s has unknown mode %q", rc.Address, rc.Mode)
	}
	ch := &rc.Change
	importing := ch.Importing
	action, err := terraformAction(ch.Actions, importing)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rc.Address, err)
	}
	c := &Change{
		Address:         rc.Address,
		PreviousAddress: rc.PreviousAddress,
		ModuleAddress:   rc.ModuleAddress,
		Type:            rc.Type,
		Name:            rc.Name,
		Provider:        rc.ProviderName,
		Mode:            mode,
		Actions:         ch.Actions,
		Action:          action,
		ActionReason:    rc.ActionReason,
		Importing:       importing,
	}
	if c.Actions == nil {
		c.Actions = []string{}
	}
	if action == ActionNoOp {
		return c, nil // counted, never passed on: skip decoding the values
	}
	if rc.IndexErr != nil {
		return nil, fmt.Errorf("%s: index: %w", rc.Address, rc.IndexErr)
	}
	c.Index = rc.Index
	var sensPaths []string
	before, err := w.maskJSON(ch.Before, ch.BeforeSensitive, &sensPaths)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rc.Address, err)
	}
	after, err := w.maskJSON(ch.After, ch.AfterSensitive, &sensPaths)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rc.Address, err)
	}
	c.Before, c.After = stdjson.RawMessage(before), stdjson.RawMessage(after)
	c.SensitivePaths = dedupe(sensPaths)
	if ch.UnknownErr != nil {
		return nil, fmt.Errorf("%s: after_unknown: %w", rc.Address, ch.UnknownErr)
	}
	c.AfterUnknown = ch.AfterUnknown
	c.ReplacePaths = ch.ReplacePaths
	return c, nil
}

// emitRaw passes a change as it was written to Options.Raw.
func (d *decoder) emitRaw(rc *tfResourceChange, c *Change) error {
	r := &RawChange{
		Address:         rc.Address,
		PreviousAddress: rc.PreviousAddress,
		Deposed:         rc.Deposed,
		Provider:        rc.ProviderName,
		Actions:         c.Actions,
		Importing:       rc.Change.Importing,
	}
	if c.Action != ActionNoOp {
		r.Before, r.After, r.AfterUnknown = rc.Change.Before, rc.Change.After, rc.Change.UnknownRaw
	}
	if err := d.raw(r); err != nil {
		return visitError{err}
	}
	return nil
}

// terraformAction maps the actions list of a Terraform change to one word.
func terraformAction(actions []string, importing bool) (Action, error) {
	switch joinActions(actions) {
	case "no-op", "":
		// An empty list is not written by Terraform, but by tools that
		// trim plans; it means nothing is done.
		if importing {
			return ActionImport, nil
		}
		return ActionNoOp, nil
	case "create":
		return ActionCreate, nil
	case "update":
		return ActionUpdate, nil
	case "delete":
		return ActionDelete, nil
	case "read":
		return ActionRead, nil
	case "forget":
		return ActionForget, nil
	case "delete,create", "create,delete":
		return ActionReplace, nil
	}
	return "", fmt.Errorf("unknown actions %q", actions)
}

// decodeIndex decodes a count index (a number) or a for_each key (a
// string) just read.
func (d *decoder) decodeIndex(raw jsontext.Value) (any, error) {
	switch raw.Kind() {
	case 0, 'n':
		return nil, nil
	case '"':
		s, err := d.unquote(raw)
		return string(s), err
	case '0':
		return stdjson.Number(raw), nil
	}
	return nil, fmt.Errorf("is a JSON %s, want a number or a string", kindName(raw.Kind()))
}
