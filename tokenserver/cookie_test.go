package tokenserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The cookie's attributes, from each way of signing in.
func TestCookieAttributes(t *testing.T) {
	g := newGate(t, nil)
	code, err := MintLoginCode(g.token, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ways := map[string]*http.Request{
		"query-token": req("GET", "/lab?token="+g.token, "Sec-Fetch-Mode", "navigate"),
		"login-form":  postForm("/_tether/login", url.Values{"token": {g.token}, "next": {"/lab"}}),
		"login-code":  req("GET", "/lab?code="+code, "Sec-Fetch-Mode", "navigate"),
	}
	for way, r := range ways {
		w := g.do(r)
		if w.Code != http.StatusSeeOther {
			t.Errorf("%s: got %d; want 303", way, w.Code)
			continue
		}
		raw := w.Header().Values("Set-Cookie")
		if len(raw) != 1 {
			t.Errorf("%s: %d Set-Cookie headers; want 1", way, len(raw))
			continue
		}
		line := raw[0]
		c := w.Result().Cookies()[0]
		if want := "tether-" + testSess + "-" + testPort; c.Name != want {
			t.Errorf("%s: cookie name %q; want %q (scoped to session and port)", way, c.Name, want)
		}
		for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
			if !strings.Contains(line, attr) {
				t.Errorf("%s: Set-Cookie lacks %s", way, attr)
			}
		}
		if strings.Contains(strings.ToLower(line), "domain=") {
			t.Errorf("%s: Set-Cookie has a Domain", way)
		}
		if c.Secure || strings.Contains(line, "Secure") {
			t.Errorf("%s: Secure without TLS", way)
		}
		if c.MaxAge <= 0 || time.Duration(c.MaxAge)*time.Second > 24*time.Hour {
			t.Errorf("%s: Max-Age %d; want at most 24 h", way, c.MaxAge)
		}
		mustNotContain(t, way+" cookie value", c.Value, g.token, g.token[:16], g.token[len(g.token)-16:])
	}
	// Only set over TLS or on a loopback Host. An allowed non-loopback name
	// over plain HTTP authenticates the one request but gets no cookie.
	g2 := newGate(t, func(o *Options) { o.AllowHosts = []string{"box.example"} })
	r := req("GET", "/lab?token="+g2.token, "Sec-Fetch-Mode", "navigate")
	r.Host = "box.example:8888"
	w := g2.do(r)
	if w.Code != 200 || len(w.Header().Values("Set-Cookie")) != 0 {
		t.Errorf("non-loopback Host over HTTP: got %d with %d cookies; want 200 and none", w.Code, len(w.Header().Values("Set-Cookie")))
	}
	lr := postForm("/_tether/login", url.Values{"token": {g2.token}})
	lr.Host = "box.example:8888"
	if w := g2.do(lr); w.Code != http.StatusForbidden || len(w.Header().Values("Set-Cookie")) != 0 {
		t.Errorf("login form on a non-loopback Host over HTTP: got %d; want 403 and no cookie", w.Code)
	}
	// Over TLS that same Host gets a Secure __Host- cookie.
	r = req("GET", "https://box.example:8888/lab?token="+g2.token, "Sec-Fetch-Mode", "navigate")
	if w := g2.do(r); w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 1 || !w.Result().Cookies()[0].Secure {
		t.Errorf("non-loopback Host over TLS: got %d; want 303 and a Secure cookie", w.Code)
	}
}

