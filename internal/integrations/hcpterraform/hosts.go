package hcpterraform

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/stepgate/stepgate/internal/loopback"
)

// DefaultAPIHosts are HCP Terraform's API host and the host it redirects
// plan downloads to.
var DefaultAPIHosts = []string{"app.terraform.io", "archivist.terraform.io"}

// hosts are the hosts plan JSON may be fetched from, redirects followed to
// and callbacks sent to.
type hosts struct {
	secure map[string]bool // host:port reached with https
	local  map[string]bool // loopback host:port, reached with http or https (tests)
}

// parseHosts reads api_hosts: names (https, port 443, or the port given)
// and loopback hosts with an explicit port, which may also use plain http.
func parseHosts(list []string) (*hosts, error) {
	h := &hosts{secure: map[string]bool{}, local: map[string]bool{}}
	if len(list) == 0 {
		list = DefaultAPIHosts
	}
	var errs []error
	for _, e := range list {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" || strings.ContainsAny(e, "/?#@ ") {
			errs = append(errs, fmt.Errorf("%q is not a host name (no scheme, path or user)", e))
			continue
		}
		host, port, err := net.SplitHostPort(e)
		if err != nil { // no port
			if loopback.Host(e) {
				errs = append(errs, fmt.Errorf("%q: a loopback host needs an explicit port (host:port)", e))
				continue
			}
			h.secure[net.JoinHostPort(e, "443")] = true
			continue
		}
		if host == "" || port == "" {
			errs = append(errs, fmt.Errorf("%q is not host:port", e))
			continue
		}
		if loopback.Host(host) {
			h.local[net.JoinHostPort(host, port)] = true
		} else {
			h.secure[net.JoinHostPort(host, port)] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return h, nil
}

// allowed reports whether u is on an allowed host with an allowed scheme.
func (h *hosts) allowed(u *url.URL) bool {
	if u == nil || u.User != nil || u.Host == "" {
		return false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	switch u.Scheme {
	case "https":
		if port == "" {
			port = "443"
		}
		k := net.JoinHostPort(host, port)
		return h.secure[k] || h.local[k]
	case "http":
		return port != "" && h.local[net.JoinHostPort(host, port)]
	}
	return false
}

// allowedURL parses s and reports whether it is allowed.
func (h *hosts) allowedURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, false
	}
	return u, h.allowed(u)
}
