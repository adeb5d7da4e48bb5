// Package oidc is stepgate's relying party for the organisation's OpenID
// Connect provider: sign-in with the authorization code flow (PKCE S256,
// state and nonce), and step-up by re-authentication (prompt=login,
// max_age, acr_values) whose result is accepted only when the ID token's
// auth_time is fresh and its acr/amr reach the level asked for.
//
// The package keeps no per-browser state: Begin returns a Flow that the
// caller seals into a short-lived cookie (internal/web does it with the
// master key), and Finish checks the callback against it.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors callers check with errors.Is.
var (
	// ErrState: the callback does not belong to the flow this browser began
	// (state mismatch, missing or expired flow).
	ErrState = errors.New("oidc: state does not match the flow in progress")
	// ErrToken: the code exchange failed or the ID token is invalid
	// (signature, iss, aud, exp, nonce).
	ErrToken = errors.New("oidc: ID token refused")
	// ErrReplay: an ID token (its nonce) was already used.
	ErrReplay = errors.New("oidc: ID token already used")
	// ErrStale: auth_time is missing, older than max_age or before the
	// re-authentication began.
	ErrStale = errors.New("oidc: authentication is not fresh")
	// ErrLevel: the acr/amr do not reach the level asked for.
	ErrLevel = errors.New("oidc: authentication too weak")
	// ErrProvider: the provider answered with an error.
	ErrProvider = errors.New("oidc: the provider refused")
)

// Config is the relying party's configuration.
type Config struct {
	// Name is what the sign-in button says ("Sign in with <Name>").
	Name         string
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the full URL of the callback.
	RedirectURL string
	// Scopes besides "openid" (default: profile, email).
	Scopes []string
	// GroupsClaim names the ID token claim with the person's groups at the
	// provider ("" : no groups are taken from the provider).
	GroupsClaim string
	// GroupMap maps a provider group to stepgate groups; unmapped groups
	// are ignored.
	GroupMap map[string][]string
	// ACR is the acr value asked for (acr_values) per level; an ID token
	// whose acr equals ACR[n] reached level n.
	ACR map[int]string
	// AMRLevels overrides the level of single amr values (see Level).
	AMRLevels map[string]int
	// HTTPClient talks to the provider (nil: http.DefaultClient).
	HTTPClient *http.Client
	// Nonces remembers the used nonces: StoredNonces(st, now) keeps them
	// in the database, for every server sharing it. nil keeps them in this
	// RP's memory (one server; tests).
	Nonces NonceStore
}

// NonceStore remembers the nonces of the ID tokens that were accepted.
type NonceStore interface {
	// Use records nonce as used until `until` and reports whether it was
	// not used yet: of calls with the same nonce, one gets true until
	// `until` has passed. An error means the answer is unknown: the token
	// is refused.
	Use(ctx context.Context, nonce string, until time.Time) (bool, error)
}

// RP is a relying party.
type RP struct {
	cfg      Config
	provider *gooidc.Provider
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
	now      func() time.Time
	nonces   NonceStore
}

// New discovers the provider and returns the relying party.
func New(ctx context.Context, cfg Config, now func() time.Time) (*RP, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client_id and the redirect URL are required")
	}
	if now == nil {
		now = time.Now
	}
	if cfg.HTTPClient != nil {
		ctx = gooidc.ClientContext(ctx, cfg.HTTPClient)
	}
	p, err := gooidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovering %s: %w", cfg.Issuer, err)
	}
	scopes := []string{gooidc.ScopeOpenID}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"profile", "email"}
	}
	for _, s := range cfg.Scopes {
		if s != gooidc.ScopeOpenID && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if cfg.Name == "" {
		cfg.Name = "your identity provider"
	}
	nonces := cfg.Nonces
	if nonces == nil {
		nonces = &memoryNonces{now: now, used: map[string]time.Time{}}
	}
	rp := &RP{
		cfg: cfg, provider: p, now: now, nonces: nonces,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: cfg.RedirectURL, Scopes: scopes},
	}
	rp.verifier = p.VerifierContext(context.WithoutCancel(ctx), &gooidc.Config{ClientID: cfg.ClientID, Now: now})
	return rp, nil
}

// SyncsGroups reports whether groups come from the provider (a groups
// claim is configured).
func (rp *RP) SyncsGroups() bool { return rp.cfg.GroupsClaim != "" }

// Name is the provider's name for people.
func (rp *RP) Name() string { return rp.cfg.Name }

