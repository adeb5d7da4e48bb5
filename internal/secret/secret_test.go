package secret

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/audit"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

const value = "correct horse battery staple"

func master(t testing.TB, b byte) *keys.Master {
	t.Helper()
	m, err := keys.NewMaster(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func openStore(t testing.TB) (store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stepgate.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func clock() func() time.Time {
	now := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	return func() time.Time { return now }
}

func put(t *testing.T, s *Service, name, ws string) *store.SecretVersion {
	t.Helper()
	v, err := s.Put(t.Context(), name, ws, "the billing database", []byte(value), "cli:root")
	if err != nil {
		t.Fatalf("Put(%s) = %v", name, err)
	}
	return v
}

func TestPutOpen(t *testing.T) {
	st, path := openStore(t)
	s := New(st, master(t, 1), clock())
	v1 := put(t, s, "billing/db", "billing-*")
	v2 := put(t, s, "billing/db", "billing-*")
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions = %d, %d, want 1, 2", v1.Version, v2.Version)
	}
	if bytes.Equal(v1.SealedKey, v2.SealedKey) || bytes.Equal(v1.SealedValue, v2.SealedValue) {
		t.Errorf("two versions share a sealed data key or value: want a fresh data key per version")
	}
	got, err := Resolve(t.Context(), st, "billing-prod", []string{"billing/db"})
	if err != nil {
		t.Fatal(err)
	}
	val, err := s.Open(got[0])
	if err != nil || string(val) != value || got[0].Version != 2 {
		t.Fatalf("Open(newest) = %q v%d, %v, want the value of version 2", val, got[0].Version, err)
	}
	// The value is nowhere in the database file nor in the audit log.
	st.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(value)) || bytes.Contains(b, []byte("horse")) {
			t.Errorf("%s holds the value in clear", filepath.Base(f))
		}
	}
}

// openedVersion reads the newest version of name as stored.
func stored(t *testing.T, st store.Store, name string) *store.SecretVersion {
	t.Helper()
	v, err := st.GetSecret(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSealedValuesDoNotMove(t *testing.T) {
	st, _ := openStore(t)
	s := New(st, master(t, 1), clock())
	put(t, s, "billing/db", "billing-*")
	put(t, s, "billing/api-key", "billing-*")
	put(t, s, "shared/db", "*")
	for _, tt := range []struct {
		name   string
		edit   func(v, other *store.SecretVersion)
		opener *Service
	}{
		{"fail/value-tampered", func(v, _ *store.SecretVersion) { v.SealedValue[len(v.SealedValue)-1] ^= 1 }, s},
		{"fail/value-bit-flipped-in-the-middle", func(v, _ *store.SecretVersion) { v.SealedValue[20] ^= 0x80 }, s},
		{"fail/data-key-tampered", func(v, _ *store.SecretVersion) { v.SealedKey[15] ^= 1 }, s},
		{"fail/value-truncated", func(v, _ *store.SecretVersion) { v.SealedValue = v.SealedValue[:10] }, s},
		{"fail/moved-to-another-name", func(v, _ *store.SecretVersion) { v.Name = "billing/api-key" }, s},
		{"fail/another-names-sealed-parts", func(v, other *store.SecretVersion) {
			v.SealedKey, v.SealedValue = other.SealedKey, other.SealedValue
		}, s},
		{"fail/another-names-value-with-own-key", func(v, other *store.SecretVersion) { v.SealedValue = other.SealedValue }, s},
		{"fail/workspace-widened", func(v, _ *store.SecretVersion) { v.Workspace = "*" }, s},
		{"fail/version-changed", func(v, _ *store.SecretVersion) { v.Version = 7 }, s},
		{"fail/wrong-master-key", func(*store.SecretVersion, *store.SecretVersion) {}, New(st, master(t, 2), clock())},
		{"fail/key-id-edited-to-the-loaded-wrong-key", func(v, _ *store.SecretVersion) { v.KeyID = master(t, 2).ID() }, New(st, master(t, 2), clock())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, other := stored(t, st, "billing/db"), stored(t, st, "billing/api-key")
			if tt.name == "fail/another-names-sealed-parts" {
				other = stored(t, st, "shared/db")
			}
			tt.edit(v, other)
			val, err := tt.opener.Open(v)
			if !errors.Is(err, ErrSealed) {
				t.Fatalf("Open() = %q, %v, want ErrSealed", val, err)
			}
			if strings.Contains(err.Error(), value) {
				t.Errorf("the error shows the value: %v", err)
			}
		})
	}
	t.Run("ok/untouched", func(t *testing.T) {
		val, err := s.Open(stored(t, st, "billing/db"))
		if err != nil || string(val) != value {
			t.Fatalf("Open() = %q, %v, want the value", val, err)
		}
	})
}

func TestResolve(t *testing.T) {
	st, _ := openStore(t)
	s := New(st, master(t, 1), clock())
	put(t, s, "billing/db", "billing-*")
	put(t, s, "gone", "*")
	if _, err := s.Remove(t.Context(), "gone", "cli:root"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, workspace string
		names           []string
		want            error
	}{
		{"ok/workspace-matches", "billing-prod", []string{"billing/db"}, nil},
		{"fail/other-workspace", "payments-prod", []string{"billing/db"}, ErrNotFound},
		{"fail/missing", "billing-prod", []string{"billing/nope"}, ErrNotFound},
		{"fail/removed", "billing-prod", []string{"gone"}, ErrNotFound},
		{"fail/bad-name", "billing-prod", []string{"../etc"}, ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(t.Context(), st, tt.workspace, tt.names)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("Resolve() = %v, want %v", err, tt.want)
			}
		})
	}
	// Other workspaces' secrets and missing ones read alike.
	_, e1 := Resolve(t.Context(), st, "payments-prod", []string{"billing/db"})
	_, e2 := Resolve(t.Context(), st, "payments-prod", []string{"billing/dc"})
	if strings.ReplaceAll(e1.Error(), "billing/db", "X") != strings.ReplaceAll(e2.Error(), "billing/dc", "X") {
		t.Errorf("errors differ for another workspace's secret and a missing one: %q, %q", e1, e2)
	}
}

