package plan

import "errors"

// Errors that say the input is not a plan stepgate can read. Callers check
// them with errors.Is, or with IsBadInput for all of them at once.
var (
	ErrEmpty       = errors.New("plan is empty")
	ErrSyntax      = errors.New("plan is not valid JSON")
	ErrNotPlan     = errors.New("not a plan")
	ErrUnsupported = errors.New("unsupported plan format")
	ErrTooLarge    = errors.New("plan is too large")
	ErrInvalid     = errors.New("invalid plan")
)

// IsBadInput reports whether err says the input itself is wrong, as opposed
// to a failure to read it.
func IsBadInput(err error) bool {
	for _, e := range []error{ErrEmpty, ErrSyntax, ErrNotPlan, ErrUnsupported, ErrTooLarge, ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
