package postgres_test

import (
	"testing"

	"github.com/stepgate/stepgate/internal/store/storetest"
)

// TestDeletesCascade: deleting a user or a check with SQL deletes what is
// theirs.
func TestDeletesCascade(t *testing.T) {
	dsn := newSchema(t, testDSN(t))
	st := open(t, dsn)
	storetest.Cascade(t, st, func(q string, args ...any) { admin(t, dsn, q, args...) })
}
