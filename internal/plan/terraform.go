package plan

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// tfResourceChange is one element of resource_changes as Terraform and
// OpenTofu write it (format_version 0.1 to 1.x).
type tfResourceChange struct {
	Address         string         `json:"address"`
	PreviousAddress string         `json:"previous_address"`
	ModuleAddress   string         `json:"module_address"`
	Mode            string         `json:"mode"`
	Type            string         `json:"type"`
	Name            string         `json:"name"`
	Index           jsontext.Value `json:"index"`
	ProviderName    string         `json:"provider_name"`
	ActionReason    string         `json:"action_reason"`
	Change          *tfChange      `json:"change"`
}

type tfChange struct {
	Actions         []string       `json:"actions"`
	Before          jsontext.Value `json:"before"`
	After           jsontext.Value `json:"after"`
	AfterUnknown    jsontext.Value `json:"after_unknown"`
	BeforeSensitive jsontext.Value `json:"before_sensitive"`
	AfterSensitive  jsontext.Value `json:"after_sensitive"`
	ReplacePaths    [][]any        `json:"replace_paths"`
	Importing       jsontext.Value `json:"importing"`
}

func (d *decoder) terraformChanges() error {
	ok, err := d.openArray("resource_changes")
	if err != nil || !ok {
		return err
	}
	for i := 0; d.dec.PeekKind() != ']'; i++ {
		var rc tfResourceChange
		if err := d.readResourceChange(&rc); err != nil {
			if streamErr(err) {
				return err
			}
			return fmt.Errorf("%w: resource_changes[%d]: %w", ErrInvalid, i, err)
		}
		c, err := normalizeTerraform(&rc)
		if err != nil {
			return fmt.Errorf("%w: resource_changes[%d]: %w", ErrInvalid, i, err)
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
	return d.eachMember("the change", func(k string) (err error) {
		switch k {
		case "address":
			rc.Address, err = d.optString(k)
		case "previous_address":
			rc.PreviousAddress, err = d.optString(k)
		case "module_address":
			rc.ModuleAddress, err = d.optString(k)
		case "mode":
			rc.Mode, err = d.optString(k)
		case "type":
			rc.Type, err = d.optString(k)
		case "name":
			rc.Name, err = d.optString(k)
		case "provider_name":
			rc.ProviderName, err = d.optString(k)
		case "action_reason":
			rc.ActionReason, err = d.optString(k)
		case "index":
			rc.Index, err = d.keepValue()
		case "change":
			rc.Change = new(tfChange)
			err = d.readChangeBody(rc.Change)
		default:
			err = d.dec.SkipValue()
		}
		return err
	})
}

// noOpSkips reports whether a member of a no-op change is not read.
func noOpSkips(k string) bool {
	switch k {
	case "before", "after", "after_unknown", "before_sensitive", "after_sensitive":
		return true
	}
	return false
}

func (d *decoder) readChangeBody(ch *tfChange) error {
	return d.eachMember("change", func(k string) (err error) {
		// A no-op's values are never passed on (normalizeTerraform counts
		// it and stops): when its actions came first, as Terraform writes
		// them, its values are skipped rather than copied.
		if len(ch.Actions) == 1 && ch.Actions[0] == "no-op" && noOpSkips(k) {
			return d.dec.SkipValue()
		}
		switch k {
		case "actions":
			ch.Actions, err = d.stringArray(k)
		case "before":
			ch.Before, err = d.keepValue()
		case "after":
			ch.After, err = d.keepValue()
		case "after_unknown":
			ch.AfterUnknown, err = d.keepIfTrue()
		case "before_sensitive":
			ch.BeforeSensitive, err = d.keepIfTrue()
		case "after_sensitive":
			ch.AfterSensitive, err = d.keepIfTrue()
		case "importing":
			ch.Importing, err = d.keepValue()
		case "replace_paths":
			var raw jsontext.Value
			if raw, err = d.dec.ReadValue(); err == nil && raw.Kind() != 'n' {
				if err = json.Unmarshal(raw, &ch.ReplacePaths); err != nil {
					err = fmt.Errorf("replace_paths: %w", err)
				}
			}
		default:
			err = d.dec.SkipValue()
		}
		return err
	})
}

// eachMember reads a JSON object, calling fn with each member's name; fn
// must read (or skip) the member's value.
func (d *decoder) eachMember(what string, fn func(name string) error) error {
	if err := d.openObject(what); err != nil {
		return err
	}
	for d.dec.PeekKind() != '}' {
		name, err := d.dec.ReadToken()
		if err != nil {
			return err
		}
		if err := fn(name.String()); err != nil {
			return err
		}
	}
	_, err := d.dec.ReadToken()
	return err
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
		s, err := d.optString(field)
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

// keepIfTrue keeps a marker tree (after_unknown, *_sensitive) only when it
// marks something: most are {} or false.
func (d *decoder) keepIfTrue() (jsontext.Value, error) {
	raw, err := d.dec.ReadValue()
	if err != nil || !bytes.Contains(raw, []byte("true")) {
		return nil, err
	}
	return bytes.Clone(raw), nil
}

func normalizeTerraform(rc *tfResourceChange) (*Change, error) {
	if rc.Address == "" {
		return nil, fmt.Errorf("has no address")
	}
	if rc.Change == nil {
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
	ch := rc.Change
	importing := len(ch.Importing) > 0 && ch.Importing.Kind() != 'n'
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
	if c.Index, err = decodeIndex(rc.Index); err != nil {
		return nil, fmt.Errorf("%s: index: %w", rc.Address, err)
	}
	var sensPaths []string
	for _, v := range []struct {
		dst        *stdjson.RawMessage
		val, sense jsontext.Value
	}{{&c.Before, ch.Before, ch.BeforeSensitive}, {&c.After, ch.After, ch.AfterSensitive}} {
		if *v.dst, err = maskJSON(v.val, v.sense, &sensPaths); err != nil {
			return nil, fmt.Errorf("%s: %w", rc.Address, err)
		}
	}
	c.SensitivePaths = dedupe(sensPaths)
	if len(ch.AfterUnknown) > 0 {
		var unknown any
		if err := json.Unmarshal(ch.AfterUnknown, &unknown); err != nil {
			return nil, fmt.Errorf("%s: after_unknown: %w", rc.Address, err)
		}
		truePaths(unknown, "", &c.AfterUnknown)
	}
	for _, p := range ch.ReplacePaths {
		c.ReplacePaths = append(c.ReplacePaths, formatPath(p))
	}
	return c, nil
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

// decodeIndex reads a count index (a number) or a for_each key (a string).
func decodeIndex(raw jsontext.Value) (any, error) {
	switch raw.Kind() {
	case 0, 'n':
		return nil, nil
	case '"':
		s, err := jsontext.AppendUnquote(nil, raw)
		return string(s), err
	case '0':
		return stdjson.Number(raw), nil
	}
	return nil, fmt.Errorf("is a JSON %s, want a number or a string", kindName(raw.Kind()))
}

// maskJSON returns val with the values that sense marks replaced by Mask.
// Most values have no sensitive marker: they are passed on as they are,
// without being decoded.
func maskJSON(val, sense jsontext.Value, masked *[]string) (stdjson.RawMessage, error) {
	if len(val) == 0 || val.Kind() == 'n' {
		return nil, nil
	}
	if len(sense) == 0 {
		return stdjson.RawMessage(val), nil
	}
	s, err := decodeAny(sense)
	if err != nil {
		return nil, fmt.Errorf("sensitive markers: %w", err)
	}
	v, err := decodeAny(val)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	out, err := stdjson.Marshal(mask(v, s, "", masked))
	if err != nil {
		return nil, fmt.Errorf("encoding masked values: %w", err)
	}
	return out, nil
}
