package grant

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/stepgate/stepgate/internal/clocktest"
)

// jwksServer serves a JWKS that tests can change, and counts requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex
	status int
	body   []byte
}

func newJWKSServer(t *testing.T, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t *testing.T, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, keys...)})
	if err != nil {
		t.Fatal(err)
	}
	s.set(http.StatusOK, b)
}

func (s *jwksServer) set(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func newRemote(url string, c *clocktest.Clock) *RemoteKeys {
	r := NewRemoteKeys(url, nil)
	r.now = c.Now
	return r
}

func kids(keys []jose.JSONWebKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestRemoteKeysCacheAndRefetch(t *testing.T) {
	k1, k2 := newTestKey(t, 1), newTestKey(t, 2)
	srv := newJWKSServer(t, k1.jwk())
	c := clocktest.New(t0)
	r := newRemote(srv.URL, c)
	ctx := context.Background()

	steps := []struct {
		name     string
		at       time.Duration // since t0
		rotate   bool          // the server now also serves k2
		kid      string
		wantKids []string
		wantHits int64
	}{
		{"ok/first-call-fetches", 0, false, k1.kid, []string{k1.kid}, 1},
		{"ok/known-kid-cached", time.Second, false, k1.kid, []string{k1.kid}, 1},
		{"ok/known-kid-still-cached", 4 * time.Minute, false, k1.kid, []string{k1.kid}, 1},
		{"fail/unknown-kid-refetches", 4*time.Minute + time.Second, false, "nope", nil, 2},
		{"fail/unknown-kid-rate-limited", 4*time.Minute + 5*time.Second, true, k2.kid, nil, 2},
		{"ok/known-kid-while-rate-limited", 4*time.Minute + 6*time.Second, false, k1.kid, []string{k1.kid}, 2},
		{"ok/unknown-kid-after-10s-refetches", 4*time.Minute + 11*time.Second, false, k2.kid, []string{k2.kid}, 3},
		{"ok/new-kid-cached", 4*time.Minute + 12*time.Second, false, k2.kid, []string{k2.kid}, 3},
		{"ok/stale-set-refetched", 9*time.Minute + 12*time.Second, false, k1.kid, []string{k1.kid}, 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c.Set(t0.Add(st.at))
			if st.rotate {
				srv.setKeys(t, k1.jwk(), k2.jwk())
			}
			got, err := r.Keys(ctx, st.kid)
			if err != nil {
				t.Fatalf("Keys(%s) = %v", st.kid, err)
			}
			if diff := cmp.Diff(st.wantKids, kids(got)); diff != "" {
				t.Errorf("Keys(%s) kids mismatch (-want +got):\n%s", st.kid, diff)
			}
			if got := srv.hits.Load(); got != st.wantHits {
				t.Errorf("server hits = %d, want %d", got, st.wantHits)
			}
		})
	}
}

func TestRemoteKeysVerify(t *testing.T) {
	k := newTestKey(t, 1)
	srv := newJWKSServer(t, k.jwk())
	c := clocktest.New(t0)
	r := newRemote(srv.URL, c)
	tok := mustSign(t, k, fullClaims())
	for i := range 3 {
		if _, err := Verify(context.Background(), tok, r, wantExpect()); err != nil {
			t.Fatalf("Verify() #%d with RemoteKeys = %v", i, err)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("server hits = %d, want 1", got)
	}
	attacker := newTestKey(t, 9)
	c.Set(t0.Add(10 * time.Second)) // the first fetch no longer rate-limits
	for i := range 5 {
		_, err := Verify(context.Background(), mustSign(t, attacker, fullClaims()), r, wantExpect())
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify(unknown kid) #%d = %v, want ErrUnknownKey", i, err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("server hits after 5 unknown kids = %d, want 2 (one refetch)", got)
	}
}

func TestRemoteKeysResponses(t *testing.T) {
	k := newTestKey(t, 1)
	good, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk()}})
	// good is {"keys":[{...}]}: pad it with spaces before the last brace.
	padTo := func(n int) []byte {
		return []byte(string(good[:len(good)-1]) + strings.Repeat(" ", n-len(good)) + "}")
	}
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: k.priv, KeyID: k.kid})
	tests := []struct {
		name     string
		status   int
		body     []byte
		wantKids []string
		wantErr  string // "" = ok
	}{
		{"ok/plain", 200, good, []string{k.kid}, ""},
		{"ok/exactly-1MiB", 200, padTo(1 << 20), []string{k.kid}, ""},
		{"ok/unknown-key-type-skipped", 200, []byte(`{"keys":[{"kty":"XYZ","kid":"` + k.kid + `"},` + string(good[len(`{"keys":[`):])), []string{k.kid}, ""},
		{"ok/private-key-skipped", 200, []byte(`{"keys":[` + string(privJWK) + `]}`), nil, ""},
		{"ok/empty-set", 200, []byte(`{"keys":[]}`), nil, ""},
		{"fail/oversize", 200, padTo(1<<20 + 1), nil, "larger than 1048576 bytes"},
		{"fail/500", 500, []byte(`{"keys":[]}`), nil, "status 500 Internal Server Error"},
		{"fail/404", 404, good, nil, "status 404"},
		{"fail/bad-json", 200, []byte(`{"keys":[`), nil, "not valid JSON"},
		{"fail/html", 200, []byte(`<html>login</html>`), nil, "not valid JSON"},
		{"fail/no-keys-member", 200, []byte(`{"issuer":"x"}`), nil, "no keys member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t)
			srv.set(tt.status, tt.body)
			r := newRemote(srv.URL, clocktest.New(t0))
			got, err := r.Keys(context.Background(), k.kid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Keys() = %v, %v; want error containing %q", kids(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Keys() = %v", err)
			}
			if diff := cmp.Diff(tt.wantKids, kids(got)); diff != "" {
				t.Errorf("Keys() kids mismatch (-want +got):\n%s", diff)
			}
			for _, key := range got {
				if !key.IsPublic() {
					t.Errorf("Keys() returned a private key")
				}
			}
		})
	}
}

