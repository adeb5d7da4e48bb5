package cli

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/app"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/plan/planfile/planfiletest"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/store/sqlite"
)

// testServer is the real server as serve builds it (app.NewServer: the
// gate, the API, the pages, the background loops) over a SQLite store,
// on a loopback port named localhost, as serve names it. It records what
// reached it, as a proxy in front of it would see it.
type testServer struct {
	*app.Server
	URL string

	hs *httptest.Server

	mu   sync.Mutex
	seen []request
	// faults answers requests whose "METHOD /path" starts with a key
	// with that status instead of the server (-1: hang up).
	faults map[string]int
	// waits receives the check id of every wait request as it reaches the
	// server (dropped when nobody reads).
	waits chan string
}

// request is what the test server saw of one request.
type request struct {
	method, path  string
	query         url.Values
	authorization string
	length        int64 // Content-Length; -1: streamed
}

// startTestServer starts the server; configure, when given, changes its
// options (url is the server's public URL) before it is built.
func startTestServer(t *testing.T, configure func(o *app.Options, url string)) *testServer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stepgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the server's Close
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	u := "http://localhost:" + strconv.Itoa(hs.Listener.Addr().(*net.TCPAddr).Port)
	o := app.Options{
		Server: config.Server{PublicURL: u},
		Policy: policy.DefaultConfig(), MaxPlan: 1 << 20,
		Store: st, Master: master,
	}
	if configure != nil {
		configure(&o, u)
	}
	s, err := app.NewServer(ctx, o)
	if err != nil {
		t.Fatalf("building the server: %v", err)
	}
	ts := &testServer{Server: s, URL: u, hs: hs, waits: make(chan string, 16), faults: map[string]int{}}
	h := s.Handler()
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.seen = append(ts.seen, request{r.Method, r.URL.Path, r.URL.Query(), r.Header.Get("Authorization"), r.ContentLength})
		fault := 0
		for k, status := range ts.faults {
			if strings.HasPrefix(r.Method+" "+r.URL.Path, k) {
				fault = status
			}
		}
		ts.mu.Unlock()
		switch {
		case fault == -1:
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		case fault != 0:
			apiError(w, fault, api.CodeUnavailable, "injected fault")
			return
		}
		if id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/checks/"), "/wait"); ok && r.Method == http.MethodGet {
			select {
			case ts.waits <- id:
			default:
			}
		}
		h.ServeHTTP(w, r)
	})
	s.Start(ctx)
	hs.Start()
	t.Cleanup(func() {
		s.Drain()
		hs.Close()
		if err := s.Close(); err != nil {
			t.Errorf("closing the server: %v", err)
		}
	})
	return ts
}

// fail makes requests whose "METHOD /path" starts with prefix fail with
// status (-1: the connection is closed without an answer).
func (s *testServer) fail(prefix string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[prefix] = status
}

// requests returns what reached the server with this method and path
// prefix.
func (s *testServer) requests(method, prefix string) []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []request
	for _, r := range s.seen {
		if r.method == method && strings.HasPrefix(r.path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// token creates an API token for the workspaces billing-*, vault-* and
// other-*, as `stepgate tokens create` does.
func (s *testServer) token(t *testing.T) string {
	t.Helper()
	tok, _, err := gate.CreateToken(context.Background(), s.Store, gate.TokenSpec{Name: "billing-ci", Workspaces: []string{"billing-*", "vault-*", "other-*"}}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// decide records a person's answer on a check as the review page does
// after their step-up: at aal 3 with a passkey, unless proof says
// otherwise. The person gets an account in the group approvers first.
func (s *testServer) decide(t *testing.T, id string, p gate.Proof) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Store.GetUserByName(ctx, p.Subject); err != nil {
		u := &store.User{ID: "usr_" + p.Subject, Name: p.Subject, Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}
		if err := s.Store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	p.Groups = []string{gate.DefaultApproverGroup}
	if p.AAL == 0 {
		p.AAL, p.AMR = 3, []string{"hwk", "user"}
	}
	if p.AuthTime.IsZero() {
		p.AuthTime = time.Now()
	}
	if _, err := s.Gate.Record(ctx, id, &p); err != nil {
		t.Errorf("recording %s's answer on %s: %v", p.Subject, id, err)
	}
}

// decideOnWait records p on the check the n-th wait request (from 1) that
// reaches the server asks for, from another goroutine; the returned
// channel is closed once it is recorded.
func (s *testServer) decideOnWait(t *testing.T, n int, p gate.Proof) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case id := <-s.waits:
				if i == n {
					s.decide(t, id, p)
					return
				}
			case <-time.After(30 * time.Second):
				t.Errorf("the %d-th wait request never reached the server", n)
				return
			}
		}
	}()
	return done
}

// workdirWith is a directory with the example plan as plan.json and a
// saved plan of the same changes as tfplan.
func workdirWith(t *testing.T, example string) workdir {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", example))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := workdir{dir: dir, planBytes: raw, plan: writeFile(t, dir, "plan.json", string(raw)), planFile: filepath.Join(dir, "tfplan")}
	planfiletest.WriteFor(t, w.plan, w.planFile)
	return w
}

// on is a run of stepgate against s with token and extra variables.
func (w workdir) on(s *testServer, token string, extra map[string]string) call {
	vars := map[string]string{envServer: s.URL, envToken: token}
	for k, v := range extra {
		vars[k] = v
	}
	return call{vars: vars, dir: w.dir}
}
