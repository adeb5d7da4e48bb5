package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

func wantNotFound(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("%s = %v, want %v", call, err, store.ErrNotFound)
	}
}

func filledUser(t *testing.T, id string, seed int) *store.User {
	u := new(store.User)
	fill(t, u, seed)
	u.ID = id
	return u
}

// filledCredential is a credential of userID with every field set. Its
// kind, one of the two the schema takes, depends on the seed.
func filledCredential(t *testing.T, id, userID string, seed int) *store.Credential {
	c := new(store.Credential)
	fill(t, c, seed)
	c.ID, c.UserID = id, userID
	c.Kind = store.KindWebAuthn
	if seed%2 == 0 {
		c.Kind = store.KindTOTP
	}
	return c
}

func filledEnrollment(t *testing.T, hash, userID string, seed int) *store.Enrollment {
	e := new(store.Enrollment)
	fill(t, e, seed)
	e.Hash, e.UserID = []byte(hash), userID
	return e
}

func filledSession(t *testing.T, hash, userID string, seed int) *store.Session {
	s := new(store.Session)
	fill(t, s, seed)
	s.Hash, s.UserID = []byte(hash), userID
	return s
}

// withUsers opens a store holding filledUser(ids[i], i+1) for each id.
func withUsers(t *testing.T, open Opener, ids ...string) store.Store {
	t.Helper()
	st := open(t)
	for i, id := range ids {
		if err := st.CreateUser(t.Context(), filledUser(t, id, i+1)); err != nil {
			t.Fatalf("CreateUser(%s) = %v, want nil", id, err)
		}
	}
	return st
}

