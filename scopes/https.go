package scopes

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Over HTTPS, directly or behind a proxy the app trusts: what the request
// came through, and from whom.

// DefaultHSTS is how long a browser is told to use HTTPS only.
const DefaultHSTS = 365 * 24 * time.Hour

// HTTPS says r reached the app over HTTPS: it terminated TLS itself, or a
// trusted proxy (Config.TrustedProxies) says it did (X-Forwarded-Proto).
// The header from anyone else is ignored.
func (s *App) HTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return s.trusted(r) && strings.EqualFold(strings.TrimSpace(lastOf(headerList(r, "X-Forwarded-Proto"))), "https")
}

// ClientAddr is who sent r: its peer, or behind trusted proxies the
// nearest address of X-Forwarded-For that is not one of them. For the logs.
func (s *App) ClientAddr(r *http.Request) string {
	peer := peerOf(r)
	if !s.trusted(r) {
		return peer.String()
	}
	hops := strings.Split(headerList(r, "X-Forwarded-For"), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trustedAddr(a.Unmap()) {
			return a.String()
		}
	}
	return peer.String()
}

// trusted says r's peer is a proxy the app trusts.
func (s *App) trusted(r *http.Request) bool {
	return len(s.proxies) > 0 && s.trustedAddr(peerOf(r))
}

func (s *App) trustedAddr(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerOf is the address r's connection comes from.
func peerOf(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// headerList is every line of a list header, as one list.
func headerList(r *http.Request, name string) string { return strings.Join(r.Header.Values(name), ",") }

// lastOf is the last of a header's comma-separated values: the one the
// nearest proxy added.
func lastOf(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		return v[i+1:]
	}
	return v
}

// setHSTS tells a browser that reached the app over HTTPS to use HTTPS
// only, for s.hsts; not on a loopback host, where it would cover every
// port of localhost.
func (s *App) setHSTS(w http.ResponseWriter, r *http.Request) {
	if s.hsts <= 0 || !s.HTTPS(r) || loopbackHost(r.Host) {
		return
	}
	w.Header().Set("Strict-Transport-Security", "max-age="+strconv.FormatInt(int64(s.hsts/time.Second), 10))
}

// loopbackHost says host (with or without a port) names this machine only.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}
