package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client that sent r: the peer, or, when
// the peer is one of the trusted proxies, the last address in
// X-Forwarded-For that is not a trusted proxy (each proxy appends the
// address it received from; what comes before was written by the client
// and proves nothing).
func (w *Web) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !w.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return host // a hop we cannot read: stop at the last proxy we trust
		}
		if !w.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

func (w *Web) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range w.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
