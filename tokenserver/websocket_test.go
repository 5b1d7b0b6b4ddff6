package tokenserver

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const kernelProtocol = "v1.kernel.websocket.jupyter.org"

// echoWebSocket is an app endpoint that upgrades (choosing among protocols, if any)
// and echoes every message.
func echoWebSocket(tb testing.TB, protocols []string) http.HandlerFunc {
	up := websocket.Upgrader{
		Subprotocols: protocols,
		// The gate checks Origin; this fake app trusts what reaches it.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			fmt.Fprint(w, "app ok")
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}
}

// startBackend serves app over TCP or a Unix socket, like the app behind tether,
// until the test ends, and returns its Upstream.
func startBackend(tb testing.TB, network string, app http.Handler) Upstream {
	tb.Helper()
	srv := httptest.NewUnstartedServer(app)
	up := Upstream{Network: network, Address: srv.Listener.Addr().String()}
	if network == "unix" {
		srv.Listener.Close()
		path := filepath.Join(shortTempDir(tb), "app.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			tb.Fatal(err)
		}
		srv.Listener = ln
		up.Address = path
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	return up
}

// proxied builds a gate whose App is NewProxy to a backend running the recording app,
// served on TCP; it returns the gate, the backend's recorder and the gate's base URL.
func proxied(t *testing.T, network string, protocols []string, edit func(*Options)) (*gate, *recordingApp, string) {
	t.Helper()
	backend := &recordingApp{handler: echoWebSocket(t, protocols)}
	up := startBackend(t, network, backend)
	g := newGate(t, func(o *Options) {
		o.App = NewProxy(up, o.Logger)
		if edit != nil {
			edit(o)
		}
	})
	return g, backend, g.served()
}

func wsURL(base, path string) string {
	return "ws" + strings.TrimPrefix(base, "http") + path
}

func dialWS(t *testing.T, u string, h http.Header, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(u, h)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func echoOnce(t *testing.T, c *websocket.Conn) {
	t.Helper()
	c.NetConn().SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.ReadMessage()
	if err != nil || string(msg) != "ping" {
		t.Fatalf("echo: got %q, %v", msg, err)
	}
}

// tokenEntry is the JEP 119 token protocol for a token.
func tokenEntry(tok string) string {
	return jupyterProtocolEntry + url.PathEscape(tok)
}

// A valid JEP 119 pair opens the WebSocket through the gate and the
// proxy, over a TCP and a Unix-socket upstream; the response names exactly the bare
// protocol (the app chose none) or the app's choice (kernel protocol); the app sees
// none of our entries, no token anywhere, but does see the kernel protocol.
func TestWebSocketSubprotocolRoundTrip(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			// The app knows no protocol: we must name the bare one.
			g, backend, base := proxied(t, network, nil, nil)
			origin := http.Header{"Origin": {"http://evil.example"}} // token-authenticated: Origin-exempt
			c, resp, err := dialWS(t, wsURL(base, "/api/kernels/1/channels"), origin, jupyterProtocol, tokenEntry(g.token))
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			if got := resp.Header.Values("Sec-Websocket-Protocol"); len(got) != 1 || got[0] != jupyterProtocol {
				t.Errorf("response protocol %q; want exactly %q", got, jupyterProtocol)
			}
			for k, vs := range resp.Header {
				mustNotContain(t, "response header "+k, strings.Join(vs, ","), g.token)
			}
			echoOnce(t, c)
			seen := backend.last(t)
			if p := seen.Header.Values("Sec-Websocket-Protocol"); len(p) != 0 {
				t.Errorf("the app saw protocols %q; want none", p)
			}
			assertNothingOfOurs(t, seen, g.token)

			// The app chooses the kernel protocol: relayed back, the token entries still gone.
			g2, backend2, base2 := proxied(t, network, []string{kernelProtocol}, nil)
			c2, resp2, err := dialWS(t, wsURL(base2, "/ws"), nil, kernelProtocol, jupyterProtocol, tokenEntry(g2.token))
			if err != nil {
				t.Fatalf("dial with kernel protocol: %v (%v)", err, resp2)
			}
			if got := resp2.Header.Values("Sec-Websocket-Protocol"); len(got) != 1 || got[0] != kernelProtocol {
				t.Errorf("response protocol %q; want the app's choice %q", got, kernelProtocol)
			}
			echoOnce(t, c2)
			seen2 := backend2.last(t)
			if p := seen2.Header.Get("Sec-Websocket-Protocol"); p != kernelProtocol {
				t.Errorf("the app saw protocols %q; want %q alone", p, kernelProtocol)
			}
			assertNothingOfOurs(t, seen2, g2.token)
		})
	}
}

