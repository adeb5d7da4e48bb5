package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func filledApproval(t *testing.T, id, checkID string, seed int) *store.Approval {
	a := new(store.Approval)
	fill(t, a, seed)
	a.ID, a.CheckID = id, checkID
	return a
}

func testApprovals(t *testing.T, open Opener) {
	// setup creates checks c1 and c2.
	setup := func(t *testing.T) store.Store {
		st := open(t)
		for _, id := range []string{"c1", "c2"} {
			if err := st.CreateCheck(t.Context(), &store.Check{ID: id, State: store.StatePending}); err != nil {
				t.Fatalf("CreateCheck(%s) = %v, want nil", id, err)
			}
		}
		return st
	}
	for _, tt := range []struct {
		name string
		add  func(t *testing.T) []*store.Approval
		want func(t *testing.T) []*store.Approval // ListApprovals(c1)
	}{
		{
			name: "ok/every-field",
			add:  func(t *testing.T) []*store.Approval { return []*store.Approval{filledApproval(t, "a1", "c1", 1)} },
			want: func(t *testing.T) []*store.Approval {
				return []*store.Approval{normalized(filledApproval(t, "a1", "c1", 1))}
			},
		},
		{
			name: "ok/rejection-with-empty-collections",
			add: func(*testing.T) []*store.Approval {
				return []*store.Approval{{ID: "a1", CheckID: "c1", Subject: "bob", AMR: []string{}, Evidence: json.RawMessage{}}}
			},
			want: func(*testing.T) []*store.Approval {
				return []*store.Approval{{ID: "a1", CheckID: "c1", Subject: "bob"}}
			},
		},
		{
			name: "ok/oldest-first-and-only-of-the-check",
			add: func(*testing.T) []*store.Approval {
				return []*store.Approval{
					{ID: "a3", CheckID: "c1", Subject: "carol", Approved: true, CreatedAt: at(3 * time.Minute)},
					{ID: "other", CheckID: "c2", Subject: "dave", Approved: true, CreatedAt: at(0)},
					{ID: "a1", CheckID: "c1", Subject: "alice", Approved: true, CreatedAt: at(time.Minute)},
					{ID: "a2", CheckID: "c1", Subject: "bob", CreatedAt: at(2 * time.Minute)},
				}
			},
			want: func(*testing.T) []*store.Approval {
				return []*store.Approval{
					{ID: "a1", CheckID: "c1", Subject: "alice", Approved: true, CreatedAt: stored(at(time.Minute))},
					{ID: "a2", CheckID: "c1", Subject: "bob", CreatedAt: stored(at(2 * time.Minute))},
					{ID: "a3", CheckID: "c1", Subject: "carol", Approved: true, CreatedAt: stored(at(3 * time.Minute))},
				}
			},
		},
		{
			name: "ok/none",
			add:  func(*testing.T) []*store.Approval { return nil },
			want: func(*testing.T) []*store.Approval { return nil },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := setup(t), t.Context()
			for _, a := range tt.add(t) {
				if err := st.AddApproval(ctx, a); err != nil {
					t.Fatalf("AddApproval(%s) = %v, want nil", a.ID, err)
				}
			}
			got, err := st.ListApprovals(ctx, "c1")
			if err != nil {
				t.Fatalf("ListApprovals() = %v, want nil", err)
			}
			if diff := cmp.Diff(emptyAsNil(tt.want(t)), emptyAsNil(got), cmpOpts()); diff != "" {
				t.Errorf("ListApprovals() mismatch (-want +got):\n%s", diff)
			}
		})
	}

	for _, tt := range []struct {
		name string
		a    *store.Approval
		want error
	}{
		{"fail/existing-id", &store.Approval{ID: "a1", CheckID: "c2", Subject: "eve"}, store.ErrConflict},
		{"fail/unknown-check", &store.Approval{ID: "a2", CheckID: "nope", Subject: "eve"}, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := setup(t), t.Context()
			first := &store.Approval{ID: "a1", CheckID: "c1", Subject: "alice", Approved: true}
			if err := st.AddApproval(ctx, first); err != nil {
				t.Fatalf("AddApproval(a1) = %v, want nil", err)
			}
			if err := st.AddApproval(ctx, tt.a); !errors.Is(err, tt.want) {
				t.Fatalf("AddApproval(%s) = %v, want %v", tt.a.ID, err, tt.want)
			}
			for check, want := range map[string][]*store.Approval{"c1": {first}, "c2": nil, "nope": nil} {
				got, err := st.ListApprovals(ctx, check)
				if err != nil {
					t.Fatalf("ListApprovals(%s) = %v, want nil", check, err)
				}
				if diff := cmp.Diff(emptyAsNil(want), emptyAsNil(got), cmpOpts()); diff != "" {
					t.Errorf("ListApprovals(%s) mismatch (-want +got):\n%s", check, diff)
				}
			}
		})
	}
}

