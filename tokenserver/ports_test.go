package tokenserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePorts are Ports over real loopback listeners: a port number the test registers
// is dialled at its listener's address; any other is refused as nothing listening.
// Every call is recorded, so tests can prove that no port was dialled.
type fakePorts struct {
	mu      sync.Mutex
	addrs   map[int]string
	refuse  map[int]*PortError
	dialled []int
	checked []int
}

func (f *fakePorts) add(port int, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addrs == nil {
		f.addrs = map[int]string{}
	}
	f.addrs[port] = addr
}

func (f *fakePorts) lookup(port int) (string, error) {
	if pe := f.refuse[port]; pe != nil {
		return "", pe
	}
	a, ok := f.addrs[port]
	if !ok {
		return "", &PortError{Status: http.StatusBadGateway, Msg: fmt.Sprintf("nothing of yours listens on port %d", port)}
	}
	return a, nil
}

func (f *fakePorts) options() *Ports {
	return &Ports{
		Dial: func(ctx context.Context, port int) (net.Conn, error) {
			f.mu.Lock()
			f.dialled = append(f.dialled, port)
			a, err := f.lookup(port)
			f.mu.Unlock()
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", a)
		},
		Check: func(port int) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.checked = append(f.checked, port)
			_, err := f.lookup(port)
			return err
		},
	}
}

func (f *fakePorts) calls() (dialled, checked []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.dialled...), append([]int(nil), f.checked...)
}

// portBackend is a program on a secondary port: a recording app with a WebSocket echo,
// served on 127.0.0.1:0 until the test ends; it returns the recorder and the address.
func portBackend(t *testing.T, h http.HandlerFunc) (*recordingApp, string) {
	t.Helper()
	if h == nil {
		h = echoWebSocket(t, nil)
	}
	app := &recordingApp{handler: h}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return app, srv.Listener.Addr().String()
}

// portGate is a served gate with fake Ports holding one secondary port (the number
// 8050, whatever the backend's real port) and a recording main app.
func portGate(t *testing.T, h http.HandlerFunc, edit func(*Options)) (g *gate, fp *fakePorts, backend *recordingApp, base string) {
	t.Helper()
	backend, addr := portBackend(t, h)
	fp = &fakePorts{}
	fp.add(8050, addr)
	g = newGate(t, func(o *Options) {
		o.Ports = fp.options()
		if edit != nil {
			edit(o)
		}
	})
	return g, fp, backend, g.served()
}

func doReq(t *testing.T, method, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return get(t, client(t), r)
}

// The two URL forms of jupyter-server-proxy: proxy/PORT/ strips the prefix (and says
// where it was in X-Forwarded-Prefix, replacing a client's), proxy/absolute/PORT/
// keeps it; the query is kept and ours is stripped; the port's program sees the
// browser's Host and none of our credentials; the main app sees none of it.
func TestPortProxyForms(t *testing.T) {
	g, _, backend, base := portGate(t, nil, nil)
	host := strings.TrimPrefix(base, "http://")
	ck := g.cookie(host)
	tests := []struct {
		path, wantURI, wantPrefix string
	}{
		{"/proxy/8050/", "/", "/proxy/8050"},
		{"/proxy/8050/status?x=1&y=%2F", "/status?x=1&y=%2F", "/proxy/8050"},
		{"/proxy/8050/a%2Fb/c", "/a%2Fb/c", "/proxy/8050"},
		{"/proxy/absolute/8050/status?x=1", "/proxy/absolute/8050/status?x=1", ""},
		{"/absproxy/8050/status?x=1", "/absproxy/8050/status?x=1", ""},
	}
	for _, tt := range tests {
		resp, body := doReq(t, "GET", base+tt.path, "Cookie", ck.Name+"="+ck.Value, "X-Forwarded-Prefix", "/evil", "Authorization", "token "+g.token)
		if resp.StatusCode != 200 || body != "app ok" {
			t.Errorf("for %q: got %d %q; want the port's 200", tt.path, resp.StatusCode, body)
			continue
		}
		seen := backend.last(t)
		if seen.RequestURI != tt.wantURI {
			t.Errorf("for %q: the port saw %q; want %q", tt.path, seen.RequestURI, tt.wantURI)
		}
		if got := seen.Header.Get("X-Forwarded-Prefix"); got != tt.wantPrefix {
			t.Errorf("for %q: X-Forwarded-Prefix %q; want %q", tt.path, got, tt.wantPrefix)
		}
		if seen.Host != host {
			t.Errorf("for %q: the port saw Host %q; want the browser's %q", tt.path, seen.Host, host)
		}
		assertNothingOfOurs(t, seen, g.token)
	}
	// ?token= on a page load: the cookie, and the same URL without it, still under proxy/.
	resp, _ := doReq(t, "GET", base+"/proxy/8050/x?token="+g.token+"&k=v", "Sec-Fetch-Mode", "navigate")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/proxy/8050/x?k=v" {
		t.Errorf("?token= under proxy/: %d %q", resp.StatusCode, loc)
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the main app saw %d requests meant for the port", n)
	}
	// The main app still gets everything else, /proxyx and /lab/proxy/ included.
	for _, p := range []string{"/", "/proxyx/8050/", "/lab/proxy/8050/"} {
		if resp, body := doReq(t, "GET", base+p, "Authorization", "token "+g.token); resp.StatusCode != 200 || body != "app ok" {
			t.Errorf("%s: %d %q; want the main app", p, resp.StatusCode, body)
		}
	}
	if n := g.app.count(); n != 3 {
		t.Errorf("the main app saw %d requests; want 3", n)
	}
}

