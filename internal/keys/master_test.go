package keys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testMaster(t *testing.T, b byte) *Master {
	t.Helper()
	m, err := NewMaster(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatalf("NewMaster() = %v", err)
	}
	return m
}

func TestMasterSealOpen(t *testing.T) {
	m := testMaster(t, 1)
	other := testMaster(t, 2)
	plaintext := []byte("an ed25519 seed, 32 bytes long!!")
	aad := []byte("kid-1")
	sealed, err := m.Seal(plaintext, aad)
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	if got, want := len(sealed), 1+12+len(plaintext)+16; got != want {
		t.Fatalf("len(Seal()) = %d, want %d", got, want)
	}
	if sealed[0] != 1 {
		t.Fatalf("Seal()[0] = %d, want version 1", sealed[0])
	}
	if bytes.Contains(sealed, plaintext) {
		t.Fatal("Seal() output contains the plaintext")
	}
	again, err := m.Seal(plaintext, aad)
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	if bytes.Equal(sealed[1:13], again[1:13]) {
		t.Fatal("two Seal() calls used the same nonce")
	}

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		m      *Master
		sealed []byte
		aad    []byte
		want   []byte // nil: ErrDecrypt
	}{
		{"ok/round-trip", m, sealed, aad, plaintext},
		{"ok/empty-aad", m, mustSeal(t, m, plaintext, nil), nil, plaintext},
		{"fail/tampered-version", m, flip(0), aad, nil},
		{"fail/tampered-nonce", m, flip(5), aad, nil},
		{"fail/tampered-ciphertext", m, flip(20), aad, nil},
		{"fail/tampered-tag", m, flip(len(sealed) - 1), aad, nil},
		{"fail/wrong-aad", m, sealed, []byte("kid-2"), nil},
		{"fail/missing-aad", m, sealed, nil, nil},
		{"fail/wrong-key", other, sealed, aad, nil},
		{"fail/truncated-tag", m, sealed[:len(sealed)-1], aad, nil},
		{"fail/truncated-to-header", m, sealed[:13], aad, nil},
		{"fail/empty", m, nil, aad, nil},
		{"fail/appended-byte", m, append(bytes.Clone(sealed), 0), aad, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.m.Open(tt.sealed, tt.aad)
			if tt.want == nil {
				if !errors.Is(err, ErrDecrypt) {
					t.Fatalf("Open() = %q, %v; want ErrDecrypt", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open() = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Open() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func mustSeal(t *testing.T, m *Master, pt, aad []byte) []byte {
	t.Helper()
	b, err := m.Seal(pt, aad)
	if err != nil {
		t.Fatalf("Seal() = %v", err)
	}
	return b
}

func TestMasterNeverPrintsKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xAB}, 32)
	m, err := NewMaster(key)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "master", m)
	if got := logs.String(); !strings.Contains(got, "master=[redacted]") {
		t.Errorf("slog output %q does not redact the master key", got)
	}
	got := fmt.Sprintf("%v|%+v|%#v|%s|%d|%x|%X|%q", m, m, m, m, m, m, m, m)
	want := "[redacted]|[redacted]|keys.Master{[redacted]}|[redacted]|[redacted]|[redacted]|[redacted]|[redacted]"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fmt of *Master mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadMaster(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	good := base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string // "" = ok
	}{
		{"ok/with-newline", good + "\n", 0o600, ""},
		{"ok/no-newline", good, 0o600, ""},
		{"ok/crlf", good + "\r\n", 0o400, ""},
		{"fail/mode-0644", good + "\n", 0o644, "chmod 600"},
		{"fail/mode-0640", good + "\n", 0o640, "chmod 600"},
		{"fail/mode-0604", good + "\n", 0o604, "chmod 600"},
		{"fail/mode-0620", good + "\n", 0o620, "chmod 600"},
		{"fail/short", base64.StdEncoding.EncodeToString(key[:31]) + "\n", 0o600, "31-byte key, want 32"},
		{"fail/long", base64.StdEncoding.EncodeToString(append(key, 1)) + "\n", 0o600, "33-byte key, want 32"},
		{"fail/empty", "", 0o600, "0-byte key"},
		{"fail/not-base64", strings.Repeat("!", 44) + "\n", 0o600, "not valid base64"},
		{"fail/url-alphabet", strings.Repeat("_", 43) + "=\n", 0o600, "not valid base64"},
		{"fail/two-lines", good + "\n" + good + "\n", 0o600, "more than one line"},
		{"fail/huge", strings.Repeat("A", 4096), 0o600, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			m, err := LoadMaster(path)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("LoadMaster() = nil error, want %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("LoadMaster() = %q, want it to contain %q and the path", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), good[:20]) {
					t.Errorf("LoadMaster() = %q leaks the file content", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadMaster() = %v", err)
			}
			// The loaded key is the one in the file.
			want := testMaster(t, 7)
			sealed := mustSeal(t, want, []byte("x"), nil)
			if _, err := m.Open(sealed, nil); err != nil {
				t.Errorf("loaded master cannot open what the file's key sealed: %v", err)
			}
		})
	}
	t.Run("fail/missing-file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope")
		if _, err := LoadMaster(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadMaster(missing) = %v, want os.ErrNotExist", err)
		}
	})
	t.Run("fail/directory", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o700)
		if _, err := LoadMaster(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadMaster(dir) = %v, want not a regular file", err)
		}
	})
}

