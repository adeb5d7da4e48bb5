package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/api"
	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/gate"
	"github.com/stepgate/stepgate/internal/keys"
	"github.com/stepgate/stepgate/internal/policy"
	"github.com/stepgate/stepgate/internal/store"
	"github.com/stepgate/stepgate/internal/testenv"
)

// TestWakeAcrossServersByNotification: two servers share one PostgreSQL;
// a pipeline waits on server A, a person approves through server B, and
// A's waiter answers approved. The waiters' re-read is off, so only
// LISTEN/NOTIFY can wake it: without the notification the wait runs out
// and answers with the check as it is then (approved, but late).
func TestWakeAcrossServersByNotification(t *testing.T) {
	dsn := postgresSchema(t)
	ctx := context.Background()
	master, err := keys.NewMaster(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	newServer := func(name string) *Server {
		t.Helper()
		st, err := OpenStore(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s, err := NewServer(ctx, Options{
			Server: config.Server{PublicURL: "http://localhost:8080"}, Policy: policy.DefaultConfig(), MaxPlan: 1 << 20,
			Store: st, Master: master, RecheckInterval: -1,
		})
		if err != nil {
			t.Fatalf("server %s: %v", name, err)
		}
		s.Start(ctx)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("closing server %s: %v", name, err)
			}
		})
		return s
	}
	a, b := newServer("A"), newServer("B")
	srvA := httptest.NewServer(a.Handler())
	defer srvA.Close()

	tok, _, err := gate.CreateToken(ctx, a.Store, gate.TokenSpec{Name: "billing-ci", Workspaces: []string{"billing-*"}}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateUser(ctx, &store.User{ID: "usr_alice", Name: "alice", Groups: []string{gate.DefaultApproverGroup}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	plan, err := os.Open(filepath.Join("..", "..", "examples", "prod-iam.plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	var c api.Check
	do(t, tok, http.MethodPost, srvA.URL+api.PathChecks+"?"+url.Values{api.ParamWorkspace: {"billing-prod"}}.Encode(), plan, http.StatusCreated, &c)
	if c.State != string(store.StatePending) {
		t.Fatalf("check state %q, want pending", c.State)
	}

	const waitFor = 20 * time.Second
	waited := make(chan api.Check, 1)
	go func() {
		var v api.Check
		do(t, tok, http.MethodGet, srvA.URL+api.PathChecks+"/"+c.ID+"/wait?"+api.ParamTimeout+"="+waitFor.String(), nil, http.StatusOK, &v)
		waited <- v
	}()
	deadline := time.Now().Add(10 * time.Second)
	for a.Hub.Waiting() == 0 { // until the pipeline waits in server A
		if time.Now().After(deadline) {
			t.Fatal("the wait request never reached server A")
		}
		time.Sleep(10 * time.Millisecond) // polling A's state
	}
	start := time.Now()
	if _, err := b.Gate.Record(ctx, c.ID, &gate.Proof{Subject: "alice", Groups: []string{gate.DefaultApproverGroup}, Approved: true, AMR: []string{"hwk", "user"}, AAL: 3, AuthTime: time.Now()}); err != nil {
		t.Fatalf("approving through server B: %v", err)
	}
	v := <-waited
	took := time.Since(start)
	if v.State != string(store.StateApproved) || took > waitFor/2 {
		t.Fatalf("server A's waiter answered %q %v after the approval, want approved at once: the notification did not reach it (the wait ran out after %v)", v.State, took, waitFor)
	}
	t.Logf("woken %v after the approval, across servers", took)
}

// do sends a request with the bearer token and decodes the JSON answer
// into out; any other status than want fails the test.
func do(t *testing.T, token, method, u string, body *os.File, want int, out any) {
	var req *http.Request
	var err error
	if body != nil {
		req, err = http.NewRequest(method, u, body)
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		t.Error(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		t.Errorf("%s %s: %d, want %d", method, u, res.StatusCode, want)
		return
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Errorf("%s %s: decoding: %v", method, u, err)
	}
}

// postgresSchema returns the test PostgreSQL's DSN with a fresh schema as
// its search_path, dropped when the test ends.
func postgresSchema(t *testing.T) string {
	t.Helper()
	return testenv.PostgresSchema(t, "app")
}
