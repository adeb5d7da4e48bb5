// Package oidctest runs a real OpenID Provider (github.com/zitadel/oidc/v3
// op, over its example storage) in the test process, whose logins issue
// the acr, amr, auth_time and groups a scenario needs. Only tests import
// it.
package oidctest

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client is the client registered with the provider.
const (
	ClientID     = "stepgate"
	ClientSecret = "stepgate-secret"
)

// Login is what the next login at the provider asserts.
type Login struct {
	// Username is a user of the example storage: "test-user2" (subject
	// "id2") by default.
	Username string
	ACR      string
	AMR      []string
	// AuthTime is the auth_time (zero: the moment of the login).
	AuthTime time.Time
	Groups   []string
}

// Provider is a running OpenID Provider.
type Provider struct {
	URL string
	mu  sync.Mutex
	// Next is the login the provider performs for the next authorization
	// request (its login page approves at once).
	next   Login
	logins map[string]Login // by auth request id
	// Requests are the authorization requests' queries, in order.
	requests []map[string][]string
}

// SetNext sets what the next logins assert.
func (p *Provider) SetNext(l Login) { p.mu.Lock(); p.next = l; p.mu.Unlock() }

// LastRequest is the query of the last authorization request.
func (p *Provider) LastRequest() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) == 0 {
		return nil
	}
	return p.requests[len(p.requests)-1]
}

func (p *Provider) login(id string) (Login, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.logins[id]
	return l, ok
}

type store struct {
	*storage.Storage
	p *Provider
}

type authRequest struct {
	op.AuthRequest
	l Login
}

func (a *authRequest) GetACR() string { return a.l.ACR }
func (a *authRequest) GetAMR() []string {
	if a.l.AMR != nil {
		return a.l.AMR
	}
	return a.AuthRequest.GetAMR()
}
func (a *authRequest) GetAuthTime() time.Time {
	if !a.l.AuthTime.IsZero() {
		return a.l.AuthTime
	}
	return a.AuthRequest.GetAuthTime()
}

func (s *store) wrap(ar op.AuthRequest, err error) (op.AuthRequest, error) {
	if err != nil {
		return nil, err
	}
	if l, ok := s.p.login(ar.GetID()); ok {
		return &authRequest{AuthRequest: ar, l: l}, nil
	}
	return ar, nil
}

func (s *store) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.AuthRequestByID(ctx, id))
}

func (s *store) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.AuthRequestByCode(ctx, code))
}

// SetUserinfoFromRequest puts the profile, email and groups into the ID
// token.
func (s *store) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, token op.IDTokenRequest, _ []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, token, []string{zoidc.ScopeOpenID, zoidc.ScopeEmail, zoidc.ScopeProfile}); err != nil {
		return err
	}
	if ar, ok := token.(*authRequest); ok && ar.l.Groups != nil {
		ui.AppendClaims("groups", ar.l.Groups)
	}
	return nil
}

// Start runs a provider that accepts redirectURI for the client.
func Start(t testing.TB, redirectURI string) *Provider {
	t.Helper()
	p := &Provider{logins: map[string]Login{}}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	p.URL = issuer
	storage.RegisterClients(storage.WebClient(ClientID, ClientSecret, redirectURI))
	st := &store{Storage: storage.NewStorage(storage.NewUserStore(issuer)), p: p}
	cfg := &op.Config{
		CryptoKey:                sha256.Sum256([]byte("oidctest")),
		DefaultLogoutRedirectURI: "/",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		RequestObjectSupported:   false,
		SupportedUILocales:       nil,
		SupportedClaims:          append(op.DefaultSupportedClaims, "groups", "acr", "amr"),
	}
	prov, err := op.NewProvider(cfg, st, op.StaticIssuer(issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("oidctest: %v", err)
	}
	mux := http.NewServeMux()
	// The client's login page (the example's default login URL): it logs
	// the user in at once with the scenario set by SetNext.
	mux.HandleFunc("/login/username", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("authRequestID")
		p.mu.Lock()
		l := p.next
		p.logins[id] = l
		p.mu.Unlock()
		name := l.Username
		if name == "" {
			name = "test-user2"
		}
		if err := st.CheckUsernamePassword(name, "verysecure", id); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		http.Redirect(w, r, op.AuthCallbackURL(prov)(r.Context(), id), http.StatusFound)
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == prov.AuthorizationEndpoint().Relative() {
			p.mu.Lock()
			p.requests = append(p.requests, r.URL.Query())
			p.mu.Unlock()
		}
		prov.ServeHTTP(w, r)
	}))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// The command line's client: public (native, no secret, PKCE), with the
// loopback redirect http://127.0.0.1/callback, on any port (RFC 8252
// section 7.3: the provider ignores the port of a loopback redirect).
const (
	CLIClientID    = "stepgate-cli"
	CLIRedirectURI = "http://127.0.0.1/callback"
)

// StartWithCLI runs a provider as Start does, with the command line's
// native client registered too.
func StartWithCLI(t testing.TB, redirectURI string) *Provider {
	t.Helper()
	storage.RegisterClients(storage.NativeClient(CLIClientID, CLIRedirectURI))
	return Start(t, redirectURI)
}

// Requests are the queries of every authorization request so far, oldest
// first.
func (p *Provider) Requests() []map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string][]string(nil), p.requests...)
}