func TestRemoteKeysErrorRateLimited(t *testing.T) {
	k := newTestKey(t, 1)
	srv := newJWKSServer(t)
	srv.set(500, nil)
	c := clocktest.New(t0)
	r := newRemote(srv.URL, c)
	ctx := context.Background()
	steps := []struct {
		name     string
		at       time.Duration
		fix      bool
		wantErr  bool
		wantHits int64
	}{
		{"fail/500", 0, false, true, 1},
		{"fail/500-remembered-no-new-request", 3 * time.Second, true, true, 1},
		{"ok/retried-after-10s", 10 * time.Second, false, false, 2},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c.Set(t0.Add(st.at))
			if st.fix {
				srv.setKeys(t, k.jwk())
			}
			got, err := r.Keys(ctx, k.kid)
			if st.wantErr != (err != nil) {
				t.Fatalf("Keys() = %v, %v; want error %v", kids(got), err, st.wantErr)
			}
			if got := srv.hits.Load(); got != st.wantHits {
				t.Errorf("server hits = %d, want %d", got, st.wantHits)
			}
		})
	}
}

func TestRemoteKeysFailsClosedWhenStale(t *testing.T) {
	k := newTestKey(t, 1)
	srv := newJWKSServer(t, k.jwk())
	c := clocktest.New(t0)
	r := newRemote(srv.URL, c)
	ctx := context.Background()
	if _, err := r.Keys(ctx, k.kid); err != nil {
		t.Fatal(err)
	}
	srv.set(503, nil)
	c.Set(t0.Add(6 * time.Minute))
	if got, err := r.Keys(ctx, k.kid); err == nil {
		t.Fatalf("Keys() with a stale set and the server down = %v, want an error", kids(got))
	}
	c.Set(t0.Add(6*time.Minute + time.Second))
	if got, err := r.Keys(ctx, k.kid); err == nil {
		t.Fatalf("Keys() with a stale set, rate-limited = %v, want an error", kids(got))
	}
}

func TestRemoteKeysConcurrent(t *testing.T) {
	k := newTestKey(t, 1)
	srv := newJWKSServer(t, k.jwk())
	r := newRemote(srv.URL, clocktest.New(t0))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := r.Keys(context.Background(), k.kid); err != nil {
				t.Errorf("Keys() = %v", err)
			}
			r.Keys(context.Background(), "unknown")
		})
	}
	wg.Wait()
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("server hits = %d, want 1", got)
	}
}

func TestRemoteKeysCancelDoesNotPoison(t *testing.T) {
	k := newTestKey(t, 1)
	release := make(chan struct{})
	var hits atomic.Int64
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.jwk()}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	defer close(release)
	r := newRemote(srv.URL, clocktest.New(t0))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.Keys(ctx, k.kid); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Keys(cancelled) = %v, want context.DeadlineExceeded", err)
	}
	got, err := r.Keys(context.Background(), k.kid)
	if err != nil {
		t.Fatalf("Keys() after a cancelled fetch = %v", err)
	}
	if diff := cmp.Diff([]string{k.kid}, kids(got)); diff != "" {
		t.Errorf("Keys() kids mismatch (-want +got):\n%s", diff)
	}
}

func TestRemoteKeysRedactsURL(t *testing.T) {
	srv := newJWKSServer(t)
	srv.set(500, nil)
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
	_, err := newRemote(u, clocktest.New(t0)).Keys(context.Background(), "k")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Keys() = %v; want an error without the password", err)
	}
}

func TestStaticKeys(t *testing.T) {
	k1, k2 := newTestKey(t, 1), newTestKey(t, 2)
	s := StaticKeys{k1.jwk(), k2.jwk()}
	var _ KeySource = s
	var _ KeySource = &s
	tests := []struct {
		name string
		kid  string
		want []string
	}{
		{"ok/first", k1.kid, []string{k1.kid}},
		{"ok/second", k2.kid, []string{k2.kid}},
		{"fail/unknown", "nope", nil},
		{"fail/empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Keys(context.Background(), tt.kid)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, kids(got)); diff != "" {
				t.Errorf("Keys(%q) mismatch (-want +got):\n%s", tt.kid, diff)
			}
		})
	}
}