func filledToken(t *testing.T, id string, seed int) *store.Token {
	tok := new(store.Token)
	fill(t, tok, seed)
	tok.ID = id
	return tok
}

func testTokens(t *testing.T, open Opener) {
	// setup creates tokens t1 and t2 (seeds 1 and 2).
	setup := func(t *testing.T) store.Store {
		st := open(t)
		for i, id := range []string{"t1", "t2"} {
			if err := st.CreateToken(t.Context(), filledToken(t, id, i+1)); err != nil {
				t.Fatalf("CreateToken(%s) = %v, want nil", id, err)
			}
		}
		return st
	}
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, st store.Store) error
		want func(t *testing.T) []*store.Token // ListTokens afterwards
	}{
		{
			name: "ok/every-field",
			run:  func(*testing.T, store.Store) error { return nil },
			want: func(t *testing.T) []*store.Token {
				return []*store.Token{normalized(filledToken(t, "t1", 1)), normalized(filledToken(t, "t2", 2))}
			},
		},
		{
			name: "ok/empty-workspaces-come-back-nil",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.CreateToken(ctx, &store.Token{ID: "t3", Name: "ci", Hash: []byte{3}, Workspaces: []string{}, CreatedAt: at(10 * time.Hour)})
			},
			want: func(t *testing.T) []*store.Token {
				return []*store.Token{
					normalized(filledToken(t, "t1", 1)), normalized(filledToken(t, "t2", 2)),
					{ID: "t3", Name: "ci", Hash: []byte{3}, CreatedAt: stored(at(10 * time.Hour))},
				}
			},
		},
		{
			name: "ok/oldest-first",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.CreateToken(ctx, &store.Token{ID: "t0", Name: "first", Hash: []byte{0}, CreatedAt: at(-time.Hour)})
			},
			want: func(t *testing.T) []*store.Token {
				return []*store.Token{
					{ID: "t0", Name: "first", Hash: []byte{0}, CreatedAt: stored(at(-time.Hour))},
					normalized(filledToken(t, "t1", 1)), normalized(filledToken(t, "t2", 2)),
				}
			},
		},
		{
			name: "ok/update-replaces-every-field",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.UpdateToken(ctx, filledToken(t, "t1", 7))
			},
			want: func(t *testing.T) []*store.Token {
				return []*store.Token{normalized(filledToken(t, "t2", 2)), normalized(filledToken(t, "t1", 7))}
			},
		},
		{
			name: "ok/revoke",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				tok, err := st.GetToken(ctx, "t1")
				if err != nil {
					return err
				}
				tok.RevokedAt = at(9 * time.Hour)
				return st.UpdateToken(ctx, tok)
			},
			want: func(t *testing.T) []*store.Token {
				t1 := normalized(filledToken(t, "t1", 1))
				t1.RevokedAt = stored(at(9 * time.Hour))
				return []*store.Token{t1, normalized(filledToken(t, "t2", 2))}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := setup(t), t.Context()
			if err := tt.run(t, st); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			want := tt.want(t)
			got, err := st.ListTokens(ctx)
			if err != nil {
				t.Fatalf("ListTokens() = %v, want nil", err)
			}
			if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
				t.Errorf("ListTokens() mismatch (-want +got):\n%s", diff)
			}
			for _, w := range want {
				got, err := st.GetToken(ctx, w.ID)
				if err != nil {
					t.Fatalf("GetToken(%s) = %v, want nil", w.ID, err)
				}
				if diff := cmp.Diff(w, got, cmpOpts()); diff != "" {
					t.Errorf("GetToken(%s) mismatch (-want +got):\n%s", w.ID, diff)
				}
			}
		})
	}

	for _, tt := range []struct {
		name string
		run  func(t *testing.T, st store.Store) error
		want error
	}{
		{"fail/create-existing-id", func(t *testing.T, st store.Store) error {
			ctx := t.Context()
			return st.CreateToken(ctx, &store.Token{ID: "t1", Name: "again", Hash: []byte("new")})
		}, store.ErrConflict},
		{"fail/create-existing-hash", func(t *testing.T, st store.Store) error {
			ctx := t.Context()
			return st.CreateToken(ctx, &store.Token{ID: "t3", Name: "copy", Hash: filledToken(t, "t1", 1).Hash})
		}, store.ErrConflict},
		{"fail/update-to-a-taken-hash", func(t *testing.T, st store.Store) error {
			ctx := t.Context()
			t2 := filledToken(t, "t2", 2)
			t2.Hash = filledToken(t, "t1", 1).Hash
			return st.UpdateToken(ctx, t2)
		}, store.ErrConflict},
		{"fail/get-missing", func(t *testing.T, st store.Store) error {
			ctx := t.Context()
			_, err := st.GetToken(ctx, "nope")
			return err
		}, store.ErrNotFound},
		{"fail/update-missing", func(t *testing.T, st store.Store) error {
			ctx := t.Context()
			return st.UpdateToken(ctx, &store.Token{ID: "nope", Name: "x", Hash: []byte("x")})
		}, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := setup(t), t.Context()
			if err := tt.run(t, st); !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			got, err := st.ListTokens(ctx)
			if err != nil {
				t.Fatalf("ListTokens() = %v, want nil", err)
			}
			want := []*store.Token{normalized(filledToken(t, "t1", 1)), normalized(filledToken(t, "t2", 2))}
			if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
				t.Errorf("tokens changed (-want +got):\n%s", diff)
			}
		})
	}
}