// checkUser fails t unless GetUser, GetUserByName and FindUserByLink (with
// each of its links) return want.
func checkUser(t *testing.T, st store.Store, want *store.User) {
	t.Helper()
	ctx := t.Context()
	got, err := st.GetUser(ctx, want.ID)
	if err != nil {
		t.Fatalf("GetUser(%s) = %v, want nil", want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
		t.Errorf("GetUser(%s) mismatch (-want +got):\n%s", want.ID, diff)
	}
	got, err = st.GetUserByName(ctx, want.Name)
	if err != nil {
		t.Fatalf("GetUserByName(%s) = %v, want nil", want.Name, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
		t.Errorf("GetUserByName(%s) mismatch (-want +got):\n%s", want.Name, diff)
	}
	for _, link := range want.Links {
		got, err := st.FindUserByLink(ctx, link)
		if err != nil {
			t.Fatalf("FindUserByLink(%s) = %v, want nil", link, err)
		}
		if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
			t.Errorf("FindUserByLink(%s) mismatch (-want +got):\n%s", link, diff)
		}
	}
}

func checkListUsers(t *testing.T, st store.Store, want ...*store.User) {
	t.Helper()
	got, err := st.ListUsers(t.Context())
	if err != nil {
		t.Fatalf("ListUsers() = %v, want nil", err)
	}
	if diff := cmp.Diff(emptyAsNil(want), emptyAsNil(got), cmpOpts()); diff != "" {
		t.Errorf("ListUsers() mismatch (-want +got):\n%s", diff)
	}
}

func testUsers(t *testing.T, open Opener) {
	for _, tt := range []struct {
		name string
		in   func(t *testing.T) *store.User
		want func(t *testing.T) *store.User
	}{
		{
			name: "ok/every-field",
			in:   func(t *testing.T) *store.User { return filledUser(t, "u1", 1) },
			want: func(t *testing.T) *store.User { return normalized(filledUser(t, "u1", 1)) },
		},
		{
			name: "ok/zero-values-stay-zero",
			in:   func(*testing.T) *store.User { return &store.User{ID: "u1", Name: "alice"} },
			want: func(*testing.T) *store.User { return &store.User{ID: "u1", Name: "alice"} },
		},
		{
			name: "ok/empty-collections-come-back-nil",
			in: func(*testing.T) *store.User {
				return &store.User{ID: "u1", Name: "alice", Groups: []string{}, Links: []string{}}
			},
			want: func(*testing.T) *store.User { return &store.User{ID: "u1", Name: "alice"} },
		},
		{
			name: "ok/a-link-listed-twice-comes-back-as-listed",
			in: func(*testing.T) *store.User {
				return &store.User{ID: "u1", Name: "alice", Links: []string{"github:alice", "gitlab:alice", "github:alice"}}
			},
			want: func(*testing.T) *store.User {
				return &store.User{ID: "u1", Name: "alice", Links: []string{"github:alice", "gitlab:alice", "github:alice"}}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			if err := st.CreateUser(t.Context(), tt.in(t)); err != nil {
				t.Fatalf("CreateUser() = %v, want nil", err)
			}
			checkUser(t, st, tt.want(t))
			checkListUsers(t, st, tt.want(t))
		})
	}

	for _, tt := range []struct {
		name   string
		update func(t *testing.T) *store.User
	}{
		{"ok/update-replaces-every-field", func(t *testing.T) *store.User { return filledUser(t, "u1", 3) }},
		{"ok/update-clears-fields", func(*testing.T) *store.User { return &store.User{ID: "u1", Name: "alice"} }},
		{"ok/update-keeps-a-link-and-adds-one", func(t *testing.T) *store.User {
			u := filledUser(t, "u1", 1)
			u.Links = []string{"github:alice", u.Links[1]}
			return u
		}},
		{"ok/update-with-the-same-links", func(t *testing.T) *store.User {
			u := filledUser(t, "u1", 1)
			u.Email, u.DisabledAt = "alice@example.com", at(24*time.Hour)
			return u
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			if err := st.UpdateUser(ctx, tt.update(t)); err != nil {
				t.Fatalf("UpdateUser() = %v, want nil", err)
			}
			u1, u2 := normalized(tt.update(t)), normalized(filledUser(t, "u2", 2))
			checkUser(t, st, u1)
			checkUser(t, st, u2)
			for _, link := range filledUser(t, "u1", 1).Links {
				if !slices.Contains(u1.Links, link) {
					_, err := st.FindUserByLink(ctx, link)
					wantNotFound(t, fmt.Sprintf("FindUserByLink(%s) of a link UpdateUser() dropped", link), err)
				}
			}
			if u2.CreatedAt.Before(u1.CreatedAt) {
				checkListUsers(t, st, u2, u1)
			} else {
				checkListUsers(t, st, u1, u2)
			}
		})
	}

	for _, tt := range []struct {
		name string
		inTx bool
	}{
		{"ok/a-dropped-link-can-be-taken", false},
		{"ok/a-link-changes-hands-in-one-transaction", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			u1, u2 := filledUser(t, "u1", 1), filledUser(t, "u2", 2)
			link := u1.Links[0]
			u1.Links = u1.Links[1:]
			u2.Links = append(u2.Links, link)
			update := func(tx store.Tx) error {
				if err := tx.UpdateUser(ctx, u1); err != nil {
					return err
				}
				return tx.UpdateUser(ctx, u2)
			}
			var err error
			if tt.inTx {
				err = st.InTx(ctx, update)
			} else {
				err = update(st)
			}
			if err != nil {
				t.Fatalf("UpdateUser() dropping a link, then UpdateUser() taking it = %v, want nil", err)
			}
			checkUser(t, st, normalized(u1))
			checkUser(t, st, normalized(u2))
		})
	}

	t.Run("ok/list-oldest-first", func(t *testing.T) {
		t.Parallel()
		st := open(t)
		checkListUsers(t, st)
		// Inserted in this order, so that a store returning rows in
		// insertion order is caught.
		users := []*store.User{
			{ID: "b", Name: "bob", CreatedAt: at(time.Minute)},
			{ID: "a", Name: "alice", CreatedAt: at(time.Minute)},
			{ID: "z", Name: "zoe"},
			{ID: "c", Name: "carol", CreatedAt: at(0)},
		}
		for _, u := range users {
			if err := st.CreateUser(t.Context(), u); err != nil {
				t.Fatalf("CreateUser(%s) = %v, want nil", u.ID, err)
			}
		}
		got, err := st.ListUsers(t.Context())
		if err != nil {
			t.Fatalf("ListUsers() = %v, want nil", err)
		}
		if diff := cmp.Diff([]string{"z", "c", "a", "b"}, ids(got, func(u *store.User) string { return u.ID })); diff != "" {
			t.Errorf("ListUsers() mismatch (-want +got):\n%s", diff)
		}
	})

	// Every case starts with users u1 and u2 (seeds 1 and 2) and must leave
	// them as they were.
	for _, tt := range []struct {
		name    string
		run     func(t *testing.T, st store.Store) error
		want    error
		noLinks []string // links nobody has afterwards
	}{
		{"fail/create-existing-id", func(t *testing.T, st store.Store) error {
			return st.CreateUser(t.Context(), &store.User{ID: "u1", Name: "carol"})
		}, store.ErrConflict, nil},
		{"fail/create-existing-name", func(t *testing.T, st store.Store) error {
			return st.CreateUser(t.Context(), &store.User{ID: "u3", Name: filledUser(t, "u2", 2).Name})
		}, store.ErrConflict, nil},
		// Outside a transaction: the store must not keep the user without
		// its links.
		{"fail/create-with-a-taken-link", func(t *testing.T, st store.Store) error {
			u3 := &store.User{ID: "u3", Name: "carol", Links: []string{"github:carol", filledUser(t, "u2", 2).Links[1]}}
			return st.CreateUser(t.Context(), u3)
		}, store.ErrConflict, []string{"github:carol"}},
		{"fail/create-with-a-taken-link-in-a-transaction", func(t *testing.T, st store.Store) error {
			u3 := &store.User{ID: "u3", Name: "carol", Links: []string{"github:carol", filledUser(t, "u2", 2).Links[1]}}
			return st.InTx(t.Context(), func(tx store.Tx) error { return tx.CreateUser(t.Context(), u3) })
		}, store.ErrConflict, []string{"github:carol"}},
		{"fail/update-to-a-taken-name", func(t *testing.T, st store.Store) error {
			u1 := filledUser(t, "u1", 1)
			u1.Name = filledUser(t, "u2", 2).Name
			return st.UpdateUser(t.Context(), u1)
		}, store.ErrConflict, nil},
		// Outside a transaction: the store must not keep the new name or
		// drop the old links.
		{"fail/update-to-a-taken-link", func(t *testing.T, st store.Store) error {
			u1 := filledUser(t, "u1", 1)
			u1.Name, u1.Links = "alice", []string{"github:alice", filledUser(t, "u2", 2).Links[0]}
			return st.UpdateUser(t.Context(), u1)
		}, store.ErrConflict, []string{"github:alice"}},
		{"fail/update-missing", func(t *testing.T, st store.Store) error {
			return st.UpdateUser(t.Context(), &store.User{ID: "u3", Name: "carol", Links: []string{"github:carol"}})
		}, store.ErrNotFound, []string{"github:carol"}},
		{"fail/get-missing", func(t *testing.T, st store.Store) error {
			_, err := st.GetUser(t.Context(), "u3")
			return err
		}, store.ErrNotFound, nil},
		{"fail/get-by-missing-name", func(t *testing.T, st store.Store) error {
			_, err := st.GetUserByName(t.Context(), "carol")
			return err
		}, store.ErrNotFound, nil},
		{"fail/find-by-unknown-link", func(t *testing.T, st store.Store) error {
			_, err := st.FindUserByLink(t.Context(), "github:carol")
			return err
		}, store.ErrNotFound, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			if err := tt.run(t, st); !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			u1, u2 := normalized(filledUser(t, "u1", 1)), normalized(filledUser(t, "u2", 2))
			checkUser(t, st, u1)
			checkUser(t, st, u2)
			checkListUsers(t, st, u1, u2)
			for _, name := range []string{"alice", "carol"} {
				_, err := st.GetUserByName(ctx, name)
				wantNotFound(t, fmt.Sprintf("GetUserByName(%s)", name), err)
			}
			for _, link := range tt.noLinks {
				_, err := st.FindUserByLink(ctx, link)
				wantNotFound(t, fmt.Sprintf("FindUserByLink(%s)", link), err)
			}
		})
	}
}

