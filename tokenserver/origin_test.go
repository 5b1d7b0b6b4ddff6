package tokenserver

import (
	"net/http"
	"net/url"
	"testing"
)

// wsReq is a WebSocket handshake as the gate sees it.
func wsReq(target string, hdr ...string) *http.Request {
	r := req("GET", target, hdr...)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return r
}

// A WebSocket handshake authenticated by the cookie alone needs an Origin
// equal to our own scheme, host and port. A token in a header or subprotocol exempts it.
func TestWebSocketOrigin(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	const none = "\x00none" // no Origin header at all
	tests := []struct {
		name, origin string
		want         int // 200: reached the app
	}{
		{"control", "http://localhost:8888", 200},
		{"control-case", "http://LOCALHOST:8888", 200},
		{"item5-evil", "https://evil.example", 403},
		{"item5-evil-http", "http://evil.example", 403},
		{"item6-other-port", "http://localhost:8889", 403},
		{"item6-default-port", "http://localhost", 403},
		{"item6-https-scheme", "https://localhost:8888", 403},
		{"item6-other-loopback-name", "http://127.0.0.1:8888", 403},
		{"item7-null", "null", 403},
		{"item7-scheme-less", "localhost:8888", 403},
		{"item7-empty", "", 403},
		{"item7-unparsable", "http://[::1", 403},
		{"item7-ws-scheme", "ws://localhost:8888", 403},
		{"item7-file", "file://", 403},
		{"item7-trailing-slash", "http://localhost:8888/", 403},
		{"item7-path", "http://localhost:8888/x", 403},
		{"item7-space", "http://localhost:8888 ", 403},
		{"item8-suffix-domain", "http://localhost:8888.evil.com", 403},
		{"item8-suffix-digit", "http://localhost:88880", 403},
		{"item8-prefix", "http://evil.localhost:8888", 403},
		{"item8-userinfo", "http://user@localhost:8888@evil.com", 403},
		{"item8-userinfo-simple", "http://user@localhost:8888", 403},
		{"item8-encoded", "http://localhost%3A8888", 403},
		{"item8-backslash", "http://evil.com\\@localhost:8888", 403},
		{"item9-missing", none, 403},
	}
	for _, tt := range tests {
		r := withCookie(wsReq("/api/kernels/1/channels"), ck)
		if tt.origin != none {
			r.Header.Set("Origin", tt.origin)
		}
		before := g.app.count()
		w := g.do(r)
		if w.Code != tt.want {
			t.Errorf("for %s (Origin %q), got %d; want %d", tt.name, tt.origin, w.Code, tt.want)
		}
		if tt.want != 200 && g.app.count() != before {
			t.Errorf("for %s, the app was reached", tt.name)
		}
	}

	// Two Origin headers: refused.
	r := withCookie(wsReq("/ws", "Origin", "http://localhost:8888", "Origin", "http://localhost:8888"), ck)
	if w := g.do(r); w.Code != 403 {
		t.Errorf("for two Origin headers, got %d; want 403", w.Code)
	}
	// A cross-site Sec-Fetch-Site with a matching Origin (not something a browser sends).
	r = withCookie(wsReq("/ws", "Origin", "http://localhost:8888", "Sec-Fetch-Site", "cross-site"), ck)
	if w := g.do(r); w.Code != 403 {
		t.Errorf("for Sec-Fetch-Site cross-site, got %d; want 403", w.Code)
	}
	// Under TLS the Origin must say https.
	r = withCookie(wsReq("https://localhost:8888/ws", "Origin", "http://localhost:8888"), g.cookie("localhost:8888"))
	if w := g.do(r); w.Code != 403 {
		t.Errorf("for an http Origin over TLS, got %d; want 403", w.Code)
	}

	// A token in a header or a subprotocol exempts the handshake from the Origin rules
	// (command-line clients send no Origin).
	exempt := []*http.Request{
		wsReq("/ws", "Authorization", "Bearer "+g.token, "Origin", "https://evil.example"),
		wsReq("/ws", "Authorization", "Bearer "+g.token),
		wsReq("/ws", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(g.token), "Origin", "null"),
		wsReq("/ws?token="+g.token, "Sec-Fetch-Mode", "websocket", "Origin", "http://localhost:9999"),
	}
	for i, r := range exempt {
		if w := g.do(r); w.Code != 200 {
			t.Errorf("for token-authenticated handshake %d, got %d; want 200", i, w.Code)
		}
	}
}

