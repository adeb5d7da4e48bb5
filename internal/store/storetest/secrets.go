package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/store"
)

// filledSecret is a live version of a secret with every field set.
func filledSecret(t *testing.T, name string, version, seed int) *store.SecretVersion {
	t.Helper()
	var v store.SecretVersion
	fill(t, &v, seed)
	v.Name, v.Version, v.Deleted = name, version, false
	return &v
}

func tombstone(name string, version int) *store.SecretVersion {
	return &store.SecretVersion{Name: name, Version: version, Workspace: "w", KeyID: "", Deleted: true, CreatedAt: at(0), CreatedBy: "cli:root"}
}

func testSecrets(t *testing.T, open Opener) {
	t.Run("ok/versions-round-trip", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		v1, v2 := filledSecret(t, "billing/db", 1, 1), filledSecret(t, "billing/db", 2, 2)
		other := filledSecret(t, "a/b", 1, 3)
		for _, v := range []*store.SecretVersion{v1, v2, other} {
			if err := st.AddSecretVersion(ctx, v); err != nil {
				t.Fatalf("AddSecretVersion(%s v%d) = %v, want nil", v.Name, v.Version, err)
			}
		}
		got, err := st.GetSecret(ctx, "billing/db")
		if err != nil {
			t.Fatalf("GetSecret() = %v, want nil", err)
		}
		if diff := cmp.Diff(normalized(v2), got, cmpOpts()); diff != "" {
			t.Errorf("GetSecret() mismatch (-want +got):\n%s", diff)
		}
		got, err = st.GetSecretVersion(ctx, "billing/db", 1)
		if err != nil {
			t.Fatalf("GetSecretVersion(1) = %v, want nil", err)
		}
		if diff := cmp.Diff(normalized(v1), got, cmpOpts()); diff != "" {
			t.Errorf("GetSecretVersion(1) mismatch (-want +got):\n%s", diff)
		}
		list, err := st.ListSecrets(ctx)
		if err != nil {
			t.Fatalf("ListSecrets() = %v, want nil", err)
		}
		if diff := cmp.Diff([]*store.SecretVersion{normalized(other), normalized(v2)}, list, cmpOpts()); diff != "" {
			t.Errorf("ListSecrets() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ok/tombstone-is-newest", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if err := st.AddSecretVersion(ctx, filledSecret(t, "s", 1, 1)); err != nil {
			t.Fatal(err)
		}
		if err := st.AddSecretVersion(ctx, tombstone("s", 2)); err != nil {
			t.Fatalf("AddSecretVersion(tombstone) = %v, want nil", err)
		}
		got, err := st.GetSecret(ctx, "s")
		if err != nil || !got.Deleted || got.Version != 2 || got.SealedKey != nil || got.SealedValue != nil {
			t.Fatalf("GetSecret() = %+v, %v, want the tombstone, version 2, no sealed parts", got, err)
		}
		// The tombstone is never resealed.
		todo, err := st.SecretsSealedUnder(ctx, "another-key", 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"s/1"}, versionNames(todo)); diff != "" {
			t.Errorf("SecretsSealedUnder() mismatch (-want +got):\n%s", diff)
		}
	})

	for _, tt := range []struct {
		name string
		v    func(t *testing.T) *store.SecretVersion
		want error
	}{
		{"fail/same-version-twice", func(t *testing.T) *store.SecretVersion { return filledSecret(t, "s", 1, 9) }, store.ErrConflict},
		{"fail/live-without-sealed-value", func(t *testing.T) *store.SecretVersion {
			v := filledSecret(t, "s", 2, 9)
			v.SealedValue = nil
			return v
		}, errAny},
		{"fail/version-zero", func(t *testing.T) *store.SecretVersion { return filledSecret(t, "s", 0, 9) }, errAny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ctx := open(t), t.Context()
			first := filledSecret(t, "s", 1, 1)
			if err := st.AddSecretVersion(ctx, first); err != nil {
				t.Fatal(err)
			}
			if err := st.AddSecretVersion(ctx, tt.v(t)); !matches(err, tt.want) {
				t.Fatalf("AddSecretVersion() = %v, want %v", err, tt.want)
			}
			got, err := st.GetSecret(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(normalized(first), got, cmpOpts()); diff != "" {
				t.Errorf("GetSecret() after a refused add mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("fail/not-found", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if _, err := st.GetSecret(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSecret(nope) = %v, want ErrNotFound", err)
		}
		if _, err := st.GetSecretVersion(ctx, "nope", 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSecretVersion(nope, 1) = %v, want ErrNotFound", err)
		}
		if l, err := st.ListSecrets(ctx); err != nil || len(l) != 0 {
			t.Errorf("ListSecrets() = %v, %v, want none", l, err)
		}
	})

	t.Run("ok/reseal-compare-and-swap", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		for i, name := range []string{"a", "b", "c"} {
			v := filledSecret(t, name, 1, i)
			v.KeyID = "old"
			if name == "c" {
				v.KeyID = "new"
			}
			if err := st.AddSecretVersion(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		todo, err := st.SecretsSealedUnder(ctx, "new", 1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a/1"}, versionNames(todo)); diff != "" {
			t.Errorf("SecretsSealedUnder(new, 1) mismatch (-want +got):\n%s", diff)
		}
		ok, err := st.ResealSecret(ctx, "a", 1, "old", "new", []byte("resealed"))
		if err != nil || !ok {
			t.Fatalf("ResealSecret(a) = %v, %v, want true, nil", ok, err)
		}
		// A second rotation that read the row before is refused.
		if ok, err := st.ResealSecret(ctx, "a", 1, "old", "newer", []byte("other")); err != nil || ok {
			t.Fatalf("ResealSecret(a) again from old = %v, %v, want false, nil", ok, err)
		}
		if ok, err := st.ResealSecret(ctx, "zzz", 1, "old", "new", []byte("x")); err != nil || ok {
			t.Fatalf("ResealSecret(missing) = %v, %v, want false, nil", ok, err)
		}
		got, err := st.GetSecretVersion(ctx, "a", 1)
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyID != "new" || string(got.SealedKey) != "resealed" || string(got.SealedValue) != "SealedValue-0" {
			t.Errorf("after ResealSecret: key id %q, sealed key %q, value %q; want new, resealed, the value unchanged", got.KeyID, got.SealedKey, got.SealedValue)
		}
		todo, err = st.SecretsSealedUnder(ctx, "new", 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b/1"}, versionNames(todo)); diff != "" {
			t.Errorf("SecretsSealedUnder(new) mismatch (-want +got):\n%s", diff)
		}
		if _, err := st.SecretsSealedUnder(ctx, "new", 0); err == nil {
			t.Errorf("SecretsSealedUnder(limit 0) = nil, want an error")
		}
		if _, err := st.ResealSecret(ctx, "b", 1, "old", "new", nil); err == nil {
			t.Errorf("ResealSecret(no key) = nil, want an error")
		}
	})

	t.Run("ok/check-secrets", func(t *testing.T) {
		t.Parallel()
		st, ctx := open(t), t.Context()
		if err := st.CreateCheck(ctx, filledCheck(t, "c1", 1)); err != nil {
			t.Fatal(err)
		}
		if got, err := st.GetCheckSecrets(ctx, "c1"); err != nil || got != nil {
			t.Fatalf("GetCheckSecrets() before = %v, %v, want nil, nil", got, err)
		}
		want := []store.CheckSecret{{Name: "billing/db", Env: "TF_VAR_db"}, {Name: "a/b"}}
		if err := st.PutCheckSecrets(ctx, "c1", want); err != nil {
			t.Fatalf("PutCheckSecrets() = %v, want nil", err)
		}
		got, err := st.GetCheckSecrets(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetCheckSecrets() mismatch (-want +got):\n%s", diff)
		}
		if err := st.PutCheckSecrets(ctx, "nope", want); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PutCheckSecrets(no check) = %v, want ErrNotFound", err)
		}
	})
}

func versionNames(vs []*store.SecretVersion) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s/%d", v.Name, v.Version))
	}
	return out
}
