package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stepgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "stepgate")
	out, err := exec.Command("go", "build", "-o", binary, "../cmd/stepgate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building stepgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repo is the repository root, where the example plans are.
func repo(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", p))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary with env added to a minimal environment.
func run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return runStdin(t, dir, env, "", args...)
}

// runStdin is run with stdin on standard input.
func runStdin(t *testing.T, dir string, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running stepgate %v: %v", args, err)
	}
	return result{code, out.String(), errOut.String()}
}

// server is a running `stepgate serve`.
type server struct {
	t        *testing.T
	dir      string
	database string
	url      string
	public   string // the public URL serve printed
	cmd      *exec.Cmd
	exited   chan error
}

var listening = regexp.MustCompile(`stepgate listening on (\S+) \(public URL (\S+),`)

// startServer runs `stepgate serve --dev` on a free port (see
// startWebServerOn).
func startServer(t *testing.T, dir, database string, extra ...string) *server {
	t.Helper()
	return startWebServerOn(t, dir, database, "127.0.0.1:0", extra...).server
}

// stop ends the server gracefully (SIGTERM) and waits for it.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// token creates an API token with the admin command.
func (s *server) token(name string, workspaces ...string) string {
	s.t.Helper()
	args := []string{"tokens", "create", "--name", name, "--database", s.database}
	for _, w := range workspaces {
		args = append(args, "--workspace", w)
	}
	r := run(s.t, s.dir, nil, args...)
	if r.code != 0 {
		s.t.Fatalf("tokens create: exit %d\n%s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, "sgt_") || strings.Contains(tok, "\n") {
		s.t.Fatalf("tokens create printed %q, want the token alone on one line", r.stdout)
	}
	return tok
}

// domain builds, in the test process, a replica of the server over its
// database, as serve builds it (app.NewServer), without serving: approvals
// are recorded through its gate as the web UI records them.
func (s *server) domain() (*gate.Service, store.Store) {
	s.t.Helper()
	return s.domainWithKey(app.DevMasterKeyPath(s.database))
}

func (s *server) domainWithKey(keyFile string) (*gate.Service, store.Store) {
	s.t.Helper()
	public := s.public
	if public == "" {
		public = s.url
	}
	replica, err := app.NewServer(context.Background(), app.Options{
		Server: config.Server{Database: s.database, MasterKeyFile: keyFile, PublicURL: public},
		Policy: policy.DefaultConfig(),
	})
	if err != nil {
		s.t.Fatalf("building a replica of the server: %v", err)
	}
	s.t.Cleanup(func() {
		if err := replica.Close(); err != nil {
			s.t.Errorf("closing the replica: %v", err)
		}
	})
	return replica.Gate, replica.Store
}

// awaitWaiting returns once n requests wait on a pending check in the
// server (its stepgate_waiting_requests gauge), and fails the test if
// that does not happen within 10 s.
func (s *server) awaitWaiting(n int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.url + "/metrics")
		if err != nil {
			s.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := waitingMetric.FindSubmatch(b); m != nil {
			if got, _ := strconv.Atoi(string(m[1])); got == n {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the server never had %d waiting requests", n)
		}
		time.Sleep(20 * time.Millisecond) // polling the server's state
	}
}

// approvers creates, if missing, the accounts of people of the group
// "approvers" whose approvals a test records straight through the
// service: only the approvals of enabled, eligible accounts count.
func approvers(t *testing.T, st store.Store, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := st.GetUserByName(context.Background(), n); err == nil {
			continue
		}
		u := &store.User{ID: "usr_" + n, Name: n, Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}
		if err := st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
}

func pipelineEnv(s *server, token string) []string {
	return []string{"STEPGATE_SERVER=" + s.url, "STEPGATE_TOKEN=" + token}
}