// Unsafe methods authenticated by the cookie follow CrossOriginProtection
// (Sec-Fetch-Site, else Origin against Host) and an exact Origin match; a token in
// the Authorization header exempts them.
func TestUnsafeMethodsCrossOrigin(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	tests := []struct {
		name   string
		method string
		hdr    []string
		auth   bool // Authorization: Bearer instead of the cookie
		want   int
	}{
		{"item10-cross-site", "POST", []string{"Sec-Fetch-Site", "cross-site"}, false, 403},
		{"item10-same-site", "POST", []string{"Sec-Fetch-Site", "same-site"}, false, 403},
		{"item10-put-cross-site", "PUT", []string{"Sec-Fetch-Site", "cross-site"}, false, 403},
		{"item10-delete-same-site", "DELETE", []string{"Sec-Fetch-Site", "same-site"}, false, 403},
		{"item10-patch-cross-site", "PATCH", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://localhost:8888"}, false, 403},
		{"item10-evil-origin", "POST", []string{"Origin", "https://evil.example"}, false, 403},
		{"item10-evil-origin-put", "PUT", []string{"Origin", "https://evil.example"}, false, 403},
		{"item10-evil-origin-delete", "DELETE", []string{"Origin", "https://evil.example"}, false, 403},
		{"item10-null-origin", "POST", []string{"Origin", "null"}, false, 403},
		{"item10-other-port", "POST", []string{"Origin", "http://localhost:9999"}, false, 403},
		{"item10-https-origin", "POST", []string{"Origin", "https://localhost:8888"}, false, 403},
		{"item10-suffix-origin", "POST", []string{"Origin", "http://localhost:8888.evil.com"}, false, 403},
		{"same-origin", "POST", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://localhost:8888"}, false, 200},
		{"user-typed", "POST", []string{"Sec-Fetch-Site", "none"}, false, 200},
		{"matching-origin-old-browser", "PUT", []string{"Origin", "http://localhost:8888"}, false, 200},
		{"non-browser-no-headers", "DELETE", nil, false, 200},
		{"safe-get-cross-site", "GET", []string{"Sec-Fetch-Site", "cross-site"}, false, 200},
		{"safe-head-cross-site", "HEAD", []string{"Sec-Fetch-Site", "cross-site"}, false, 200},
		{"item10-bearer-cross-site", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, true, 200},
		{"item10-bearer-evil-origin", "DELETE", []string{"Origin", "https://evil.example"}, true, 200},
	}
	for _, tt := range tests {
		r := req(tt.method, "/api/contents/x", tt.hdr...)
		if tt.auth {
			r.Header.Set("Authorization", "Bearer "+g.token)
		} else {
			withCookie(r, ck)
		}
		before := g.app.count()
		w := g.do(r)
		if w.Code != tt.want {
			t.Errorf("for %s, got %d; want %d", tt.name, w.Code, tt.want)
		}
		if tt.want != 200 && g.app.count() != before {
			t.Errorf("for %s, the app was reached", tt.name)
		}
	}
}

// The login form's POST is origin-checked (login CSRF): a cross-site post,
// even with the right token, sets no cookie.
func TestLoginCSRF(t *testing.T) {
	g := newGate(t, nil)
	form := url.Values{"token": {g.token}, "next": {"/lab"}}
	post := func(hdr ...string) *http.Request { return postForm("/_tether/login", form, hdr...) }
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"item11-cross-site-origin", []string{"Origin", "https://evil.example"}, 403},
		{"item11-cross-site-fetch", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 403},
		{"item11-same-site", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://other.localhost:8888"}, 403},
		{"item11-null-origin", []string{"Origin", "null"}, 403},
		{"item11-other-port", []string{"Origin", "http://localhost:1234"}, 403},
		{"same-origin", []string{"Sec-Fetch-Site", "same-origin", "Origin", "http://localhost:8888"}, 303},
		{"no-fetch-metadata", nil, 303},
	}
	for _, tt := range tests {
		w := g.do(post(tt.hdr...))
		if w.Code != tt.want {
			t.Errorf("for %s, got %d; want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == 403 && len(w.Header().Values("Set-Cookie")) > 0 {
			t.Errorf("for %s, a cookie was set", tt.name)
		}
	}
	if g.app.count() != 0 {
		t.Errorf("the app saw a login POST")
	}
}
