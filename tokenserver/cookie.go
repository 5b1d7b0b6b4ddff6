package tokenserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"time"
)

// Cookies on localhost are shared by every port (RFC 6265), so every tether session in
// a browser sees every other session's cookie. Ours are named
//
//	tether-<session>-<port>          plain HTTP
//	__Host-tether-<session>-<port>   over TLS
//
// where <port> is the port of the Host the browser used. Every cookie whose name starts
// with cookiePrefix (after an optional __Host-/__Secure- prefix), from any session, is
// stripped before a request reaches the app; other cookies pass untouched.
//
// The value is base64url(issued[8] | id[16] | HMAC-SHA256[32]) with the MAC over the
// cookie's name, issue time and id, keyed from the token and a per-process random
// secret: it is not the token and reveals nothing of it, a cookie copied to another
// session's or port's name fails, and every cookie fails after a restart.
const (
	cookiePrefix     = "tether-"
	hostCookiePrefix = "__Host-"
	cookieIDLen      = 16
	cookieBodyLen    = 8 + cookieIDLen + sha256.Size
	// cookieLifetime is the sliding expiry: a cookie is good for 24 h after it was
	// (re)issued, and it is reissued on use once older than cookieRefreshAfter.
	cookieLifetime     = 24 * time.Hour
	cookieRefreshAfter = 10 * time.Minute
	// maxCookiesTried bounds the work spent on a request carrying many cookies of our
	// name (planted by another local port, say).
	maxCookiesTried = 4
)

// cookieName is the name of this session's cookie for a request: scoped to the port in
// its Host and, over TLS, with the __Host- prefix.
func (s *Server) cookieName(r *http.Request) string {
	name := cookiePrefix + s.sessionTag + "-" + hostPort(r)
	if r.TLS != nil {
		return hostCookiePrefix + name
	}
	return name
}

// hostPort is the port of the request's Host, or the scheme's default.
func hostPort(r *http.Request) string {
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" {
		return port
	}
	if r.TLS != nil {
		return "443"
	}
	return "80"
}

// isOurCookie reports whether a cookie name belongs to any tether session.
func isOurCookie(name string) bool {
	n := strings.ToLower(name)
	if rest, ok := strings.CutPrefix(n, "__host-"); ok {
		n = rest
	} else if rest, ok := strings.CutPrefix(n, "__secure-"); ok {
		n = rest
	}
	return strings.HasPrefix(n, cookiePrefix)
}

// cookieMAC signs a cookie value for one cookie name.
func (s *Server) cookieMAC(name string, issuedAndID []byte) []byte {
	m := hmac.New(sha256.New, s.cookieKey)
	m.Write([]byte(labelCookie))
	m.Write([]byte{0})
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(issuedAndID)
	return m.Sum(nil)
}

// newCookie mints a fresh cookie (a new random id every time: no fixation).
func (s *Server) newCookie(r *http.Request) *http.Cookie {
	name := s.cookieName(r)
	var body [cookieBodyLen]byte
	binary.BigEndian.PutUint64(body[:8], uint64(s.now().Unix()))
	rand.Read(body[8 : 8+cookieIDLen]) // crypto/rand.Read never fails (Go 1.24+)
	copy(body[8+cookieIDLen:], s.cookieMAC(name, body[:8+cookieIDLen]))
	return &http.Cookie{
		Name:     name,
		Value:    base64.RawURLEncoding.EncodeToString(body[:]),
		Path:     "/",
		MaxAge:   int(cookieLifetime / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
}

// checkCookie looks for a valid cookie of ours for this request and returns when it was
// issued. Cookies that fail are ignored (they are not guesses at the token: the MAC key
// is 256 random bits), so a stale cookie from before a restart just means "log in".
func (s *Server) checkCookie(r *http.Request) (issued time.Time, ok bool) {
	name := s.cookieName(r)
	now := s.now()
	for i, c := range r.CookiesNamed(name) {
		if i >= maxCookiesTried {
			break
		}
		if t, good := s.verifyCookieValue(name, c.Value, now); good {
			return t, true
		}
	}
	return time.Time{}, false
}

func (s *Server) verifyCookieValue(name, value string, now time.Time) (time.Time, bool) {
	if len(value) != base64.RawURLEncoding.EncodedLen(cookieBodyLen) {
		return time.Time{}, false
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(body) != cookieBodyLen {
		return time.Time{}, false
	}
	if !hmac.Equal(body[8+cookieIDLen:], s.cookieMAC(name, body[:8+cookieIDLen])) {
		return time.Time{}, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(body[:8])), 0)
	if issued.After(now.Add(time.Minute)) || !now.Before(issued.Add(cookieLifetime)) {
		return time.Time{}, false
	}
	return issued, true
}

// cookieAllowed reports whether we may set a cookie in answer to r: only over TLS or
// when the browser reached us by a loopback name, never in clear text across a network.
func cookieAllowed(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, ok := splitHost(r.Host)
	return ok && isLoopbackName(host)
}

// stripOurCookies removes every tether cookie, of any session, from the Cookie headers,
// leaving every other cookie byte for byte as the client sent it.
func stripOurCookies(h http.Header) {
	lines := h.Values("Cookie")
	if len(lines) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, line := range lines {
		parts := strings.Split(line, ";")
		out := parts[:0]
		for _, p := range parts {
			name, _, _ := strings.Cut(p, "=")
			if isOurCookie(strings.TrimSpace(name)) {
				changed = true
				continue
			}
			out = append(out, p)
		}
		if len(out) == 0 {
			continue
		}
		joined := strings.Join(out, ";")
		if strings.TrimSpace(joined) == "" {
			changed = true
			continue
		}
		kept = append(kept, strings.TrimLeft(joined, " "))
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = kept
}
