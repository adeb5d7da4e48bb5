package grant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySource gives the public keys to verify with.
type KeySource interface {
	// Keys returns the keys with this kid; none (and no error) when there is
	// no such key. An error means the keys could not be had.
	Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error)
}

// StaticKeys is a fixed key set, such as the server's own ring's JWKS:
// grant.StaticKeys(set.Keys).
//
// It is a slice of keys rather than a jose.JSONWebKeySet because that type
// has a field named Keys, which cannot coexist with the method Keys.
type StaticKeys []jose.JSONWebKey

// Keys returns the keys of s with this kid.
func (s StaticKeys) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	set := jose.JSONWebKeySet{Keys: s}
	return set.Key(kid), nil
}

const (
	remoteMaxBody    = 1 << 20          // a JWKS larger than 1 MiB is refused
	remoteMinRefetch = 10 * time.Second // at most one fetch per 10s
	remoteMaxAge     = 5 * time.Minute  // a key set older than this is fetched again
	remoteTimeout    = 10 * time.Second // of the default client
)

// RemoteKeys fetches a JWKS URL. It keeps the set it fetched and fetches
// again when asked for a kid it does not have (a rotation happened) or when
// the set is older than 5 minutes (a key was withdrawn), at most once every
// 10 seconds whatever the reason, so tokens with made-up kids cannot make it
// hammer the server. It fails closed: when the set cannot be fetched, Keys
// returns the error rather than keys it can no longer vouch for.
//
// Only the public keys of the set are kept. Safe for concurrent use.
type RemoteKeys struct {
	url     string
	shown   string // url as errors show it (no password)
	client  *http.Client
	now     func() time.Time
	fetchMu chan struct{} // one fetch at a time; a channel so waiting honours ctx

	mu        sync.Mutex
	set       jose.JSONWebKeySet
	fetchedAt time.Time // of the set; zero before the first success
	triedAt   time.Time // of the last fetch attempt
	lastErr   error     // of the last fetch attempt
}

// NewRemoteKeys returns a KeySource that fetches the JWKS at url with client
// (nil: a client with a 10s timeout). Use an https URL outside tests.
func NewRemoteKeys(url string, client *http.Client) *RemoteKeys {
	if client == nil {
		client = &http.Client{Timeout: remoteTimeout}
	}
	return &RemoteKeys{
		url:     url,
		shown:   redactURL(url),
		client:  client,
		now:     time.Now,
		fetchMu: make(chan struct{}, 1),
	}
}

// Keys returns the keys with this kid, fetching the set first when needed.
func (r *RemoteKeys) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if keys, ok := r.fresh(kid); ok {
		return keys, nil
	}
	select {
	case r.fetchMu <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.fetchMu }()

	// Another caller may have fetched while this one waited.
	if keys, ok := r.fresh(kid); ok {
		return keys, nil
	}
	r.mu.Lock()
	now := r.now()
	if !r.triedAt.IsZero() && now.Sub(r.triedAt) < remoteMinRefetch {
		// Too soon to ask the server again: answer from what we have.
		defer r.mu.Unlock()
		if r.lastErr != nil {
			return nil, fmt.Errorf("fetching JWKS %s (next try in %s): %w", r.shown, human(remoteMinRefetch-now.Sub(r.triedAt)), r.lastErr)
		}
		if now.Sub(r.fetchedAt) >= remoteMaxAge {
			return nil, fmt.Errorf("JWKS %s is older than %s", r.shown, remoteMaxAge)
		}
		return r.set.Key(kid), nil
	}
	prevTried := r.triedAt
	r.triedAt = now
	r.mu.Unlock()

	set, err := r.fetch(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the server.
			r.triedAt = prevTried
			return nil, err
		}
		r.lastErr = err
		return nil, err
	}
	r.set, r.fetchedAt, r.lastErr = set, now, nil
	return r.set.Key(kid), nil
}

// fresh returns the keys with kid from a set younger than remoteMaxAge.
func (r *RemoteKeys) fresh(kid string) ([]jose.JSONWebKey, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fetchedAt.IsZero() || r.now().Sub(r.fetchedAt) >= remoteMaxAge {
		return nil, false
	}
	keys := r.set.Key(kid)
	return keys, len(keys) > 0
}

func (r *RemoteKeys) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetching JWKS %s: %w", r.shown, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetching JWKS: %w", err) // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetching JWKS %s: status %s", r.shown, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, remoteMaxBody+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("reading JWKS %s: %w", r.shown, err)
	}
	if len(body) > remoteMaxBody {
		return jose.JSONWebKeySet{}, fmt.Errorf("JWKS %s is larger than %d bytes", r.shown, remoteMaxBody)
	}
	return parseJWKS(body, r.shown)
}

// parseJWKS reads a JWK set, keeping the public keys it can parse: a key of
// a type this build does not know is skipped rather than failing the set.
func parseJWKS(body []byte, shown string) (jose.JSONWebKeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("JWKS %s is not valid JSON: %w", shown, err)
	}
	if doc.Keys == nil {
		return jose.JSONWebKeySet{}, errors.New("JWKS " + shown + " has no keys member")
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(doc.Keys))}
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
