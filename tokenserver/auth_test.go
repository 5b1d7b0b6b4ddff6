package tokenserver

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Without a credential nothing reaches the app, on any path and with any
// method, WebSockets included; page loads get the login page, the rest a short 401.
// Only our own login page and challenge answer without one.
func TestNoCredentialGetsNothing(t *testing.T) {
	g := newGate(t, nil)
	paths := []string{
		"/", "/lab", "/static/app.js", "/api/contents", "/favicon.ico",
		"/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd", "/a/../b", "//evil.example/x", "//", "/./lab",
		"/_tetherx", "/x/_tether/login", "/%5Ftether/../lab",
	}
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"} {
			r := req(m, "/")
			u, err := url.ParseRequestURI(p) // as net/http parses a request line
			if err != nil {
				t.Fatal(err)
			}
			r.URL = u
			r.RequestURI = p
			w := g.do(r)
			if w.Code != http.StatusUnauthorized && !(w.Code == http.StatusNotFound && g.s.isReserved(u.Path)) {
				t.Errorf("for %s %s, got %d; want 401", m, p, w.Code)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("for %s %s (not a page load), got Content-Type %q; want the short text", m, p, ct)
			}
		}
		// A page load gets the login form.
		r := req("GET", "/", "Sec-Fetch-Mode", "navigate", "Accept", "text/html")
		r.URL, _ = url.ParseRequestURI(p)
		if g.s.isReserved(r.URL.Path) {
			continue // our namespace: 404 for anything we do not serve
		}
		w := g.do(r)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "<form") {
			t.Errorf("for a page load of %s, got %d without the login form; want 401 with it", p, w.Code)
		}
		// An old browser without fetch metadata, by Accept.
		r = req("GET", "/", "Accept", "text/html,application/xhtml+xml")
		r.URL, _ = url.ParseRequestURI(p)
		if w := g.do(r); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "<form") {
			t.Errorf("for an Accept: text/html load of %s, got %d without the login form", p, w.Code)
		}
	}
	// A WebSocket handshake with no credential (Origin ours, so only auth can fail).
	if w := g.do(wsReq("/ws", "Origin", "http://localhost:8888")); w.Code != http.StatusUnauthorized {
		t.Errorf("for a WebSocket without credentials, got %d; want 401", w.Code)
	}
	if n := g.app.count(); n != 0 {
		t.Fatalf("the app saw %d unauthenticated requests", n)
	}
	// The exempt endpoints.
	if w := g.do(req("GET", "/_tether/login")); w.Code != 200 || !strings.Contains(w.Body.String(), "<form") {
		t.Errorf("GET /_tether/login: got %d; want 200 and the form", w.Code)
	}
	if w := g.do(req("GET", "/_tether/challenge?nonce=abcdefghijklmnop")); w.Code != 200 {
		t.Errorf("GET /_tether/challenge: got %d; want 200", w.Code)
	}
}