// Under a base URL, proxy/ lives under it too; /proxy/ outside it is the app's.
func TestPortProxyUnderBaseURL(t *testing.T) {
	g, _, backend, base := portGate(t, nil, func(o *Options) { o.BaseURL = "/lab/" })
	resp, _ := doReq(t, "GET", base+"/lab/proxy/8050/status", "Authorization", "token "+g.token)
	if resp.StatusCode != 200 || backend.last(t).RequestURI != "/status" || backend.last(t).Header.Get("X-Forwarded-Prefix") != "/lab/proxy/8050" {
		t.Errorf("/lab/proxy/8050/status: %d, the port saw %+v", resp.StatusCode, backend.last(t))
	}
	before := backend.count()
	doReq(t, "GET", base+"/proxy/8050/status", "Authorization", "token "+g.token)
	if backend.count() != before || g.app.count() != 1 {
		t.Errorf("/proxy/ outside the base URL reached the port (%d) or not the app (%d)", backend.count()-before, g.app.count())
	}
}

// proxy/PORT without its slash is sent to proxy/PORT/ (query kept), so the page's
// relative links resolve under it; a path-absolute redirect of the port's program stays
// under its prefix.
func TestPortProxyRedirects(t *testing.T) {
	g, _, _, base := portGate(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/", "/proxy/absolute/8050/":
			http.Redirect(w, r, "/status?a=1", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "//other.example/x", http.StatusFound)
		case "/rel":
			w.Header().Set("Location", "status")
			w.WriteHeader(http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	}, nil)
	auth := []string{"Authorization", "token " + g.token}
	tests := []struct{ path, want string }{
		{"/proxy/8050?q=1", "/proxy/8050/?q=1"},
		{"/proxy/absolute/8050", "/proxy/absolute/8050/"},
		{"/absproxy/8050?q=1", "/absproxy/8050/?q=1"},
		{"/proxy/8050/", "/proxy/8050/status?a=1"},
		{"/proxy/absolute/8050/", "/status?a=1"},  // the program knows its full path there: as it is
		{"/proxy/8050/away", "//other.example/x"}, // not a path: left as it is
		{"/proxy/8050/rel", "status"},
	}
	for _, tt := range tests {
		resp, _ := doReq(t, "GET", base+tt.path, auth...)
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || got != tt.want {
			t.Errorf("for %q: %d Location %q; want 302 %q", tt.path, resp.StatusCode, got, tt.want)
		}
	}
}

