package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/stepgate/stepgate/internal/client"
)

// Environment variables of the commands that talk to a server.
const (
	envServer    = "STEPGATE_SERVER"
	envToken     = "STEPGATE_TOKEN"
	envTokenFile = "STEPGATE_TOKEN_FILE"
	envIDToken   = "STEPGATE_ID_TOKEN"
)

// serverFlags are the flags of the commands that talk to a server.
type serverFlags struct {
	server          string
	tokenFile       string
	idTokenAudience string
}

func (s *serverFlags) add(f *pflag.FlagSet) {
	addServerFlag(f, &s.server)
	f.StringVar(&s.tokenFile, "token-file", "", "file holding the API token (default: $"+envToken+", else the file $"+envTokenFile+" names)")
	f.StringVar(&s.idTokenAudience, "id-token-audience", defaultIDTokenAudience, "audience of the CI OIDC token asked of GitHub Actions when there is no API token")
}

// addServerFlag adds --server, which every command that talks to a server
// has.
func addServerFlag(f *pflag.FlagSet, server *string) {
	f.StringVar(server, "server", "", "URL of the stepgate server (default $"+envServer+")")
}

// serverURL is --server (flag) or $STEPGATE_SERVER, without a trailing
// slash.
func serverURL(env Env, flag string) (string, error) {
	u := flag
	if u == "" {
		u = env.Getenv(envServer)
	}
	if u == "" {
		return "", exit(ExitUsage, fmt.Errorf("no server: set $%s or --server", envServer))
	}
	return strings.TrimRight(strings.TrimSpace(u), "/"), nil
}

// token is the API token: from --token-file, $STEPGATE_TOKEN or the file
// named by $STEPGATE_TOKEN_FILE, in that order; failing those, the CI
// system's OIDC token ($STEPGATE_ID_TOKEN, else asked of GitHub Actions).
// It is never a flag's value, which would show in process listings and
// shell history, and never printed.
func (s *serverFlags) token(env Env) (string, error) {
	file := s.tokenFile
	if file == "" {
		if t := strings.TrimSpace(env.Getenv(envToken)); t != "" {
			return t, nil
		}
		file = env.Getenv(envTokenFile)
	}
	if file == "" {
		aud := s.idTokenAudience
		if aud == "" {
			aud = defaultIDTokenAudience
		}
		t, err := ciIDToken(env.Getenv, aud)
		if err != nil {
			return "", exit(ExitInternal, err)
		}
		return t, nil
	}
	f, err := os.Open(resolve(env, file))
	if err != nil {
		return "", exit(ExitUsage, fmt.Errorf("reading token file: %w", err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", exit(ExitUsage, fmt.Errorf("reading token file %s: %w", file, err))
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", exit(ExitUsage, fmt.Errorf("token file %s is empty", file))
	}
	return t, nil
}

// client returns a client of the server; needToken makes a missing token
// an error.
func (s *serverFlags) client(env Env, needToken bool) (*client.Client, error) {
	server, err := serverURL(env, s.server)
	if err != nil {
		return nil, err
	}
	token, err := s.token(env)
	if err != nil {
		return nil, err
	}
	if token == "" && needToken {
		return nil, exit(ExitUsage, fmt.Errorf("no API token: set $%s (or --token-file; 'stepgate tokens create' makes one), or give the job an OIDC token: $%s, or permissions: id-token: write in GitHub Actions", envToken, envIDToken))
	}
	return newClient(server, token)
}

// newClient returns a client of server that says it is this stepgate.
func newClient(server, token string) (*client.Client, error) {
	c, err := client.New(server, token, client.WithUserAgent("stepgate/"+version()))
	if err != nil {
		return nil, exit(ExitUsage, err)
	}
	return c, nil
}

// serverError turns an error from the server into an exit code: bad input
// is the caller's to fix (2); everything else, the server unreachable or
// failing or refusing the token, is 1, never 0.
func serverError(doing string, err error) error {
	var e *client.Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return exit(ExitUsage, fmt.Errorf("%s: %w", doing, err))
		case http.StatusUnauthorized:
			return exit(ExitInternal, fmt.Errorf("%s: %w (is $%s a valid API token?)", doing, err, envToken))
		}
	}
	return exit(ExitInternal, fmt.Errorf("%s: %w", doing, err))
}

// transient reports whether a failed request is worth repeating: the
// server could not be reached, or a proxy or the server said it is
// unavailable for now.
func transient(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) {
		return true
	}
	return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout || e.Status == http.StatusInternalServerError
}
