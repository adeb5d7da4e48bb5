package main

import (
	"context"
	"sync"
	"time"

	"github.com/stepgate/stepgate/internal/store"
)

// timedStore is a store that times its transactions while recording is
// on: from InTx's call (BEGIN, which waits for the write lock on SQLite) to
// its COMMIT. It changes nothing else.
type timedStore struct {
	store.Store

	mu  sync.Mutex
	on  bool
	txs []time.Duration
}

func (t *timedStore) InTx(ctx context.Context, fn func(tx store.Tx) error) error {
	start := time.Now()
	err := t.Store.InTx(ctx, fn)
	d := time.Since(start)
	t.mu.Lock()
	if t.on {
		t.txs = append(t.txs, d)
	}
	t.mu.Unlock()
	return err
}

// record starts recording, or stops it and returns what was recorded.
func (t *timedStore) record(on bool) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = on
	out := t.txs
	t.txs = nil
	return out
}
