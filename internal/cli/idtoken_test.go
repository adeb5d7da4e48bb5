package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stepgate/stepgate/internal/grant"
)

// gitHubTokenEndpoint follows GitHub Actions' documented contract for OIDC
// tokens: GET ACTIONS_ID_TOKEN_REQUEST_URL (which already has a query)
// with &audience=AUD, Authorization: bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN;
// the answer is {"count": n, "value": "<jwt>"}.
type gitHubTokenEndpoint struct {
	srv          *httptest.Server
	requestToken string
	value        string
	mu           sync.Mutex
	audiences    []string
}

func newGitHubTokenEndpoint(t *testing.T, value string) *gitHubTokenEndpoint {
	g := &gitHubTokenEndpoint{requestToken: "ghs_request-token-secret", value: value}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if !strings.EqualFold(r.Header.Get("Authorization"), "bearer "+g.requestToken) {
			http.Error(w, `{"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		g.mu.Lock()
		g.audiences = append(g.audiences, r.URL.Query().Get("audience"))
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"count": len(g.value), "value": g.value})
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gitHubTokenEndpoint) url() string {
	return g.srv.URL + "/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0"
}

func TestGitHubIDToken(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"
	g := newGitHubTokenEndpoint(t, jwt)
	ctx := context.Background()
	tok, err := gitHubIDToken(ctx, http.DefaultClient, g.url(), g.requestToken, "stepgate")
	if err != nil || tok != jwt {
		t.Fatalf("gitHubIDToken = %q, %v", tok, err)
	}
	if !slices.Equal(g.audiences, []string{"stepgate"}) {
		t.Errorf("audiences asked = %v", g.audiences)
	}
	_, err = gitHubIDToken(ctx, http.DefaultClient, g.url(), "wrong", "stepgate")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "id-token: write") {
		t.Errorf("refused request token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the request token: %v", err)
	}
	if _, err := gitHubIDToken(ctx, http.DefaultClient, "http://example.com/idtoken?x=1", g.requestToken, "stepgate"); err == nil {
		t.Error("the request token was sent over plain HTTP to a remote host")
	}
	empty := newGitHubTokenEndpoint(t, "")
	if _, err := gitHubIDToken(ctx, http.DefaultClient, empty.url(), empty.requestToken, "stepgate"); err == nil {
		t.Error("an answer without a value was accepted")
	}
}

func TestCheckFindsGitHubActionsIDToken(t *testing.T) {
	pace := fastPace()
	s := newStandIn(t)
	// The stand-in only knows its own token: GitHub hands that out here.
	g := newGitHubTokenEndpoint(t, standInToken)
	w := newWorkdir(t)
	c := w.call(s, map[string]string{envToken: "", envGitHubIDTokenURL: g.url(), envGitHubIDTokenToken: g.requestToken}).paced(pace)
	r := c.run(t, "check", "--plan", w.plan, "--workspace", "billing-dev", "--id-token-audience", "https://gate.example.com")
	wantCode(t, r, 0)
	if !slices.Equal(g.audiences, []string{"https://gate.example.com"}) {
		t.Errorf("audiences asked = %v", g.audiences)
	}
	if len(s.tokens) == 0 || s.tokens[0] != "Bearer "+standInToken {
		t.Errorf("the server got %v, want the OIDC token", s.tokens)
	}
	if strings.Contains(r.stdout+r.stderr, g.requestToken) {
		t.Errorf("the request token was printed: %s %s", r.stdout, r.stderr)
	}
}

func TestCheckUsesStepgateIDToken(t *testing.T) {
	pace := fastPace()
	s := newStandIn(t)
	w := newWorkdir(t)
	r := w.call(s, map[string]string{envToken: "", envIDToken: standInToken}).paced(pace).run(t, "check", "--plan", w.plan, "--workspace", "billing-dev")
	wantCode(t, r, 0)
	// No token anywhere: a usage error that says where one comes from.
	r = w.call(s, map[string]string{envToken: ""}).paced(pace).run(t, "check", "--plan", w.plan, "--workspace", "billing-dev")
	wantCode(t, r, ExitUsage)
	wantContains(t, "stderr", r.stderr, envIDToken, "id-token: write")
}

func TestApplyChildEnvDropsIDToken(t *testing.T) {
	env := childEnv([]string{envIDToken + "=x.y.z", envToken + "=sgt_x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=kept", "PATH=/bin"}, &grant.Claims{})
	for _, kv := range env {
		if strings.HasPrefix(kv, envIDToken+"=") || strings.HasPrefix(kv, envToken+"=") {
			t.Errorf("the command gets %s", kv)
		}
	}
	if !slices.Contains(env, "PATH=/bin") {
		t.Errorf("env = %v", env)
	}
}