// checkCredentials fails t unless ListCredentials of each user in want
// returns its credentials, and GetCredential each of them.
func checkCredentials(t *testing.T, st store.Store, want map[string][]*store.Credential) {
	t.Helper()
	ctx := t.Context()
	for user, creds := range want {
		got, err := st.ListCredentials(ctx, user)
		if err != nil {
			t.Fatalf("ListCredentials(%s) = %v, want nil", user, err)
		}
		if diff := cmp.Diff(emptyAsNil(creds), emptyAsNil(got), cmpOpts()); diff != "" {
			t.Errorf("ListCredentials(%s) mismatch (-want +got):\n%s", user, diff)
		}
		for _, c := range creds {
			got, err := st.GetCredential(ctx, c.ID)
			if err != nil {
				t.Fatalf("GetCredential(%s) = %v, want nil", c.ID, err)
			}
			if diff := cmp.Diff(c, got, cmpOpts()); diff != "" {
				t.Errorf("GetCredential(%s) mismatch (-want +got):\n%s", c.ID, diff)
			}
		}
	}
}

func testCredentials(t *testing.T, open Opener) {
	// Every case starts with users u1 and u2.
	for _, tt := range []struct {
		name string
		in   func(t *testing.T) *store.Credential
		want func(t *testing.T) *store.Credential
	}{
		{
			name: "ok/every-field",
			in:   func(t *testing.T) *store.Credential { return filledCredential(t, "cr1", "u1", 1) },
			want: func(t *testing.T) *store.Credential { return normalized(filledCredential(t, "cr1", "u1", 1)) },
		},
		{
			name: "ok/zero-values-stay-zero",
			in: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindTOTP}
			},
			want: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindTOTP}
			},
		},
		{
			name: "ok/empty-data-and-secret-come-back-nil",
			in: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindWebAuthn, Data: json.RawMessage{}, SealedSecret: []byte{}}
			},
			want: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindWebAuthn}
			},
		},
		{
			name: "ok/largest-counters",
			in: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindWebAuthn, SignCount: math.MaxUint32, LastStep: math.MaxInt64, Failures: math.MaxInt32}
			},
			want: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindWebAuthn, SignCount: math.MaxUint32, LastStep: math.MaxInt64, Failures: math.MaxInt32}
			},
		},
		{
			name: "ok/binary-secret",
			in: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindTOTP, SealedSecret: []byte{0, 0xff, 0, 0x80}}
			},
			want: func(*testing.T) *store.Credential {
				return &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindTOTP, SealedSecret: []byte{0, 0xff, 0, 0x80}}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			if err := st.AddCredential(ctx, tt.in(t)); err != nil {
				t.Fatalf("AddCredential() = %v, want nil", err)
			}
			checkCredentials(t, st, map[string][]*store.Credential{"u1": {tt.want(t)}, "u2": nil})
			err := st.InTx(ctx, func(tx store.Tx) error {
				got, err := tx.GetCredentialForUpdate(ctx, "cr1")
				if err != nil {
					return err
				}
				if diff := cmp.Diff(tt.want(t), got, cmpOpts()); diff != "" {
					t.Errorf("GetCredentialForUpdate() mismatch (-want +got):\n%s", diff)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("InTx(GetCredentialForUpdate) = %v, want nil", err)
			}
		})
	}

	// Every case starts with users u1 and u2, and credentials cr1 and cr2
	// of u1 and cr3 of u2 (seeds 1, 2, 3: created in that order).
	cred := func(t *testing.T, id, user string, seed int) *store.Credential {
		return normalized(filledCredential(t, id, user, seed))
	}
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, st store.Store) error
		want func(t *testing.T) map[string][]*store.Credential // by user
		gone []string
	}{
		{
			name: "ok/update-replaces-every-field",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateCredential(t.Context(), filledCredential(t, "cr1", "u1", 4))
			},
			want: func(t *testing.T) map[string][]*store.Credential {
				return map[string][]*store.Credential{"u1": {cred(t, "cr2", "u1", 2), cred(t, "cr1", "u1", 4)}, "u2": {cred(t, "cr3", "u2", 3)}}
			},
		},
		{
			name: "ok/update-clears-fields",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateCredential(t.Context(), &store.Credential{ID: "cr2", UserID: "u1", Kind: store.KindTOTP})
			},
			want: func(t *testing.T) map[string][]*store.Credential {
				return map[string][]*store.Credential{
					"u1": {{ID: "cr2", UserID: "u1", Kind: store.KindTOTP}, cred(t, "cr1", "u1", 1)},
					"u2": {cred(t, "cr3", "u2", 3)},
				}
			},
		},
		{
			name: "ok/update-moves-it-to-another-user",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateCredential(t.Context(), filledCredential(t, "cr1", "u2", 1))
			},
			want: func(t *testing.T) map[string][]*store.Credential {
				return map[string][]*store.Credential{"u1": {cred(t, "cr2", "u1", 2)}, "u2": {cred(t, "cr1", "u2", 1), cred(t, "cr3", "u2", 3)}}
			},
		},
		{
			name: "ok/read-modify-write-in-a-transaction",
			run: func(t *testing.T, st store.Store) error {
				ctx := t.Context()
				return st.InTx(ctx, func(tx store.Tx) error {
					c, err := tx.GetCredentialForUpdate(ctx, "cr1")
					if err != nil {
						return err
					}
					c.SignCount++
					c.LastStep, c.Failures, c.LockedUntil, c.LastUsedAt = 42, 0, time.Time{}, at(10*time.Hour)
					return tx.UpdateCredential(ctx, c)
				})
			},
			want: func(t *testing.T) map[string][]*store.Credential {
				c := cred(t, "cr1", "u1", 1)
				c.SignCount++
				c.LastStep, c.Failures, c.LockedUntil, c.LastUsedAt = 42, 0, time.Time{}, stored(at(10*time.Hour))
				return map[string][]*store.Credential{"u1": {c, cred(t, "cr2", "u1", 2)}, "u2": {cred(t, "cr3", "u2", 3)}}
			},
		},
		{
			name: "ok/delete",
			run:  func(t *testing.T, st store.Store) error { return st.DeleteCredential(t.Context(), "cr1") },
			want: func(t *testing.T) map[string][]*store.Credential {
				return map[string][]*store.Credential{"u1": {cred(t, "cr2", "u1", 2)}, "u2": {cred(t, "cr3", "u2", 3)}}
			},
			gone: []string{"cr1"},
		},
		{
			name: "ok/delete-then-add-again",
			run: func(t *testing.T, st store.Store) error {
				if err := st.DeleteCredential(t.Context(), "cr1"); err != nil {
					return err
				}
				return st.AddCredential(t.Context(), filledCredential(t, "cr1", "u2", 5))
			},
			want: func(t *testing.T) map[string][]*store.Credential {
				return map[string][]*store.Credential{"u1": {cred(t, "cr2", "u1", 2)}, "u2": {cred(t, "cr3", "u2", 3), cred(t, "cr1", "u2", 5)}}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			for i, c := range []*store.Credential{filledCredential(t, "cr1", "u1", 1), filledCredential(t, "cr2", "u1", 2), filledCredential(t, "cr3", "u2", 3)} {
				if err := st.AddCredential(ctx, c); err != nil {
					t.Fatalf("AddCredential(%d) = %v, want nil", i, err)
				}
			}
			if err := tt.run(t, st); err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			checkCredentials(t, st, tt.want(t))
			for _, id := range tt.gone {
				_, err := st.GetCredential(ctx, id)
				wantNotFound(t, fmt.Sprintf("GetCredential(%s)", id), err)
			}
		})
	}

	t.Run("ok/list-oldest-first-and-only-of-the-user", func(t *testing.T) {
		t.Parallel()
		st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
		// Inserted in this order, so that a store returning rows in
		// insertion order is caught.
		for _, c := range []*store.Credential{
			{ID: "b", UserID: "u1", Kind: store.KindTOTP, CreatedAt: at(time.Minute)},
			{ID: "a", UserID: "u1", Kind: store.KindWebAuthn, CreatedAt: at(time.Minute)},
			{ID: "other", UserID: "u2", Kind: store.KindTOTP, CreatedAt: at(-time.Hour)},
			{ID: "z", UserID: "u1", Kind: store.KindWebAuthn},
			{ID: "c", UserID: "u1", Kind: store.KindTOTP, CreatedAt: at(0)},
		} {
			if err := st.AddCredential(ctx, c); err != nil {
				t.Fatalf("AddCredential(%s) = %v, want nil", c.ID, err)
			}
		}
		for user, want := range map[string][]string{"u1": {"z", "c", "a", "b"}, "u2": {"other"}, "nope": {}} {
			got, err := st.ListCredentials(ctx, user)
			if err != nil {
				t.Fatalf("ListCredentials(%s) = %v, want nil", user, err)
			}
			if diff := cmp.Diff(want, ids(got, func(c *store.Credential) string { return c.ID })); diff != "" {
				t.Errorf("ListCredentials(%s) mismatch (-want +got):\n%s", user, diff)
			}
		}
	})

	// Every case starts with users u1 and u2 and credential cr1 of u1, and
	// must leave them as they were.
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, st store.Store) error
		want error
	}{
		{"fail/add-existing-id", func(t *testing.T, st store.Store) error {
			return st.AddCredential(t.Context(), &store.Credential{ID: "cr1", UserID: "u2", Kind: store.KindTOTP})
		}, store.ErrConflict},
		{"fail/add-for-a-missing-user", func(t *testing.T, st store.Store) error {
			return st.AddCredential(t.Context(), &store.Credential{ID: "cr2", UserID: "nope", Kind: store.KindTOTP})
		}, store.ErrNotFound},
		{"fail/add-unknown-kind", func(t *testing.T, st store.Store) error {
			return st.AddCredential(t.Context(), &store.Credential{ID: "cr2", UserID: "u1", Kind: "sms"})
		}, errAny},
		{"fail/add-no-kind", func(t *testing.T, st store.Store) error {
			return st.AddCredential(t.Context(), &store.Credential{ID: "cr2", UserID: "u1"})
		}, errAny},
		{"fail/add-invalid-data-json", func(t *testing.T, st store.Store) error {
			return st.AddCredential(t.Context(), &store.Credential{ID: "cr2", UserID: "u1", Kind: store.KindWebAuthn, Data: json.RawMessage(`{"a":`)})
		}, errAny},
		{"fail/get-missing", func(t *testing.T, st store.Store) error {
			_, err := st.GetCredential(t.Context(), "cr2")
			return err
		}, store.ErrNotFound},
		{"fail/get-for-update-missing", func(t *testing.T, st store.Store) error {
			return st.InTx(t.Context(), func(tx store.Tx) error {
				_, err := tx.GetCredentialForUpdate(t.Context(), "cr2")
				return err
			})
		}, store.ErrNotFound},
		{"fail/update-missing", func(t *testing.T, st store.Store) error {
			return st.UpdateCredential(t.Context(), &store.Credential{ID: "cr2", UserID: "u1", Kind: store.KindTOTP})
		}, store.ErrNotFound},
		{"fail/update-to-a-missing-user", func(t *testing.T, st store.Store) error {
			c := filledCredential(t, "cr1", "nope", 1)
			return st.UpdateCredential(t.Context(), c)
		}, store.ErrNotFound},
		{"fail/update-to-an-unknown-kind", func(t *testing.T, st store.Store) error {
			c := filledCredential(t, "cr1", "u1", 1)
			c.Kind = "sms"
			return st.UpdateCredential(t.Context(), c)
		}, errAny},
		{"fail/delete-missing", func(t *testing.T, st store.Store) error {
			return st.DeleteCredential(t.Context(), "cr2")
		}, store.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			if err := st.AddCredential(ctx, filledCredential(t, "cr1", "u1", 1)); err != nil {
				t.Fatalf("AddCredential(cr1) = %v, want nil", err)
			}
			if err := tt.run(t, st); !matches(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			checkCredentials(t, st, map[string][]*store.Credential{"u1": {normalized(filledCredential(t, "cr1", "u1", 1))}, "u2": nil})
			_, err := st.GetCredential(ctx, "cr2")
			wantNotFound(t, "GetCredential(cr2)", err)
		})
	}

	t.Run("ok/no-lost-update", func(t *testing.T) {
		t.Parallel()
		st, ctx := withUsers(t, open, "u1"), t.Context()
		if err := st.AddCredential(ctx, &store.Credential{ID: "cr1", UserID: "u1", Kind: store.KindTOTP}); err != nil {
			t.Fatalf("AddCredential() = %v, want nil", err)
		}
		const n = 25
		errs := concurrently(n, func(int) error {
			return st.InTx(ctx, func(tx store.Tx) error {
				c, err := tx.GetCredentialForUpdate(ctx, "cr1")
				if err != nil {
					return err
				}
				c.LastStep++
				return tx.UpdateCredential(ctx, c)
			})
		})
		for _, err := range errs {
			if err != nil {
				t.Errorf("InTx(increment) = %v, want nil", err)
			}
		}
		c, err := st.GetCredential(ctx, "cr1")
		if err != nil {
			t.Fatalf("GetCredential() = %v, want nil", err)
		}
		if c.LastStep != n {
			t.Errorf("after %d concurrent increments LastStep = %d, want %d", n, c.LastStep, n)
		}
	})
}

