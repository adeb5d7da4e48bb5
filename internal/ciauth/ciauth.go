// Package ciauth verifies the OIDC tokens CI systems (GitHub Actions,
// GitLab CI, any OIDC issuer) give their jobs, and maps their verified
// claims to the workspaces a pipeline may ask for.
//
// Only issuers named in the configuration are trusted. The unverified iss
// of a token is read for one thing: to pick which configured issuer must
// have signed it. Everything else comes from the token once go-oidc has
// verified its signature against that issuer's JWKS, its iss, and its aud.
package ciauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/sync/singleflight"

	"github.com/stepgate/stepgate/internal/ciclaims"
	"github.com/stepgate/stepgate/internal/loopback"
)

// Errors of Verify; each wraps ErrRefused.
var (
	ErrRefused       = errors.New("CI token refused")
	ErrMalformed     = fmt.Errorf("%w: not a JWT", ErrRefused)
	ErrUnknownIssuer = fmt.Errorf("%w: issuer is not trusted", ErrRefused)
	ErrInvalid       = fmt.Errorf("%w: invalid token", ErrRefused)
	ErrAudience      = fmt.Errorf("%w: wrong audience", ErrRefused)
	ErrExpired       = fmt.Errorf("%w: expired or not yet valid", ErrRefused)
	ErrNoRule        = fmt.Errorf("%w: no rule matches the token's claims", ErrRefused)
	ErrUnavailable   = fmt.Errorf("%w: issuer discovery failed", ErrRefused)
)

// Well-known issuers.
const (
	GitHubIssuer = "https://token.actions.githubusercontent.com"
	GitLabIssuer = "https://gitlab.com"
)

// Issuer is one trusted issuer of CI tokens.
type Issuer struct {
	// URL is the issuer exactly as the tokens' iss says it.
	URL string
	// Audience is the aud the tokens must carry.
	Audience string
	// System names the CI system in the pipeline identity: default
	// github-actions for GitHub's issuer, gitlab-ci for an issuer whose
	// host starts with gitlab, else the issuer's host.
	System string
	// Rules map claims to workspaces; a token matching none is refused.
	Rules []Rule
}

// Rule grants the workspaces to the tokens whose claims all match.
type Rule struct {
	// Claims are glob patterns per claim: * matches any run of characters
	// (slashes included), ? one character. A claim the token lacks matches
	// nothing.
	Claims map[string]string
	// Workspaces are the glob patterns (as for API tokens) the tokens may
	// ask for.
	Workspaces []string
	// Name is the requester name; {claim} is replaced by the claim's value,
	// as in "github:{actor}". Default: SYSTEM:{sub}.
	Name string
}

// Identity is a verified CI token.
type Identity struct {
	Issuer  string
	Subject string
	// System is the CI system (github-actions, gitlab-ci, the issuer host).
	System string
	// Claims are the token's scalar claims as strings.
	Claims map[string]string
	// Workspaces are the union of the matching rules' workspaces.
	Workspaces []string
	// Name is the requester name from the first matching rule.
	Name string
	// Expiry is when the token expires.
	Expiry time.Time
}

// Options tune a Verifier; the zero value is fine.
type Options struct {
	// HTTPClient fetches discovery documents and JWKS (default: a client
	// with a 10s timeout).
	HTTPClient *http.Client
	// DiscoveryTimeout bounds an issuer's discovery (default 10s).
	DiscoveryTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp, nbf and iat (default 1m).
	Leeway time.Duration
}

// Verifier verifies CI tokens of the configured issuers.
type Verifier struct {
	issuers map[string]*issuer
	opts    Options
}

type issuer struct {
	cfg    Issuer
	system string
	mu     sync.Mutex
	verify *oidc.IDTokenVerifier // nil until discovered
	// discovery runs one discovery at a time for every caller waiting on
	// it; no lock is held while it runs.
	discovery singleflight.Group
}

