package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// BenchmarkCheckHistory measures the history each new check reads
// (input.history) in a database of n checks: with its indexes it should
// not grow with n.
func BenchmarkCheckHistory(b *testing.B) {
	for _, n := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "stepgate.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			states := []store.CheckState{store.StateConsumed, store.StateAllowed, store.StatePending, store.StateApproved, store.StateExpired}
			err = st.InTx(ctx, func(tx store.Tx) error {
				for i := range n {
					at := base.Add(time.Duration(i) * time.Minute)
					c := &store.Check{
						ID: fmt.Sprintf("chk_%06d", i), State: states[i%len(states)],
						Workspace: fmt.Sprintf("ws-%d", i%50), Requester: fmt.Sprintf("team-%d", i%20),
						PlanSHA256: fmt.Sprintf("%064x", i), CreatedAt: at, GrantExpiresAt: at.Add(5 * time.Minute),
					}
					if c.State == store.StateConsumed {
						c.ConsumedAt = at.Add(time.Minute)
					}
					if err := tx.CreateCheck(ctx, c); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			now := base.Add(time.Duration(n) * time.Minute)
			q := store.HistoryQuery{Workspace: "ws-7", Requester: "team-7", PlanSHA256: fmt.Sprintf("%064x", 3), Since: now.Add(-time.Hour), Now: now}
			b.ResetTimer()
			for b.Loop() {
				if _, err := st.CheckHistory(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
