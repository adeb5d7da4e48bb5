// Package loopback says which hosts are this machine, for the one rule
// stepgate applies to URLs it is given: https, or plain http only on the
// loopback (tests and local development; nothing leaves the machine).
package loopback

import (
	"net"
	"net/url"
	"strings"
)

// Host reports whether host (a name or an address, without a port) is
// this machine: localhost, a name under .localhost (RFC 6761), or a
// loopback address (127.0.0.0/8, ::1).
func Host(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// SecureOrLocal reports whether u may be used to send credentials or
// fetch keys: https, or http to the loopback.
func SecureOrLocal(u *url.URL) bool {
	return u.Host != "" && (u.Scheme == "https" || (u.Scheme == "http" && Host(u.Hostname())))
}
