package tokenserver

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// splitHost splits a Host header value into its lower-cased host name (IPv6 without
// brackets) and checks the port, if any, is a number in 1..65535. It refuses anything
// else: empty values, empty ports, user info, paths, spaces.
func splitHost(hostport string) (string, bool) {
	if hostport == "" || len(hostport) > 260 {
		return "", false
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", false
		}
		host = hostport[1:end]
		switch rest := hostport[end+1:]; {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			port = rest[1:]
			if port == "" {
				return "", false
			}
		default:
			return "", false
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if port == "" || strings.Contains(host, ":") {
			return "", false
		}
	}
	if port != "" && !validPort(port) {
		return "", false
	}
	if host == "" {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ':') {
			return "", false
		}
	}
	return strings.ToLower(host), true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// isLoopbackName reports whether a lower-cased host name is loopback: "localhost",
// an IPv4 address in 127.0.0.0/8 or ::1. Names that merely start or end like one
// (localhost.evil.com, 127.0.0.1.nip.io) are not.
func isLoopbackName(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	return a.Is4() && a.IsLoopback() || a == netip.IPv6Loopback()
}

// AllowHostError is an --allow-host entry the Host check cannot take; Why says what
// is wrong with it.
type AllowHostError struct{ Host, Why string }

func (e *AllowHostError) Error() string {
	return fmt.Sprintf("tokenserver: allowed host %q %s", e.Host, e.Why)
}

// NormalizeAllowHost checks one --allow-host entry (a DNS name or an IP address,
// without port, scheme or wildcard) and returns it as the Host check compares it; an
// entry it cannot take is an *AllowHostError.
func NormalizeAllowHost(h string) (string, error) {
	orig := h
	bad := func(why string) error { return &AllowHostError{Host: orig, Why: why} }
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "" {
		return "", bad("is empty")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", bad("has a zone, which is not supported")
		}
		return strings.ToLower(a.String()), nil
	}
	if len(h) > 253 {
		return "", &AllowHostError{Host: orig[:64] + "…", Why: "is too long"}
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return "", bad("is not a bare host name: give one such as myhost.example (no scheme, port, path or wildcard)")
		}
	}
	if strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return "", bad("is not a valid name")
	}
	if strings.EqualFold(h, ForwardedServerName) {
		return "", bad("is reserved for tether's launcher")
	}
	return strings.ToLower(h), nil
}

// hostAllowed is the DNS-rebinding guard: the Host must be a loopback name (any port,
// since the browser's forwarded port differs from ours) or an allowed name. A request
// in absolute form (GET http://x/ HTTP/1.1) is judged by its URI's host, which Go puts
// in r.Host.
func (s *Server) hostAllowed(r *http.Request) bool {
	if r.URL != nil && r.URL.Host != "" && r.URL.Host != r.Host {
		return false
	}
	host, ok := splitHost(r.Host)
	if !ok {
		return false
	}
	if isLoopbackName(host) {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	}
	_, allowed := s.allowHosts[host]
	return allowed
}

// ForwardedServerName is the TLS server name (SNI) that tether's launcher sends when it
// speaks TLS to a session's server on the browser's behalf and gives the browser plain
// HTTP on a loopback port (the Slurm hop: laptop → login node → compute node:port, TLS
// pinned to the record's cert_sha256). The browser's pages then have the origin
// http://127.0.0.1:PORT although the server sees TLS, so the Origin checks compare with
// http. A browser cannot claim this name: it sends the SNI of its URL's host, and a
// request whose Host is forwarded.tether.invalid fails the Host check (a loopback Host
// is required for the http scheme here, and the name is refused as an allowed host).
// .invalid never resolves (RFC 6761).
const ForwardedServerName = "forwarded.tether.invalid"

// requestScheme is the scheme the browser used to reach us: https over TLS, except
// through the launcher's TLS hop (ForwardedServerName, loopback Host), where the
// browser speaks plain http to the launcher.
func requestScheme(r *http.Request) string {
	if r.TLS == nil {
		return "http"
	}
	if r.TLS.ServerName == ForwardedServerName {
		if host, ok := splitHost(r.Host); ok && isLoopbackName(host) {
			return "http"
		}
	}
	return "https"
}

// BrowserScheme is the scheme of the browser's view of r ("http" or "https"), for an
// app behind the gate that checks Origin itself (the built-in app's WebSocket).
func BrowserScheme(r *http.Request) string { return requestScheme(r) }

// originMatches reports whether an Origin header value names exactly this request's
// own origin: same scheme, same host (case-insensitive) and same port (defaults
// filled in). It refuses "null", scheme-less values, user info, paths, and every
// prefix or suffix trick, by parsing strictly rather than with url.Parse.
func originMatches(origin string, r *http.Request) bool {
	scheme, hostport, ok := strings.Cut(origin, "://")
	if !ok || (scheme != "http" && scheme != "https") || scheme != requestScheme(r) {
		return false
	}
	if strings.ContainsAny(hostport, "/?#@\\ \t%") {
		return false
	}
	oHost, ok1 := splitHost(hostport)
	rHost, ok2 := splitHost(r.Host)
	if !ok1 || !ok2 || oHost != rHost {
		return false
	}
	return portOrDefault(hostport, scheme) == portOrDefault(r.Host, scheme)
}

func portOrDefault(hostport, scheme string) string {
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		return hostport[i+1:]
	}
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// isUpgrade reports whether r asks to switch protocols (a WebSocket handshake, or
// any other Upgrade): these get the WebSocket Origin rules.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || r.Header.Get("Sec-WebSocket-Key") != "" ||
		r.Header.Get("Sec-Fetch-Mode") == "websocket"
}

var (
	errOriginMissing  = errors.New("WebSocket without Origin authenticated by cookie only")
	errOriginMismatch = errors.New("Origin does not match")
	errCrossSite      = errors.New("cross-site request")
)

// crossOriginCheck applies to requests that would be authenticated by the cookie alone
// (a browser sends the cookie by itself; a token in a header or subprotocol shows the
// sender knew the secret). WebSocket handshakes, which http.CrossOriginProtection does
// not cover, need an Origin equal to our own; unsafe methods follow
// http.CrossOriginProtection (Sec-Fetch-Site, else Origin against Host) and, when an
// Origin is present, must match it exactly, scheme included.
func (s *Server) crossOriginCheck(r *http.Request) error {
	origin, hasOrigin := r.Header["Origin"]
	if len(origin) > 1 {
		return errOriginMismatch
	}
	if isUpgrade(r) {
		if !hasOrigin {
			return errOriginMissing
		}
		if !originMatches(origin[0], r) {
			return errOriginMismatch
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			return errCrossSite
		}
		return nil
	}
	if err := s.cop.Check(r); err != nil {
		return errCrossSite
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if hasOrigin && !originMatches(origin[0], r) {
		return errOriginMismatch
	}
	return nil
}
