package totp

import (
	"fmt"

	"github.com/stepgate/stepgate/internal/store"
)

// Reseal seals the seed of a TOTP credential again under the current
// master key (opening it with the master's previous keys too), for a master
// key rotation. It changes c in place; the caller writes it back. Other
// kinds of credential are left alone (false).
func (t *TOTP) Reseal(c *store.Credential) (bool, error) {
	if c.Kind != store.KindTOTP || len(c.SealedSecret) == 0 {
		return false, nil
	}
	seed, err := t.master.Open(c.SealedSecret, []byte(c.ID))
	if err != nil {
		return false, fmt.Errorf("opening totp seed of %s: %w", c.ID, err)
	}
	sealed, err := t.master.Seal(seed, []byte(c.ID))
	clear(seed)
	if err != nil {
		return false, fmt.Errorf("re-sealing totp seed of %s: %w", c.ID, err)
	}
	c.SealedSecret = sealed
	return true, nil
}
