package tokenserver

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// jupyterLike answers its root (under base) as Jupyter does: a redirect to the tree,
// query kept; every other path is a page naming itself.
func jupyterLike(base string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == base {
			w.Header().Set("Location", base+"tree?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusFound)
			return
		}
		io.WriteString(w, "page "+r.URL.Path)
	}
}

// countingTransport counts the requests a client sends.
type countingTransport struct {
	mu    sync.Mutex
	paths []string
	next  http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// A browser opening the launcher's URL (the base URL with ?token= or a login code)
// reaches the app's first page in two requests, the gate's redirect and the page, as it
// would through ssh -L opening the URL Jupyter prints: the gate's redirect goes where
// the app's root sends the browser, instead of to the root, which redirected once more
// (three requests, each a round trip of the user's link). Through the real proxy, to
// an app on a socket of its own.
func TestLandingOneRedirectToTheFirstPage(t *testing.T) {
	for _, base := range []string{"/", "/user/a/"} {
		appSrv := httptest.NewServer(jupyterLike(base))
		t.Cleanup(appSrv.Close)
		g := newGate(t, func(o *Options) {
			o.BaseURL = base
			o.App = NewProxy(Upstream{Network: "tcp", Address: strings.TrimPrefix(appSrv.URL, "http://")}, nil)
		})
		srv := g.served()
		code, err := MintLoginCode(g.token, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for way, cred := range map[string]string{"token": "token=" + g.token, "code": "code=" + url.QueryEscape(code)} {
			jar, _ := cookiejar.New(nil)
			ct := &countingTransport{next: &http.Transport{}}
			c := &http.Client{Transport: ct, Jar: jar, Timeout: 10 * time.Second}
			r := mustRequest(t, "GET", srv+base+"?"+cred)
			r.Header.Set("Sec-Fetch-Mode", "navigate")
			resp, body := get(t, c, r)
			if resp.StatusCode != 200 || body != "page "+base+"tree" {
				t.Errorf("base %s by %s: %d %q; want the tree page", base, way, resp.StatusCode, body)
			}
			if len(ct.paths) != 2 {
				t.Errorf("base %s by %s: %d requests (%v); want 2: the gate's redirect, then the page", base, way, len(ct.paths), ct.paths)
			}
			if resp.Request.URL.RawQuery != "" || strings.Contains(resp.Request.URL.String(), g.token) {
				t.Errorf("base %s by %s: landed on %s; want no query", base, way, resp.Request.URL.Path)
			}
		}
	}
}

// What the app is asked is the browser's request without our credentials; the answer
// counts only as a plain redirect under the base URL, without cookies or parameters of
// ours; otherwise the gate's redirect goes to the base URL as before.
func TestLandingOnlyPlainLocalRedirects(t *testing.T) {
	tests := []struct {
		name   string
		status int
		loc    string
		cookie bool
		want   string
	}{
		{"relative", 302, "tree", false, "/u/a/tree"},
		{"absolute path with query", 303, "/u/a/lab?reset", false, "/u/a/lab?reset"},
		{"307", 307, "/u/a/x", false, "/u/a/x"},
		{"308", 308, "/u/a/x", false, "/u/a/x"},
		{"another site", 302, "http://evil.example/u/a/tree", false, "/u/a/"},
		{"network path", 302, "//evil.example/u/a/tree", false, "/u/a/"},
		{"backslashes", 302, "/\\evil.example/u/a/", false, "/u/a/"},
		{"javascript", 302, "javascript:alert(1)", false, "/u/a/"},
		{"outside the base", 302, "/elsewhere", false, "/u/a/"},
		{"climbing out", 302, "../../etc", false, "/u/a/"},
		{"itself", 302, "/u/a/", false, "/u/a/"},
		{"itself with a query", 302, "./?folder=%2Fhome%2Fa", false, "/u/a/?folder=%2Fhome%2Fa"},
		{"itself with an empty query", 302, "/u/a/?", false, "/u/a/"},
		{"a token parameter", 302, "/u/a/tree?token=abc", false, "/u/a/"},
		{"a code parameter", 302, "/u/a/tree?CODE=abc", false, "/u/a/"},
		{"a cookie", 302, "/u/a/tree", true, "/u/a/"},
		{"no location", 302, "", false, "/u/a/"},
		{"not a redirect", 200, "/u/a/tree", false, "/u/a/"},
		{"an error", 500, "/u/a/tree", false, "/u/a/"},
	}
	for _, tt := range tests {
		g := newGate(t, func(o *Options) { o.BaseURL = "/u/a/" })
		g.app.handler = func(w http.ResponseWriter, r *http.Request) {
			if tt.loc != "" {
				w.Header().Set("Location", tt.loc)
			}
			if tt.cookie {
				http.SetCookie(w, &http.Cookie{Name: "app", Value: "1"})
			}
			w.WriteHeader(tt.status)
		}
		ck := g.cookie(testHost)
		r := withCookie(req("GET", "/u/a/?token="+g.token, "Sec-Fetch-Mode", "navigate", "Cookie", "other=1"), ck)
		w := g.do(r)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != tt.want {
			t.Errorf("%s: %d to %q; want 303 to %q", tt.name, w.Code, w.Header().Get("Location"), tt.want)
		}
		if cs := w.Result().Cookies(); len(cs) != 1 || !isOurCookie(cs[0].Name) {
			t.Errorf("%s: Set-Cookie %v; want our cookie alone", tt.name, cs)
		}
		if n := g.app.count(); n != 1 {
			t.Fatalf("%s: the app was asked %d times; want once", tt.name, n)
		}
		seen := g.app.last(t)
		if seen.Method != "GET" || seen.RequestURI != "/u/a/" {
			t.Errorf("%s: the app was asked %s %q; want GET /u/a/", tt.name, seen.Method, seen.RequestURI)
		}
		if seen.Header.Get("Cookie") != "other=1" {
			t.Errorf("%s: the app saw Cookie %q; want the browser's own cookie alone", tt.name, seen.Header.Get("Cookie"))
		}
		assertNothingOfOurs(t, seen, g.token)
	}
}

// Only the base URL is looked ahead, only on a GET, and an app whose root is a page is
// asked once in the server's life, not on every login.
func TestLandingAskedOnlyWhenItCan(t *testing.T) {
	g := newGate(t, nil)
	for _, r := range []*http.Request{
		req("GET", "/lab?token="+g.token, "Sec-Fetch-Mode", "navigate"),
		req("GET", "/?x=1&token="+g.token, "Sec-Fetch-Mode", "navigate"),
		req("HEAD", "/?token="+g.token, "Sec-Fetch-Mode", "navigate"),
	} {
		if w := g.do(r); w.Code != http.StatusSeeOther {
			t.Errorf("%s %s: got %d; want 303", r.Method, r.URL.Path, w.Code)
		}
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the app was asked %d times about other pages than the base URL's GET", n)
	}
	for range 3 {
		if w := g.do(req("GET", "/?token="+g.token, "Sec-Fetch-Mode", "navigate")); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Errorf("a page at the root: %d to %q; want 303 to /", w.Code, w.Header().Get("Location"))
		}
	}
	if n := g.app.count(); n != 1 {
		t.Errorf("an app whose root is a page was asked %d times; want once", n)
	}
}

// A navigation from another site (the launcher's file:// page) gets the page that moves
// on by itself, to the landing too.
func TestLandingCrossSiteContinuePage(t *testing.T) {
	g := newGate(t, nil)
	g.app.handler = jupyterLike("/")
	w := g.do(req("GET", "/?token="+g.token, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Site", "cross-site"))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"/tree"`) {
		t.Errorf("cross-site: %d %q; want the continue page to /tree", w.Code, w.Body.String())
	}
}

// An app that hangs on its root, or fails, costs the login at most landingWait and
// never the login itself.
func TestLandingAppHangsOrPanics(t *testing.T) {
	old := landingWait
	landingWait = 50 * time.Millisecond
	t.Cleanup(func() { landingWait = old })
	g := newGate(t, nil)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	g.app.handler = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	if w := g.do(req("GET", "/?token="+g.token, "Sec-Fetch-Mode", "navigate")); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Errorf("hanging root: %d to %q; want 303 to /", w.Code, w.Header().Get("Location"))
	}
	if strings.Contains(g.logs.String(), g.token) {
		t.Errorf("the log holds the token")
	}
	// A panic is a failure, not an answer (a fresh gate: the hanging root is not asked
	// again, TestLandingUnusableAnswerNotAskedAgain).
	g = newGate(t, nil)
	g.app.handler = func(http.ResponseWriter, *http.Request) { panic("boom") }
	if w := g.do(req("GET", "/?token="+g.token, "Sec-Fetch-Mode", "navigate")); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Errorf("panicking root: %d to %q; want 303 to /", w.Code, w.Header().Get("Location"))
	}
	if g.s.noLanding.Load() {
		t.Errorf("a panic counted as a page at the root: the app would not be asked again")
	}
	if strings.Contains(g.logs.String(), g.token) {
		t.Errorf("the log holds the token")
	}
}

