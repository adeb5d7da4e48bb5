package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/secret"
)

// adminDB is a SQLite database and a master key file in a temporary
// directory, and the flags that name them.
func adminDB(t *testing.T) (dir string, flags []string) {
	t.Helper()
	dir = t.TempDir()
	key := filepath.Join(dir, "master.key")
	if err := keys.GenerateMasterFile(key); err != nil {
		t.Fatal(err)
	}
	// A database no server ran on: admin commands need --init for it.
	return dir, []string{"--database", "sqlite://" + filepath.Join(dir, "db"), "--master-key-file", key, "--init"}
}

// stored opens the newest version of a secret as the server would.
func stored(t *testing.T, dir, name string) []byte {
	t.Helper()
	st, err := app.OpenStore(context.Background(), "sqlite://"+filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := keys.LoadMaster(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := secret.Resolve(context.Background(), st, "w", []string{name})
	if err != nil {
		t.Fatal(err)
	}
	v, err := secret.New(st, m, nil).Open(vs[0])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSecretsPut(t *testing.T) {
	dir, flags := adminDB(t)
	c := call{dir: dir, vars: map[string]string{"USER": "root"}}
	r := c.with("pw-from-stdin\n").run(t, append([]string{"secrets", "put", "a/stdin", "--workspace", "*"}, flags...)...)
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, "pw-from-stdin") {
		t.Fatalf("secrets put: exit %d, want 0 and the value never printed\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := string(stored(t, dir, "a/stdin")); got != "pw-from-stdin" {
		t.Errorf("value from standard input = %q, want it without the trailing newline", got)
	}
	writeFile(t, dir, "v.pem", "line 1\nline 2\n")
	if r := c.run(t, append([]string{"secrets", "put", "a/file", "--workspace", "*", "--from-file", "v.pem"}, flags...)...); r.code != 0 {
		t.Fatalf("secrets put --from-file: exit %d\n%s", r.code, r.stderr)
	}
	if got := string(stored(t, dir, "a/file")); got != "line 1\nline 2\n" {
		t.Errorf("value from a file = %q, want it byte for byte", got)
	}
	r = c.run(t, append([]string{"secrets", "list"}, flags...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "a/stdin") || !strings.Contains(r.stdout, "cli:root") || strings.Contains(r.stdout, "pw-from-stdin") {
		t.Errorf("secrets list: exit %d, want the names and who, never the values\n%s", r.code, r.stdout)
	}
	for _, tt := range []struct {
		name string
		c    call
		args []string
		want string
	}{
		{"fail/no-workspace", c.with("v"), []string{"secrets", "put", "b"}, "--workspace is required"},
		{"fail/empty-value", c.with("\n"), []string{"secrets", "put", "b", "--workspace", "*"}, "is empty"},
		{"fail/bad-name", c.with("v"), []string{"secrets", "put", "b c", "--workspace", "*"}, "secret name"},
		{"fail/rm-unknown", c, []string{"secrets", "rm", "nope"}, "no secret nope"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.run(t, append(tt.args, flags...)...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, ExitUsage, tt.want)
			}
		})
	}
}

// A value is never typed on a terminal, where it would echo.
func TestSecretsPutRefusesTerminal(t *testing.T) {
	dir, flags := adminDB(t)
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var out, errOut bytes.Buffer
	env := Env{Stdin: stdin, Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }, Dir: dir,
		IsTerminal: func(w io.Writer) bool { return w == io.Writer(stdin) }}
	code := Run(context.Background(), append([]string{"secrets", "put", "b", "--workspace", "*"}, flags...), env)
	if code != ExitUsage || !strings.Contains(errOut.String(), "is a terminal") {
		t.Fatalf("secrets put on a terminal: exit %d, stderr %q; want 2, is a terminal", code, errOut.String())
	}
}

// Nothing is asked of the server, and nothing printed, in these cases.
func TestSecretsAskRefusesLocally(t *testing.T) {
	vars := map[string]string{"STEPGATE_SERVER": "http://127.0.0.1:1", "STEPGATE_TOKEN": standInToken}
	for _, tt := range []struct {
		name string
		tty  bool
		args []string
		want string
	}{
		{"fail/get-on-a-terminal", true, []string{"secrets", "get", "billing/db", "--workspace", "w"}, "standard output is a terminal"},
		{"fail/get-external", false, []string{"secrets", "get", "vault:billing/db", "--workspace", "w"}, "kept elsewhere"},
		{"fail/exec-without-env", false, []string{"exec", "--secret", "billing/db", "--workspace", "w", "--", "true"}, "want ENV=NAME"},
		{"fail/exec-external", false, []string{"exec", "--secret", "X=vault:billing/db", "--workspace", "w", "--", "true"}, "kept elsewhere"},
		{"fail/exec-unknown-command", false, []string{"exec", "--secret", "X=billing/db", "--workspace", "w", "--", "no-such-command-stepgate"}, "nothing was asked"},
		{"fail/exec-no-command", false, []string{"exec", "--secret", "X=billing/db", "--workspace", "w"}, "no command to run"},
		{"fail/check-secret-without-env", false, []string{"check", "--kind", "secret.read", "--secret", "billing/db", "--workspace", "w"}, "want ENV=NAME"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := call{dir: t.TempDir(), vars: vars, tty: tt.tty}.run(t, tt.args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, tt.want) || strings.Contains(r.stderr, "reaching stepgate server") {
				t.Fatalf("exit %d, stderr %q; want %d and %q, without asking the server", r.code, r.stderr, ExitUsage, tt.want)
			}
		})
	}
}

func TestSecretEnv(t *testing.T) {
	rel := &api.ReleaseResponse{Secrets: []api.ReleasedSecret{
		{Name: "a", Env: "PGPASSWORD", Value: []byte("new")},
		{Name: "b", Value: []byte("for stdout only")},
	}}
	got, err := secretEnv([]string{"PATH=/bin", "PGPASSWORD=old", "PGPASSWORD_X=keep"}, rel)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/bin", "PGPASSWORD_X=keep", "PGPASSWORD=new"}
	if !slices.Equal(got, want) {
		t.Errorf("secretEnv() = %q, want %q", got, want)
	}
	rel.Secrets[0].Value = []byte("a\x00b")
	if _, err := secretEnv(nil, rel); err == nil || strings.Contains(err.Error(), "a\x00b") {
		t.Errorf("secretEnv(NUL) = %v, want an error that does not show the value", err)
	}
	if s := rel.Secrets[1].String(); strings.Contains(s, "stdout only") {
		t.Errorf("ReleasedSecret.String() = %q shows the value", s)
	}
}

// with is c with stdin.
func (c call) with(stdin string) call {
	c.stdin = stdin
	return c
}