// assertNothingOfOurs checks a request the app saw carries no credential of ours.
func assertNothingOfOurs(t *testing.T, seen recorded, token string) {
	t.Helper()
	mustNotContain(t, "the app's request URI", seen.RequestURI, token)
	for k, vs := range seen.Header {
		mustNotContain(t, "the app's header "+k, strings.Join(vs, "\n"), token)
		for _, v := range vs {
			if strings.Contains(strings.ToLower(v), jupyterProtocol) {
				t.Errorf("the app saw our subprotocol in %s", k)
			}
		}
	}
	if a := seen.Header.Get("Authorization"); hasPrefixFold(a, "bearer ") || hasPrefixFold(a, "token ") {
		t.Errorf("the app saw our Authorization header")
	}
	for _, line := range seen.Header.Values("Cookie") {
		for _, part := range strings.Split(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if isOurCookie(name) {
				t.Errorf("the app saw our cookie %q", name)
			}
		}
	}
	for _, p := range splitQuery(seen.RawQuery) {
		if ourQueryParam(p) {
			t.Errorf("the app saw our query parameter %q", p.key)
		}
	}
}

// The subprotocol forms, through a real server; failures are 403 (never 101) and
// never reach the app, even when a valid cookie comes along (the bare protocol is never
// selected without a valid token).
func TestWebSocketSubprotocolForms(t *testing.T) {
	g, backend, base := proxied(t, "tcp", nil, nil)
	port := strings.Split(base, ":")[2]
	ck := g.cookie("127.0.0.1:" + port)
	wrong, _ := NewToken()
	pctAll := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	}
	tests := []struct {
		name      string
		lines     []string // Sec-WebSocket-Protocol header lines
		cookie    bool
		wantOpen  bool
		wantProto string
	}{
		{"item20-valid-pair", []string{jupyterProtocol + ", " + tokenEntry(g.token)}, false, true, jupyterProtocol},
		{"item20-valid-pair-reversed", []string{tokenEntry(g.token) + "," + jupyterProtocol}, false, true, jupyterProtocol},
		{"item21-invalid-token", []string{jupyterProtocol + ", " + tokenEntry(wrong)}, false, false, ""},
		{"item21-invalid-token-with-cookie", []string{jupyterProtocol + ", " + tokenEntry(wrong)}, true, false, ""},
		{"item21-bare-alone", []string{jupyterProtocol}, false, false, ""},
		{"item21-bare-alone-with-cookie", []string{jupyterProtocol}, true, false, ""},
		{"item22-token-without-bare", []string{tokenEntry(g.token)}, false, false, ""},
		{"item22-token-with-kernel-only", []string{kernelProtocol + ", " + tokenEntry(g.token)}, false, false, ""},
		{"item23-two-token-protocols", []string{jupyterProtocol + ", " + tokenEntry(g.token) + ", " + tokenEntry(g.token)}, false, false, ""},
		{"item23-two-token-protocols-one-wrong", []string{jupyterProtocol + ", " + tokenEntry(g.token) + ", " + tokenEntry(wrong)}, false, false, ""},
		{"item23-two-bare", []string{jupyterProtocol + ", " + jupyterProtocol + ", " + tokenEntry(g.token)}, false, false, ""},
		{"item24-split-over-lines", []string{jupyterProtocol, tokenEntry(g.token)}, false, true, jupyterProtocol},
		{"item24-split-over-three-lines", []string{jupyterProtocol, "  ", tokenEntry(g.token)}, false, true, jupyterProtocol},
		{"item25-percent-encoded", []string{jupyterProtocol + ", " + jupyterProtocolEntry + pctAll(g.token)}, false, true, jupyterProtocol},
		{"item25-malformed-escape", []string{jupyterProtocol + ", " + jupyterProtocolEntry + g.token[:10] + "%zz"}, false, false, ""},
		{"item25-truncated-escape", []string{jupyterProtocol + ", " + jupyterProtocolEntry + g.token + "%4"}, false, false, ""},
		{"empty-token-entry", []string{jupyterProtocol + ", " + jupyterProtocolEntry}, false, false, ""},
		{"double-encoded", []string{jupyterProtocol + ", " + jupyterProtocolEntry + strings.ReplaceAll(pctAll(g.token), "%", "%25")}, false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Origin": {"http://127.0.0.1:" + port}}
			for _, l := range tt.lines {
				h.Add("Sec-WebSocket-Protocol", l)
			}
			if tt.cookie {
				h.Set("Cookie", ck.Name+"="+ck.Value)
			}
			before := backend.count()
			c, resp, err := dialWS(t, wsURL(base, "/ws"), h)
			if !tt.wantOpen {
				if err == nil {
					c.Close()
					t.Fatalf("the WebSocket opened; want 403")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("got %v (%v); want 403", resp, err)
				}
				if backend.count() != before {
					t.Fatalf("the app was reached")
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v (%v)", err, resp)
			}
			if got := resp.Header.Values("Sec-Websocket-Protocol"); len(got) != 1 || got[0] != tt.wantProto {
				t.Errorf("response protocol %q; want %q", got, tt.wantProto)
			}
			echoOnce(t, c)
			assertNothingOfOurs(t, backend.last(t), g.token)
		})
	}
}