// binaryHash is a hash with bytes a text column would not keep.
var binaryHash = []byte{0, 0xff, 0, 0x80, 'a', 0}

func testEnrollments(t *testing.T, open Opener) {
	e1 := func(t *testing.T) *store.Enrollment { return normalized(filledEnrollment(t, "e1", "u1", 1)) }
	// Every case starts with users u1 and u2 and enrollment e1 of u1
	// (seed 1). Afterwards GetEnrollment returns each of want, and
	// store.ErrNotFound for each of gone.
	for _, tt := range []struct {
		name    string
		run     func(t *testing.T, st store.Store) error
		wantErr error
		want    func(t *testing.T) []*store.Enrollment
		gone    []string
	}{
		{
			name: "ok/every-field",
			run:  func(*testing.T, store.Store) error { return nil },
			want: func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
		},
		{
			name: "ok/zero-values-stay-zero",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateEnrollment(t.Context(), &store.Enrollment{Hash: []byte("e2"), UserID: "u2"})
			},
			want: func(t *testing.T) []*store.Enrollment {
				return []*store.Enrollment{e1(t), {Hash: []byte("e2"), UserID: "u2"}}
			},
		},
		{
			name: "ok/binary-hash",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateEnrollment(t.Context(), &store.Enrollment{Hash: binaryHash, UserID: "u1", ExpiresAt: at(time.Hour)})
			},
			want: func(t *testing.T) []*store.Enrollment {
				return []*store.Enrollment{e1(t), {Hash: binaryHash, UserID: "u1", ExpiresAt: stored(at(time.Hour))}}
			},
		},
		{
			name: "ok/mark-used",
			run: func(t *testing.T, st store.Store) error {
				e, err := st.GetEnrollment(t.Context(), []byte("e1"))
				if err != nil {
					return err
				}
				e.UsedAt = at(10 * time.Hour)
				return st.UpdateEnrollment(t.Context(), e)
			},
			want: func(t *testing.T) []*store.Enrollment {
				e := e1(t)
				e.UsedAt = stored(at(10 * time.Hour))
				return []*store.Enrollment{e}
			},
		},
		{
			name: "ok/update-replaces-every-field",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateEnrollment(t.Context(), filledEnrollment(t, "e1", "u2", 2))
			},
			want: func(t *testing.T) []*store.Enrollment {
				return []*store.Enrollment{normalized(filledEnrollment(t, "e1", "u2", 2))}
			},
		},
		{
			name: "ok/update-clears-fields",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateEnrollment(t.Context(), &store.Enrollment{Hash: []byte("e1"), UserID: "u1"})
			},
			want: func(t *testing.T) []*store.Enrollment {
				return []*store.Enrollment{{Hash: []byte("e1"), UserID: "u1"}}
			},
		},
		{
			name: "fail/create-existing-hash",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateEnrollment(t.Context(), &store.Enrollment{Hash: []byte("e1"), UserID: "u2"})
			},
			wantErr: store.ErrConflict,
			want:    func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
		},
		{
			name: "fail/create-for-a-missing-user",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateEnrollment(t.Context(), &store.Enrollment{Hash: []byte("e2"), UserID: "nope"})
			},
			wantErr: store.ErrNotFound,
			want:    func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
			gone:    []string{"e2"},
		},
		{
			name: "fail/create-without-a-hash",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateEnrollment(t.Context(), &store.Enrollment{UserID: "u1"})
			},
			wantErr: errAny,
			want:    func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
			gone:    []string{""},
		},
		{
			name: "fail/get-missing",
			run: func(t *testing.T, st store.Store) error {
				_, err := st.GetEnrollment(t.Context(), []byte("e2"))
				return err
			},
			wantErr: store.ErrNotFound,
			want:    func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
		},
		{
			name: "fail/update-missing",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateEnrollment(t.Context(), &store.Enrollment{Hash: []byte("e2"), UserID: "u1"})
			},
			wantErr: store.ErrNotFound,
			want:    func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
			gone:    []string{"e2"},
		},
		{
			name: "fail/update-to-a-missing-user",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateEnrollment(t.Context(), filledEnrollment(t, "e1", "nope", 2))
			},
			wantErr: store.ErrNotFound,
			want:    func(t *testing.T) []*store.Enrollment { return []*store.Enrollment{e1(t)} },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			if err := st.CreateEnrollment(ctx, filledEnrollment(t, "e1", "u1", 1)); err != nil {
				t.Fatalf("CreateEnrollment(e1) = %v, want nil", err)
			}
			if err := tt.run(t, st); !matches(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want(t) {
				got, err := st.GetEnrollment(ctx, w.Hash)
				if err != nil {
					t.Fatalf("GetEnrollment(%q) = %v, want nil", w.Hash, err)
				}
				if diff := cmp.Diff(w, got, cmpOpts()); diff != "" {
					t.Errorf("GetEnrollment(%q) mismatch (-want +got):\n%s", w.Hash, diff)
				}
			}
			for _, h := range tt.gone {
				_, err := st.GetEnrollment(ctx, []byte(h))
				wantNotFound(t, fmt.Sprintf("GetEnrollment(%q)", h), err)
			}
		})
	}
}

