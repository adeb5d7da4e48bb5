package planfile

import (
	"fmt"
	"slices"
	"strings"
)

// MismatchError names the first change on which a saved plan and a plan
// JSON differ. It matches ErrMismatch.
type MismatchError struct {
	// Address is the change's address ("" for the plan as a whole).
	Address string
	// What says what differs, such as "after.input differs" or "action
	// update in the JSON, delete in the saved plan".
	What string
}

func (e *MismatchError) Error() string {
	if e.Address == "" {
		return fmt.Sprintf("%s: %s", ErrMismatch, e.What)
	}
	return fmt.Sprintf("%s: %s: %s", ErrMismatch, e.Address, e.What)
}

func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Compare checks that a plan JSON and a saved plan describe the same
// resource changes: the same addresses (and deposed objects), actions,
// import, previous address and provider, and for every change that is not
// a no-op the same before and after values, unknown matching unknown. It
// returns nil or a *MismatchError naming the first difference, in the
// JSON's order.
func Compare(j *JSONPlan, s *Plan) error {
	saved := make(map[string]*Change, len(s.Changes))
	for i := range s.Changes {
		c := &s.Changes[i]
		if _, dup := saved[c.key()]; dup {
			return &MismatchError{Address: c.key(), What: "appears twice in the saved plan"}
		}
		saved[c.key()] = c
	}
	seen := make(map[string]bool, len(j.Changes))
	for i := range j.Changes {
		jc := &j.Changes[i]
		k := jc.key()
		if seen[k] {
			return &MismatchError{Address: k, What: "appears twice in the JSON"}
		}
		seen[k] = true
		sc, ok := saved[k]
		if !ok {
			return &MismatchError{Address: k, What: fmt.Sprintf("%s in the JSON, not in the saved plan", actionWord(jc.Actions))}
		}
		if what := compareChange(jc, sc); what != "" {
			return &MismatchError{Address: k, What: what}
		}
	}
	for i := range s.Changes {
		if sc := &s.Changes[i]; !seen[sc.key()] {
			return &MismatchError{Address: sc.key(), What: fmt.Sprintf("%s in the saved plan, not in the JSON", actionWord(sc.Actions))}
		}
	}
	if j.ActionInvocations != s.ActionInvocations {
		return &MismatchError{What: fmt.Sprintf("%d action invocations in the JSON, %d in the saved plan", j.ActionInvocations, s.ActionInvocations)}
	}
	return nil
}

func compareChange(j, s *Change) string {
	if !slices.Equal(j.Actions, s.Actions) {
		jw, sw := actionWord(j.Actions), actionWord(s.Actions)
		if jw == sw {
			jw, sw = strings.Join(j.Actions, ","), strings.Join(s.Actions, ",")
		}
		return fmt.Sprintf("action %s in the JSON, %s in the saved plan", jw, sw)
	}
	if j.Importing != s.Importing {
		return fmt.Sprintf("importing is %t in the JSON, %t in the saved plan", j.Importing, s.Importing)
	}
	if j.PreviousAddress != s.PreviousAddress {
		return fmt.Sprintf("previous address %q in the JSON, %q in the saved plan", j.PreviousAddress, s.PreviousAddress)
	}
	if j.Provider != s.Provider {
		return fmt.Sprintf("provider %q in the JSON, %q in the saved plan", j.Provider, s.Provider)
	}
	if j.noOp() {
		return "" // no values applied
	}
	if what := compareDigest("before", &j.Before, &s.Before); what != "" {
		return what
	}
	return compareDigest("after", &j.After, &s.After)
}

// compareDigest names the first top-level attribute, in byte order, whose
// value differs.
func compareDigest(side string, j, s *Digest) string {
	if j.Attrs == nil || s.Attrs == nil {
		if j.Attrs != nil || s.Attrs != nil || j.Whole != s.Whole {
			return fmt.Sprintf("%s differs (%s in the JSON, %s in the saved plan)", side, j.kind(), s.kind())
		}
		return ""
	}
	keys := make([]string, 0, len(j.Attrs)+len(s.Attrs))
	for k := range j.Attrs {
		keys = append(keys, k)
	}
	for k := range s.Attrs {
		if _, ok := j.Attrs[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		jv, jok := j.Attrs[k]
		sv, sok := s.Attrs[k]
		switch {
		case !sok:
			return fmt.Sprintf("%s.%s is in the JSON only", side, k)
		case !jok:
			return fmt.Sprintf("%s.%s is in the saved plan only", side, k)
		case jv != sv:
			switch {
			case jv == sumUnknown:
				return fmt.Sprintf("%s.%s differs (unknown in the JSON, known in the saved plan)", side, k)
			case sv == sumUnknown:
				return fmt.Sprintf("%s.%s differs (known in the JSON, unknown in the saved plan)", side, k)
			}
			return fmt.Sprintf("%s.%s differs", side, k)
		}
	}
	return ""
}

func (d *Digest) kind() string {
	switch {
	case d.Attrs != nil:
		return "an object"
	case d.Whole == sumNull:
		return "null"
	case d.Whole == sumUnknown:
		return "unknown"
	}
	return "a value"
}

// actionWord is the one word for a change's actions, as stepgate reports
// them (replace for both orders of delete and create).
func actionWord(actions []string) string {
	switch a := strings.Join(actions, ","); a {
	case "delete,create", "create,delete":
		return "replace"
	case "":
		return "no-op"
	default:
		return a
	}
}
