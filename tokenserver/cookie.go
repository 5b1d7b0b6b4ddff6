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
// The value is base64url(issued[8] | id[16] | kind[1] | name [| 0 | stamp] | HMAC-SHA256[32]) with
// the MAC over the cookie's name and everything before the MAC, keyed from the token
// and a per-process random secret: it is not the token and reveals nothing of it, a
// cookie copied to another session's or port's name fails, an edited kind or name
// fails, and every cookie fails after a restart. kind and name say who signed in: the
// owner (kind 'o', no name), an access key (kind 'k', its name) or a person signed in
// by OIDC (kind 'e', the e-mail); a key's cookie also carries its stamp (KeyStamps),
// so a key replaced under the same name is told apart; in team mode the name (and
// stamp) is checked against the current policy on every request.
const (
	cookiePrefix     = "tether-"
	hostCookiePrefix = "__Host-"
	cookieIDLen      = 16
	cookieHeadLen    = 8 + cookieIDLen + 1
	cookieMinLen     = cookieHeadLen + sha256.Size
	// maxUserLen bounds a key name or e-mail carried in a cookie.
	maxUserLen = 320
	// cookieLifetime is the sliding expiry: a cookie is good for 24 h after it was
	// (re)issued, and it is reissued on use once older than cookieRefreshAfter.
	cookieLifetime     = 24 * time.Hour
	cookieRefreshAfter = 10 * time.Minute
	// maxCookiesTried bounds the work spent on a request carrying many cookies of our
	// name (planted by another local port, say).
	maxCookiesTried = 4
)

// Who signed in.
const (
	kindOwner = 'o' // the token: may open everything
	kindKey   = 'k' // an access key, by its name
	kindEmail = 'e' // a person signed in by OIDC, by e-mail
)

// who is the one a request authenticated as.
type who struct {
	kind  byte // 0: nobody
	name  string
	stamp string // a key's stamp (KeyStamps), or ""
}

var owner = who{kind: kindOwner}

// user is what X-Tether-User says and the audit log names: the key name, the e-mail,
// or "owner".
func (u who) user() string {
	if u.kind == kindOwner {
		return "owner"
	}
	return u.name
}

// how is how u signed in, for the audit log.
func (u who) how() string {
	switch u.kind {
	case kindOwner:
		return "token"
	case kindKey:
		return "key"
	case kindEmail:
		return "oidc"
	}
	return "none"
}

// session is what a valid cookie says.
type session struct {
	issued time.Time
	id     [cookieIDLen]byte
	who    who
}

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

// reservedCookie reports whether an app may not set a cookie of this name: one of
// any tether session's, or the OIDC sign-in's state cookie (tether_oidc_…), in any
// letter case, with or without a __Host-/__Secure- prefix.
func reservedCookie(name string) bool {
	n := strings.ToLower(name)
	if rest, ok := strings.CutPrefix(n, "__host-"); ok {
		n = rest
	} else if rest, ok := strings.CutPrefix(n, "__secure-"); ok {
		n = rest
	}
	return strings.HasPrefix(n, cookiePrefix) || strings.HasPrefix(n, "tether_")
}

// cookieMAC signs a cookie value for one cookie name.
func (s *Server) cookieMAC(name string, body []byte) []byte {
	m := hmac.New(sha256.New, s.cookieKey)
	m.Write([]byte(labelCookie))
	m.Write([]byte{0})
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)
}

// cookieValue encodes and signs a cookie's value.
func (s *Server) cookieValue(name string, issued time.Time, id [cookieIDLen]byte, u who) string {
	body := make([]byte, 0, cookieMinLen+len(u.name))
	body = binary.BigEndian.AppendUint64(body, uint64(issued.Unix()))
	body = append(body, id[:]...)
	body = append(body, u.kind)
	body = append(body, u.name...)
	if u.stamp != "" {
		body = append(body, 0) // a name holds no control character
		body = append(body, u.stamp...)
	}
	body = append(body, s.cookieMAC(name, body)...)
	return base64.RawURLEncoding.EncodeToString(body)
}

// newCookie mints a fresh cookie for u, with a new random id (no fixation).
func (s *Server) newCookie(r *http.Request, u who) *http.Cookie {
	var id [cookieIDLen]byte
	rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s.sessionCookie(r, id, u)
}