// The SSRF attempts of jupyter-server-proxy's history and friends: a host in the path,
// port numbers out of range or written oddly, dot segments and encodings of every
// depth. Each is refused by the gate with its fixed text; no port is dialled and the
// main app sees nothing.
func TestPortProxySSRF(t *testing.T) {
	g, fp, backend, base := portGate(t, nil, nil)
	for _, p := range []string{
		"/proxy/127.0.0.2:80/", "/proxy/localhost:22/", "/proxy/localhost:8050/", "/proxy/[::1]:8050/",
		"/proxy/0/", "/proxy/65536/", "/proxy/99999999999999999999/", "/proxy/-1/", "/proxy/+8050/",
		"/proxy/08050/", "/proxy/8050.0/", "/proxy/0x1f72/", "/proxy/8050%00/", "/proxy/%20805/",
		"/proxy/%2e%2e/", "/proxy/%2E%2E/", "/proxy/../", "/proxy/./8050/", "/proxy/8050/../8051/",
		"/proxy/8050/%2e%2e/x", "/proxy/%252e%252e/", "/proxy/%25252e/", "/proxy/%38%30%35%30/",
		"/proxy/%2538050/", "/proxy/8050%2f/", "/proxy/22@evil/", "/proxy/22@evil.example:80/",
		"/proxy/evil.example/", "/proxy/http:%2f%2fevil.example/", "/proxy/absolute/localhost:22/",
		"/proxy/absolute/127.0.0.2:80/", "/proxy/absolute/0/", "/proxy/absolute/", "/proxy/", "/proxy",
		"/proxy//8050/", "/%70roxy/8050/", "/%70roxy/localhost:22/", "/x/../proxy/8050/", "/proxy/absolute/%2e%2e/",
		"/absproxy/localhost:22/", "/absproxy/0/", "/absproxy/08050/", "/absproxy/+8050/", "/absproxy/", "/absproxy",
		"/absproxy/%2e%2e/", "/absproxy/8050/../8051/", "/absproxy/absolute/8050/", "/%61bsproxy/8050/", "/absproxy//8050/",
	} {
		for _, method := range []string{"GET", "POST"} {
			resp, body := doReq(t, method, base+p, "Authorization", "token "+g.token)
			if resp.StatusCode != http.StatusBadRequest || body != textPortPath {
				t.Errorf("%s %s: got %d %q; want 400 %q", method, p, resp.StatusCode, body, textPortPath)
			}
		}
	}
	if d, c := fp.calls(); len(d) > 0 || len(c) > 0 {
		t.Errorf("ports dialled %v, checked %v; want none", d, c)
	}
	if backend.count() > 0 || g.app.count() > 0 {
		t.Errorf("the port saw %d requests, the main app %d; want none", backend.count(), g.app.count())
	}
	// An absolute-form request naming another host is the Host check's: 403.
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://evil.example:8050/proxy/8050/ HTTP/1.1\r\nHost: localhost\r\nAuthorization: token %s\r\nConnection: close\r\n\r\n", g.token)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, " 403 ") {
		t.Errorf("absolute-form to another host: %q; want 403", line)
	}
	// DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends
	// Host: evil.example; refused before anything else, token or not.
	for _, p := range []string{"/proxy/8050/", "/absproxy/8050/", "/_tether/forward/8050"} {
		c2, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
		fmt.Fprintf(c2, "GET %s HTTP/1.1\r\nHost: evil.example:%s\r\nAuthorization: token %s\r\nConnection: close\r\n\r\n", p, port, g.token)
		c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c2).ReadString('\n')
		c2.Close()
		if !strings.Contains(line, " 403 ") {
			t.Errorf("%s with Host evil.example: %q; want 403", p, line)
		}
	}
	if d, c := fp.calls(); len(d) > 0 || len(c) > 0 {
		t.Errorf("ports dialled %v, checked %v", d, c)
	}
}