func TestPutRefuses(t *testing.T) {
	st, _ := openStore(t)
	s := New(st, master(t, 1), clock())
	for _, tt := range []struct{ name, secret, ws, desc, value string }{
		{"fail/empty-value", "a", "*", "", ""},
		{"fail/no-workspace", "a", "", "", "v"},
		{"fail/bad-glob", "a", "[", "", "v"},
		{"fail/name-with-space", "a b", "*", "", "v"},
		{"fail/name-traversal", "a/../b", "*", "", "v"},
		{"fail/name-trailing-slash", "a/", "*", "", "v"},
		{"fail/value-too-large", "a", "*", "", strings.Repeat("x", MaxValueBytes+1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Put(t.Context(), tt.secret, tt.ws, tt.desc, []byte(tt.value), "cli:root"); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Put() = %v, want ErrInvalid", err)
			}
		})
	}
	if l, _ := s.List(t.Context()); len(l) != 0 {
		t.Errorf("List() after refused puts = %d secrets, want none", len(l))
	}
}

func TestRemoveAndPutAgain(t *testing.T) {
	st, _ := openStore(t)
	s := New(st, master(t, 1), clock())
	put(t, s, "a", "*")
	if v, err := s.Remove(t.Context(), "a", "cli:root"); err != nil || v != 2 {
		t.Fatalf("Remove() = %d, %v, want version 2", v, err)
	}
	if _, err := s.Remove(t.Context(), "a", "cli:root"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove() again = %v, want ErrNotFound", err)
	}
	if v := put(t, s, "a", "*"); v.Version != 3 {
		t.Fatalf("Put() after Remove = version %d, want 3", v.Version)
	}
	list, err := s.List(t.Context())
	if err != nil || len(list) != 1 || list[0].SealedValue != nil || list[0].SealedKey != nil {
		t.Fatalf("List() = %+v, %v: want one secret without sealed parts", list, err)
	}
	types := auditTypes(t, st)
	want := []string{audit.SecretWritten, audit.SecretRemoved, audit.SecretWritten}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Errorf("audit = %v, want %v", types, want)
	}
}

func auditTypes(t *testing.T, st store.Store) []string {
	t.Helper()
	evs, err := st.ListAudit(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if bytes.Contains(e.Data, []byte(value)) {
			t.Errorf("audit event %d (%s) holds the value", e.Seq, e.Type)
		}
		out = append(out, e.Type)
	}
	return out
}

