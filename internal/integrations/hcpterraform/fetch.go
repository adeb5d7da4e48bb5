package hcpterraform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// errPlanTooLarge: the plan JSON is over the size limit.
var errPlanTooLarge = errors.New("plan JSON is larger than the limit")

// fetchPlan reads the run's plan JSON from u (the request's
// plan_json_api_url, on an allowed host) with the access token, following
// redirects only to allowed hosts, and at most cfg.MaxPlanBytes of it.
func (r *Runner) fetchPlan(ctx context.Context, u *url.URL, req *Request) (body []byte, digest string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("fetching plan: %w", err)
	}
	// Go's client drops Authorization on a redirect to another domain
	// (archivist.terraform.io's URLs are signed themselves).
	hr.Header.Set("Authorization", "Bearer "+req.AccessToken)
	hr.Header.Set("Accept", "application/json")
	resp, err := r.fetcher.Do(hr)
	if err != nil {
		return nil, "", fmt.Errorf("fetching plan: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("fetching plan: answered %s", resp.Status)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, r.cfg.MaxPlanBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("reading plan: %w", err)
	}
	if int64(len(body)) > r.cfg.MaxPlanBytes {
		return nil, "", fmt.Errorf("%w (%d bytes)", errPlanTooLarge, r.cfg.MaxPlanBytes)
	}
	sum := sha256.Sum256(body)
	return body, hex.EncodeToString(sum[:]), nil
}

// checkRedirect follows a redirect only to an allowed host, at most 5.
func (r *Runner) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if !r.hosts.allowed(req.URL) {
		return fmt.Errorf("redirect to %s: host not allowed", req.URL.Redacted())
	}
	return nil
}
