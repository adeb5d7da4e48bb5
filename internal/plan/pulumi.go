package plan

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// pulumiStep is one element of `pulumi preview --json` steps.
type pulumiStep struct {
	Op             string       `json:"op"`
	URN            string       `json:"urn"`
	Provider       string       `json:"provider"`
	OldState       *pulumiState `json:"oldState"`
	NewState       *pulumiState `json:"newState"`
	ReplaceReasons []string     `json:"replaceReasons"`
	DiffReasons    []string     `json:"diffReasons"`
}

type pulumiState struct {
	Type    string         `json:"type"`
	Custom  *bool          `json:"custom"`
	Inputs  jsontext.Value `json:"inputs"`
	Outputs jsontext.Value `json:"outputs"`
}

// pulumiSecretSig marks an encoded secret in Pulumi's JSON: an object
// {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ...}.
const (
	pulumiSigKey    = "4dabf18193072939515e22adb298388d"
	pulumiSecretSig = "1b47061264138c4ac30d75fd1eb44270"
)

func (d *decoder) pulumiSteps() error {
	ok, err := d.openArray("steps")
	if err != nil || !ok {
		return err
	}
	// A replacement is reported as up to three steps for one URN
	// (create-replacement, replace, delete-replaced): pass on one change.
	replaced := map[string]bool{}
	for i := 0; d.dec.PeekKind() != ']'; i++ {
		raw, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		c, err := normalizePulumi(raw)
		if err != nil {
			return fmt.Errorf("%w: steps[%d]: %w", ErrInvalid, i, err)
		}
		if c.Action == ActionReplace {
			if replaced[c.Address] {
				continue
			}
			replaced[c.Address] = true
		}
		if err := d.once("steps", c.Address, c.Address, i); err != nil {
			return err
		}
		if err := d.emit(c); err != nil {
			return err
		}
	}
	_, err = d.dec.ReadToken()
	return err
}

func (d *decoder) pulumiDiagnostics() error {
	ok, err := d.openArray("diagnostics")
	if err != nil || !ok {
		return err
	}
	for d.dec.PeekKind() != ']' {
		raw, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		var diag struct {
			Severity string `json:"severity"`
		}
		if raw.Kind() == '{' {
			if err := json.Unmarshal(raw, &diag); err != nil {
				return fmt.Errorf("%w: diagnostics: %w", ErrInvalid, err)
			}
		}
		if diag.Severity == "error" {
			d.plan.Errored = true
		}
	}
	_, err = d.dec.ReadToken()
	return err
}

func pulumiAction(op string) (Action, error) {
	switch op {
	case "same":
		return ActionNoOp, nil
	case "create":
		return ActionCreate, nil
	case "update":
		return ActionUpdate, nil
	case "delete":
		return ActionDelete, nil
	case "replace", "create-replacement", "delete-replaced", "import-replacement":
		return ActionReplace, nil
	case "read", "refresh", "read-replacement":
		return ActionRead, nil
	case "import":
		return ActionImport, nil
	case "discard", "discard-replaced":
		return ActionForget, nil
	case "remove-pending-replace":
		return ActionDelete, nil
	}
	return "", fmt.Errorf("unknown op %q", op)
}

func normalizePulumi(raw jsontext.Value) (*Change, error) {
	if raw.Kind() != '{' {
		return nil, fmt.Errorf("is a JSON %s, want an object", kindName(raw.Kind()))
	}
	var st pulumiStep
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if st.URN == "" {
		return nil, fmt.Errorf("has no urn")
	}
	action, err := pulumiAction(st.Op)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", st.URN, err)
	}
	typ, name := pulumiURNParts(st.URN)
	for _, s := range []*pulumiState{st.NewState, st.OldState} {
		if s != nil && s.Type != "" {
			typ = s.Type
			break
		}
	}
	c := &Change{
		Address:      st.URN,
		Type:         typ,
		Name:         name,
		Provider:     strings.SplitN(typ, ":", 2)[0],
		Mode:         ModeManaged,
		Actions:      []string{st.Op},
		Action:       action,
		ActionReason: strings.Join(st.ReplaceReasons, ", "),
	}
	if action == ActionRead {
		c.Mode = ModeData
	}
	if action == ActionNoOp {
		return c, nil
	}
	var masked []string
	if c.Before, err = pulumiValues(st.OldState, &masked); err != nil {
		return nil, fmt.Errorf("%s: oldState: %w", st.URN, err)
	}
	if c.After, err = pulumiValues(st.NewState, &masked); err != nil {
		return nil, fmt.Errorf("%s: newState: %w", st.URN, err)
	}
	c.SensitivePaths = dedupe(masked)
	c.ReplacePaths = st.ReplaceReasons
	return c, nil
}

// pulumiValues returns a state's inputs (what the program declares, which a
// preview knows for new resources), with secrets masked.
func pulumiValues(s *pulumiState, masked *[]string) (stdjson.RawMessage, error) {
	if s == nil {
		return nil, nil
	}
	raw := s.Inputs
	if len(raw) == 0 || raw.Kind() == 'n' {
		raw = s.Outputs
	}
	if len(raw) == 0 || raw.Kind() == 'n' {
		return nil, nil
	}
	if !bytes.Contains(raw, []byte(pulumiSigKey)) {
		return stdjson.RawMessage(raw), nil
	}
	v, err := decodeAny(raw)
	if err != nil {
		return nil, err
	}
	return stdjson.Marshal(maskPulumiSecrets(v, "", masked))
}

func maskPulumiSecrets(v any, path string, masked *[]string) any {
	switch t := v.(type) {
	case map[string]any:
		if t[pulumiSigKey] == pulumiSecretSig {
			*masked = append(*masked, RootPath(path))
			return Mask
		}
		for k, e := range t {
			t[k] = maskPulumiSecrets(e, JoinKey(path, k), masked)
		}
	case []any:
		for i, e := range t {
			t[i] = maskPulumiSecrets(e, JoinIndex(path, i), masked)
		}
	}
	return v
}

// pulumiURNParts splits urn:pulumi:STACK::PROJECT::PARENT$TYPE::NAME into the
// resource's own type and its name.
func pulumiURNParts(urn string) (typ, name string) {
	parts := strings.Split(urn, "::")
	if len(parts) < 4 {
		return "", ""
	}
	qualified := parts[2]
	if i := strings.LastIndex(qualified, "$"); i >= 0 {
		qualified = qualified[i+1:]
	}
	return qualified, strings.Join(parts[3:], "::")
}