func TestGenerateMasterFile(t *testing.T) {
	t.Run("ok/creates-0600-and-loads", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "master.key")
		if err := GenerateMasterFile(path); err != nil {
			t.Fatalf("GenerateMasterFile() = %v", err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("mode = %04o, want 0600", got)
		}
		b, _ := os.ReadFile(path)
		if n := bytes.Count(b, []byte("\n")); n != 1 || b[len(b)-1] != '\n' {
			t.Errorf("file %q is not one line", b)
		}
		m, err := LoadMaster(path)
		if err != nil {
			t.Fatalf("LoadMaster(generated) = %v", err)
		}
		if _, err := m.Open(mustSeal(t, m, []byte("x"), nil), nil); err != nil {
			t.Errorf("round-trip with generated key: %v", err)
		}
	})
	t.Run("ok/two-files-differ", func(t *testing.T) {
		dir := t.TempDir()
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		if err := GenerateMasterFile(a); err != nil {
			t.Fatal(err)
		}
		if err := GenerateMasterFile(b); err != nil {
			t.Fatal(err)
		}
		ka, _ := os.ReadFile(a)
		kb, _ := os.ReadFile(b)
		if bytes.Equal(ka, kb) {
			t.Error("two generated keys are equal")
		}
	})
	t.Run("ok/umask-does-not-matter", func(t *testing.T) {
		// Even an odd umask must give exactly 0600 (checked above with the
		// default umask); here only that the file is not group-readable.
		path := filepath.Join(t.TempDir(), "k")
		if err := GenerateMasterFile(path); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("mode = %04o, readable by others", fi.Mode().Perm())
		}
	})
	t.Run("fail/never-overwrites", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "master.key")
		const old = "precious existing content\n"
		if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		err := GenerateMasterFile(path)
		if !errors.Is(err, os.ErrExist) {
			t.Fatalf("GenerateMasterFile(existing) = %v, want os.ErrExist", err)
		}
		got, _ := os.ReadFile(path)
		if diff := cmp.Diff(old, string(got)); diff != "" {
			t.Errorf("existing file changed (-want +got):\n%s", diff)
		}
	})
	t.Run("fail/never-follows-symlink", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "target")
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Skip("no symlinks:", err)
		}
		if err := GenerateMasterFile(link); !errors.Is(err, os.ErrExist) {
			t.Fatalf("GenerateMasterFile(dangling symlink) = %v, want os.ErrExist", err)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("symlink target was created")
		}
	})
}