func filledKey(t *testing.T, id string, seed int) *store.SigningKey {
	k := new(store.SigningKey)
	fill(t, k, seed)
	k.ID = id
	return k
}

func testSigningKeys(t *testing.T, open Opener) {
	for _, tt := range []struct {
		name    string
		run     func(t *testing.T, st store.Store) error
		wantErr error
		want    func(t *testing.T) []*store.SigningKey
	}{
		{
			name: "ok/every-field-oldest-first",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.AddSigningKey(ctx, &store.SigningKey{ID: "k0", Algorithm: "EdDSA", PublicKey: []byte{1}, SealedKey: []byte{2}, CreatedAt: at(-time.Hour)})
			},
			want: func(t *testing.T) []*store.SigningKey {
				return []*store.SigningKey{
					{ID: "k0", Algorithm: "EdDSA", PublicKey: []byte{1}, SealedKey: []byte{2}, CreatedAt: stored(at(-time.Hour))},
					normalized(filledKey(t, "k1", 1)), normalized(filledKey(t, "k2", 2)),
				}
			},
		},
		{
			name: "ok/retire",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				k1 := filledKey(t, "k1", 1)
				k1.RetiredAt, k1.PublishEnd = at(20*time.Hour), at(30*time.Hour)
				return st.UpdateSigningKey(ctx, k1)
			},
			want: func(t *testing.T) []*store.SigningKey {
				k1 := filledKey(t, "k1", 1)
				k1.RetiredAt, k1.PublishEnd = at(20*time.Hour), at(30*time.Hour)
				return []*store.SigningKey{normalized(k1), normalized(filledKey(t, "k2", 2))}
			},
		},
		{
			name: "ok/update-clears-fields",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.UpdateSigningKey(ctx, &store.SigningKey{ID: "k2", Algorithm: "EdDSA"})
			},
			want: func(t *testing.T) []*store.SigningKey {
				return []*store.SigningKey{{ID: "k2", Algorithm: "EdDSA"}, normalized(filledKey(t, "k1", 1))}
			},
		},
		{
			name: "fail/add-existing-id",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.AddSigningKey(ctx, &store.SigningKey{ID: "k1", Algorithm: "EdDSA"})
			},
			wantErr: store.ErrConflict,
			want: func(t *testing.T) []*store.SigningKey {
				return []*store.SigningKey{normalized(filledKey(t, "k1", 1)), normalized(filledKey(t, "k2", 2))}
			},
		},
		{
			name: "fail/update-missing",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.UpdateSigningKey(ctx, &store.SigningKey{ID: "nope", Algorithm: "EdDSA"})
			},
			wantErr: store.ErrNotFound,
			want: func(t *testing.T) []*store.SigningKey {
				return []*store.SigningKey{normalized(filledKey(t, "k1", 1)), normalized(filledKey(t, "k2", 2))}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			for i, id := range []string{"k1", "k2"} {
				if err := st.AddSigningKey(ctx, filledKey(t, id, i+1)); err != nil {
					t.Fatalf("AddSigningKey(%s) = %v, want nil", id, err)
				}
			}
			if err := tt.run(t, st); !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			got, err := st.ListSigningKeys(ctx)
			if err != nil {
				t.Fatalf("ListSigningKeys() = %v, want nil", err)
			}
			if diff := cmp.Diff(tt.want(t), got, cmpOpts()); diff != "" {
				t.Errorf("ListSigningKeys() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
