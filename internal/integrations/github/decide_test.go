package github

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func TestDecide(t *testing.T) {
	check := func(id string, state store.CheckState, attempt string) *store.Check {
		c := verified(id, state, sha)
		if attempt != "" {
			c.Pipeline["run_attempt"] = attempt
		}
		return c
	}
	for _, tt := range []struct {
		name    string
		checks  []*store.Check
		want    string
		waiting []string
	}{
		{"ok/newest-attempt-counts", []*store.Check{check("c1", store.StateRejected, "1"), check("c2", store.StateAllowed, "2")}, Approved, nil},
		{"ok/attempt-9-after-10-is-older", []*store.Check{check("c1", store.StateAllowed, "10"), check("c2", store.StateRejected, "9")}, Approved, nil},
		{"fail/newest-attempt-rejected", []*store.Check{check("c1", store.StateAllowed, "1"), check("c2", store.StateRejected, "2")}, Rejected, nil},
		{"fail/no-sha-asked", nil, Rejected, nil},
		{"pending/one-waits", []*store.Check{check("c1", store.StateAllowed, "1"), check("c2", store.StatePending, "1")}, Pending, []string{"c2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.checks, sha, publicURL)
			if got.State != tt.want || !cmp.Equal(got.Waiting, tt.waiting) {
				t.Errorf("Decide() = %+v, want state %q waiting %v", got, tt.want, tt.waiting)
			}
		})
	}
	if got := Decide([]*store.Check{check("c1", store.StateAllowed, "1")}, "", publicURL); got.State != Rejected {
		t.Errorf("Decide(no sha) = %+v, want rejected", got)
	}
}