// New checks the configuration and returns a Verifier. Issuers are
// discovered lazily, on their first token.
func New(issuers []Issuer, opts Options) (*Verifier, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.DiscoveryTimeout <= 0 {
		opts.DiscoveryTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Leeway <= 0 {
		opts.Leeway = time.Minute
	}
	v := &Verifier{issuers: map[string]*issuer{}, opts: opts}
	for i, is := range issuers {
		if err := validate(is); err != nil {
			return nil, fmt.Errorf("ci issuer %d (%s): %w", i+1, is.URL, err)
		}
		if _, dup := v.issuers[is.URL]; dup {
			return nil, fmt.Errorf("ci issuer %s is configured twice", is.URL)
		}
		v.issuers[is.URL] = &issuer{cfg: is, system: systemOf(is)}
	}
	return v, nil
}

func validate(is Issuer) error {
	u, err := url.Parse(is.URL)
	if err != nil || u.Host == "" || !loopback.SecureOrLocal(u) {
		return errors.New("url must be an https URL (http only for localhost)")
	}
	if strings.TrimSpace(is.Audience) == "" {
		return errors.New("audience is required")
	}
	if len(is.Rules) == 0 {
		return errors.New("at least one rule is required")
	}
	for j, r := range is.Rules {
		// A rule without a real constraint would admit every job of every
		// repository the issuer serves (all of GitHub, for GitHub's issuer).
		constrained := false
		for k, p := range r.Claims {
			if k == "" || p == "" {
				return fmt.Errorf("rule %d: empty claim name or pattern", j+1)
			}
			if strings.Trim(p, "*") != "" {
				constrained = true
			}
		}
		if !constrained {
			return fmt.Errorf("rule %d: needs at least one claim pattern that is not just *", j+1)
		}
		if len(r.Workspaces) == 0 {
			return fmt.Errorf("rule %d: needs at least one workspace", j+1)
		}
		for _, w := range r.Workspaces {
			if _, err := path.Match(w, ""); err != nil || w == "" {
				return fmt.Errorf("rule %d: workspace pattern %q is not a valid glob", j+1, w)
			}
		}
	}
	return nil
}

func systemOf(is Issuer) string {
	if is.System != "" {
		return is.System
	}
	u, _ := url.Parse(is.URL)
	switch {
	case is.URL == GitHubIssuer || strings.HasPrefix(is.URL, GitHubIssuer+"/"):
		return "github-actions"
	case strings.HasPrefix(u.Hostname(), "gitlab"):
		return "gitlab-ci"
	}
	return u.Hostname()
}

// LooksLikeJWT reports whether a bearer has the shape of a compact JWS.
func LooksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(s) > 16<<10 {
		return false
	}
	for _, p := range parts[:2] {
		if p == "" || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

// unverifiedIssuer reads iss from a token without verifying anything.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", ErrMalformed
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ErrMalformed
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", ErrMalformed
	}
	return c.Iss, nil
}

// Verify verifies a CI token and maps it to workspaces.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: no CI issuer is configured", ErrUnknownIssuer)
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, err
	}
	is, ok := v.issuers[iss]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownIssuer, truncate(iss, 200))
	}
	ver, err := v.verifier(ctx, is)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, v.opts.HTTPClient)
	tok, err := ver.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// Audience, expiry, nbf and iat are checked here, for clear reasons.
	if !slices.Contains(tok.Audience, is.cfg.Audience) {
		return nil, fmt.Errorf("%w: want %q, token has %q", ErrAudience, is.cfg.Audience, tok.Audience)
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	now := v.opts.Now()
	if tok.Expiry.IsZero() {
		return nil, fmt.Errorf("%w: no exp", ErrExpired)
	}
	if !now.Before(tok.Expiry.Add(v.opts.Leeway)) {
		return nil, fmt.Errorf("%w: expired at %s", ErrExpired, tok.Expiry.UTC().Format(time.RFC3339))
	}
	if nbf, ok := numericClaim(all["nbf"]); ok && now.Add(v.opts.Leeway).Before(nbf) {
		return nil, fmt.Errorf("%w: not valid before %s", ErrExpired, nbf.UTC().Format(time.RFC3339))
	}
	if !tok.IssuedAt.IsZero() && now.Add(v.opts.Leeway).Before(tok.IssuedAt) {
		return nil, fmt.Errorf("%w: issued in the future (%s)", ErrExpired, tok.IssuedAt.UTC().Format(time.RFC3339))
	}
	id := &Identity{Issuer: tok.Issuer, Subject: tok.Subject, System: is.system, Claims: stringClaims(all), Expiry: tok.Expiry}
	for _, r := range is.cfg.Rules {
		if !r.matches(id.Claims) {
			continue
		}
		if id.Name == "" {
			id.Name = r.name(id)
		}
		for _, w := range r.Workspaces {
			if !slices.Contains(id.Workspaces, w) {
				id.Workspaces = append(id.Workspaces, w)
			}
		}
	}
	if len(id.Workspaces) == 0 {
		return nil, fmt.Errorf("%w (issuer %s, sub %q)", ErrNoRule, iss, truncate(tok.Subject, 200))
	}
	return id, nil
}

