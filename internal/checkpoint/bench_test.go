package checkpoint_test

import (
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

// BenchmarkGrantTransaction is the audit part of a grant's transaction on
// SQLite: three events appended, with and without the checkpoint the gate
// writes in the same transaction.
func BenchmarkGrantTransaction(b *testing.B) {
	for _, seal := range []bool{false, true} {
		name := map[bool]string{false: "append-only", true: "append-and-checkpoint"}[seal]
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			ctx := b.Context()
			if _, err := f.w.Ensure(ctx); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				err := f.st.InTx(ctx, func(tx store.Tx) error {
					for _, typ := range []string{audit.CheckCreated, audit.CheckAllowed, audit.GrantIssued} {
						if err := tx.AppendAudit(ctx, &audit.Event{Time: time.Now(), Type: typ, Actor: "ci", Subject: "chk"}); err != nil {
							return err
						}
					}
					if seal {
						_, err := f.w.InTx(ctx, tx)
						return err
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