// Secondary ports are behind the same gate: no credential gets the login page or 401,
// a bad token 401, a cookie with a cross-site Origin on a POST or a WebSocket 403,
// and in none of these cases is a port dialled.
func TestPortProxyGuarded(t *testing.T) {
	g, fp, backend, base := portGate(t, nil, nil)
	host := strings.TrimPrefix(base, "http://")
	ck := g.cookie(host)
	cookie := ck.Name + "=" + ck.Value
	wrong, _ := NewToken()
	tests := []struct {
		name, method, path string
		hdr                []string
		want               int
	}{
		{"nothing", "GET", "/proxy/8050/", nil, 401},
		{"nothing, a page", "GET", "/proxy/8050/status", []string{"Accept", "text/html", "Sec-Fetch-Mode", "navigate"}, 401},
		{"nothing, absolute", "GET", "/proxy/absolute/8050/", nil, 401},
		{"nothing, malformed", "GET", "/proxy/localhost:22/", nil, 401},
		{"wrong token", "GET", "/proxy/8050/", []string{"Authorization", "token " + wrong}, 401},
		{"wrong token in the URL", "GET", "/proxy/8050/?token=" + wrong, nil, 401},
		{"cookie, cross-site POST", "POST", "/proxy/8050/", []string{"Cookie", cookie, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"cookie, WebSocket from elsewhere", "GET", "/proxy/8050/ws", []string{"Cookie", cookie, "Origin", "http://localhost:1", "Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, 403},
		{"cookie, WebSocket without Origin", "GET", "/proxy/8050/ws", []string{"Cookie", cookie, "Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, 403},
	}
	for _, tt := range tests {
		resp, body := doReq(t, tt.method, base+tt.path, tt.hdr...)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
		mustNotContain(t, tt.name+": body", body, g.token)
	}
	if d, c := fp.calls(); len(d) > 0 || len(c) > 0 {
		t.Errorf("ports dialled %v, checked %v; want none", d, c)
	}
	if backend.count() > 0 {
		t.Errorf("the port saw %d requests", backend.count())
	}
}

// A WebSocket to a secondary port: by the cookie with the page's own Origin (as a
// browser does) and by the JEP 119 subprotocol; the port's program sees the browser's
// Origin and Host and none of our credentials; Shutdown closes it.
func TestPortProxyWebSocket(t *testing.T) {
	g, _, backend, base := portGate(t, nil, nil)
	host := strings.TrimPrefix(base, "http://")
	ck := g.cookie(host)
	h := http.Header{}
	h.Set("Cookie", ck.Name+"="+ck.Value)
	h.Set("Origin", base)
	c, resp, err := dialWS(t, wsURL(base, "/proxy/8050/ws?x=1"), h)
	if err != nil {
		t.Fatalf("WebSocket by cookie: %v (%v)", err, resp)
	}
	echoOnce(t, c)
	seen := backend.last(t)
	if seen.RequestURI != "/ws?x=1" || seen.Header.Get("Origin") != base || seen.Host != host {
		t.Errorf("the port saw %q Origin %q Host %q", seen.RequestURI, seen.Header.Get("Origin"), seen.Host)
	}
	assertNothingOfOurs(t, seen, g.token)

	c2, resp, err := dialWS(t, wsURL(base, "/proxy/absolute/8050/ws"), nil, jupyterProtocol, tokenEntry(g.token))
	if err != nil {
		t.Fatalf("WebSocket by subprotocol: %v (%v)", err, resp)
	}
	echoOnce(t, c2)
	assertNothingOfOurs(t, backend.last(t), g.token)

	done := make(chan error, 1)
	go func() { done <- g.s.Shutdown(t.Context()) }()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("the WebSocket still reads after Shutdown")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the WebSocket to a secondary port was not closed by Shutdown")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A refusal of Ports (another user's port, the app's own) is shown as it says and
// logged; a port whose program does not answer is a 502 with our fixed text.
func TestPortProxyRefusals(t *testing.T) {
	g, fp, _, base := portGate(t, nil, nil)
	fp.refuse = map[int]*PortError{9000: {Status: 403, Msg: "port 9000 on this machine is held by another user, bob (uid 1001); nothing was sent to it"}}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	fp.add(9001, dead.Addr().String())
	dead.Close()
	resp, body := doReq(t, "GET", base+"/proxy/9000/", "Authorization", "token "+g.token)
	if resp.StatusCode != 403 || body != "403 Forbidden: port 9000 on this machine is held by another user, bob (uid 1001); nothing was sent to it\n" {
		t.Errorf("refused port: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("refusal headers: %v", resp.Header)
	}
	resp, body = doReq(t, "GET", base+"/proxy/9001/", "Authorization", "token "+g.token)
	if resp.StatusCode != 502 || body != textPort502 {
		t.Errorf("dead port: %d %q", resp.StatusCode, body)
	}
	resp, body = doReq(t, "GET", base+"/proxy/9002/", "Authorization", "token "+g.token)
	if resp.StatusCode != 502 || !strings.Contains(body, "nothing of yours listens on port 9002") {
		t.Errorf("unknown port: %d %q", resp.StatusCode, body)
	}
	logs := g.logs.String()
	mustContain := func(s string) {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %q:\n%s", s, logs)
		}
	}
	mustContain("secondary port refused")
	mustContain("port=9000")
	mustContain("secondary port unreachable")
	mustNotContain(t, "logs", logs, g.token)
}

// code-server's absproxy/PORT/ is served by the gate as proxy/absolute/PORT/ is: a
// port Ports refuses (another user's) is refused, and the app (code-server, whose own
// absproxy would connect to any port) never sees the request.
func TestPortProxyAbsproxyIsChecked(t *testing.T) {
	g, fp, backend, base := portGate(t, nil, func(o *Options) { o.BaseURL = "/cs/" })
	fp.refuse = map[int]*PortError{9000: {Status: 403, Msg: "port 9000 on this machine is held by another user, bob (uid 1001), not by you; nothing was sent to it"}}
	for _, p := range []string{"/cs/absproxy/9000/", "/cs/absproxy/9000/x?y=1"} {
		resp, body := doReq(t, "GET", base+p, "Authorization", "token "+g.token)
		if resp.StatusCode != 403 || !strings.Contains(body, "held by another user") {
			t.Errorf("%s: %d %q; want the 403 refusal", p, resp.StatusCode, body)
		}
	}
	// A WebSocket by the cookie, with the page's own Origin, is refused the same way.
	host := strings.TrimPrefix(base, "http://")
	ck := g.cookie(host)
	resp, _ := doReq(t, "GET", base+"/cs/absproxy/9000/ws", "Cookie", ck.Name+"="+ck.Value, "Origin", base, "Connection", "Upgrade",
		"Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if resp.StatusCode != 403 {
		t.Errorf("WebSocket to absproxy/9000/: %d; want 403", resp.StatusCode)
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the app saw %d absproxy/ requests; want none", n)
	}
	// Our own port: the whole path, as code-server's absproxy passes it.
	if resp, body := doReq(t, "GET", base+"/cs/absproxy/8050/a?b=1", "Authorization", "token "+g.token); resp.StatusCode != 200 || body != "app ok" ||
		backend.last(t).RequestURI != "/cs/absproxy/8050/a?b=1" || backend.last(t).Header.Get("X-Forwarded-Prefix") != "" {
		t.Errorf("absproxy/8050/: %d %q, the port saw %+v", resp.StatusCode, body, backend.last(t))
	}
	// absproxy/ outside the base URL is the app's.
	doReq(t, "GET", base+"/absproxy/9000/", "Authorization", "token "+g.token)
	if n := g.app.count(); n != 1 {
		t.Errorf("the app saw %d requests; want the one outside the base URL", n)
	}
}

// With LeaveProxyToApp, {base}proxy/ is the app's (jupyter-server-proxy's own), as it
// was before tether served ports; forward streams are still tether's.
func TestPortProxyLeftToApp(t *testing.T) {
	g, fp, backend, base := portGate(t, nil, func(o *Options) { o.Ports.LeaveProxyToApp = true })
	for _, p := range []string{"/proxy/8050/", "/proxy/localhost:8050/x", "/absproxy/8050/"} {
		resp, body := doReq(t, "GET", base+p, "Authorization", "token "+g.token)
		if resp.StatusCode != 200 || body != "app ok" || g.app.last(t).RequestURI != p {
			t.Errorf("%s: %d %q; want the main app", p, resp.StatusCode, body)
		}
	}
	if backend.count() > 0 {
		t.Errorf("the port saw %d requests", backend.count())
	}
	resp, _ := doReq(t, "GET", base+"/_tether/forward/8050", "Authorization", "token "+g.token)
	if resp.StatusCode != 200 {
		t.Errorf("forward check with LeaveProxyToApp: %d", resp.StatusCode)
	}
	if _, c := fp.calls(); len(c) != 1 {
		t.Errorf("checked %v", c)
	}
}

// Without Ports nothing changes: proxy/ is the app's, forward paths are unknown.
func TestNoPortsOption(t *testing.T) {
	g := newGate(t, nil)
	w := g.do(req("GET", "/proxy/8050/", "Authorization", "token "+g.token))
	if w.Code != 200 || g.app.last(t).RequestURI != "/proxy/8050/" {
		t.Errorf("/proxy/ without Ports: %d", w.Code)
	}
	w = g.do(req("GET", "/_tether/forward/8050", "Authorization", "token "+g.token))
	if w.Code != 404 {
		t.Errorf("forward without Ports: %d; want 404", w.Code)
	}
	if _, err := New(Options{Token: g.token, App: g.app, Ports: &Ports{}}); err == nil {
		t.Error("Ports without Dial and Check was accepted")
	}
}

// echoTCP is a raw TCP program of the session's user: it says hello first (a server
// that speaks first, like SSH or MySQL), echoes until the client half-closes, then
// says how many bytes it got and closes. got collects what it received.
func echoTCP(t *testing.T) (addr string, got func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var all strings.Builder
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "hello\n")
				buf := make([]byte, 4096)
				n := 0
				for {
					k, err := c.Read(buf)
					if k > 0 {
						mu.Lock()
						all.Write(buf[:k])
						mu.Unlock()
						c.Write(buf[:k])
						n += k
					}
					if err != nil {
						break
					}
				}
				fmt.Fprintf(c, "\ngot %d\n", n)
			}()
		}
	}()
	return ln.Addr().String(), func() string { mu.Lock(); defer mu.Unlock(); return all.String() }
}

// openForward sends a forward request on a new connection to the gate and returns the
// connection, its reader and the response.
func openForward(t *testing.T, base, path string, hdr ...string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: localhost\r\n", path)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	io.WriteString(c, b.String())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("forward %s: %v", path, err)
	}
	return c, br, resp
}

// A forward stream: the token in Authorization, Upgrade: tether-forward, a 101, then
// the port's bytes both ways, a server that speaks first included, bytes sent right
// behind the request included, and half-close passed on.
func TestForwardStream(t *testing.T) {
	addr, got := echoTCP(t)
	fp := &fakePorts{}
	fp.add(5432, addr)
	g := newGate(t, func(o *Options) { o.Ports = fp.options() })
	base := g.served()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The request and the first bytes of the stream in one write.
	fmt.Fprintf(c, "GET /_tether/forward/5432 HTTP/1.1\r\nHost: localhost\r\nAuthorization: token %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\nearly ", g.token, ForwardProtocol)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != ForwardProtocol {
		t.Fatalf("forward: %v %v", resp, err)
	}
	io.WriteString(c, "bytes")
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello\nearly bytes\ngot 11\n"; string(rest) != want {
		t.Errorf("stream: %q; want %q", rest, want)
	}
	if got() != "early bytes" {
		t.Errorf("the port got %q", got())
	}
	if g.app.count() > 0 {
		t.Errorf("the main app saw %d requests", g.app.count())
	}

	// The check: 200 for a port that may be reached, the refusal otherwise.
	_, _, resp = openForward(t, base, "/_tether/forward/5432", "Authorization", "token "+g.token)
	if resp.StatusCode != 200 {
		t.Errorf("check: %d", resp.StatusCode)
	}
	_, _, resp = openForward(t, base, "/_tether/forward/5433", "Authorization", "token "+g.token)
	if resp.StatusCode != 502 {
		t.Errorf("check of a port nothing listens on: %d", resp.StatusCode)
	}
}