func testSessions(t *testing.T, open Opener) {
	// Every case starts with users u1 and u2, sessions s1 and s2 of u1 and
	// s3 of u2 (seeds 1, 2, 3). Afterwards GetSession returns each of
	// want, and store.ErrNotFound for each of gone.
	initial := func(t *testing.T) []*store.Session {
		return []*store.Session{
			normalized(filledSession(t, "s1", "u1", 1)),
			normalized(filledSession(t, "s2", "u1", 2)),
			normalized(filledSession(t, "s3", "u2", 3)),
		}
	}
	for _, tt := range []struct {
		name    string
		run     func(t *testing.T, st store.Store) error
		wantErr error
		want    func(t *testing.T) []*store.Session
		gone    []string
	}{
		{
			name: "ok/every-field",
			run:  func(*testing.T, store.Store) error { return nil },
			want: initial,
		},
		{
			name: "ok/zero-values-stay-zero",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateSession(t.Context(), &store.Session{Hash: []byte("s4"), UserID: "u2"})
			},
			want: func(t *testing.T) []*store.Session {
				return append(initial(t), &store.Session{Hash: []byte("s4"), UserID: "u2"})
			},
		},
		{
			name: "ok/empty-amr-comes-back-nil",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateSession(t.Context(), &store.Session{Hash: []byte("s4"), UserID: "u2", AAL: 1, AMR: []string{}})
			},
			want: func(t *testing.T) []*store.Session {
				return append(initial(t), &store.Session{Hash: []byte("s4"), UserID: "u2", AAL: 1})
			},
		},
		{
			name: "ok/binary-hash",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateSession(t.Context(), &store.Session{Hash: binaryHash, UserID: "u1", AAL: 2, AMR: []string{"hwk", "user"}})
			},
			want: func(t *testing.T) []*store.Session {
				return append(initial(t), &store.Session{Hash: binaryHash, UserID: "u1", AAL: 2, AMR: []string{"hwk", "user"}})
			},
		},
		{
			name: "ok/touch",
			run: func(t *testing.T, st store.Store) error {
				s, err := st.GetSession(t.Context(), []byte("s1"))
				if err != nil {
					return err
				}
				s.LastSeenAt = at(10 * time.Hour)
				return st.UpdateSession(t.Context(), s)
			},
			want: func(t *testing.T) []*store.Session {
				ss := initial(t)
				ss[0].LastSeenAt = stored(at(10 * time.Hour))
				return ss
			},
		},
		{
			name: "ok/update-replaces-every-field",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateSession(t.Context(), filledSession(t, "s1", "u2", 4))
			},
			want: func(t *testing.T) []*store.Session {
				ss := initial(t)
				ss[0] = normalized(filledSession(t, "s1", "u2", 4))
				return ss
			},
		},
		{
			name: "ok/update-clears-fields",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateSession(t.Context(), &store.Session{Hash: []byte("s1"), UserID: "u1"})
			},
			want: func(t *testing.T) []*store.Session {
				ss := initial(t)
				ss[0] = &store.Session{Hash: []byte("s1"), UserID: "u1"}
				return ss
			},
		},
		{
			name: "ok/delete",
			run:  func(t *testing.T, st store.Store) error { return st.DeleteSession(t.Context(), []byte("s1")) },
			want: func(t *testing.T) []*store.Session { return initial(t)[1:] },
			gone: []string{"s1"},
		},
		{
			name: "ok/delete-user-sessions-leaves-others",
			run:  func(t *testing.T, st store.Store) error { return st.DeleteUserSessions(t.Context(), "u1") },
			want: func(t *testing.T) []*store.Session { return initial(t)[2:] },
			gone: []string{"s1", "s2"},
		},
		{
			name: "ok/delete-user-sessions-when-there-are-none",
			run: func(t *testing.T, st store.Store) error {
				if err := st.DeleteUserSessions(t.Context(), "u2"); err != nil {
					return err
				}
				return st.DeleteUserSessions(t.Context(), "u2")
			},
			want: func(t *testing.T) []*store.Session { return initial(t)[:2] },
			gone: []string{"s3"},
		},
		{
			name: "ok/delete-user-sessions-of-a-missing-user",
			run:  func(t *testing.T, st store.Store) error { return st.DeleteUserSessions(t.Context(), "nope") },
			want: initial,
		},
		{
			name: "fail/create-existing-hash",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateSession(t.Context(), &store.Session{Hash: []byte("s1"), UserID: "u2"})
			},
			wantErr: store.ErrConflict,
			want:    initial,
		},
		{
			name: "fail/create-for-a-missing-user",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateSession(t.Context(), &store.Session{Hash: []byte("s4"), UserID: "nope"})
			},
			wantErr: store.ErrNotFound,
			want:    initial,
			gone:    []string{"s4"},
		},
		{
			name: "fail/create-without-a-hash",
			run: func(t *testing.T, st store.Store) error {
				return st.CreateSession(t.Context(), &store.Session{UserID: "u1"})
			},
			wantErr: errAny,
			want:    initial,
			gone:    []string{""},
		},
		{
			name: "fail/get-missing",
			run: func(t *testing.T, st store.Store) error {
				_, err := st.GetSession(t.Context(), []byte("s4"))
				return err
			},
			wantErr: store.ErrNotFound,
			want:    initial,
		},
		{
			name: "fail/update-missing",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateSession(t.Context(), &store.Session{Hash: []byte("s4"), UserID: "u1"})
			},
			wantErr: store.ErrNotFound,
			want:    initial,
			gone:    []string{"s4"},
		},
		{
			name: "fail/update-to-a-missing-user",
			run: func(t *testing.T, st store.Store) error {
				return st.UpdateSession(t.Context(), filledSession(t, "s1", "nope", 4))
			},
			wantErr: store.ErrNotFound,
			want:    initial,
		},
		{
			name:    "fail/delete-missing",
			run:     func(t *testing.T, st store.Store) error { return st.DeleteSession(t.Context(), []byte("s4")) },
			wantErr: store.ErrNotFound,
			want:    initial,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := withUsers(t, open, "u1", "u2"), t.Context()
			for i, s := range []*store.Session{filledSession(t, "s1", "u1", 1), filledSession(t, "s2", "u1", 2), filledSession(t, "s3", "u2", 3)} {
				if err := st.CreateSession(ctx, s); err != nil {
					t.Fatalf("CreateSession(%d) = %v, want nil", i, err)
				}
			}
			if err := tt.run(t, st); !matches(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.want(t) {
				got, err := st.GetSession(ctx, w.Hash)
				if err != nil {
					t.Fatalf("GetSession(%q) = %v, want nil", w.Hash, err)
				}
				if diff := cmp.Diff(w, got, cmpOpts()); diff != "" {
					t.Errorf("GetSession(%q) mismatch (-want +got):\n%s", w.Hash, diff)
				}
			}
			for _, h := range tt.gone {
				_, err := st.GetSession(ctx, []byte(h))
				wantNotFound(t, fmt.Sprintf("GetSession(%q)", h), err)
			}
		})
	}
}