// sessionCookie is the cookie of session id for u, issued now (a refresh keeps the id:
// the same session, one "app opened" line per app).
func (s *Server) sessionCookie(r *http.Request, id [cookieIDLen]byte, u who) *http.Cookie {
	name := s.cookieName(r)
	return &http.Cookie{
		Name:     name,
		Value:    s.cookieValue(name, s.now(), id, u),
		Path:     "/",
		MaxAge:   int(cookieLifetime / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	}
}

// clearCookie is the Set-Cookie that removes this session's cookie from the browser.
func (s *Server) clearCookie(r *http.Request) *http.Cookie {
	return &http.Cookie{Name: s.cookieName(r), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

// checkCookie looks for a valid cookie of ours for this request. Cookies that fail are
// ignored (they are not guesses at the token: the MAC key is 256 random bits), so a
// stale cookie from before a restart just means "log in". A cookie signed out of
// (logout) fails too.
//
// Valid cookies of two different sessions authenticate nobody: ours is set at Path=/
// only, so a browser holds one; a second was planted (cookie tossing: a page of
// another app on this origin, whose script may add a cookie of our name at a longer
// path, which the browser then sends first) to make the visitor act as someone else.
func (s *Server) checkCookie(r *http.Request) (session, bool) {
	name := s.cookieName(r)
	now := s.now()
	cs := r.CookiesNamed(name)
	if len(cs) > maxCookiesTried {
		// More than we check: the ones left unchecked could hold the conflict.
		s.log.Warn("too many session cookies of one name (planted by a page of this origin?); none is taken",
			"method", r.Method, "path", logPath(r), "from", r.RemoteAddr)
		return session{}, false
	}
	var found session
	ok := false
	for _, c := range cs {
		ss, good := s.verifyCookieValue(name, c.Value, now)
		if !good || s.isRevoked(ss.id, now) {
			continue
		}
		if ok && (ss.id != found.id || ss.who != found.who) {
			s.log.Warn("two valid session cookies of different sessions (one planted by a page of this origin?); neither is taken",
				"method", r.Method, "path", logPath(r), "from", r.RemoteAddr)
			return session{}, false
		}
		found, ok = ss, true
	}
	return found, ok
}

func (s *Server) verifyCookieValue(name, value string, now time.Time) (session, bool) {
	var ss session
	if len(value) < base64.RawURLEncoding.EncodedLen(cookieMinLen) ||
		len(value) > base64.RawURLEncoding.EncodedLen(cookieMinLen+maxUserLen+1+maxStampLen) {
		return ss, false
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(body) < cookieMinLen {
		return ss, false
	}
	signed, mac := body[:len(body)-sha256.Size], body[len(body)-sha256.Size:]
	if !hmac.Equal(mac, s.cookieMAC(name, signed)) {
		return ss, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(signed[:8])), 0)
	if issued.After(now.Add(time.Minute)) || !now.Before(issued.Add(cookieLifetime)) {
		return ss, false
	}
	ss.issued = issued
	copy(ss.id[:], signed[8:8+cookieIDLen])
	ss.who = who{kind: signed[8+cookieIDLen], name: string(signed[cookieHeadLen:])}
	if ss.who.kind == kindKey {
		ss.who.name, ss.who.stamp, _ = strings.Cut(ss.who.name, "\x00")
	}
	switch {
	case ss.who.kind == kindOwner && ss.who.name == "":
	case (ss.who.kind == kindKey || ss.who.kind == kindEmail) && ss.who.name != "" && s.team != nil:
	default:
		return session{}, false
	}
	return ss, true
}

// revoke makes a session's cookies fail from now on (logout), until they would have
// expired anyway. The list is bounded: beyond maxRevoked the oldest entries go.
func (s *Server) revoke(id [cookieIDLen]byte, now time.Time) {
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	for k, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, k)
		}
	}
	if len(s.revoked) >= maxRevoked {
		var oldest [cookieIDLen]byte
		var at time.Time
		for k, exp := range s.revoked {
			if at.IsZero() || exp.Before(at) {
				oldest, at = k, exp
			}
		}
		delete(s.revoked, oldest)
	}
	s.revoked[id] = now.Add(cookieLifetime + time.Minute)
}

const maxRevoked = 10000

func (s *Server) isRevoked(id [cookieIDLen]byte, now time.Time) bool {
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	exp, ok := s.revoked[id]
	return ok && now.Before(exp)
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
