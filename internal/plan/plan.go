package plan

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Format names the kind of document a plan was read from.
type Format string

const (
	// FormatTerraform is `terraform show -json` or `tofu show -json` output.
	FormatTerraform Format = "terraform"
	// FormatHCPTerraform is the redacted plan JSON served by HCP Terraform and
	// Terraform Enterprise to run tasks (it has plan_format_version).
	FormatHCPTerraform Format = "hcp-terraform"
	// FormatPulumi is `pulumi preview --json` output.
	FormatPulumi Format = "pulumi"
)

// Action is the one word that says what a change does to its resource.
type Action string

// The actions a change can have. Replace covers both orders of
// ["delete","create"] and ["create","delete"].
const (
	ActionCreate  Action = "create"
	ActionUpdate  Action = "update"
	ActionDelete  Action = "delete"
	ActionReplace Action = "replace"
	ActionRead    Action = "read"
	ActionNoOp    Action = "no-op"
	ActionForget  Action = "forget"
	ActionImport  Action = "import"
)

// Actions lists every action in a stable order, for reports.
var Actions = []Action{ActionCreate, ActionUpdate, ActionReplace, ActionDelete, ActionImport, ActionForget, ActionRead, ActionNoOp}

// IsChange reports whether an action modifies infrastructure: anything but
// no-op and read.
func (a Action) IsChange() bool { return a != ActionNoOp && a != ActionRead }

// IsDestructive reports whether an action removes the resource's current
// object (delete or replace).
func (a Action) IsDestructive() bool { return a == ActionDelete || a == ActionReplace }

// Mode says whether a resource is managed by the plan or only read (a data
// source).
type Mode string

const (
	ModeManaged Mode = "managed"
	ModeData    Mode = "data"
)

// Mask replaces every value that a plan marks as sensitive. Policies and
// reports see this string, never the value.
const Mask = "(sensitive value)"

// Change is one normalized resource change.
type Change struct {
	Address         string   `json:"address"`
	PreviousAddress string   `json:"previous_address,omitempty"`
	ModuleAddress   string   `json:"module_address,omitempty"`
	Type            string   `json:"type"`
	Name            string   `json:"name"`
	Index           any      `json:"index,omitempty"` // an integer (count) or a string (for_each)
	Provider        string   `json:"provider"`
	Mode            Mode     `json:"mode"`
	Actions         []string `json:"actions"` // as written in the plan
	Action          Action   `json:"action"`
	ActionReason    string   `json:"action_reason,omitempty"`
	Importing       bool     `json:"importing,omitempty"`
	// Before and After hold the attribute values as JSON, with every
	// sensitive value replaced by Mask. Values decodes them. A value with
	// sensitive parts is rewritten compact, its members in the plan's
	// order; any other is the plan's text as it is.
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	// Paths use dots for attributes and [n] for list elements:
	// "tags.Name", "ebs_block_device[0].volume_id".
	AfterUnknown   []string `json:"after_unknown,omitempty"`
	SensitivePaths []string `json:"sensitive_paths,omitempty"`
	ReplacePaths   []string `json:"replace_paths,omitempty"`
}

// Plan is what a document says as a whole. Its Changes hold every change whose
// action is not no-op; no-ops are only counted.
type Plan struct {
	Format        Format `json:"format"`
	FormatVersion string `json:"format_version"`
	ToolVersion   string `json:"tool_version,omitempty"`
	// Errored is true when the tool reported an error while planning.
	Errored bool `json:"errored"`
	// Applyable is false when the tool said the plan cannot be applied.
	Applyable bool `json:"applyable"`
	// Complete is false when some changes were deferred to a later plan.
	Complete bool `json:"complete"`
	// ByAction counts every resource change, no-ops included.
	ByAction map[Action]int `json:"by_action"`
	// ActionInvocations counts Terraform 1.14 action invocations.
	ActionInvocations int      `json:"action_invocations,omitempty"`
	Changes           []Change `json:"-"`
	// SHA256 is the hex digest of the bytes read, before any decoding.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Total is the number of resource changes, no-ops and reads included.
func (p *Plan) Total() int {
	n := 0
	for _, c := range p.ByAction {
		n += c
	}
	return n
}

// ChangeCount is the number of changes that modify infrastructure.
func (p *Plan) ChangeCount() int {
	n := 0
	for a, c := range p.ByAction {
		if a.IsChange() {
			n += c
		}
	}
	return n
}

// Values decodes Before and After, with numbers as json.Number so that
// large integers keep every digit. A missing value is nil.
func (c *Change) Values() (before, after any, err error) {
	if before, err = decodeAny(c.Before); err != nil {
		return nil, nil, err
	}
	after, err = decodeAny(c.After)
	return before, after, err
}

func decodeAny(raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func joinActions(a []string) string { return strings.Join(a, ",") }