func testCheckChanges(t *testing.T, open Opener) {
	const (
		a = `{"resource_changes": [{"address": "aws_s3_bucket.b",  "actions": ["delete"], "size": 1.50}]}`
		b = `[{"z": 1e2, "a": "\u00e9", "sensitive": "(sensitive value)"}]`
	)
	errBoom := errors.New("boom")
	type put struct {
		check, changes string
		inTx           bool  // in a transaction, rolled back
		wantErr        error // as matches takes it
	}
	// Every case starts with checks c1 and c2. Afterwards GetCheckChanges
	// returns want for each check in it and store.ErrNotFound for the
	// others of c1, c2 and nope.
	for _, tt := range []struct {
		name string
		puts []put
		want map[string]json.RawMessage
	}{
		{"ok/kept-byte-for-byte", []put{{"c1", a, false, nil}}, map[string]json.RawMessage{"c1": json.RawMessage(a)}},
		{"ok/second-put-replaces", []put{{"c1", a, false, nil}, {"c1", b, false, nil}}, map[string]json.RawMessage{"c1": json.RawMessage(b)}},
		{"ok/each-check-its-own", []put{{"c1", a, false, nil}, {"c2", b, false, nil}}, map[string]json.RawMessage{"c1": json.RawMessage(a), "c2": json.RawMessage(b)}},
		{"ok/json-null-is-kept", []put{{"c1", "null", false, nil}}, map[string]json.RawMessage{"c1": json.RawMessage("null")}},
		{"ok/blank-comes-back-nil", []put{{"c1", a, false, nil}, {"c1", " \n", false, nil}}, map[string]json.RawMessage{"c1": nil}},
		{"fail/none-yet", nil, nil},
		{"fail/missing-check", []put{{"nope", a, false, store.ErrNotFound}}, nil},
		{"fail/invalid-json-keeps-the-last", []put{{"c1", a, false, nil}, {"c1", `{"a":`, false, errAny}}, map[string]json.RawMessage{"c1": json.RawMessage(a)}},
		{"fail/rolled-back", []put{{"c1", a, false, nil}, {"c1", b, true, errBoom}, {"c2", b, true, errBoom}}, map[string]json.RawMessage{"c1": json.RawMessage(a)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			for _, id := range []string{"c1", "c2"} {
				if err := st.CreateCheck(ctx, &store.Check{ID: id, State: store.StatePending}); err != nil {
					t.Fatalf("CreateCheck(%s) = %v, want nil", id, err)
				}
			}
			for i, p := range tt.puts {
				var err error
				if p.inTx {
					err = st.InTx(ctx, func(tx store.Tx) error {
						if err := tx.PutCheckChanges(ctx, p.check, json.RawMessage(p.changes)); err != nil {
							return err
						}
						return errBoom
					})
				} else {
					err = st.PutCheckChanges(ctx, p.check, json.RawMessage(p.changes))
				}
				if !matches(err, p.wantErr) {
					t.Fatalf("PutCheckChanges(%d: %s) = %v, want %v", i, p.check, err, p.wantErr)
				}
			}
			for _, id := range []string{"c1", "c2", "nope"} {
				got, err := st.GetCheckChanges(ctx, id)
				want, ok := tt.want[id]
				if !ok {
					wantNotFound(t, fmt.Sprintf("GetCheckChanges(%s)", id), err)
					continue
				}
				if err != nil {
					t.Fatalf("GetCheckChanges(%s) = %v, want nil", id, err)
				}
				if string(got) != string(want) || (got == nil) != (want == nil) {
					t.Errorf("GetCheckChanges(%s) = %#q, want %#q", id, got, want)
				}
			}
		})
	}
}

