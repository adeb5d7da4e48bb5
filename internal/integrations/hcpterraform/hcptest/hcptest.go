// Package hcptest is a stand-in for HCP Terraform in tests, behaving as
// HashiCorp's run task documentation says: it serves a run's plan JSON at
// /api/v2/plans/ID/json-output to the run's bearer token, and accepts task
// results PATCHed to /api/v2/task-results/ID/callback as JSON:API
// task-results resources, refusing (422) what the documentation does not
// allow.
package hcptest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/integrations/hcpterraform"
)

// Token is the access token of every run.
const Token = "4QEuyyxug1f2rw.atlasv1.secret"

// Server is a fake HCP Terraform.
type Server struct {
	t   testing.TB
	srv *httptest.Server
	mu  sync.Mutex
	// plans by plan id; redirect, when set, answers plan requests with a
	// redirect there instead; planCode, when set, answers them with it.
	plans    map[string][]byte
	redirect string
	planCode int
	// callbackCodes are answered in turn to callbacks (then 200).
	callbackCodes []int
	attempts      int
	results       chan Callback
}

// Callback is one task result HCP Terraform accepted.
type Callback struct {
	Task   string
	Result hcpterraform.Result
}

// Status is the callback's status.
func (c Callback) Status() string { return c.Result.Data.Attributes.Status }

// New starts a fake HCP Terraform, stopped when the test ends.
func New(t testing.TB) *Server {
	f := &Server{t: t, plans: map[string][]byte{}, results: make(chan Callback, 100)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/plans/{id}/json-output", f.plan)
	mux.HandleFunc("GET /archivist/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, _ = w.Write(f.plans[r.PathValue("id")])
	})
	mux.HandleFunc("PATCH /api/v2/task-results/{id}/callback", f.callback)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the server's base URL.
func (f *Server) URL() string { return f.srv.URL }

// Host is its host:port, for api_hosts.
func (f *Server) Host() string { u, _ := url.Parse(f.srv.URL); return u.Host }

// SetPlan serves b as the plan JSON of plan id.
func (f *Server) SetPlan(id string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans[id] = b
}

// RedirectPlans answers plan requests with a redirect to u.
func (f *Server) RedirectPlans(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.redirect = u
}

// FailPlans answers plan requests with code.
func (f *Server) FailPlans(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planCode = code
}

// AnswerCallbacks answers the next callbacks with codes, in turn.
func (f *Server) AnswerCallbacks(codes ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.callbackCodes = codes
}

// Attempts is how many callbacks were received, accepted or not.
func (f *Server) Attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

// Results delivers the accepted callbacks.
func (f *Server) Results() <-chan Callback { return f.results }

func (f *Server) plan(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+Token {
		http.Error(w, `{"errors":[{"status":"401","title":"unauthorized"}]}`, http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch b, ok := f.plans[r.PathValue("id")]; {
	case f.planCode != 0:
		w.WriteHeader(f.planCode)
	case f.redirect != "":
		http.Redirect(w, r, f.redirect, http.StatusTemporaryRedirect)
	case !ok:
		http.NotFound(w, r)
	default:
		_, _ = w.Write(b)
	}
}

func (f *Server) callback(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.attempts++
	code := http.StatusOK
	if len(f.callbackCodes) > 0 {
		code, f.callbackCodes = f.callbackCodes[0], f.callbackCodes[1:]
	}
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+Token || r.Header.Get("Content-Type") != "application/vnd.api+json" {
		f.t.Errorf("callback headers: Authorization %q, Content-Type %q", r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var res hcpterraform.Result
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil || res.Data.Type != "task-results" {
		f.t.Errorf("callback body is not a task-results resource: %v", err)
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	switch res.Data.Attributes.Status {
	case "passed", "failed", "running":
	default:
		f.t.Errorf("callback status %q is not passed, failed or running", res.Data.Attributes.Status)
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	if rel := res.Data.Relationships; rel != nil {
		if len(rel.Outcomes.Data) > 10 {
			f.t.Errorf("%d outcomes, at most 10 are allowed", len(rel.Outcomes.Data))
		}
		for _, o := range rel.Outcomes.Data {
			if o.Type != "task-result-outcomes" || o.Attributes.OutcomeID == "" || o.Attributes.Description == "" {
				f.t.Errorf("outcome %+v is not a task-result-outcomes resource with an outcome-id and a description", o)
			}
		}
	}
	w.WriteHeader(code)
	if code < 300 {
		f.results <- Callback{Task: r.PathValue("id"), Result: res}
	}
}

// Next returns the next callback accepted, or fails the test after 20s.
func (f *Server) Next(t testing.TB) Callback {
	t.Helper()
	select {
	case c := <-f.results:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no callback from stepgate")
		return Callback{}
	}
}

// Final returns the first callback with a final status, and how many
// running ones came before it.
func (f *Server) Final(t testing.TB) (Callback, int) {
	t.Helper()
	running := 0
	for {
		c := f.Next(t)
		if c.Status() != "running" {
			return c, running
		}
		running++
	}
}

// Request is a run task request as HCP Terraform sends it, for a task,
// run, stage, workspace and plan id of this server.
func (f *Server) Request(task, run, stage, workspace, plan string) map[string]any {
	return map[string]any{
		"payload_version": 1, "stage": stage, "access_token": Token,
		"capabilities":                  map[string]bool{"outcomes": true},
		"is_speculative":                false,
		"organization_name":             "acme",
		"plan_json_api_url":             f.srv.URL + "/api/v2/plans/" + plan + "/json-output",
		"run_app_url":                   "https://app.terraform.io/app/acme/" + workspace + "/runs/" + run,
		"run_created_at":                "2026-12-08T02:00:00.000Z",
		"run_created_by":                "Dave",
		"run_id":                        run,
		"run_message":                   "Triggered via UI",
		"task_result_callback_url":      f.srv.URL + "/api/v2/task-results/" + task + "/callback",
		"task_result_enforcement_level": "mandatory",
		"task_result_id":                task,
		"vcs_branch":                    "main",
		"vcs_commit_url":                nil,
		"vcs_pull_request_url":          nil,
		"vcs_repo_url":                  nil,
		"workspace_app_url":             "https://app.terraform.io/app/acme/" + workspace,
		"workspace_id":                  "ws-ck4G5bb1Yei5szRh",
		"workspace_name":                workspace,
	}
}