// Forward streams take the token in a header only, a plain port number only, GET only
// and the right Upgrade only; each refusal dials nothing.
func TestForwardRefusals(t *testing.T) {
	addr, got := echoTCP(t)
	fp := &fakePorts{}
	fp.add(5432, addr)
	g := newGate(t, func(o *Options) { o.Ports = fp.options() })
	base := g.served()
	ck := g.cookie("localhost")
	up := []string{"Connection", "Upgrade", "Upgrade", ForwardProtocol}
	auth := []string{"Authorization", "token " + g.token}
	wrong, _ := NewToken()
	tests := []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"no credential", "/_tether/forward/5432", up, 403}, // an upgrade without Origin or token
		{"wrong token", "/_tether/forward/5432", append([]string{"Authorization", "token " + wrong}, up...), 401},
		{"cookie only", "/_tether/forward/5432", append([]string{"Cookie", ck.Name + "=" + ck.Value, "Origin", "http://localhost"}, up...), 403},
		{"token in the URL", "/_tether/forward/5432?token=" + g.token, up, 403},
		{"token as JEP 119", "/_tether/forward/5432", append([]string{"Sec-WebSocket-Protocol", jupyterProtocol + ", " + tokenEntry(g.token)}, up...), 403},
		{"host:port", "/_tether/forward/localhost:5432", append(auth, up...), 400},
		{"another host", "/_tether/forward/127.0.0.2:5432", append(auth, up...), 400},
		{"port 0", "/_tether/forward/0", append(auth, up...), 400},
		{"port 65536", "/_tether/forward/65536", append(auth, up...), 400},
		{"encoded", "/_tether/forward/%35432", append(auth, up...), 400},
		{"dot segment", "/_tether/forward/../forward/5432", append(auth, up...), 400},
		{"trailing path", "/_tether/forward/5432/x", append(auth, up...), 400},
		{"no port", "/_tether/forward/", append(auth, up...), 400},
		{"WebSocket upgrade", "/_tether/forward/5432", append(auth, "Connection", "Upgrade", "Upgrade", "websocket"), 400},
		{"no Connection: Upgrade", "/_tether/forward/5432", append(auth, "Upgrade", ForwardProtocol), 400},
	}
	for _, tt := range tests {
		_, _, resp := openForward(t, base, tt.path, tt.hdr...)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	// POST is not a stream.
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /_tether/forward/5432 HTTP/1.1\r\nHost: localhost\r\nAuthorization: token %s\r\nContent-Length: 0\r\n\r\n", g.token)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST: %v %v", resp, err)
	}
	if d, ch := fp.calls(); len(d) > 0 || len(ch) > 0 {
		t.Errorf("dialled %v, checked %v; want none", d, ch)
	}
	if got() != "" {
		t.Errorf("the port got %q", got())
	}
	// A refusal of Ports reaches the client as it says, and nothing is dialled further.
	fp.refuse = map[int]*PortError{5432: {Status: 403, Msg: "port 5432 on this machine is held by another user, bob (uid 1001); nothing was sent to it"}}
	_, _, resp := openForward(t, base, "/_tether/forward/5432", append(auth, up...)...)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !strings.Contains(string(body), "held by another user, bob") {
		t.Errorf("refused port: %d %q", resp.StatusCode, body)
	}
}

// Shutdown ends forward streams too.
func TestShutdownClosesForwardStreams(t *testing.T) {
	addr, _ := echoTCP(t)
	fp := &fakePorts{}
	fp.add(5432, addr)
	g := newGate(t, func(o *Options) { o.Ports = fp.options() })
	base := g.served()
	c, br, resp := openForward(t, base, "/_tether/forward/5432", "Authorization", "token "+g.token, "Connection", "Upgrade", "Upgrade", ForwardProtocol)
	if resp.StatusCode != 101 {
		t.Fatalf("forward: %d", resp.StatusCode)
	}
	if line, _ := br.ReadString('\n'); line != "hello\n" {
		t.Fatalf("first line %q", line)
	}
	done := make(chan error, 1)
	go func() { done <- g.s.Shutdown(t.Context()) }()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("the stream still reads after Shutdown")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the forward stream was not closed by Shutdown")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
