package gate

import (
	"testing"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/store"
)

// The API names check states as the store does: a check's state passes
// from one to the other as it is.
func TestStatesAreTheAPIs(t *testing.T) {
	for s, a := range map[store.CheckState]string{
		store.StateAllowed: api.StateAllowed, store.StatePending: api.StatePending, store.StateApproved: api.StateApproved,
		store.StateRejected: api.StateRejected, store.StateDenied: api.StateDenied, store.StateExpired: api.StateExpired,
		store.StateConsumed: api.StateConsumed,
	} {
		if string(s) != a {
			t.Errorf("store state %q is %q in the API", s, a)
		}
	}
}
