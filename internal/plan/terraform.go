package plan

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"

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
	Change          *struct {
		Actions         []string       `json:"actions"`
		Before          jsontext.Value `json:"before"`
		After           jsontext.Value `json:"after"`
		AfterUnknown    jsontext.Value `json:"after_unknown"`
		BeforeSensitive jsontext.Value `json:"before_sensitive"`
		AfterSensitive  jsontext.Value `json:"after_sensitive"`
		ReplacePaths    [][]any        `json:"replace_paths"`
		Importing       jsontext.Value `json:"importing"`
	} `json:"change"`
}

func (d *decoder) terraformChanges() error {
	ok, err := d.openArray("resource_changes")
	if err != nil || !ok {
		return err
	}
	for i := 0; d.dec.PeekKind() != ']'; i++ {
		raw, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		c, err := normalizeTerraform(raw)
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

func normalizeTerraform(raw jsontext.Value) (*Change, error) {
	if raw.Kind() != '{' {
		return nil, fmt.Errorf("is a JSON %s, want an object", kindName(raw.Kind()))
	}
	var rc tfResourceChange
	if err := json.Unmarshal(raw, &rc); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
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
	if c.Index, err = decodeAny(rc.Index); err != nil {
		return nil, fmt.Errorf("%s: index: %w", rc.Address, err)
	}
	var sensPaths []string
	for _, v := range []struct {
		dst        *any
		val, sense jsontext.Value
	}{{&c.Before, ch.Before, ch.BeforeSensitive}, {&c.After, ch.After, ch.AfterSensitive}} {
		val, err := decodeAny(v.val)
		if err != nil {
			return nil, fmt.Errorf("%s: values: %w", rc.Address, err)
		}
		sense, err := decodeAny(v.sense)
		if err != nil {
			return nil, fmt.Errorf("%s: sensitive markers: %w", rc.Address, err)
		}
		*v.dst = mask(val, sense, "", &sensPaths)
	}
	c.SensitivePaths = dedupe(sensPaths)
	unknown, err := decodeAny(ch.AfterUnknown)
	if err != nil {
		return nil, fmt.Errorf("%s: after_unknown: %w", rc.Address, err)
	}
	truePaths(unknown, "", &c.AfterUnknown)
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

// decodeAny decodes a JSON value with numbers kept as json.Number, so that
// large integers (account ids, ports) are not rounded.
func decodeAny(raw jsontext.Value) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := stdjson.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
