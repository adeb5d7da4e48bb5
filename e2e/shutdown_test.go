package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
)

// apiCall makes one API request with a bearer token and decodes the answer.
func apiCall(t *testing.T, client *http.Client, method, url, token string, body []byte) (int, *api.Check, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var c api.Check
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(b, &c); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("decoding %s: %w", b, err)
		}
	}
	return resp.StatusCode, &c, nil
}

var waitingMetric = regexp.MustCompile(`(?m)^stepgate_waiting_requests (\d+)`)

// TestSIGTERMAnswersWaiters: on SIGTERM, every request waiting on a check
// is answered at once with the check's current state (the CLI resumes
// elsewhere), nothing fails on a closed database, new connections are
// refused, and the process exits 0 well within the grace period.
func TestSIGTERMAnswersWaiters(t *testing.T) {
	dir := t.TempDir()
	ws := startWebServerOn(t, dir, "sqlite://"+filepath.Join(dir, "stepgate.db"), "127.0.0.1:0")
	s := ws.server
	token := s.token("billing-ci")
	plan, err := os.ReadFile(repo(t, "examples/prod-iam.plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 90 * time.Second}
	code, c, err := apiCall(t, client, "POST", s.url+"/v1/checks?workspace=billing-prod", token, plan)
	if err != nil || code != http.StatusCreated || c.State != "pending" {
		t.Fatalf("creating a check: %d %+v %v; want 201 pending", code, c, err)
	}

	const waiters = 19
	type answer struct {
		code  int
		state string
		err   error
		after time.Duration
	}
	var (
		mu       sync.Mutex
		answers  []answer
		wg       sync.WaitGroup
		sigterm  time.Time
		sigtermM sync.Mutex
	)
	for range waiters {
		wg.Go(func() {
			code, v, err := apiCall(t, client, "GET", s.url+"/v1/checks/"+c.ID+"/wait?timeout=60s", token, nil)
			sigtermM.Lock()
			after := time.Since(sigterm)
			sigtermM.Unlock()
			a := answer{code: code, err: err, after: after}
			if v != nil {
				a.state = v.State
			}
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		})
	}
	// Until all are waiting in the server.
	s.awaitWaiting(waiters)

	sigtermM.Lock()
	sigterm = time.Now()
	sigtermM.Unlock()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.code != http.StatusOK || a.state != "pending" {
			t.Errorf("waiter %d: %d %q %v; want 200 with the current state, pending", i, a.code, a.state, a.err)
		}
		if a.after > 3*time.Second {
			t.Errorf("waiter %d answered %v after SIGTERM, want at once", i, a.after)
		}
	}

	var exitErr error
	select {
	case exitErr = <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM\n%s", ws.log)
	}
	t.Logf("exited %v after SIGTERM", time.Since(sigterm))
	var ee *exec.ExitError
	if errors.As(exitErr, &ee) || exitErr != nil {
		t.Errorf("exit after SIGTERM: %v, want 0\n%s", exitErr, ws.log)
	}
	if d := time.Since(sigterm); d > 10*time.Second {
		t.Errorf("exited %v after SIGTERM, want within the grace period", d)
	}
	if _, err := http.Get(s.url + "/healthz"); err == nil {
		t.Errorf("a new request after the exit was answered")
	}
	if log := ws.log.String(); strings.Contains(log, "database is closed") || strings.Contains(log, "level=ERROR") {
		t.Errorf("errors in the log during shutdown:\n%s", log)
	}
}
