package planfile

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// FormatVersion is the version of the tfplan protocol buffers format this
// package reads (tfplanFormatVersion in Terraform and OpenTofu, 1.0 on).
const FormatVersion = 3

// Change is one resource instance change, from either side, reduced to
// what is compared.
type Change struct {
	Address         string
	PreviousAddress string
	Deposed         string
	// Provider is the provider's source address, such as
	// registry.terraform.io/hashicorp/aws (the JSON's provider_name).
	Provider string
	// Actions as `show -json` writes them: ["create"], ["delete","create"].
	Actions   []string
	Importing bool
	// Before and After are unset for a no-op, whose values are not applied.
	Before, After Digest
}

func (c *Change) noOp() bool { return len(c.Actions) == 1 && c.Actions[0] == "no-op" }

// key identifies a change within a plan.
func (c *Change) key() string {
	if c.Deposed == "" {
		return c.Address
	}
	return c.Address + " (deposed object " + c.Deposed + ")"
}

// The fields of the messages read, by number (planfile.proto). Fields a
// message may have and that are not compared are listed as known so that
// an unknown one, from a format this package does not know, fails closed.
var (
	// Plan: version 1, variables 2, resource_changes 3, output_changes 4,
	// target_addrs 5, backend 13, terraform_version 14, relevant_attributes
	// 15, force_replace_addrs 16, ui_mode 17, resource_drift 18,
	// check_results 19, errored 20, timestamp 21, function_results 22,
	// applyable 25, complete 26, deferred_changes 27, apply_time_variables
	// 28, state_store 29, action_invocations 30,
	// deferred_action_invocations 31, action_target_addrs 32.
	planFields = fieldSet(1, 2, 3, 4, 5, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 25, 26, 27, 28, 29, 30, 31, 32)
	// ResourceInstanceChange: deposed_key 7, provider 8, change 9, private
	// 10, required_replace 11, action_reason 12, addr 13, prev_run_addr 14.
	resourceFields = fieldSet(7, 8, 9, 10, 11, 12, 13, 14)
	// Change: action 1, values 2, before_sensitive_paths 3,
	// after_sensitive_paths 4, importing 5, generated_config 6,
	// before_identity 7, after_identity 8.
	changeFields = fieldSet(1, 2, 3, 4, 5, 6, 7, 8)
)

func fieldSet(ns ...protowire.Number) map[protowire.Number]bool {
	m := map[protowire.Number]bool{}
	for _, n := range ns {
		m[n] = true
	}
	return m
}

// actionNames maps the Action enum to the actions `show -json` writes.
var actionNames = map[uint64][]string{
	0: {"no-op"},
	1: {"create"},
	2: {"read"},
	3: {"update"},
	5: {"delete"},
	6: {"delete", "create"},
	7: {"create", "delete"},
	8: {"forget"},
	9: {"create", "forget"},
}

// field is one field of a message.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	bytes []byte // for BytesType
	value uint64 // for VarintType, Fixed32Type, Fixed64Type
}

// fields splits a message into its fields. Groups are refused: the format
// has none.
func fields(msg string, b []byte, known map[protowire.Number]bool) ([]field, error) {
	var out []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, msg, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.value, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.value = uint64(v)
		case protowire.Fixed64Type:
			f.value, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			return nil, fmt.Errorf("%w: %s: field %d has wire type %d, which the format does not use", ErrInvalid, msg, num, typ)
		}
		if n < 0 {
			return nil, fmt.Errorf("%w: %s: field %d: %w", ErrInvalid, msg, num, protowire.ParseError(n))
		}
		b = b[n:]
		if !known[num] {
			return nil, fmt.Errorf("%w: %s has field %d, unknown to this stepgate", ErrUnsupported, msg, num)
		}
		out = append(out, f)
	}
	return out, nil
}

func (f *field) want(msg string, typ protowire.Type) error {
	if f.typ != typ {
		return fmt.Errorf("%w: %s: field %d has wire type %d, want %d", ErrInvalid, msg, f.num, f.typ, typ)
	}
	return nil
}