// A WebSocket handshake may carry ?token=; it is not
// redirected (a WebSocket cannot follow one) and the app does not see it.
func TestWebSocketQueryToken(t *testing.T) {
	g, backend, base := proxied(t, "unix", nil, nil)
	c, resp, err := dialWS(t, wsURL(base, "/ws?x=1&token="+g.token), http.Header{"Sec-Fetch-Mode": {"websocket"}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	echoOnce(t, c)
	seen := backend.last(t)
	if seen.RequestURI != "/ws?x=1" {
		t.Errorf("the app saw %q; want /ws?x=1", seen.RequestURI)
	}
	assertNothingOfOurs(t, seen, g.token)
}

// The cookie alone opens a WebSocket when Origin is ours (TestWebSocketOrigin has the refusals,
// in TestWebSocketOrigin); Authorization works too and is not forwarded.
func TestWebSocketCookieAndHeader(t *testing.T) {
	g, backend, base := proxied(t, "tcp", []string{kernelProtocol}, nil)
	hostport := strings.TrimPrefix(base, "http://")
	ck := g.cookie(hostport)
	h := http.Header{"Origin": {base}, "Cookie": {"_xsrf=abc; " + ck.Name + "=" + ck.Value}}
	c, resp, err := dialWS(t, wsURL(base, "/ws"), h, kernelProtocol)
	if err != nil {
		t.Fatalf("cookie dial: %v (%v)", err, resp)
	}
	echoOnce(t, c)
	seen := backend.last(t)
	assertNothingOfOurs(t, seen, g.token)
	if got := seen.Header.Get("Cookie"); got != "_xsrf=abc" {
		t.Errorf("the app saw Cookie %q; want %q", got, "_xsrf=abc")
	}
	if got := seen.Header.Get("Sec-Websocket-Protocol"); got != kernelProtocol {
		t.Errorf("the app saw protocol %q; want %q", got, kernelProtocol)
	}
	c2, resp2, err := dialWS(t, wsURL(base, "/ws"), http.Header{"Authorization": {"token " + g.token}})
	if err != nil {
		t.Fatalf("header dial: %v (%v)", err, resp2)
	}
	echoOnce(t, c2)
	assertNothingOfOurs(t, backend.last(t), g.token)
}

// OnActivity fires on WebSocket traffic, not only on the handshake, at most ~1/s.
func TestOnActivityWebSocket(t *testing.T) {
	var calls atomic.Int32
	g, _, base := proxied(t, "tcp", nil, func(o *Options) { o.OnActivity = func() { calls.Add(1) } })
	c, resp, err := dialWS(t, wsURL(base, "/ws"), nil, jupyterProtocol, tokenEntry(g.token))
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	echoOnce(t, c)
	after := calls.Load()
	if after < 1 {
		t.Fatalf("OnActivity calls after the handshake: %d; want >= 1", after)
	}
	// Traffic within the same second does not call again.
	echoOnce(t, c)
	if calls.Load() != after {
		t.Errorf("OnActivity was called again within a second")
	}
	g.s.lastActive.Store(0) // as if a second had passed
	echoOnce(t, c)
	if calls.Load() <= after {
		t.Errorf("OnActivity was not called for WebSocket traffic")
	}
}

// Shutdown closes upgraded connections, so no WebSocket outlives the server.
func TestShutdownClosesWebSockets(t *testing.T) {
	g, _, base := proxied(t, "tcp", nil, nil)
	c, resp, err := dialWS(t, wsURL(base, "/ws"), nil, jupyterProtocol, tokenEntry(g.token))
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	echoOnce(t, c)
	done := make(chan error, 1)
	go func() { done <- g.s.Shutdown(t.Context()) }()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("the WebSocket still reads after Shutdown")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the WebSocket was not closed by Shutdown")
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// A built-in app may upgrade with gorilla itself (no proxy): the gate still names the
// bare protocol in the 101 when the app chose none.
func TestWebSocketDirectAppNamesBareProtocol(t *testing.T) {
	g := newGate(t, nil)
	g.app.handler = echoWebSocket(t, nil)
	base := g.served()
	c, resp, err := dialWS(t, wsURL(base, "/ws"), nil, jupyterProtocol, tokenEntry(g.token))
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	if got := resp.Header.Values("Sec-Websocket-Protocol"); len(got) != 1 || got[0] != jupyterProtocol {
		t.Errorf("response protocol %q; want %q", got, jupyterProtocol)
	}
	echoOnce(t, c)
}

// The head filter: a 101 without a protocol gets the bare one, a 101 with one is left
// alone, anything else passes unchanged, and a head split over many writes still works.
func TestHeadFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nDATA",
			"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: " + jupyterProtocol + "\r\n\r\nDATA"},
		{"HTTP/1.1 101 Switching Protocols\r\nsec-websocket-protocol: k\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-protocol: k\r\n\r\n"},
		{"HTTP/1.1 400 Bad Request\r\nX: y\r\n\r\nbody", "HTTP/1.1 400 Bad Request\r\nX: y\r\n\r\nbody"},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 3, len(tt.in)} {
			f := &headFilter{jupyter: true}
			var out strings.Builder
			done := false
			for i := 0; i < len(tt.in); i += step {
				chunk := tt.in[i:min(i+step, len(tt.in))]
				if done {
					out.WriteString(chunk)
					continue
				}
				b, d := f.feed([]byte(chunk))
				out.Write(b)
				done = d
			}
			if out.String() != tt.want {
				t.Errorf("step %d: got %q; want %q", step, out.String(), tt.want)
			}
		}
	}
}
