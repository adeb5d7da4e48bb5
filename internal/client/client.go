package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stepgate/stepgate/internal/api"
)

// MaxResponseBytes caps the body of an answer the client reads. A check
// lists every address its findings name, so it can be large, but never this
// large.
const MaxResponseBytes = 8 << 20

// maxErrorBytes caps the body of an error answer.
const maxErrorBytes = 64 << 10

// Timeouts of one request, on top of the caller's context. The long-poll
// of WaitCheck gets its own timeout plus waitGrace.
const (
	requestTimeout = time.Minute
	// createTimeout is long: the server reads and assesses the whole plan
	// (up to hundreds of MiB) before it answers.
	createTimeout = 10 * time.Minute
	waitGrace     = 30 * time.Second
)

// Client talks to one stepgate server as one pipeline (its API token).
// It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	hc        *http.Client
	userAgent string
}

// Option changes how a Client is built.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (a proxy,
// custom CAs, a test server's client). The client never follows redirects,
// whatever hc says: a bearer token must not travel to another address.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header, e.g. "stepgate/v1.2.0".
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the server at baseURL (https://gate.example.com,
// optionally with a path prefix) that authenticates with the API token
// token. An empty token sends no Authorization header.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", baseURL, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("server URL %q: want an http:// or https:// URL", baseURL)
	case u.Host == "":
		return nil, fmt.Errorf("server URL %q has no host", baseURL)
	case u.User != nil:
		// Credentials in the URL would be printed with every error.
		return nil, errors.New("server URL must not carry a user name or password; the token comes from STEPGATE_TOKEN")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("server URL %q: want no query or fragment", baseURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if strings.ContainsFunc(token, spaceOrControl) {
		// Never say more about the token than that.
		return nil, errors.New("the API token contains spaces or control characters")
	}
	c := &Client{base: u, token: token, userAgent: "stepgate"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// String names the server, never the token.
func (c *Client) String() string { return "stepgate client of " + c.base.String() }

// GoString is String, so that %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

// LogValue keeps the token out of structured logs.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// BaseURL is the server's URL without a trailing slash: the issuer of its
// grants.
func (c *Client) BaseURL() string { return c.base.String() }

// JWKSURL is where the server publishes the public keys of its grants.
func (c *Client) JWKSURL() string { return c.base.JoinPath(api.PathJWKS).String() }

// Error is an answer of the server other than 2xx.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is one of the api.Code* constants, or empty when the answer did
	// not carry an api.Error (a proxy's error page, say).
	Code string
	// Message says what went wrong; the status text when the server did
	// not say.
	Message string
}

func (e *Error) Error() string {
	label := e.Code
	if label == "" {
		label = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("server answered %d %s", e.Status, label)
	if e.Message != "" && e.Message != http.StatusText(e.Status) {
		s += ": " + e.Message
	}
	return s
}

// CheckRequest is an operation to submit.
type CheckRequest struct {
	Kind           string
	Workspace      string
	Environment    string
	PlanFileSHA256 string
	// Pipeline is the pipeline's identity (repository, run_id, run_url...).
	Pipeline map[string]string
	// Plan is the plan document (`terraform show -json` output), streamed
	// as the body and never held in memory; nil for secret.read.
	Plan io.Reader
	// PlanFile is the saved plan (`terraform plan -out`) that Plan is the
	// JSON of. When set, both are streamed as a multipart/form-data body
	// (the parts plan, then plan_file), and the server verifies that they
	// describe the same changes.
	PlanFile io.Reader
	// Secrets the grant would release, each "NAME" or "ENV=NAME".
	Secrets []string
	// BreakGlass asks for the emergency path, with BreakGlassReason
	// saying why (at least 20 characters).
	BreakGlass       bool
	BreakGlassReason string
}

// CreateCheck submits an operation. The server answers with a new check,
// or with the pending check the same token asked for with the same inputs
// before (Resumed is then true).
func (c *Client) CreateCheck(ctx context.Context, r CheckRequest) (*api.Check, error) {
	q := url.Values{}
	q.Set(api.ParamKind, r.Kind)
	q.Set(api.ParamWorkspace, r.Workspace)
	if r.Environment != "" {
		q.Set(api.ParamEnvironment, r.Environment)
	}
	if r.PlanFileSHA256 != "" {
		q.Set(api.ParamPlanFileHash, r.PlanFileSHA256)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Pipeline)) {
		q.Set(api.ParamPipelinePrefix+k, r.Pipeline[k])
	}
	for _, s := range r.Secrets {
		q.Add(api.ParamSecret, s)
	}
	if r.BreakGlass {
		q.Set(api.ParamBreakGlass, "true")
		q.Set(api.ParamBreakGlassReason, r.BreakGlassReason)
	}
	body, contentType := r.Plan, "application/json"
	if body == nil {
		body = http.NoBody
	}
	if r.PlanFile != nil {
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		planJSON := body
		go func() { pw.CloseWithError(writeParts(mw, planJSON, r.PlanFile)) }()
		defer pr.Close() // ends the writer if the request ends first
		body, contentType = pr, mw.FormDataContentType()
	}
	ctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	var out api.Check
	if err := c.do(ctx, http.MethodPost, api.PathChecks, q, body, contentType, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// writeParts writes the multipart body of a check with a saved plan.
func writeParts(mw *multipart.Writer, plan, planFile io.Reader) error {
	for _, p := range []struct {
		name, contentType string
		r                 io.Reader
	}{{api.PartPlan, "application/json", plan}, {api.PartPlanFile, "application/octet-stream", planFile}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.name, p.name))
		h.Set("Content-Type", p.contentType)
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, p.r); err != nil {
			return fmt.Errorf("sending %s: %w", p.name, err)
		}
	}
	return mw.Close()
}

// GetCheck returns a check as it is now.
func (c *Client) GetCheck(ctx context.Context, id string) (*api.Check, error) {
	p, err := checkPath(api.PathChecks, id)
	if err != nil {
		return nil, err
	}
	return get[api.Check](ctx, c, p)
}

// WaitCheck returns a check once it is no longer pending, or when timeout
// has passed (the server holds a wait at most 60 s), whichever comes first.
func (c *Client) WaitCheck(ctx context.Context, id string, timeout time.Duration) (*api.Check, error) {
	p, err := checkPath(api.PathChecks, id)
	if err != nil {
		return nil, err
	}
	// The request must outlive the long-poll, also under a caller's
	// http.Client.Timeout.
	if t := c.hc.Timeout; t > 0 && timeout > t-5*time.Second {
		timeout = t - 5*time.Second
	}
	secs := max(int64((timeout+time.Second-1)/time.Second), 1)
	q := url.Values{}
	q.Set(api.ParamTimeout, strconv.FormatInt(secs, 10)+"s")
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+waitGrace)
	defer cancel()
	var out api.Check
	if err := c.do(ctx, http.MethodGet, p+"/wait", q, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Consume uses a grant on the server. It succeeds once per grant: a second
// use answers an *Error with Status 409.
func (c *Client) Consume(ctx context.Context, grant string) (*api.ConsumeResponse, error) {
	var out api.ConsumeResponse
	if err := c.post(ctx, api.PathConsume, api.ConsumeRequest{Grant: grant}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Release exchanges a grant for the secrets its check names, once: a
// second exchange answers an *Error with Status 409. The caller clears the
// values once used.
func (c *Client) Release(ctx context.Context, grant string) (*api.ReleaseResponse, error) {
	var out api.ReleaseResponse
	if err := c.post(ctx, api.PathRelease, api.ReleaseRequest{Grant: grant}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReportOutcome tells the server how the command run under a check's grant
// ended.
func (c *Client) ReportOutcome(ctx context.Context, checkID string, o api.OutcomeRequest) error {
	p, err := checkPath(api.PathChecks, checkID)
	if err != nil {
		return err
	}
	return c.post(ctx, p+"/outcome", o, nil)
}

// checkPath is the path of a check under base (api.PathChecks,
// api.PathPeopleChecks); an id that could change the path (a slash, a dot
// segment) is refused rather than escaped into another route.
func checkPath(base, id string) (string, error) {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/?#%\\") || strings.ContainsFunc(id, spaceOrControl) {
		return "", fmt.Errorf("invalid check id %q", id)
	}
	return base + "/" + url.PathEscape(id), nil
}

// spaceOrControl matches what may appear neither in a token nor in a
// check id: spaces and control characters.
func spaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// get sends a GET of path and decodes its answer.
func get[T any](ctx context.Context, c *Client, path string) (*T, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var out T
	if err := c.do(ctx, http.MethodGet, path, nil, nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// post sends in as the JSON body of a POST to path and decodes the answer
// into out (when not nil).
func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding request to %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return c.do(ctx, http.MethodPost, path, nil, bytes.NewReader(body), "application/json", out)
}

// do sends one request and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string, out any) error {
	u := c.base.JoinPath(path)
	if q != nil {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and the URL, which holds no secret
		// (New refuses credentials in it).
		return fmt.Errorf("reaching stepgate server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := readError(resp)
		if resp.StatusCode == http.StatusUnauthorized {
			if ch, ok := ParseChallenge(resp.Header.Values("WWW-Authenticate")); ok {
				return &ChallengeError{Err: e, Challenge: ch}
			}
		}
		return e
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if len(b) > MaxResponseBytes {
		return fmt.Errorf("%s %s: answer larger than %d MiB", method, path, MaxResponseBytes>>20)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

func readError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body api.Error
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		e.Code = clean(body.Error.Code, 64)
		if m := clean(body.Error.Message, 1000); m != "" {
			e.Message = m
		}
	}
	return e
}

// clean keeps text from the server printable: no control characters (an
// escape sequence could rewrite the terminal), at most n bytes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return strings.TrimSpace(s)
}
