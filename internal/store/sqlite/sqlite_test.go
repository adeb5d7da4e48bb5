package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
	"github.com/stepgate/stepgate/internal/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "stepgate.db"))
	})
}
