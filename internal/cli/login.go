package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/stepgate/stepgate/internal/client"
	"github.com/stepgate/stepgate/internal/loopback"
)

// Signing a person in from the command line: the authorization code flow
// of OpenID Connect with PKCE (S256), state and nonce, through a loopback
// redirect (RFC 8252: http://127.0.0.1:PORT/callback on a port chosen at
// random) to the public client the server names in its protected resource
// metadata (RFC 9728). The ID token is cached per server, readable only by
// its owner.

// envLoginDir overrides where sign-ins are cached.
const envLoginDir = "STEPGATE_LOGIN_DIR"

// defaultLoginTimeout is how long a sign-in in the browser may take.
const defaultLoginTimeout = 5 * time.Minute

// session is a cached sign-in to one server.
type session struct {
	Server   string    `json:"server"`
	Issuer   string    `json:"issuer"`
	ClientID string    `json:"client_id"`
	IDToken  string    `json:"id_token"`
	Expiry   time.Time `json:"expiry"`
	AuthTime time.Time `json:"auth_time,omitzero"`
	ACR      string    `json:"acr,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
}

// String, GoString and LogValue never show the token.
func (s *session) String() string {
	return fmt.Sprintf("sign-in to %s through %s until %s", s.Server, s.Issuer, s.Expiry.Format(time.RFC3339))
}
func (s *session) GoString() string     { return s.String() }
func (s *session) LogValue() slog.Value { return slog.StringValue(s.String()) }
func (s *session) usable(t time.Time) bool {
	// A token about to expire is not worth sending.
	return s.IDToken != "" && t.Add(30*time.Second).Before(s.Expiry)
}

func clockNow(env Env) time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}

// loginDir is where sign-ins are cached: $STEPGATE_LOGIN_DIR, else
// stepgate/logins in the user's configuration directory (as
// os.UserConfigDir finds it, from env).
func loginDir(env Env) (string, error) {
	if d := env.Getenv(envLoginDir); d != "" {
		return resolve(env, d), nil
	}
	var base string
	switch runtime.GOOS {
	case "windows":
		base = env.Getenv("AppData")
	case "darwin", "ios":
		if h := env.Getenv("HOME"); h != "" {
			base = filepath.Join(h, "Library", "Application Support")
		}
	default:
		base = env.Getenv("XDG_CONFIG_HOME")
		if !filepath.IsAbs(base) {
			base = ""
			if h := env.Getenv("HOME"); h != "" {
				base = filepath.Join(h, ".config")
			}
		}
	}
	if base == "" {
		return "", exit(ExitUsage, fmt.Errorf("no configuration directory to keep the sign-in in: set $HOME or $%s", envLoginDir))
	}
	return filepath.Join(base, "stepgate", "logins"), nil
}

// sessionPath is the file of a server's sign-in: named by a digest of
// the server's URL.
func sessionPath(env Env, server string) (string, error) {
	dir, err := loginDir(env)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(server))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".json"), nil
}

// loadSession reads the cached sign-in to server; nil when there is none.
// A file others may read is not used.
func loadSession(env Env, server string) (*session, error) {
	path, err := sessionPath(env, server)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading sign-in %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading sign-in %s: %w", path, err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("sign-in %s is readable by others (mode %04o); it is not used", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading sign-in %s: %w", path, err)
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading sign-in %s: %w", path, err)
	}
	if s.Server != server {
		return nil, nil
	}
	return &s, nil
}

// saveSession writes the sign-in with mode 0600 (in a directory of mode
// 0700 when it creates it), replacing the old one at once.
func saveSession(env Env, s *session) (string, error) {
	path, err := sessionPath(env, s.Server)
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding sign-in: %w", err)
	}
	if err := writePrivate(path, b); err != nil {
		return "", fmt.Errorf("writing sign-in %s: %w", path, err)
	}
	return path, nil
}

// stepUp is what a sign-in again must reach: the RFC 9470 challenge's
// acr_values and max_age.
type stepUp struct {
	acrValues []string
	maxAge    int64 // seconds; -1: none
}

type loginFlags struct {
	noBrowser bool
	timeout   time.Duration
}

// loginError is a sign-in that did not happen: exit 1.
func loginError(err error) error { return exit(ExitInternal, fmt.Errorf("signing in: %w", err)) }

// discover reads the server's protected resource metadata and checks it
// names this server and a client for the command line.
func discover(ctx context.Context, base *client.Client, server string) (issuer, clientID string, scopes []string, err error) {
	md, err := base.ProtectedResource(ctx)
	if err != nil {
		var e *client.Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return "", "", nil, exit(ExitUsage, fmt.Errorf("the server at %s does not sign people in from the command line: it has no OpenID Connect provider (server.oidc)", server))
		}
		return "", "", nil, loginError(fmt.Errorf("reading the server's metadata: %w", err))
	}
	// RFC 9728 section 3.3: the metadata must be of the resource asked.
	if strings.TrimRight(md.Resource, "/") != server {
		return "", "", nil, loginError(fmt.Errorf("the server at %s says it is %q: use --server %s if that is right", server, printable(md.Resource), printable(md.Resource)))
	}
	if len(md.AuthorizationServers) == 0 || md.AuthorizationServers[0] == "" {
		return "", "", nil, loginError(errors.New("the server's metadata names no identity provider"))
	}
	if md.CLIClientID == "" {
		return "", "", nil, exit(ExitUsage, fmt.Errorf("the server at %s has no client for the command line: its admin sets server.oidc.cli_client_id", server))
	}
	issuer = md.AuthorizationServers[0]
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || !loopback.SecureOrLocal(u) {
		return "", "", nil, loginError(fmt.Errorf("the identity provider %q is not an https URL", printable(issuer)))
	}
	scopes = md.CLIScopes
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID}
	}
	return issuer, md.CLIClientID, scopes, nil
}

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// login signs the person in at the server's identity provider, in a
// browser, and caches the ID token. With su, it asks for a new sign-in
// (prompt=login) with su's acr_values and max_age.
func login(ctx context.Context, env Env, base *client.Client, server string, lf loginFlags, su *stepUp) (*session, string, error) {
	issuer, clientID, scopes, err := discover(ctx, base, server)
	if err != nil {
		return nil, "", err
	}
	prov, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, "", loginError(fmt.Errorf("discovering %s: %w", issuer, err))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", loginError(fmt.Errorf("listening for the browser's return: %w", err))
	}
	redirect := "http://" + ln.Addr().String() + "/callback"
	endpoint := prov.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id, no secret
	cfg := oauth2.Config{ClientID: clientID, Endpoint: endpoint, RedirectURL: redirect, Scopes: scopes}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if su != nil {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
		if su.maxAge >= 0 {
			opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(su.maxAge, 10)))
		}
		if len(su.acrValues) > 0 {
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(su.acrValues, " ")))
		}
	}
	authURL := cfg.AuthCodeURL(state, opts...)

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			// Not the answer to this sign-in (another tab, another
			// program): keep waiting for it.
			callbackPage(w, http.StatusBadRequest, "This is not the sign-in stepgate is waiting for.")
			return
		}
		var res result
		switch {
		case q.Get("error") != "":
			res.err = fmt.Errorf("the identity provider refused: %s %s", printable(q.Get("error")), printable(q.Get("error_description")))
		case q.Get("code") == "":
			res.err = errors.New("the identity provider sent no code")
		default:
			res.code = q.Get("code")
		}
		select {
		case results <- res:
		default: // only the first answer counts
		}
		if res.err != nil {
			callbackPage(w, http.StatusBadRequest, "The sign-in did not succeed. Go back to the terminal.")
			return
		}
		callbackPage(w, http.StatusOK, "You are signed in to stepgate. You can close this tab and go back to the terminal.")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	why := "Signing in"
	if su != nil {
		why = "Signing in again"
	}
	browserErr := make(chan error, 1)
	if lf.noBrowser || env.OpenBrowser == nil {
		fmt.Fprintf(env.Stderr, "%s to %s at %s. Open this URL in a browser on this machine:\n\n  %s\n\n", why, server, issuer, authURL)
	} else {
		fmt.Fprintf(env.Stderr, "%s to %s at %s: opening your browser. If it does not open, visit this URL on this machine:\n\n  %s\n\n", why, server, issuer, authURL)
		go func() { browserErr <- env.OpenBrowser(ctx, authURL) }()
	}
	timeout := lf.timeout
	if timeout <= 0 {
		timeout = defaultLoginTimeout
	}
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res result
	for got := false; !got; {
		select {
		case res = <-results:
			got = true
		case err := <-browserErr:
			if err != nil {
				fmt.Fprintf(env.Stderr, "stepgate: could not open a browser (%v); open the URL above yourself\n", err)
			}
		case <-wait.Done():
			if ctx.Err() != nil {
				return nil, "", loginError(ctx.Err())
			}
			return nil, "", loginError(fmt.Errorf("no answer from the browser within %s (--login-timeout)", timeout))
		}
	}
	if res.err != nil {
		return nil, "", loginError(res.err)
	}
	xctx, xcancel := context.WithTimeout(ctx, time.Minute)
	defer xcancel()
	tok, err := cfg.Exchange(xctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, "", loginError(fmt.Errorf("exchanging the code at %s: %w", issuer, err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", loginError(fmt.Errorf("%s sent no ID token", issuer))
	}
	clock := func() time.Time { return clockNow(env) }
	idt, err := prov.Verifier(&gooidc.Config{ClientID: clientID, Now: clock}).Verify(xctx, raw)
	if err != nil {
		return nil, "", loginError(fmt.Errorf("verifying the ID token: %w", err))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, "", loginError(errors.New("the ID token is not the answer to this sign-in (nonce)"))
	}
	var cl struct {
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime *float64 `json:"auth_time"`
	}
	if err := idt.Claims(&cl); err != nil {
		return nil, "", loginError(fmt.Errorf("reading the ID token: %w", err))
	}
	s := &session{Server: server, Issuer: idt.Issuer, ClientID: clientID, IDToken: raw, Expiry: idt.Expiry.UTC(), ACR: cl.ACR, AMR: cl.AMR}
	if cl.AuthTime != nil {
		s.AuthTime = time.Unix(int64(*cl.AuthTime), 0).UTC()
	}
	path, err := saveSession(env, s)
	if err != nil {
		return nil, "", exit(ExitInternal, err)
	}
	return s, path, nil
}

// callbackPage answers the browser at the loopback redirect.
func callbackPage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>stepgate</title><p>%s</p>\n", html.EscapeString(msg))
}

// openBrowser opens url with the desktop's handler: the URL is one
// argument of the program, never read by a shell.
func openBrowser(_ context.Context, u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
