package tokenserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// offSiteNexts are `next` values that would leave the gate's base path (another host,
// a scheme, a backslash, encoded and spaced variants): each must land on the base path.
var offSiteNexts = []string{
	"//evil.example",
	"///evil.example",
	"////evil.example/x",
	"/\\evil.example",
	"\\\\evil.example",
	"\\/evil.example",
	"https://evil.example",
	"http:evil.example",
	"http:/evil.example",
	"HTTPS://evil.example",
	"%2F%2Fevil.example",
	"/%2F/evil.example",
	"/%2f%2fevil.example",
	"/%5Cevil.example",
	"/%5cevil.example",
	"/%252F/evil.example",
	"/%25252F/evil.example",
	"/%09/evil.example",
	"/\t/evil.example",
	"/%0A/evil.example",
	"/%0d%0a/evil.example",
	"/%00/evil.example",
	"javascript:alert(1)",
	"JavaScript:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	" //evil.example",
	" /lab",
	"\t/lab",
	"/lab\r\nLocation: //evil.example",
	"evil.example",
	"lab",
	"",
	"/lab/../../etc",
	"/lab/%2e%2e/%2e%2e/etc",
	"/./lab",
	"/lab?x=1\\@evil.example",
	"/lab#\\\\evil.example",
	"/lab?x=1 y",
}

// `next` goes only to local paths under the base URL.
func TestSafeNext(t *testing.T) {
	for _, base := range []string{"/", "/user/alice/"} {
		for _, n := range offSiteNexts {
			if got := safeNext(n, base); got != base {
				t.Errorf("base %s: safeNext(%q) = %q; want the base", base, n, got)
			}
		}
	}
	// Outside the base.
	for _, n := range []string{"/", "/other", "/user/bob/", "/user/alice", "/user/alicex/"} {
		if n == "/user/alice" {
			continue // the base without its slash is the base
		}
		if got := safeNext(n, "/user/alice/"); got != "/user/alice/" {
			t.Errorf("safeNext(%q) outside the base = %q; want the base", n, got)
		}
	}
	good := []struct{ next, base string }{
		{"/", "/"},
		{"/lab", "/"},
		{"/lab/tree/a%20b.ipynb", "/"},
		{"/lab?reset&x=%2F%2Fkept-in-query", "/"},
		{"/lab#section", "/"},
		{"/user/alice/", "/user/alice/"},
		{"/user/alice", "/user/alice/"},
		{"/user/alice/lab/tree", "/user/alice/"},
		{"/caf%C3%A9", "/"},
	}
	for _, tt := range good {
		if got := safeNext(tt.next, tt.base); got != tt.next {
			t.Errorf("base %s: safeNext(%q) = %q; want it kept", tt.base, tt.next, got)
		}
	}
}

// Through the login form: the Location is the base for every bad `next`, and
// browsers resolve every kept Location to our own origin.
func TestLoginNextRedirects(t *testing.T) {
	g := newGate(t, func(o *Options) { o.BaseURL = "/user/alice" })
	for _, n := range offSiteNexts {
		w := g.do(postForm("/user/alice/_tether/login", url.Values{"token": {g.token}, "next": {n}}))
		if w.Code != http.StatusSeeOther {
			t.Errorf("next %q: got %d; want 303", n, w.Code)
			continue
		}
		if loc := w.Header().Get("Location"); loc != "/user/alice/" {
			t.Errorf("next %q: Location %q; want /user/alice/", n, loc)
		}
	}
	self, _ := url.Parse("http://localhost:8888/user/alice/lab")
	for _, n := range []string{"/user/alice/lab?x=1", "/user/alice/tree/a%20b"} {
		w := g.do(postForm("/user/alice/_tether/login", url.Values{"token": {g.token}, "next": {n}}))
		loc := w.Header().Get("Location")
		u, err := self.Parse(loc)
		if err != nil || u.Host != self.Host || u.Scheme != self.Scheme || loc != n {
			t.Errorf("next %q: Location %q resolves to %v", n, loc, u)
		}
	}
}

// The login page shown to an unauthenticated page load carries
// the path as `next`, never the query, so never a token (right or wrong).
func TestLoginPageNextHasNoQuery(t *testing.T) {
	g := newGate(t, nil)
	const wrong = "wrong-token-value-1234567890"
	r := req("GET", "/lab/tree?token="+wrong+"&secretparam=1&code=tc1.x", "Sec-Fetch-Mode", "navigate")
	w := g.do(r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("got %d; want 401", w.Code)
	}
	body := w.Body.String()
	if !strings.Contains(body, `name="next" value="/lab/tree"`) {
		t.Errorf("the login form's next is not the bare path:\n%s", body)
	}
	for _, s := range []string{wrong, "secretparam", "tc1.x", "token=", "?"} {
		if strings.Contains(body, s) && s != "?" {
			t.Errorf("the login page holds %q", s)
		}
	}
	if strings.Contains(body, "value=\"/lab/tree?") {
		t.Errorf("the login page's next holds a query")
	}
	// An unauthenticated page load at a network-path URL gets the base as next.
	r = req("GET", "/", "Sec-Fetch-Mode", "navigate")
	r.URL, _ = url.ParseRequestURI("//evil.example/x")
	if body := g.do(r).Body.String(); !strings.Contains(body, `name="next" value="/"`) {
		t.Errorf("next for //evil.example/x is not the base")
	}
}
