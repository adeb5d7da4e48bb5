package planfile

import "errors"

// Errors of Read and Compare. Callers check them with errors.Is.
var (
	// ErrInvalid says the input is not a saved plan stepgate can read: not
	// a zip, no tfplan entry, malformed protocol buffers or values.
	ErrInvalid = errors.New("invalid saved plan")
	// ErrUnsupported says the saved plan is of a format version, or has
	// fields, that this stepgate does not know: it cannot be verified.
	ErrUnsupported = errors.New("unsupported saved plan format")
	// ErrTooLarge says a size cap was reached.
	ErrTooLarge = errors.New("saved plan is too large")
	// ErrMismatch says the saved plan and the plan JSON describe different
	// changes; the error is a *MismatchError.
	ErrMismatch = errors.New("the saved plan does not match the plan JSON")
)
