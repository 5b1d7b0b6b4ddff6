package tokenserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testHost is the Host a browser uses to reach a forwarded port.
const (
	testPort = "8888"
	testHost = "localhost:" + testPort
	testSess = "sess1"
)

// recorded is what the fake app saw of one request.
type recorded struct {
	Method     string
	RequestURI string
	RawQuery   string
	Host       string
	Header     http.Header
}

// recordingApp is the fake app: it records every request that reaches it, so tests
// can prove what did not.
type recordingApp struct {
	mu      sync.Mutex
	reqs    []recorded
	handler http.HandlerFunc // optional; default answers 200 "app ok"
}

func (a *recordingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.reqs = append(a.reqs, recorded{r.Method, r.RequestURI, r.URL.RawQuery, r.Host, r.Header.Clone()})
	h := a.handler
	a.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	io.WriteString(w, "app ok")
}

func (a *recordingApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

func (a *recordingApp) last(tb testing.TB) recorded {
	tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		tb.Fatal("the app received no request")
	}
	return a.reqs[len(a.reqs)-1]
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fakeClock is a settable clock for expiry and rate-limit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// gate is a Server under test with its fake app, token and captured logs.
type gate struct {
	tb    testing.TB
	s     *Server
	app   *recordingApp
	token string
	logs  *syncBuffer
	clock *fakeClock
}

// newGate builds a Server with a fresh token, a recording app, debug-level log capture
// and a fake clock; edit adjusts the options first.
func newGate(tb testing.TB, edit func(*Options)) *gate {
	tb.Helper()
	tok, err := NewToken()
	if err != nil {
		tb.Fatal(err)
	}
	g := &gate{tb: tb, app: &recordingApp{}, token: tok, logs: &syncBuffer{}}
	o := Options{
		Token:     tok,
		SessionID: testSess,
		App:       g.app,
		Logger:    slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&o)
	}
	g.token = o.Token
	s, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	g.clock = &fakeClock{t: time.Now()}
	s.now = g.clock.Now
	// Attack tables fail many times on purpose; the rate-limit tests put the real
	// limiter back.
	s.limiter = newFailureLimiter(1<<20, time.Millisecond)
	g.s = s
	return g
}

// req builds a request as the gate would see it from a browser on testHost.
func req(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if !strings.HasPrefix(target, "http") {
		r.Host = testHost
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// postForm builds a form POST as the gate would see it from a browser on testHost.
func postForm(target string, form url.Values, hdr ...string) *http.Request {
	r := httptest.NewRequest("POST", target, strings.NewReader(form.Encode()))
	r.Host = testHost
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// do runs one request through the gate in process.
func (g *gate) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	g.s.ServeHTTP(w, r)
	return w
}

// cookie logs in through ?token= and returns the cookie the gate set, for r's Host.
// Not at the base URL: there the gate asks the app where its root leads (landing.go),
// and tests counting what reached the app would count that.
func (g *gate) cookie(host string) *http.Cookie {
	g.tb.Helper()
	r := req("GET", "/lab?token="+g.token, "Sec-Fetch-Mode", "navigate")
	r.Host = host
	w := g.do(r)
	if w.Code != http.StatusSeeOther {
		g.tb.Fatalf("login by ?token=: got %d; want 303", w.Code)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		g.tb.Fatalf("login by ?token=: got %d cookies; want 1", len(cs))
	}
	return cs[0]
}

// withCookie adds a cookie to a request.
func withCookie(r *http.Request, c *http.Cookie) *http.Request {
	r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	return r
}

// served starts the Server on 127.0.0.1:0 and returns its base URL; the server is shut
// down when the test ends and the test waits for Serve to return.
func (g *gate) served() string {
	g.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.tb.Fatal(err)
	}
	serve(g.tb, g.s, ln)
	scheme := "http"
	if g.s.tlsConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String()
}

// serve runs s.Serve(ln) in the background until the test ends.
func serve(tb testing.TB, s *Server, ln net.Listener) {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("Serve returned %v; want http.ErrServerClosed", err)
		}
	})
}

// client is an HTTP client that does not follow redirects and keeps no cookies.
func client(tb testing.TB) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// get sends a request to a served gate and returns the response with its body read.
func get(tb testing.TB, c *http.Client, r *http.Request) (*http.Response, string) {
	tb.Helper()
	resp, err := c.Do(r)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(b)
}

// shortTempDir is a directory for Unix sockets, whose paths must stay short.
func shortTempDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("", "ts")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d)
}

// mustNotContain fails if s holds any of the secrets.
func mustNotContain(tb testing.TB, what, s string, secrets ...string) {
	tb.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			tb.Errorf("%s contains a secret (%.6s…)", what, sec)
		}
		if esc := url.QueryEscape(sec); esc != sec && len(esc) > 8 && strings.Contains(s, esc) {
			tb.Errorf("%s contains a secret, URL-encoded (%.6s…)", what, esc)
		}
	}
}