// Cookies that must not work — from another session, another port, forged,
// from before a restart, expired — get 401; the sliding expiry reissues a used cookie.
func TestCookieRejected(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	ok := func(c *http.Cookie, host string) int {
		r := withCookie(req("GET", "/x"), c)
		r.Host = host
		return g.do(r).Code
	}
	if got := ok(ck, testHost); got != 200 {
		t.Fatalf("control: got %d; want 200", got)
	}

	// Another session of the same token (same process secret would be the worst case:
	// simulate it with a second gate sharing the token) — its cookie under our name.
	other := newGate(t, func(o *Options) { o.Token = g.token; o.SessionID = "sess2" })
	oc := other.cookie(testHost)
	if oc.Name == ck.Name {
		t.Fatalf("two sessions share the cookie name %q", ck.Name)
	}
	if got := ok(oc, testHost); got != 401 {
		t.Errorf("item28 other session's cookie: got %d; want 401", got)
	}
	if got := ok(&http.Cookie{Name: ck.Name, Value: oc.Value}, testHost); got != 401 {
		t.Errorf("item28 other session's value under our name: got %d; want 401", got)
	}

	// Another port: the cookie from :1111 is sent to :2222 too (ports share cookies).
	c1111 := g.cookie("localhost:1111")
	if got := ok(c1111, "localhost:2222"); got != 401 {
		t.Errorf("item28 other port's cookie: got %d; want 401", got)
	}
	if got := ok(&http.Cookie{Name: "tether-" + testSess + "-2222", Value: c1111.Value}, "localhost:2222"); got != 401 {
		t.Errorf("item28 other port's value renamed: got %d; want 401", got)
	}
	if got := ok(c1111, "localhost:1111"); got != 200 {
		t.Errorf("control for :1111: got %d; want 200", got)
	}

	// Forged: flip each part of the value.
	for _, i := range []int{0, 10, 20, len(ck.Value) - 1} {
		b := []byte(ck.Value)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if got := ok(&http.Cookie{Name: ck.Name, Value: string(b)}, testHost); got != 401 {
			t.Errorf("item28 forged at %d: got %d; want 401", i, got)
		}
	}
	for _, v := range []string{"", "x", g.token, ck.Value + "A", ck.Value[:len(ck.Value)-1], strings.Repeat("A", len(ck.Value))} {
		if got := ok(&http.Cookie{Name: ck.Name, Value: v}, testHost); got != 401 {
			t.Errorf("item28 forged value (len %d): got %d; want 401", len(v), got)
		}
	}

	// Restart: a new Server with the same token and session refuses the old cookie.
	restarted := newGate(t, func(o *Options) { o.Token = g.token })
	if w := restarted.do(withCookie(req("GET", "/x"), ck)); w.Code != 401 {
		t.Errorf("item28 cookie from before a restart: got %d; want 401", w.Code)
	}

	// Sliding expiry: used after 11 minutes, it comes back renewed; unused for 24 h, dead.
	g.clock.Advance(11 * time.Minute)
	w := g.do(withCookie(req("GET", "/x"), ck))
	renewed := w.Result().Cookies()
	if w.Code != 200 || len(renewed) != 1 || renewed[0].Name != ck.Name || renewed[0].Value == ck.Value {
		t.Fatalf("sliding expiry: got %d with cookies %v; want 200 and a renewed cookie", w.Code, renewed)
	}
	g.clock.Advance(20 * time.Hour)
	if got := ok(renewed[0], testHost); got != 200 {
		t.Errorf("renewed cookie 20 h later: got %d; want 200", got)
	}
	if got := ok(ck, testHost); got != 200 {
		t.Errorf("original cookie 20h11m after issue: got %d; want 200", got)
	}
	g.clock.Advance(4 * time.Hour)
	if got := ok(ck, testHost); got != 401 {
		t.Errorf("item28 expired cookie (24h11m): got %d; want 401", got)
	}
	// A cookie "issued" in the future is refused too.
	g.clock.Advance(-48 * time.Hour)
	if got := ok(renewed[0], testHost); got != 401 {
		t.Errorf("cookie issued in the future: got %d; want 401", got)
	}
}

// Session fixation. A cookie an attacker planted (another local port can set
// cookies for localhost) is replaced by a fresh value at login; two logins never share
// a value.
func TestSessionFixation(t *testing.T) {
	g := newGate(t, nil)
	name := "tether-" + testSess + "-" + testPort
	planted := &http.Cookie{Name: name, Value: strings.Repeat("A", 75)}
	if w := g.do(withCookie(req("GET", "/x"), planted)); w.Code != 401 {
		t.Fatalf("the planted cookie authenticates: %d", w.Code)
	}
	seen := map[string]bool{planted.Value: true}
	for i := range 5 {
		r := withCookie(postForm("/_tether/login", url.Values{"token": {g.token}}), planted)
		w := g.do(r)
		cs := w.Result().Cookies()
		if w.Code != http.StatusSeeOther || len(cs) != 1 || cs[0].Name != name {
			t.Fatalf("login %d: got %d, cookies %v", i, w.Code, cs)
		}
		if seen[cs[0].Value] {
			t.Fatalf("login %d reused a cookie value", i)
		}
		seen[cs[0].Value] = true
		// The browser sends both the planted and the fresh cookie: still in.
		r2 := withCookie(withCookie(req("GET", "/x"), planted), cs[0])
		if w := g.do(r2); w.Code != 200 {
			t.Errorf("login %d: fresh cookie beside the planted one: got %d; want 200", i, w.Code)
		}
	}
}