// An app whose answer about its root cannot be used is not asked again: each login
// would otherwise fetch its root twice (the question, then the browser's own request
// to the base URL), running its side effects twice, and one that is slow to answer
// would cost every login landingWait on top of the page. A redirect with cookies, one
// outside the base URL, and a root slower than landingWait are each asked once in
// the server's life; the logins still land on the base URL at once.
func TestLandingUnusableAnswerNotAskedAgain(t *testing.T) {
	old := landingWait
	landingWait = 100 * time.Millisecond
	t.Cleanup(func() { landingWait = old })
	for name, h := range map[string]http.HandlerFunc{
		"a redirect with a cookie": func(w http.ResponseWriter, r *http.Request) {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "rotated"})
			http.Redirect(w, r, "/tree", http.StatusFound)
		},
		"a redirect elsewhere": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "//evil.example/", http.StatusFound)
		},
		"a root slower than landingWait": func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		},
	} {
		g := newGate(t, nil)
		g.app.handler = h
		for i := range 3 {
			start := time.Now()
			w := g.do(req("GET", "/?token="+g.token, "Sec-Fetch-Mode", "navigate"))
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
				t.Errorf("%s, login %d: %d to %q; want 303 to /", name, i+1, w.Code, w.Header().Get("Location"))
			}
			if el := time.Since(start); el > landingWait+2*time.Second {
				t.Errorf("%s, login %d took %v; landingWait is %v", name, i+1, el, landingWait)
			}
		}
		if n := g.app.count(); n != 1 {
			t.Errorf("%s: the app's root was asked %d times in 3 logins; want once", name, n)
		}
	}
}
