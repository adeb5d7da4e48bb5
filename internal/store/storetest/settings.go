package storetest

import (
	"errors"
	"testing"

	"github.com/stepgate/stepgate/internal/store"
)

func testSettings(t *testing.T, open Opener) {
	ctx := t.Context()
	st := open(t)
	if v, err := st.Setting(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Setting(never set) = %q, %v; want ErrNotFound", v, err)
	}
	for _, v := range []string{"https://a.example.com", "https://b.example.com", ""} {
		if err := st.SetSetting(ctx, store.SettingPublicURL, v); err != nil {
			t.Fatalf("SetSetting(%q) = %v", v, err)
		}
		if got, err := st.Setting(ctx, store.SettingPublicURL); err != nil || got != v {
			t.Errorf("Setting after SetSetting(%q) = %q, %v", v, got, err)
		}
	}
	// In a transaction that rolls back, the value stays.
	if err := st.SetSetting(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := st.InTx(ctx, func(tx store.Tx) error {
		if err := tx.SetSetting(ctx, "k", "after"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v", err)
	}
	if got, _ := st.Setting(ctx, "k"); got != "before" {
		t.Errorf("Setting after a rolled-back SetSetting = %q, want before", got)
	}
}
