package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func filledCheck(t *testing.T, id string, seed int) *store.Check {
	c := new(store.Check)
	fill(t, c, seed)
	c.ID = id
	return c
}

func testChecks(t *testing.T, open Opener) {
	roundTrips := []struct {
		name string
		in   func(t *testing.T) *store.Check
		want func(t *testing.T) *store.Check
	}{
		{
			name: "ok/every-field",
			in:   func(t *testing.T) *store.Check { return filledCheck(t, "c1", 1) },
			want: func(t *testing.T) *store.Check { return normalized(filledCheck(t, "c1", 1)) },
		},
		{
			name: "ok/zero-values-stay-zero",
			in:   func(*testing.T) *store.Check { return &store.Check{ID: "c1", State: store.StatePending} },
			want: func(*testing.T) *store.Check { return &store.Check{ID: "c1", State: store.StatePending} },
		},
		{
			name: "ok/exit-code-zero-is-not-nil",
			in:   func(*testing.T) *store.Check { return &store.Check{ID: "c1", OutcomeExitCode: ptr(0)} },
			want: func(*testing.T) *store.Check { return &store.Check{ID: "c1", OutcomeExitCode: ptr(0)} },
		},
		{
			name: "ok/empty-collections-come-back-nil",
			in: func(*testing.T) *store.Check {
				return &store.Check{ID: "c1", Pipeline: map[string]string{}, Assessment: json.RawMessage{}}
			},
			want: func(*testing.T) *store.Check { return &store.Check{ID: "c1"} },
		},
		{
			name: "ok/blank-json-comes-back-nil",
			in:   func(*testing.T) *store.Check { return &store.Check{ID: "c1", Assessment: json.RawMessage(" \n\t")} },
			want: func(*testing.T) *store.Check { return &store.Check{ID: "c1"} },
		},
		{
			name: "ok/json-null-is-kept",
			in:   func(*testing.T) *store.Check { return &store.Check{ID: "c1", Assessment: json.RawMessage("null")} },
			want: func(*testing.T) *store.Check { return &store.Check{ID: "c1", Assessment: json.RawMessage("null")} },
		},
		{
			name: "ok/times-in-utc-to-the-microsecond",
			in: func(*testing.T) *store.Check {
				return &store.Check{
					ID:        "c1",
					CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("PDT", -7*3600)),
					ExpiresAt: time.Date(1999, 12, 31, 23, 59, 59, 1001, time.UTC),
				}
			},
			want: func(*testing.T) *store.Check {
				return &store.Check{
					ID:        "c1",
					CreatedAt: time.Date(2026, 1, 2, 10, 4, 5, 999999000, time.UTC),
					ExpiresAt: time.Date(1999, 12, 31, 23, 59, 59, 1000, time.UTC),
				}
			},
		},
	}
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			if err := st.CreateCheck(ctx, tt.in(t)); err != nil {
				t.Fatalf("CreateCheck() = %v, want nil", err)
			}
			got, err := st.GetCheck(ctx, "c1")
			if err != nil {
				t.Fatalf("GetCheck() = %v, want nil", err)
			}
			if diff := cmp.Diff(tt.want(t), got, cmpOpts()); diff != "" {
				t.Errorf("GetCheck() mismatch (-want +got):\n%s", diff)
			}
			err = st.InTx(ctx, func(tx store.Tx) error {
				got, err := tx.GetCheckForUpdate(ctx, "c1")
				if err != nil {
					return err
				}
				if diff := cmp.Diff(tt.want(t), got, cmpOpts()); diff != "" {
					t.Errorf("GetCheckForUpdate() mismatch (-want +got):\n%s", diff)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("InTx(GetCheckForUpdate) = %v, want nil", err)
			}
		})
	}

	updates := []struct {
		name   string
		update func(t *testing.T) *store.Check
	}{
		{"ok/update-replaces-every-field", func(t *testing.T) *store.Check { return filledCheck(t, "c1", 2) }},
		{"ok/update-clears-fields", func(*testing.T) *store.Check { return &store.Check{ID: "c1", State: store.StateExpired} }},
	}
	for _, tt := range updates {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			if err := st.CreateCheck(ctx, filledCheck(t, "c1", 1)); err != nil {
				t.Fatalf("CreateCheck() = %v, want nil", err)
			}
			if err := st.CreateCheck(ctx, filledCheck(t, "c2", 3)); err != nil {
				t.Fatalf("CreateCheck() = %v, want nil", err)
			}
			if err := st.UpdateCheck(ctx, tt.update(t)); err != nil {
				t.Fatalf("UpdateCheck() = %v, want nil", err)
			}
			got, err := st.GetCheck(ctx, "c1")
			if err != nil {
				t.Fatalf("GetCheck() = %v, want nil", err)
			}
			if diff := cmp.Diff(normalized(tt.update(t)), got, cmpOpts()); diff != "" {
				t.Errorf("GetCheck() after UpdateCheck mismatch (-want +got):\n%s", diff)
			}
			other, err := st.GetCheck(ctx, "c2")
			if err != nil {
				t.Fatalf("GetCheck(c2) = %v, want nil", err)
			}
			if diff := cmp.Diff(normalized(filledCheck(t, "c2", 3)), other, cmpOpts()); diff != "" {
				t.Errorf("UpdateCheck(c1) changed c2 (-want +got):\n%s", diff)
			}
		})
	}

	failures := []struct {
		name string
		run  func(ctx context.Context, st store.Store) error
		want error // as matches takes it
	}{
		{"fail/create-existing-id", func(ctx context.Context, st store.Store) error {
			return st.CreateCheck(ctx, &store.Check{ID: "c1", Kind: "other"})
		}, store.ErrConflict},
		{"fail/get-missing", func(ctx context.Context, st store.Store) error {
			_, err := st.GetCheck(ctx, "nope")
			return err
		}, store.ErrNotFound},
		{"fail/get-for-update-missing", func(ctx context.Context, st store.Store) error {
			return st.InTx(ctx, func(tx store.Tx) error {
				_, err := tx.GetCheckForUpdate(ctx, "nope")
				return err
			})
		}, store.ErrNotFound},
		{"fail/update-missing", func(ctx context.Context, st store.Store) error {
			return st.UpdateCheck(ctx, &store.Check{ID: "nope", State: store.StateApproved})
		}, store.ErrNotFound},
		{"fail/invalid-assessment-json", func(ctx context.Context, st store.Store) error {
			return st.CreateCheck(ctx, &store.Check{ID: "c2", Assessment: json.RawMessage(`{"a":`)})
		}, errAny},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			orig := filledCheck(t, "c1", 1)
			if err := st.CreateCheck(ctx, orig); err != nil {
				t.Fatalf("CreateCheck() = %v, want nil", err)
			}
			if err := tt.run(ctx, st); !matches(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			// Nothing changed: c1 is as created, no other check appeared.
			got, err := st.GetCheck(ctx, "c1")
			if err != nil {
				t.Fatalf("GetCheck(c1) = %v, want nil", err)
			}
			if diff := cmp.Diff(normalized(orig), got, cmpOpts()); diff != "" {
				t.Errorf("c1 changed (-want +got):\n%s", diff)
			}
			for _, id := range []string{"c2", "nope"} {
				if _, err := st.GetCheck(ctx, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("GetCheck(%s) = %v, want %v", id, err, store.ErrNotFound)
				}
			}
		})
	}
}

