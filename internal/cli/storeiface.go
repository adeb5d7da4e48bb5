package cli

import (
	"context"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/store"
)

type storeTx = store.Tx

// storeReader is what reading the audit log needs.
type storeReader interface {
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*audit.Event, error)
}
