package github

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// apiVersion is the REST API version stepgate speaks.
const apiVersion = "2022-11-28"

// Client calls GitHub's REST API as the App: an RS256 JWT for the App's own
// endpoints, installation tokens for the rest.
type Client struct {
	api    *url.URL
	appID  int64
	signer jose.Signer
	hc     *http.Client
	now    func() time.Time

	mu     sync.Mutex
	tokens map[int64]installationToken // by installation id
}

type installationToken struct {
	value   string
	expires time.Time
}

// NewClient returns the client of the App appID, whose private key is key,
// over the REST API at apiURL.
func NewClient(apiURL string, appID int64, key *rsa.PrivateKey, hc *http.Client, now func() time.Time) (*Client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not a URL", apiURL)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("preparing the App's JWT signer: %w", err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	// A callback or token is never sent on after a redirect to another
	// host: GitHub's API answers these calls without redirecting.
	hc2 := *hc
	hc2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{api: u, appID: appID, signer: signer, hc: &hc2, now: now, tokens: map[int64]installationToken{}}, nil
}

// ParsePrivateKey reads the App's private key as GitHub hands it out (PEM,
// PKCS#1), or PKCS#8.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the private key is not an RSA key")
	}
	return rk, nil
}

// appJWT is the App's JWT as GitHub documents it: RS256, iss the App id,
// iat 60 seconds in the past (clock drift), exp within 10 minutes.
func (c *Client) appJWT() (string, error) {
	now := c.now()
	cl := jwt.Claims{
		Issuer:   strconv.FormatInt(c.appID, 10),
		IssuedAt: jwt.NewNumericDate(now.Add(-60 * time.Second)),
		Expiry:   jwt.NewNumericDate(now.Add(9 * time.Minute)),
	}
	return jwt.Signed(c.signer).Claims(cl).Serialize()
}

// StatusError is GitHub's answer when it is not the expected one.
type StatusError struct {
	Status int
	Body   string // the start of the body, for operators
}

func (e *StatusError) Error() string { return fmt.Sprintf("GitHub answered %d: %s", e.Status, e.Body) }

// Retryable reports whether err may go away by itself: a transport error,
// a 5xx, a 429 or a secondary rate limit (403 with Retry-After is not told
// apart from a permission error here, so 403 is final).
func Retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// token returns an installation token, a cached one while it has more than
// a minute left.
func (c *Client) token(ctx context.Context, installation int64) (string, error) {
	c.mu.Lock()
	t, ok := c.tokens[installation]
	c.mu.Unlock()
	if ok && c.now().Add(time.Minute).Before(t.expires) {
		return t.value, nil
	}
	j, err := c.appJWT()
	if err != nil {
		return "", fmt.Errorf("signing the App's JWT: %w", err)
	}
	u := c.api.JoinPath("app", "installations", strconv.FormatInt(installation, 10), "access_tokens")
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := c.do(ctx, u.String(), j, nil, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("creating an installation token for installation %d: %w", installation, err)
	}
	if out.Token == "" {
		return "", fmt.Errorf("creating an installation token for installation %d: the answer has no token", installation)
	}
	c.mu.Lock()
	c.tokens[installation] = installationToken{value: out.Token, expires: out.ExpiresAt}
	c.mu.Unlock()
	return out.Token, nil
}

// Review is the body of "Review custom deployment protection rules for a
// workflow run": State approved or rejected, or empty for a status report
// (a comment shown on the run while the rule waits).
type Review struct {
	EnvironmentName string `json:"environment_name"`
	State           string `json:"state,omitempty"`
	Comment         string `json:"comment,omitempty"`
}

// Review posts r to a run's deployment_callback_url as the installation.
// A 401 drops the cached token, so that the next attempt gets a new one.
func (c *Client) Review(ctx context.Context, installation int64, callbackURL string, r Review) error {
	tok, err := c.token(ctx, installation)
	if err != nil {
		return err
	}
	err = c.do(ctx, callbackURL, tok, r, http.StatusNoContent, nil)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		c.mu.Lock()
		delete(c.tokens, installation)
		c.mu.Unlock()
		se.Status = http.StatusServiceUnavailable // worth another try, with a new token
	}
	if err != nil {
		return fmt.Errorf("reviewing the deployment of %s: %w", r.EnvironmentName, err)
	}
	return nil
}

// do POSTs body (JSON; nil: none) with a bearer credential and expects
// want (2xx accepted for a body-less answer). The credential never
// appears in an error.
func (c *Client) do(ctx context.Context, u, bearer string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", "stepgate")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want && !(out == nil && resp.StatusCode/100 == 2) {
		return &StatusError{Status: resp.StatusCode, Body: truncate(string(b), 200)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("reading GitHub's answer: %w", err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