// Foreign cookies reach the app byte for byte; every cookie with our prefix,
// of any session and spelled any way, does not.
func TestForeignCookiesPassOursStripped(t *testing.T) {
	g := newGate(t, nil)
	ck := g.cookie(testHost)
	tests := []struct{ sent, want string }{
		{"username-localhost-8888=\"2|1:0|10:17|abc\"; _xsrf=2|d8c1|e5|1700; " + ck.Name + "=" + ck.Value,
			"username-localhost-8888=\"2|1:0|10:17|abc\"; _xsrf=2|d8c1|e5|1700"},
		{ck.Name + "=" + ck.Value + "; tether-other-1234=zzz; __Host-tether-x-1=q; __Secure-tether-y=1; Tether-Upper-5=1; a=b",
			"a=b"},
		{"tetherx=1; my-tether-1=2; " + ck.Name + "=" + ck.Value, "tetherx=1; my-tether-1=2"},
		{ck.Name + "=" + ck.Value, ""},
		{ck.Name + "=" + ck.Value + ";tether-a-1=1;x=y;", "x=y;"},
	}
	for _, tt := range tests {
		r := req("GET", "/x")
		r.Header.Set("Cookie", tt.sent)
		if w := g.do(r); w.Code != 200 {
			t.Errorf("for Cookie %q, got %d; want 200", tt.sent, w.Code)
			continue
		}
		seen := g.app.last(t)
		got := strings.Join(seen.Header.Values("Cookie"), " | ")
		if got != tt.want {
			t.Errorf("the app saw Cookie %q; want %q", got, tt.want)
		}
		assertNothingOfOurs(t, seen, g.token)
	}
	// Two Cookie header lines (HTTP/2 style): each cleaned.
	r := req("GET", "/x", "Cookie", "a=1; "+ck.Name+"="+ck.Value, "Cookie", "tether-z-9=1", "Cookie", "b=2")
	if w := g.do(r); w.Code != 200 {
		t.Fatalf("two Cookie lines: got %d", w.Code)
	}
	if got := g.app.last(t).Header.Values("Cookie"); strings.Join(got, "|") != "a=1|b=2" {
		t.Errorf("two Cookie lines: the app saw %q; want [a=1 b=2]", got)
	}
}

// __Host- and Secure with TLS, neither without.
func TestTLSCookieName(t *testing.T) {
	g := newGate(t, nil)
	plain := g.cookie(testHost)
	if strings.HasPrefix(plain.Name, "__Host-") || plain.Secure {
		t.Errorf("plain HTTP cookie %q Secure=%v; want neither __Host- nor Secure", plain.Name, plain.Secure)
	}
	w := g.do(req("GET", "https://localhost:8443/?token="+g.token, "Sec-Fetch-Mode", "navigate"))
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("TLS login: %d cookies", len(cs))
	}
	if cs[0].Name != "__Host-tether-"+testSess+"-8443" || !cs[0].Secure || cs[0].Path != "/" || cs[0].Domain != "" {
		t.Errorf("TLS cookie %+v; want __Host-tether-%s-8443, Secure, Path=/, no Domain", cs[0], testSess)
	}
	// The TLS cookie works over TLS and is stripped before the app.
	r := withCookie(req("GET", "https://localhost:8443/x"), cs[0])
	if w := g.do(r); w.Code != 200 {
		t.Errorf("TLS cookie over TLS: got %d; want 200", w.Code)
	}
	assertNothingOfOurs(t, g.app.last(t), g.token)
	// A plain-HTTP cookie does not work over TLS, nor the reverse.
	if w := g.do(withCookie(req("GET", "https://localhost:8888/x"), plain)); w.Code != 401 {
		t.Errorf("plain cookie over TLS: got %d; want 401", w.Code)
	}
	r = withCookie(req("GET", "/x"), &http.Cookie{Name: "tether-" + testSess + "-8443", Value: cs[0].Value})
	r.Host = "localhost:8443"
	if w := g.do(r); w.Code != 401 {
		t.Errorf("TLS cookie value over plain HTTP: got %d; want 401", w.Code)
	}
}