func testListChecks(t *testing.T, open Opener) {
	// Inserted in this order, so that a store returning rows in insertion
	// order is caught.
	checks := []*store.Check{
		{ID: "p-mid", State: store.StatePending, CreatedAt: at(time.Minute)},
		{ID: "p-old", State: store.StatePending, CreatedAt: at(0)},
		{ID: "p-zero", State: store.StatePending},
		{ID: "p-new-a", State: store.StatePending, CreatedAt: at(2 * time.Minute)},
		{ID: "p-mid-1us", State: store.StatePending, CreatedAt: at(time.Minute + time.Microsecond)},
		{ID: "p-new-b", State: store.StatePending, CreatedAt: at(2 * time.Minute)},
		{ID: "approved", State: store.StateApproved, CreatedAt: at(5 * time.Minute)},
	}
	for _, tt := range []struct {
		name    string
		state   store.CheckState
		limit   int
		want    []string
		wantErr bool
	}{
		{"ok/newest-first", store.StatePending, 10, []string{"p-new-b", "p-new-a", "p-mid-1us", "p-mid", "p-old", "p-zero"}, false},
		{"ok/limit", store.StatePending, 2, []string{"p-new-b", "p-new-a"}, false},
		{"ok/another-state", store.StateApproved, 10, []string{"approved"}, false},
		{"ok/none-in-the-state", store.StateDenied, 10, []string{}, false},
		{"fail/zero-limit", store.StatePending, 0, nil, true},
		{"fail/negative-limit", store.StatePending, -1, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			for _, c := range checks {
				if err := st.CreateCheck(ctx, c); err != nil {
					t.Fatalf("CreateCheck(%s) = %v, want nil", c.ID, err)
				}
			}
			got, err := st.ListChecks(ctx, tt.state, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ListChecks(%s, %d) error = %v, want error %v", tt.state, tt.limit, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, ids(got, func(c *store.Check) string { return c.ID })); diff != "" {
				t.Errorf("ListChecks(%s, %d) mismatch (-want +got):\n%s", tt.state, tt.limit, diff)
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		for _, c := range checks {
			if err := st.CreateCheck(ctx, c); err != nil {
				t.Fatalf("CreateCheck(%s) = %v, want nil", c.ID, err)
			}
		}
		for _, tt := range []struct {
			name          string
			offset, limit int
			want          []string
			wantErr       bool
		}{
			{"ok/first", 0, 2, []string{"p-new-b", "p-new-a"}, false},
			{"ok/second", 2, 2, []string{"p-mid-1us", "p-mid"}, false},
			{"ok/last", 4, 2, []string{"p-old", "p-zero"}, false},
			{"ok/past-the-end", 6, 2, []string{}, false},
			{"fail/negative-offset", -1, 2, nil, true},
			{"fail/zero-limit", 0, 0, nil, true},
		} {
			got, err := st.ListChecksPage(ctx, store.StatePending, tt.offset, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("%s: ListChecksPage(%d, %d) error = %v, want error %v", tt.name, tt.offset, tt.limit, err, tt.wantErr)
			}
			if err != nil {
				continue
			}
			if diff := cmp.Diff(tt.want, ids(got, func(c *store.Check) string { return c.ID })); diff != "" {
				t.Errorf("%s: ListChecksPage(%d, %d) mismatch (-want +got):\n%s", tt.name, tt.offset, tt.limit, diff)
			}
		}
	})

	t.Run("count-pending", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		for _, c := range []*store.Check{
			{ID: "a1", State: store.StatePending, TokenID: "tok-a"},
			{ID: "a2", State: store.StatePending, TokenID: "tok-a"},
			{ID: "a3", State: store.StateApproved, TokenID: "tok-a"},
			{ID: "b1", State: store.StatePending, TokenID: "tok-b"},
		} {
			if err := st.CreateCheck(ctx, c); err != nil {
				t.Fatalf("CreateCheck(%s) = %v, want nil", c.ID, err)
			}
		}
		for tok, want := range map[string]int{"tok-a": 2, "tok-b": 1, "tok-c": 0} {
			if got, err := st.CountPendingChecks(ctx, tok); err != nil || got != want {
				t.Errorf("CountPendingChecks(%s) = %d, %v; want %d, nil", tok, got, err, want)
			}
		}
	})

	t.Run("pending-stats", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if p, o, err := st.PendingStats(ctx, at(0)); err != nil || p != 0 || o != 0 {
			t.Errorf("PendingStats() of an empty store = %d, %d, %v; want 0, 0, nil", p, o, err)
		}
		for _, c := range []*store.Check{
			{ID: "due", State: store.StatePending, ExpiresAt: at(time.Minute)},
			{ID: "later", State: store.StatePending, ExpiresAt: at(time.Hour)},
			{ID: "done", State: store.StateApproved, ExpiresAt: at(time.Minute)},
		} {
			if err := st.CreateCheck(ctx, c); err != nil {
				t.Fatalf("CreateCheck(%s) = %v, want nil", c.ID, err)
			}
		}
		if p, o, err := st.PendingStats(ctx, at(2*time.Minute)); err != nil || p != 2 || o != 1 {
			t.Errorf("PendingStats() = %d, %d, %v; want 2 pending, 1 overdue", p, o, err)
		}
	})

	t.Run("ok/every-field", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		c := filledCheck(t, "c1", 1)
		if err := st.CreateCheck(ctx, c); err != nil {
			t.Fatalf("CreateCheck() = %v, want nil", err)
		}
		got, err := st.ListChecks(ctx, c.State, 1)
		if err != nil {
			t.Fatalf("ListChecks() = %v, want nil", err)
		}
		if diff := cmp.Diff([]*store.Check{normalized(c)}, got, cmpOpts()); diff != "" {
			t.Errorf("ListChecks() mismatch (-want +got):\n%s", diff)
		}
	})
}