// readResourceChange decodes one ResourceInstanceChange.
func readResourceChange(b []byte) (Change, error) {
	const msg = "resource change"
	fs, err := fields(msg, b, resourceFields)
	if err != nil {
		return Change{}, err
	}
	var c Change
	var change []byte
	var provider string
	for _, f := range fs {
		wantType := protowire.BytesType
		if f.num == 12 {
			wantType = protowire.VarintType
		}
		if err := f.want(msg, wantType); err != nil {
			return Change{}, err
		}
		switch f.num {
		case 13:
			c.Address = string(f.bytes)
		case 14:
			c.PreviousAddress = string(f.bytes)
		case 7:
			c.Deposed = string(f.bytes)
		case 8:
			provider = string(f.bytes)
		case 9:
			if change != nil {
				return Change{}, fmt.Errorf("%w: %s has two changes", ErrInvalid, msg)
			}
			change = f.bytes
		}
	}
	if c.Address == "" {
		return Change{}, fmt.Errorf("%w: a resource change has no address", ErrInvalid)
	}
	if c.Provider, err = providerSource(provider); err != nil {
		return Change{}, fmt.Errorf("%w: %s: %w", ErrInvalid, c.Address, err)
	}
	if change == nil {
		return Change{}, fmt.Errorf("%w: %s has no change", ErrInvalid, c.Address)
	}
	if err := readChange(&c, change); err != nil {
		return Change{}, fmt.Errorf("%s: %w", c.Address, err)
	}
	return c, nil
}

// readChange decodes a Change into c: its action and its values' digests.
func readChange(c *Change, b []byte) error {
	const msg = "change"
	fs, err := fields(msg, b, changeFields)
	if err != nil {
		return err
	}
	var action uint64
	var values [][]byte
	for _, f := range fs {
		wantType := protowire.BytesType
		if f.num == 1 {
			wantType = protowire.VarintType
		}
		if err := f.want(msg, wantType); err != nil {
			return err
		}
		switch f.num {
		case 1:
			action = f.value
		case 2:
			v, err := dynamicValue(f.bytes)
			if err != nil {
				return err
			}
			values = append(values, v)
		case 5:
			c.Importing = true
		}
	}
	names, ok := actionNames[action]
	if !ok {
		return fmt.Errorf("%w: action %d, unknown to this stepgate", ErrUnsupported, action)
	}
	c.Actions = names
	// Which values a change carries depends on its action (changeFromTfplan
	// in Terraform): before only, after only, or both.
	var before, after []byte
	var want int
	switch action {
	case 0: // no-op: one value, left as it is
		want = 1
	case 1: // create
		want, after = 1, at(values, 0)
	case 5, 8: // delete, forget
		want, before = 1, at(values, 0)
	default: // read, update, the replaces, create then forget
		want, before, after = 2, at(values, 0), at(values, 1)
	}
	if len(values) != want {
		return fmt.Errorf("%w: a %s change has %d values, want %d", ErrInvalid, strings.Join(names, ","), len(values), want)
	}
	if c.noOp() {
		return nil
	}
	if c.Before, err = digestValue(before); err != nil {
		return fmt.Errorf("before: %w", err)
	}
	if c.After, err = digestValue(after); err != nil {
		return fmt.Errorf("after: %w", err)
	}
	return nil
}

func at(vs [][]byte, i int) []byte {
	if i < len(vs) {
		return vs[i]
	}
	return nil
}

// dynamicValue returns the msgpack of a DynamicValue. It has no other
// encoding today; one this package does not know fails closed.
func dynamicValue(b []byte) ([]byte, error) {
	fs, err := fields("value", b, fieldSet(1))
	if err != nil {
		return nil, err
	}
	var mp []byte
	for _, f := range fs {
		if err := f.want("value", protowire.BytesType); err != nil {
			return nil, err
		}
		mp = f.bytes
	}
	if mp == nil {
		mp = []byte{}
	}
	return mp, nil
}

// providerSource turns a provider configuration address, such as
// module.a.provider["registry.terraform.io/hashicorp/aws"].west, into the
// provider's source address, as the JSON's provider_name says it.
func providerSource(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	i := strings.Index(addr, `provider["`)
	if i < 0 {
		return "", fmt.Errorf("provider %q is not a provider configuration address", addr)
	}
	rest := addr[i+len(`provider["`):]
	j := strings.Index(rest, `"]`)
	if j < 0 {
		return "", fmt.Errorf("provider %q is not a provider configuration address", addr)
	}
	return rest[:j], nil
}