// verifier discovers an issuer on first use. Callers that arrive while a
// discovery runs wait for that one (singleflight), each for as long as its
// own context allows; the discovery itself is bounded by DiscoveryTimeout
// and does not end because one waiting caller gave up. A failed discovery
// is not kept: the next token tries again.
func (v *Verifier) verifier(ctx context.Context, is *issuer) (*oidc.IDTokenVerifier, error) {
	is.mu.Lock()
	ver := is.verify
	is.mu.Unlock()
	if ver != nil {
		return ver, nil
	}
	ch := is.discovery.DoChan("discover", func() (any, error) {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), v.opts.HTTPClient), v.opts.DiscoveryTimeout)
		defer cancel()
		p, err := oidc.NewProvider(dctx, is.cfg.URL)
		if err != nil {
			return nil, err
		}
		ver := p.VerifierContext(oidc.ClientContext(context.Background(), v.opts.HTTPClient), &oidc.Config{
			SkipClientIDCheck:    true, // checked by Verify, for a clear reason
			SkipExpiryCheck:      true, // idem
			SupportedSigningAlgs: []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA},
		})
		is.mu.Lock()
		is.verify = ver
		is.mu.Unlock()
		return ver, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: waiting for discovery: %w", ErrUnavailable, is.cfg.URL, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, is.cfg.URL, r.Err)
		}
		return r.Val.(*oidc.IDTokenVerifier), nil
	}
}

// numericClaim reads a NumericDate claim. (Claims decode with
// encoding/json into a map: every number is a float64.)
func numericClaim(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// stringClaims keeps the scalar claims, as strings.
func stringClaims(all map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		switch x := v.(type) {
		case string:
			out[k] = x
		case bool:
			out[k] = strconv.FormatBool(x)
		case float64:
			out[k] = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	return out
}

func (r Rule) matches(claims map[string]string) bool {
	for k, p := range r.Claims {
		v, ok := claims[k]
		if !ok || !Glob(p, v) {
			return false
		}
	}
	return true
}

func (r Rule) name(id *Identity) string {
	tmpl := r.Name
	if tmpl == "" {
		tmpl = id.System + ":{sub}"
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		b.WriteString(id.Claims[tmpl[i+1:i+j]])
		tmpl = tmpl[i+j+1:]
	}
	return truncate(b.String(), 200)
}

// Glob matches s against a pattern where * is any run of characters
// (slashes included) and ? one character; everything else is literal.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	nextP, nextS := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextP, nextS = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextS > 0 && nextS <= len(s) {
			px, sx = nextP, nextS
			continue
		}
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pipelineKeys are the claims copied into the pipeline identity under
// their own name, when the token has them.
var pipelineKeys = []string{
	"repository", "repository_owner", "ref", "ref_type", "sha", "workflow",
	"workflow_ref", "job_workflow_ref", "run_id", "run_number", "run_attempt",
	"actor", "environment", "event_name", "runner_environment",
	// GitLab
	"project_path", "namespace_path", "pipeline_id", "job_id", "user_login",
	"ci_config_ref_uri",
}

// Pipeline is the pipeline identity of a check asked with this token: the
// verified claims under the keys stepgate check sends (system, repository,
// ref, sha, run_id, run_attempt, workflow, actor, run_url), plus issuer,
// subject and the other claims worth a reviewer's eye. It replaces what the
// request itself says.
func (id *Identity) Pipeline() map[string]string {
	p := map[string]string{"system": id.System, "issuer": id.Issuer, "subject": id.Subject}
	for _, k := range pipelineKeys {
		if v := id.Claims[k]; v != "" {
			p[k] = v
		}
	}
	if id.System == "gitlab-ci" {
		alias := map[string]string{"repository": "project_path", "run_id": "pipeline_id", "actor": "user_login"}
		for k, from := range alias {
			if v := id.Claims[from]; v != "" {
				p[k] = v
			}
		}
	}
	if id.System == "github-actions" && p["repository"] != "" && p["run_id"] != "" && id.Issuer == GitHubIssuer {
		p["run_url"] = "https://github.com/" + p["repository"] + "/actions/runs/" + p["run_id"]
	}
	for k, v := range p {
		if len(v) > 1024 {
			p[k] = v[:1024]
		}
	}
	return p
}

// RunKey identifies the run a token belongs to (issuer, subject, run and
// attempt) by a digest, stable across the tokens one job fetches: checks
// asked by the same run resume, and only that run receives their grant.
func (id *Identity) RunKey() string {
	h := sha256.New()
	for _, s := range []string{id.Issuer, id.Subject, id.Claims["repository"], id.Claims["run_id"], id.Claims["run_attempt"], id.Claims["project_path"], id.Claims["pipeline_id"]} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Normalized is the token's verified claims in the shape the policy reads
// (input.pipeline) and integrations match runs by: see ciclaims.Normalize.
func (id *Identity) Normalized() ciclaims.Pipeline {
	return ciclaims.Normalize(id.System, id.Claims)
}