// A page load with ?token= gets a 303 to the same URL without it (other
// parameters kept, in order and as written), a cookie, and no-referrer; the Location
// never holds the token; the cookie then works and the app never sees the token.
func TestQueryTokenRedirect(t *testing.T) {
	g := newGate(t, nil)
	tests := []struct {
		name, target, wantLoc string
		hdr                   []string
	}{
		{"item13-navigation", "/lab/tree?a=1&token={T}&b=x%20y", "/lab/tree?a=1&b=x%20y", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-only-token", "/lab?token={T}", "/lab", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-first", "/?token={T}&x=1", "/?x=1", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-curl-no-fetch-metadata", "/api/status?token={T}", "/api/status", nil},
		{"item13-head", "/lab?token={T}", "/lab", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-encoded-key", "/lab?tok%65n={T}&q=1", "/lab?q=1", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-key-case", "/lab?TOKEN={T}", "/lab", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-encoded-path", "/a%20b/c%2Fd?token={T}", "/a%20b/c%2Fd", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-network-path-is-not-followed", "//evil.example/x?token={T}", "/", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-backslash-path", "/%5Cevil.example?token={T}", "/", []string{"Sec-Fetch-Mode", "navigate"}},
		{"item13-app-code-kept", "/cb?code=abc&token={T}", "/cb?code=abc", []string{"Sec-Fetch-Mode", "navigate"}},
	}
	for _, tt := range tests {
		target := strings.ReplaceAll(tt.target, "{T}", g.token)
		method := "GET"
		if strings.HasSuffix(tt.name, "head") {
			method = "HEAD"
		}
		w := g.do(req(method, target, tt.hdr...))
		if w.Code != http.StatusSeeOther {
			t.Errorf("for %s, got %d; want 303", tt.name, w.Code)
			continue
		}
		loc := w.Header().Get("Location")
		if loc != tt.wantLoc {
			t.Errorf("for %s, Location %q; want %q", tt.name, loc, tt.wantLoc)
		}
		mustNotContain(t, "Location", loc, g.token)
		if rp := w.Header().Get("Referrer-Policy"); rp != "no-referrer" {
			t.Errorf("for %s, Referrer-Policy %q; want no-referrer", tt.name, rp)
		}
		cs := w.Result().Cookies()
		if len(cs) != 1 || cs[0].Name != "tether-"+testSess+"-"+testPort {
			t.Errorf("for %s, cookies %v; want one session cookie", tt.name, cs)
			continue
		}
		// Follow the redirect with the cookie: the app gets the clean URL.
		w2 := g.do(withCookie(req("GET", loc), cs[0]))
		if w2.Code != 200 {
			t.Errorf("for %s, following the redirect: got %d; want 200", tt.name, w2.Code)
			continue
		}
		seen := g.app.last(t)
		if seen.RequestURI != loc {
			t.Errorf("for %s, the app saw %q; want %q", tt.name, seen.RequestURI, loc)
		}
		assertNothingOfOurs(t, seen, g.token)
	}
}

// From another site: a navigation with ?token= that came from elsewhere (a
// link, the launcher's file:// page) gets the cookie and a page that moves on by
// itself to the clean URL, because browsers do not send a SameSite=Strict cookie on
// a redirect that follows a cross-site navigation. The token is still gone from the
// next URL, the page holds no token, and the same security headers apply.
func TestQueryTokenCrossSiteNavigation(t *testing.T) {
	g := newGate(t, nil)
	for _, site := range []string{"cross-site", "same-site"} {
		w := g.do(req("GET", "/lab?x=1&token="+g.token, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Site", site))
		if w.Code != http.StatusOK {
			t.Errorf("%s: got %d; want 200 and a continue page", site, w.Code)
			continue
		}
		body := w.Body.String()
		if !strings.Contains(body, `http-equiv="refresh" content="0; url=/lab?x=1"`) || !strings.Contains(body, `href="/lab?x=1"`) {
			t.Errorf("%s: the page does not move on to the clean URL:\n%s", site, body)
		}
		mustNotContain(t, site+" body", body, g.token)
		if len(w.Result().Cookies()) != 1 || w.Header().Get("Referrer-Policy") != "no-referrer" || w.Header().Get("Location") != "" {
			t.Errorf("%s: headers %v", site, w.Header())
		}
		if strings.Contains(body, "<script") || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: the page has script or a loose CSP", site)
		}
	}
	for _, site := range []string{"none", "same-origin", ""} {
		hdr := []string{"Sec-Fetch-Mode", "navigate"}
		if site != "" {
			hdr = append(hdr, "Sec-Fetch-Site", site)
		}
		if w := g.do(req("GET", "/lab?token="+g.token, hdr...)); w.Code != http.StatusSeeOther {
			t.Errorf("Sec-Fetch-Site %q: got %d; want 303", site, w.Code)
		}
	}
	// Login codes follow the same rule.
	code, _ := MintLoginCode(g.token, time.Minute)
	if w := g.do(req("GET", "/lab?code="+code, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Site", "cross-site")); w.Code != 200 || len(w.Result().Cookies()) != 1 {
		t.Errorf("login code from another site: got %d", w.Code)
	}
	if g.app.count() != 0 {
		t.Error("the app was reached")
	}
}

// ?token= on a request a page script made (Sec-Fetch-Mode cors, no-cors,
// same-origin) is ignored: it authenticates nothing, and is still never forwarded.
func TestQueryTokenIgnoredFromScripts(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	for _, mode := range []string{"cors", "no-cors", "same-origin"} {
		r := req("GET", "/api/x?token="+g.token+"&y=2", "Sec-Fetch-Mode", mode)
		if w := g.do(r); w.Code != http.StatusUnauthorized {
			t.Errorf("for Sec-Fetch-Mode %s without a cookie, got %d; want 401", mode, w.Code)
		}
		r = withCookie(req("GET", "/api/x?token="+g.token+"&y=2", "Sec-Fetch-Mode", mode), ck)
		if w := g.do(r); w.Code != 200 {
			t.Errorf("for Sec-Fetch-Mode %s with the cookie, got %d; want 200", mode, w.Code)
			continue
		}
		seen := g.app.last(t)
		if seen.RequestURI != "/api/x?y=2" {
			t.Errorf("for Sec-Fetch-Mode %s, the app saw %q", mode, seen.RequestURI)
		}
		// Ignored means ignored: a wrong token from a script with a good cookie passes
		// (it was never a credential), and is stripped all the same.
		r = withCookie(req("GET", "/api/x?token=wrong-but-ignored-value", "Sec-Fetch-Mode", mode), ck)
		if w := g.do(r); w.Code != 200 || g.app.last(t).RequestURI != "/api/x" {
			t.Errorf("for Sec-Fetch-Mode %s with an ignored wrong token, got %d", mode, w.Code)
		}
	}
	// A POST from curl with ?token=: served directly (no redirect for a POST), token stripped.
	if w := g.do(req("POST", "/api/run?token="+g.token)); w.Code != 200 {
		t.Errorf("for POST ?token= from a client without fetch metadata, got %d; want 200", w.Code)
	} else if seen := g.app.last(t); seen.RequestURI != "/api/run" {
		t.Errorf("the app saw %q; want /api/run", seen.RequestURI)
	}
}

// Authorization schemes.
func TestAuthorizationHeader(t *testing.T) {
	g := newGate(t, nil)
	tests := []struct {
		name   string
		values []string
		want   int
	}{
		{"item15-bearer", []string{"Bearer {T}"}, 200},
		{"item15-token", []string{"token {T}"}, 200},
		{"item15-lower-bearer", []string{"bearer {T}"}, 200},
		{"item15-upper-token", []string{"TOKEN {T}"}, 200},
		{"item15-mixed-case", []string{"BeArEr {T}"}, 200},
		{"item15-basic", []string{"Basic dXNlcjpwYXNz"}, 401},
		{"item15-basic-with-token", []string{"Basic {T}"}, 401},
		{"item15-trailing-junk", []string{"Bearer {T} junk"}, 401},
		{"item15-two-headers", []string{"Bearer {T}", "Bearer {T}"}, 401},
		{"item15-two-headers-one-basic", []string{"Basic dXNlcjpwYXNz", "Bearer {T}"}, 401},
		{"two-spaces", []string{"Bearer  {T}"}, 401},
		{"tab", []string{"Bearer\t{T}"}, 401},
		{"no-token", []string{"Bearer"}, 401},
		{"empty-token", []string{"Bearer "}, 401},
		{"empty-header", []string{""}, 401},
		{"comma-list", []string{"Bearer {T}, Basic x"}, 401},
		{"scheme-only-prefix", []string{"Bearer{T}"}, 401},
	}
	for _, tt := range tests {
		r := req("GET", "/api")
		for _, v := range tt.values {
			r.Header.Add("Authorization", strings.ReplaceAll(v, "{T}", g.token))
		}
		before := g.app.count()
		w := g.do(r)
		if w.Code != tt.want {
			t.Errorf("for %s, got %d; want %d", tt.name, w.Code, tt.want)
		}
		if tt.want == 200 {
			if a := g.app.last(t).Header.Values("Authorization"); len(a) != 0 {
				t.Errorf("for %s, the app saw our Authorization header", tt.name)
			}
		} else if g.app.count() != before {
			t.Errorf("for %s, the app was reached", tt.name)
		}
	}
	// Someone else's scheme next to a valid cookie is not ours: it authenticates
	// nothing and reaches the app unchanged.
	ck := g.cookie(testHost)
	if w := g.do(withCookie(req("GET", "/api", "Authorization", "Basic dXNlcjpwYXNz"), ck)); w.Code != 200 {
		t.Fatalf("Basic with a valid cookie: got %d; want 200", w.Code)
	}
	if a := g.app.last(t).Header.Get("Authorization"); a != "Basic dXNlcjpwYXNz" {
		t.Errorf("the app saw Authorization %q; want the client's Basic header", a)
	}
}

// Wrong tokens of every shape, through every channel, are refused and never
// reach the app.
func TestWrongTokens(t *testing.T) {
	g := newGate(t, nil)
	tok := g.token
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	pctAll := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	}
	variants := []struct{ name, v string }{
		{"same-length-first-char", flip(tok, 0)},
		{"same-length-last-char", flip(tok, len(tok)-1)},
		{"one-short", tok[:len(tok)-1]},
		{"one-long", tok + "A"},
		{"prefix-only", tok[:16]},
		{"empty", ""},
		{"space-padded", " " + tok + " "},
		{"tab-suffix", tok + "\t"},
		{"nul-suffix", tok + "\x00"},
		{"nul-inside", tok[:10] + "\x00" + tok[10:]},
		{"outside-set", tok[:len(tok)-1] + "!"},
		{"outside-set-plus", tok[:len(tok)-1] + "+"},
		{"outside-set-slash", tok[:len(tok)-1] + "/"},
		{"std-base64-padding", tok + "="},
		{"upper-cased", strings.ToUpper(tok)},
		{"double-encoded", strings.ReplaceAll(pctAll(tok), "%", "%25")},
	}
	for _, v := range variants {
		// Header (where the value can travel in a header at all).
		if !strings.ContainsAny(v.v, "\x00\t") {
			r := req("GET", "/x")
			r.Header.Set("Authorization", "Bearer "+v.v)
			if w := g.do(r); w.Code != http.StatusUnauthorized {
				t.Errorf("for %s in Authorization, got %d; want 401", v.name, w.Code)
			}
		}
		// Query, as written (the double-encoded one is a query value decoded once).
		q := url.QueryEscape(v.v)
		if v.name == "double-encoded" {
			q = v.v
		}
		if w := g.do(req("GET", "/x?token="+q)); w.Code != http.StatusUnauthorized {
			t.Errorf("for %s in ?token=, got %d; want 401", v.name, w.Code)
		}
		// Subprotocol.
		entry := jupyterProtocolEntry + url.PathEscape(v.v)
		if v.name == "double-encoded" {
			entry = jupyterProtocolEntry + v.v
		}
		if w := g.do(wsReq("/ws", "Sec-WebSocket-Protocol", jupyterProtocol+", "+entry)); w.Code != http.StatusForbidden {
			t.Errorf("for %s in the subprotocol, got %d; want 403", v.name, w.Code)
		}
		// Login form.
		w := g.do(postForm("/_tether/login", url.Values{"token": {v.v}}))
		if w.Code != http.StatusUnauthorized || len(w.Header().Values("Set-Cookie")) > 0 {
			t.Errorf("for %s in the login form, got %d (cookies %d); want 401 and none", v.name, w.Code, len(w.Header().Values("Set-Cookie")))
		}
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the app saw %d requests", n)
	}
	// The token percent-encoded once is the same token: accepted.
	if w := g.do(req("GET", "/x?token="+pctAll(tok))); w.Code != http.StatusSeeOther {
		t.Errorf("for the token percent-encoded once, got %d; want 303", w.Code)
	}
}

// Two ?token= values are ambiguous, in either order, even if both are right.
func TestAmbiguousQueryToken(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	for _, q := range []string{"token=bad&token=GOOD", "token=GOOD&token=bad", "token=GOOD&token=GOOD", "token=GOOD&TOKEN=GOOD", "token=GOOD&tok%65n=bad"} {
		q = strings.ReplaceAll(q, "GOOD", g.token)
		for _, withCk := range []bool{false, true} {
			r := req("GET", "/x?"+q, "Sec-Fetch-Mode", "navigate")
			if withCk {
				withCookie(r, ck)
			}
			if w := g.do(r); w.Code != http.StatusUnauthorized {
				t.Errorf("for %s (cookie %v), got %d; want 401", strings.ReplaceAll(q, g.token, "GOOD"), withCk, w.Code)
			}
		}
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the app saw %d requests", n)
	}
}

// A valid cookie does not rescue an explicitly wrong credential.
func TestCookiePlusWrongExplicitToken(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	wrong, _ := NewToken()
	tests := []struct {
		name string
		r    *http.Request
		want int
	}{
		{"item19-bearer", req("GET", "/x", "Authorization", "Bearer "+wrong), 401},
		{"item19-token-scheme", req("GET", "/x", "Authorization", "token "+wrong), 401},
		{"item19-malformed-bearer", req("GET", "/x", "Authorization", "Bearer "+g.token+" x"), 401},
		{"item19-query", req("GET", "/x?token="+wrong, "Sec-Fetch-Mode", "navigate"), 401},
		{"item19-query-empty", req("GET", "/x?token=", "Sec-Fetch-Mode", "navigate"), 401},
		{"item19-subprotocol", wsReq("/ws", "Origin", "http://localhost:8888", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(wrong)), 403},
		{"item19-login-code", req("GET", "/x?code=tc1.forged", "Sec-Fetch-Mode", "navigate"), 401},
		{"control", req("GET", "/x"), 200},
	}
	for _, tt := range tests {
		before := g.app.count()
		if w := g.do(withCookie(tt.r, ck)); w.Code != tt.want {
			t.Errorf("for %s, got %d; want %d", tt.name, w.Code, tt.want)
		}
		if tt.want != 200 && g.app.count() != before {
			t.Errorf("for %s, the app was reached", tt.name)
		}
	}
}