// Cascade checks what deleting a user or a check does, which the store's
// contract does not offer but its schema provides for: exec runs a
// statement ($n parameters) on st's database, outside the store. Deleting
// a user deletes its links, credentials, enrollments and sessions, and no
// one else's; deleting a check deletes its changes.
func Cascade(t *testing.T, st store.Store, exec func(query string, args ...any)) {
	t.Helper()
	ctx := t.Context()
	for i, id := range []string{"u1", "u2"} {
		seed := i + 1
		steps := []error{
			st.CreateUser(ctx, filledUser(t, id, seed)),
			st.AddCredential(ctx, filledCredential(t, "cr-"+id, id, seed)),
			st.CreateEnrollment(ctx, filledEnrollment(t, "e-"+id, id, seed)),
			st.CreateSession(ctx, filledSession(t, "s-"+id, id, seed)),
			st.CreateCheck(ctx, &store.Check{ID: "c-" + id, State: store.StatePending}),
			st.PutCheckChanges(ctx, "c-"+id, json.RawMessage(`[]`)),
		}
		if err := errors.Join(steps...); err != nil {
			t.Fatalf("writing the records of %s: %v", id, err)
		}
	}
	exec(`DELETE FROM users WHERE id = $1`, "u1")
	exec(`DELETE FROM checks WHERE id = $1`, "c-u1")

	u1 := filledUser(t, "u1", 1)
	for _, link := range u1.Links {
		_, err := st.FindUserByLink(ctx, link)
		wantNotFound(t, fmt.Sprintf("FindUserByLink(%s) of a deleted user", link), err)
	}
	_, err := st.GetCredential(ctx, "cr-u1")
	wantNotFound(t, "GetCredential() of a deleted user", err)
	_, err = st.GetEnrollment(ctx, []byte("e-u1"))
	wantNotFound(t, "GetEnrollment() of a deleted user", err)
	_, err = st.GetSession(ctx, []byte("s-u1"))
	wantNotFound(t, "GetSession() of a deleted user", err)
	_, err = st.GetCheckChanges(ctx, "c-u1")
	wantNotFound(t, "GetCheckChanges() of a deleted check", err)
	// A new user may take the links of the deleted one.
	if err := st.CreateUser(ctx, &store.User{ID: "u3", Name: "carol", Links: u1.Links}); err != nil {
		t.Errorf("CreateUser() with the links of a deleted user = %v, want nil", err)
	}

	checkUser(t, st, normalized(filledUser(t, "u2", 2)))
	checkCredentials(t, st, map[string][]*store.Credential{"u1": nil, "u2": {normalized(filledCredential(t, "cr-u2", "u2", 2))}})
	if _, err := st.GetEnrollment(ctx, []byte("e-u2")); err != nil {
		t.Errorf("GetEnrollment() of the other user = %v, want nil", err)
	}
	if _, err := st.GetSession(ctx, []byte("s-u2")); err != nil {
		t.Errorf("GetSession() of the other user = %v, want nil", err)
	}
	if _, err := st.GetCheckChanges(ctx, "c-u2"); err != nil {
		t.Errorf("GetCheckChanges() of the other check = %v, want nil", err)
	}
}