// AuthOrigin is the origin (scheme://host[:port]) of the provider's
// authorization endpoint, where BeginSignIn and BeginStepUp send the
// browser; "" when the discovered endpoint is not an absolute URL.
func (rp *RP) AuthOrigin() string {
	u, err := url.Parse(rp.oauth.Endpoint.AuthURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Flow is what a browser's flow must remember between Begin and Finish.
// The caller keeps it sealed (it holds the PKCE verifier).
type Flow struct {
	State    string    `json:"state"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Started  time.Time `json:"started"`
	// Step-up only: the level and max age (seconds) asked for.
	Level  int   `json:"level,omitempty"`
	MaxAge int64 `json:"max_age,omitempty"`
	// Check is the check being approved (step-up only).
	Check string `json:"check,omitempty"`
}

func random() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// BeginSignIn starts a sign-in: it returns the URL to send the browser to
// and the flow to keep.
func (rp *RP) BeginSignIn() (string, *Flow) {
	f := &Flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Started: rp.now().UTC()}
	return rp.oauth.AuthCodeURL(f.State, gooidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), f
}

// BeginStepUp starts a re-authentication for level within maxAge:
// prompt=login, max_age and the acr_values configured for the level.
func (rp *RP) BeginStepUp(level int, maxAge time.Duration, check string) (string, *Flow) {
	secs := int64(maxAge / time.Second)
	f := &Flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Started: rp.now().UTC(), Level: level, MaxAge: secs, Check: check}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier), oauth2.SetAuthURLParam("prompt", "login")}
	if secs > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(secs, 10)))
	}
	if acr := rp.acrValues(level); acr != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", acr))
	}
	return rp.oauth.AuthCodeURL(f.State, opts...), f
}

// acrValues are the acr values that satisfy level: the level's own and
// those of higher levels, the preferred first.
func (rp *RP) acrValues(level int) string {
	var vs []string
	for l := level; l <= 3; l++ {
		if v := rp.cfg.ACR[l]; v != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return strings.Join(vs, " ")
}

// Identity is a verified ID token.
type Identity struct {
	Issuer   string
	Subject  string
	Email    string
	Username string // preferred_username
	// Groups are the stepgate groups the provider's groups map to.
	Groups   []string
	ACR      string
	AMR      []string
	AuthTime time.Time
	// Level is what acr/amr reached (see Level).
	Level int
	// JTI is the token's jti, or the hex SHA-256 of the raw ID token.
	JTI   string
	Nonce string
	// AZP is the authorized party (azp), the client the token was issued
	// to, when the token names one.
	AZP string
}

// Finish checks a callback (its query: state, code or error) against the
// flow, exchanges the code with the PKCE verifier and verifies the ID
// token: signature, iss, aud, exp, nonce, and that its nonce was never
// used before. A step-up flow is then checked by StepUp.
func (rp *RP) Finish(ctx context.Context, f *Flow, state, code, errCode, errDesc string) (*Identity, error) {
	if f == nil || state == "" || state != f.State {
		return nil, ErrState
	}
	if errCode != "" {
		return nil, fmt.Errorf("%w: %s %s", ErrProvider, errCode, errDesc)
	}
	if rp.cfg.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, rp.cfg.HTTPClient)
	}
	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: exchanging the code: %w", ErrToken, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: no id_token in the token response", ErrToken)
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrToken, err)
	}
	if idt.Nonce != f.Nonce {
		return nil, fmt.Errorf("%w: nonce does not match", ErrToken)
	}
	id, err := rp.identity(idt, raw)
	if err != nil {
		return nil, err
	}
	if err := rp.useNonce(ctx, idt.Nonce, idt.Expiry); err != nil {
		return nil, err
	}
	return id, nil
}

// identity reads the claims of a verified ID token (raw is its text).
func (rp *RP) identity(idt *gooidc.IDToken, raw string) (*Identity, error) {
	var cl struct {
		Email    string   `json:"email"`
		Username string   `json:"preferred_username"`
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime *float64 `json:"auth_time"`
		JTI      string   `json:"jti"`
		AZP      string   `json:"azp"`
	}
	if err := idt.Claims(&cl); err != nil {
		return nil, fmt.Errorf("%w: reading claims: %w", ErrToken, err)
	}
	id := &Identity{Issuer: idt.Issuer, Subject: idt.Subject, Email: cl.Email, Username: cl.Username, ACR: cl.ACR, AMR: cl.AMR, JTI: cl.JTI, Nonce: idt.Nonce, AZP: cl.AZP}
	if cl.AuthTime != nil {
		id.AuthTime = time.Unix(int64(*cl.AuthTime), 0).UTC()
	}
	if id.JTI == "" {
		sum := sha256.Sum256([]byte(raw))
		id.JTI = "sha256:" + hex.EncodeToString(sum[:])
	}
	if rp.cfg.GroupsClaim != "" {
		var all map[string]any
		if err := idt.Claims(&all); err == nil {
			id.Groups = rp.MapGroups(all[rp.cfg.GroupsClaim])
		}
	}
	id.Level = rp.Level(id.ACR, id.AMR)
	return id, nil
}

// nonceKept is how long a nonce is remembered after its token expires
// (a token is refused after its expiry anyway).
const nonceKept = time.Hour

// useNonce records the nonce of a token expiring at exp as used:
// ErrReplay when it already was; another error, and the token is refused,
// when the nonce store cannot tell.
func (rp *RP) useNonce(ctx context.Context, nonce string, exp time.Time) error {
	now := rp.now()
	if exp.Before(now) {
		exp = now
	}
	fresh, err := rp.nonces.Use(ctx, nonce, exp.Add(nonceKept))
	if err != nil {
		return fmt.Errorf("oidc: recording the ID token's nonce as used: %w", err)
	}
	if !fresh {
		return ErrReplay
	}
	return nil
}

// memoryNonces keeps used nonces in memory: replays are caught by this
// RP only.
type memoryNonces struct {
	now  func() time.Time
	mu   sync.Mutex
	used map[string]time.Time // nonce -> when it may be forgotten
}

func (m *memoryNonces) Use(_ context.Context, nonce string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for n, u := range m.used {
		if now.After(u) {
			delete(m.used, n)
		}
	}
	if _, seen := m.used[nonce]; seen {
		return false, nil
	}
	m.used[nonce] = until
	return true, nil
}

// NonceDB is the database's side of StoredNonces (store.NonceTx).
type NonceDB interface {
	UseNonce(ctx context.Context, hash []byte, until, now time.Time) (bool, error)
}

// StoredNonces keeps used nonces in a database that every server shares,
// as their SHA-256 (a nonce is not kept). now is the clock that says when
// a record may be forgotten.
func StoredNonces(db NonceDB, now func() time.Time) NonceStore {
	if now == nil {
		now = time.Now
	}
	return storedNonces{db: db, now: now}
}

type storedNonces struct {
	db  NonceDB
	now func() time.Time
}

func (s storedNonces) Use(ctx context.Context, nonce string, until time.Time) (bool, error) {
	h := sha256.Sum256([]byte(nonce))
	return s.db.UseNonce(ctx, h[:], until, s.now())
}

// MapGroups maps the provider's groups (a list of strings, or one string)
// to stepgate groups through the configured mapping.
func (rp *RP) MapGroups(v any) []string {
	var in []string
	switch g := v.(type) {
	case string:
		in = []string{g}
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok {
				in = append(in, s)
			}
		}
	}
	var out []string
	for _, g := range in {
		for _, s := range rp.cfg.GroupMap[g] {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Level is the assurance level an ID token's acr and amr reach:
//   - an acr equal to the value configured for a level reaches that level
//     (the highest such level);
//   - amr with "hwk" or "swk" (a key) and "mfa" reaches 3; with "mfa" or
//     "otp", 2; otherwise 1. AMRLevels can set the level of single amr
//     values (e.g. {"hwk": 3}).
//
// The higher of the two counts. An unknown acr counts for nothing: a
// provider that ignores acr_values and answers with a weak acr and weak
// amr stays at 1.
func (rp *RP) Level(acr string, amr []string) int {
	level := 1
	for l := 3; l >= 1; l-- {
		if v := rp.cfg.ACR[l]; v != "" && acr == v {
			level = max(level, l)
			break
		}
	}
	has := func(m string) bool { return slices.Contains(amr, m) }
	switch {
	case (has("hwk") || has("swk")) && has("mfa"):
		level = max(level, 3)
	case has("mfa") || has("otp"):
		level = max(level, 2)
	}
	for _, m := range amr {
		if l, ok := rp.cfg.AMRLevels[m]; ok {
			level = max(level, min(l, 3))
		}
	}
	return level
}

// StepUp accepts a re-authentication for f: auth_time not before the
// flow began (a second of clock skew allowed), and what Fresh asks for
// the flow's level and max age.
func (rp *RP) StepUp(f *Flow, id *Identity) error {
	if !id.AuthTime.IsZero() && id.AuthTime.Before(f.Started.Add(-time.Second).Truncate(time.Second)) {
		return fmt.Errorf("%w: authenticated at %s, before the re-authentication began", ErrStale, id.AuthTime.Format(time.RFC3339))
	}
	return rp.Fresh(id, f.Level, time.Duration(f.MaxAge)*time.Second)
}

var notName = regexp.MustCompile(`[^a-z0-9._-]+`)

// AccountName makes a stepgate account name (lower-case letters, digits,
// . _ -, 1-63, starting with a letter or digit) from preferred_username,
// else the local part of the email, else the subject.
func AccountName(id *Identity) string {
	for _, s := range []string{id.Username, strings.SplitN(id.Email, "@", 2)[0], id.Subject} {
		s = strings.ToLower(strings.TrimSpace(s))
		if i := strings.IndexByte(s, '@'); i > 0 {
			s = s[:i]
		}
		s = notName.ReplaceAllString(s, "-")
		s = strings.TrimLeft(s, "._-")
		if len(s) > 63 {
			s = s[:63]
		}
		s = strings.TrimRight(s, "._-")
		if s != "" {
			return s
		}
	}
	return "user"
}