func testPendingAndExpired(t *testing.T, open Opener) {
	// Inserted in this order, so that a store returning rows in insertion
	// order is caught.
	checks := []*store.Check{
		{ID: "k-old", ResumeKey: "k", State: store.StatePending, CreatedAt: at(0)},
		{ID: "k-new", ResumeKey: "k", State: store.StatePending, CreatedAt: at(2 * time.Minute)},
		{ID: "k-mid", ResumeKey: "k", State: store.StatePending, CreatedAt: at(time.Minute)},
		{ID: "k-approved", ResumeKey: "k", State: store.StateApproved, CreatedAt: at(5 * time.Minute)},
		{ID: "j-denied", ResumeKey: "j", State: store.StateDenied, CreatedAt: at(0)},
		{ID: "e3", State: store.StatePending, ExpiresAt: at(3 * time.Minute)},
		{ID: "e1", State: store.StatePending, ExpiresAt: at(1 * time.Minute)},
		{ID: "e2", State: store.StatePending, ExpiresAt: at(2 * time.Minute)},
		{ID: "e0-approved", State: store.StateApproved, ExpiresAt: at(0)},
		{ID: "never", State: store.StatePending},
	}
	setup := func(t *testing.T) store.Store {
		st := open(t)
		for _, c := range checks {
			if err := st.CreateCheck(t.Context(), c); err != nil {
				t.Fatalf("CreateCheck(%s) = %v, want nil", c.ID, err)
			}
		}
		return st
	}

	for _, tt := range []struct {
		name, key string
		want      string
		wantErr   error
	}{
		{"ok/newest-pending-of-the-key", "k", "k-new", nil},
		{"fail/no-pending-check-with-the-key", "j", "", store.ErrNotFound},
		{"fail/unknown-key", "zzz", "", store.ErrNotFound},
	} {
		t.Run("find-pending/"+tt.name, func(t *testing.T) {
			t.Parallel()
			st := setup(t)
			got, err := st.FindPendingCheck(t.Context(), tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FindPendingCheck(%q) error = %v, want %v", tt.key, err, tt.wantErr)
			}
			if err == nil && got.ID != tt.want {
				t.Errorf("FindPendingCheck(%q) = %s, want %s", tt.key, got.ID, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name, key string
		want      string
		wantErr   error
	}{
		{"ok/approved-is-newer-than-pending", "k", "k-approved", nil},
		{"fail/denied-is-not-resumable", "j", "", store.ErrNotFound},
		{"fail/unknown-key", "zzz", "", store.ErrNotFound},
	} {
		t.Run("find-resumable/"+tt.name, func(t *testing.T) {
			t.Parallel()
			st := setup(t)
			got, err := st.FindResumableCheck(t.Context(), tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FindResumableCheck(%q) error = %v, want %v", tt.key, err, tt.wantErr)
			}
			if err == nil && got.ID != tt.want {
				t.Errorf("FindResumableCheck(%q) = %s, want %s", tt.key, got.ID, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		name    string
		t       time.Time
		limit   int
		want    []string
		wantErr bool
	}{
		{"ok/before-the-first", at(0), 10, []string{}, false},
		{"ok/strictly-before", at(2 * time.Minute), 10, []string{"e1"}, false},
		{"ok/oldest-first", at(time.Hour), 10, []string{"e1", "e2", "e3"}, false},
		{"ok/limit", at(time.Hour), 2, []string{"e1", "e2"}, false},
		{"ok/microseconds-count", at(2*time.Minute + time.Microsecond), 10, []string{"e1", "e2"}, false},
		{"fail/zero-limit", at(time.Hour), 0, nil, true},
	} {
		t.Run("expired/"+tt.name, func(t *testing.T) {
			t.Parallel()
			st := setup(t)
			got, err := st.ExpiredChecks(t.Context(), tt.t, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ExpiredChecks(%v, %d) error = %v, want error %v", tt.t, tt.limit, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, ids(got, func(c *store.Check) string { return c.ID })); diff != "" {
				t.Errorf("ExpiredChecks(%v, %d) mismatch (-want +got):\n%s", tt.t, tt.limit, diff)
			}
		})
	}
}