// TestRotateMaster re-seals every data key under a new master key while a
// release is in flight: the release read a version sealed under the old
// key before the rotation committed, and opens it after, with a server
// keyring holding both keys. Once the old key is dropped, only what was
// re-sealed opens.
func TestRotateMaster(t *testing.T) {
	st, _ := openStore(t)
	oldKey, newKey := master(t, 1), master(t, 2)
	before := New(st, oldKey, clock())
	for _, n := range []string{"a", "b", "c"} {
		put(t, before, n, "*")
	}
	for i := range 150 { // more than one batch
		if _, err := before.Put(t.Context(), "bulk/"+string(rune('a'+i%26))+strings.Repeat("x", i/26), "*", "", []byte(value), "cli:root"); err != nil {
			t.Fatal(err)
		}
	}
	// The release in flight: it has read version 1 of a, sealed under the
	// old key.
	inFlight, err := Resolve(t.Context(), st, "w", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	// The server runs with both keys from before the rotation until after.
	server := New(st, newKey.WithPrevious(oldKey), clock())
	rotator := New(st, newKey.WithPrevious(oldKey), clock())
	n, err := rotator.RotateMaster(t.Context(), "cli:root")
	if err != nil || n != 153 {
		t.Fatalf("RotateMaster() = %d, %v, want 153 re-sealed", n, err)
	}
	if n, err := rotator.RotateMaster(t.Context(), "cli:root"); err != nil || n != 0 {
		t.Fatalf("RotateMaster() again = %d, %v, want 0: nothing is left under the old key", n, err)
	}
	if inFlight[0].KeyID != oldKey.ID() {
		t.Fatalf("the in-flight read has key %s, want the old key %s", inFlight[0].KeyID, oldKey.ID())
	}
	if val, err := server.Open(inFlight[0]); err != nil || string(val) != value {
		t.Fatalf("in-flight Open() during the rotation = %q, %v, want the value", val, err)
	}
	// After the rotation, with the new key alone.
	after := New(st, newKey, clock())
	for _, name := range []string{"a", "b", "c", "bulk/a"} {
		v := stored(t, st, name)
		if v.KeyID != newKey.ID() {
			t.Errorf("%s is sealed under %s after the rotation, want %s", name, v.KeyID, newKey.ID())
		}
		if val, err := after.Open(v); err != nil || string(val) != value {
			t.Errorf("Open(%s) with the new key alone = %q, %v, want the value", name, val, err)
		}
		if _, err := New(st, oldKey, clock()).Open(v); !errors.Is(err, ErrSealed) {
			t.Errorf("Open(%s) with the old key alone = %v, want ErrSealed", name, err)
		}
	}
	// A stale read opened with the new key alone fails closed.
	if _, err := after.Open(inFlight[0]); !errors.Is(err, ErrSealed) {
		t.Errorf("stale Open() with the old key gone = %v, want ErrSealed", err)
	}
	types := auditTypes(t, st)
	if c := strings.Count(strings.Join(types, ","), audit.SecretResealed); c != 2 {
		t.Errorf("audit has %d %s events, want 2 (two batches)", c, audit.SecretResealed)
	}
}

// TestRotateMasterWithoutOldKey: a rotation that cannot open a data key
// changes nothing.
func TestRotateMasterWithoutOldKey(t *testing.T) {
	st, _ := openStore(t)
	put(t, New(st, master(t, 1), clock()), "a", "*")
	n, err := New(st, master(t, 2), clock()).RotateMaster(context.Background(), "cli:root")
	if !errors.Is(err, ErrSealed) || n != 0 {
		t.Fatalf("RotateMaster() without the old key = %d, %v, want ErrSealed: the key that sealed them is not loaded", n, err)
	}
	if v := stored(t, st, "a"); v.KeyID != master(t, 1).ID() {
		t.Errorf("a failed rotation changed the key id to %s", v.KeyID)
	}
}

func TestValidRef(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"billing/db", true},
		{"vault:billing/db", true},
		{"aws:arn:aws:secretsmanager:eu-west-1:123456789012:secret:billing/db-AbCdEf", true},
		{"gcp:projects/p/secrets/billing-db/versions/latest", true},
		{"Vault:billing/db", false},
		{"vault:", false},
		{"vault:billing db", false},
		{":billing/db", false},
		{"billing/../db", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidRef(tt.name); (err == nil) != tt.ok {
				t.Errorf("ValidRef(%q) = %v, want ok %v", tt.name, err, tt.ok)
			}
		})
	}
}
