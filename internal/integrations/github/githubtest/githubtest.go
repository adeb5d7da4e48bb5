// Package githubtest is a GitHub REST API for tests, behaving as GitHub's
// documentation says for the calls stepgate's GitHub App makes: creating an
// installation token with the App's RS256 JWT, and reviewing a workflow
// run's custom deployment protection rule with that token.
package githubtest

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// APIVersion is the X-GitHub-Api-Version the App must send.
const APIVersion = "2022-11-28"

// Installation is the installation id tokens are issued for.
const Installation = 77

// Server behaves as GitHub's REST API documentation says for the two
// calls the App makes: creating an installation token with the App's JWT
// (201, {"token", "expires_at"}), and reviewing a run's custom deployment
// protection rule with that token (204).
type Server struct {
	t     *testing.T
	appID int64
	// URL is the API's base URL.
	URL  string
	pub  *rsa.PublicKey
	srv  *httptest.Server
	mu   sync.Mutex
	fail int
	// failStatus is what a failing review answers (default 502).
	failStatus int
	failed     int
	tokens     int
	// reviews receives each review GitHub accepted.
	reviews chan Review
}

// Review is a review GitHub accepted.
type Review struct {
	Path string
	Body map[string]any
}

var runPath = regexp.MustCompile(`^/repos/[^/]+/[^/]+/actions/runs/[0-9]+/deployment_protection_rule$`)

// New serves the API of the App appID, whose public key is pub.
func New(t *testing.T, appID int64, pub *rsa.PublicKey) *Server {
	f := &Server{appID: appID, t: t, pub: pub, reviews: make(chan Review, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

func (f *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("X-GitHub-Api-Version") != APIVersion || r.Header.Get("Accept") != "application/vnd.github+json" {
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case r.URL.Path == "/app/installations/"+strconv.Itoa(Installation)+"/access_tokens":
		tok, err := jwt.ParseSigned(bearer, []jose.SignatureAlgorithm{jose.RS256})
		var cl jwt.Claims
		if err == nil {
			err = tok.Claims(f.pub, &cl)
		}
		if err == nil {
			err = cl.ValidateWithLeeway(jwt.Expected{Issuer: strconv.FormatInt(f.appID, 10), Time: time.Now()}, 0)
		}
		if err == nil && (cl.IssuedAt == nil || cl.Expiry == nil || cl.Expiry.Time().Sub(cl.IssuedAt.Time()) > 10*time.Minute+time.Minute) {
			err = fmt.Errorf("iat/exp: more than 10 minutes apart")
		}
		if err != nil {
			f.t.Errorf("installation token asked with a bad App JWT: %v", err)
			http.Error(w, `{"message":"A JSON web token could not be decoded"}`, http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.tokens++
		n := f.tokens
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":"ghs_test%d","expires_at":%q,"permissions":{"deployments":"write","actions":"read"}}`, n, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	case runPath.MatchString(r.URL.Path):
		if !strings.HasPrefix(bearer, "ghs_test") {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		var body map[string]any
		dec := json.NewDecoder(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || dec.Decode(&body) != nil {
			http.Error(w, `{"message":"Problems parsing JSON"}`, http.StatusBadRequest)
			return
		}
		for k := range body {
			if k != "environment_name" && k != "state" && k != "comment" {
				http.Error(w, `{"message":"Invalid request"}`, http.StatusUnprocessableEntity)
				return
			}
		}
		if st, ok := body["state"]; ok && st != "approved" && st != "rejected" {
			http.Error(w, `{"message":"Invalid request"}`, http.StatusUnprocessableEntity)
			return
		}
		if e, _ := body["environment_name"].(string); e == "" {
			http.Error(w, `{"message":"Invalid request"}`, http.StatusUnprocessableEntity)
			return
		}
		f.mu.Lock()
		fail := f.failed < f.fail
		if fail {
			f.failed++
		}
		f.mu.Unlock()
		if fail {
			status := f.failStatus
			if status == 0 {
				status = http.StatusBadGateway
			}
			http.Error(w, `{"message":"Server Error"}`, status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		f.reviews <- Review{Path: r.URL.Path, Body: body}
	default:
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
	}
}

// Next is the next review GitHub accepted.
func (f *Server) Next(t *testing.T) Review {
	t.Helper()
	select {
	case r := <-f.reviews:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no review reached GitHub")
		return Review{}
	}
}

// None asserts that no review reached GitHub.
func (f *Server) None(t *testing.T) {
	t.Helper()
	select {
	case r := <-f.reviews:
		t.Fatalf("a review reached GitHub: %+v", r)
	default:
	}
}

// Fail makes the next n reviews answer 502.
func (f *Server) Fail(n int) { f.FailWith(n, http.StatusBadGateway) }

// FailWith makes the next n reviews answer status.
func (f *Server) FailWith(n, status int) {
	f.mu.Lock()
	f.fail += n
	f.failStatus = status
	f.mu.Unlock()
}

// Client is an HTTP client of the server.
func (f *Server) Client() *http.Client { return f.srv.Client() }
