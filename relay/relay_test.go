package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// logBuf collects a router's or an end's log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logBuf) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// testRelay is a router on 127.0.0.1 and what a test needs of it.
type testRelay struct {
	srv  *Server
	hs   *httptest.Server
	url  string
	key  ed25519.PrivateKey
	logs *logBuf
	toks []string // every token minted, none of which may be logged
}

func newRelay(t *testing.T, lim Limits) *testRelay {
	t.Helper()
	r := &testRelay{key: testKey(t, "r"), logs: &logBuf{}}
	r.srv = &Server{Key: r.key.Public().(ed25519.PublicKey), Logf: r.logs.logf, Limits: lim}
	r.hs = httptest.NewServer(r.srv)
	r.url = "ws://" + r.hs.Listener.Addr().String()
	t.Cleanup(func() {
		r.srv.Close()
		r.hs.Close()
		r.checkLogs(t)
	})
	return r
}

// checkLogs fails if a token, or the signature that makes it one, was logged.
func (r *testRelay) checkLogs(t *testing.T) {
	t.Helper()
	logs := r.logs.text()
	for _, tok := range r.toks {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, tok) || strings.Contains(logs, sig) {
			t.Errorf("the relay logged a token:\n%s", logs)
		}
	}
}

func (r *testRelay) token(t *testing.T, role Role, portal, name string) string {
	t.Helper()
	tok, err := Mint(r.key, role, portal, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r.toks = append(r.toks, tok)
	return tok
}

func fastBackoff(int) time.Duration { return 20 * time.Millisecond }

func (r *testRelay) listen(t *testing.T, portal string) net.Listener {
	t.Helper()
	l, err := Listen(context.Background(), r.url, r.token(t, RoleHost, portal, "box-"+portal), &Options{backoff: fastBackoff})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	waitFor(t, "the host to connect", func() bool { return r.hostOf(portal) != nil })
	return l
}

func (r *testRelay) hostOf(portal string) *hostConn {
	r.srv.init()
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	return r.srv.hosts[portal]
}

func (r *testRelay) pendingCount() int {
	r.srv.init()
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	return len(r.srv.pending)
}

func (r *testRelay) dial(t *testing.T, portal string) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Dial(ctx, r.url, r.token(t, RoleClient, portal, "alice"), portal, nil)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// acceptAsync runs Accept in a goroutine: the result arrives on the channel.
type accepted struct {
	c   net.Conn
	err error
}

func acceptAsync(l net.Listener) chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

func recv(t *testing.T, ch chan accepted) net.Conn {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("Accept: %v", a.err)
		}
		t.Cleanup(func() { a.c.Close() })
		return a.c
	case <-time.After(10 * time.Second):
		t.Fatal("Accept returned nothing in 10 s")
	}
	return nil
}

// roundTrip checks that bytes go both ways between a client stream and a host stream.
func roundTrip(t *testing.T, client, host net.Conn, msg string) {
	t.Helper()
	if _, err := client.Write([]byte(msg)); err != nil {
		t.Fatalf("client write: %v", err)
	}
	buf := make([]byte, len(msg))
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(host, buf); err != nil || string(buf) != msg {
		t.Fatalf("host read %q, %v; want %q", buf, err, msg)
	}
	if _, err := host.Write([]byte(strings.ToUpper(msg))); err != nil {
		t.Fatalf("host write: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != strings.ToUpper(msg) {
		t.Fatalf("client read %q, %v; want %q", buf, err, strings.ToUpper(msg))
	}
	host.SetReadDeadline(time.Time{})
	client.SetReadDeadline(time.Time{})
}

func TestPairing(t *testing.T) {
	r := newRelay(t, Limits{})
	l := r.listen(t, "lab")
	ch := acceptAsync(l)
	c, err := r.dial(t, "lab")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	h := recv(t, ch)
	roundTrip(t, c, h, "hello through the relay")
	// Closing one end is EOF at the other.
	c.Close()
	h.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := h.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("host Read after the client closed = %d, %v; want io.EOF", n, err)
	}
	logs := r.logs.text()
	for _, want := range []string{"host portal=lab name=box-lab from 127.0.0.1:", "client portal=lab name=alice from 127.0.0.1:", "paired with host box-lab"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestRefusals: the router's answers before the upgrade, and the ends' errors.
func TestRefusals(t *testing.T) {
	r := newRelay(t, Limits{})
	r.listen(t, "lab")
	other := &testRelay{key: testKey(t, "o")}
	tests := []struct {
		name, path, token string
		status            int
		msg               string
	}{
		{"no token", "/v1/connect?portal=lab", "", 401, "needs a token"},
		{"garbage token", "/v1/connect?portal=lab", "x.y.z", 401, "refused the token"},
		{"another relay's token", "/v1/connect?portal=lab", other.token(t, RoleClient, "lab", "eve"), 401, "signature is not this relay's"},
		{"host token as client", "/v1/connect?portal=lab", r.token(t, RoleHost, "lab", "box"), 403, "a host token, not a client token"},
		{"client token for another portal", "/v1/connect?portal=lab", r.token(t, RoleClient, "lab2", "eve"), 403, "for portal lab2, not lab"},
		{"client token as host", "/v1/host", r.token(t, RoleClient, "lab", "eve"), 403, "a client token, not a host token"},
		{"no host", "/v1/connect?portal=empty", r.token(t, RoleClient, "empty", "alice"), 503, "no host is connected for portal empty"},
		{"bad portal", "/v1/connect?portal=a%20b", r.token(t, RoleClient, "lab", "alice"), 400, "not valid"},
		{"unknown accept", "/v1/accept?id=nope", r.token(t, RoleHost, "lab", "box"), 404, "no client is waiting"},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.token != "" {
			h.Set("Authorization", "Bearer "+tt.token)
		}
		_, resp, err := websocket.DefaultDialer.Dial(r.url+tt.path, h)
		if err == nil || resp == nil {
			t.Errorf("%s: dial succeeded (%v)", tt.name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.msg) || strings.Count(string(body), "\n") != 1 {
			t.Errorf("%s: %d %q; want %d with %q on one line", tt.name, resp.StatusCode, body, tt.status, tt.msg)
		}
	}
	// A browser page's WebSocket (an Origin header) is refused whatever it carries.
	h := http.Header{"Authorization": {"Bearer " + r.token(t, RoleClient, "lab", "alice")}, "Origin": {"https://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial(r.url+"/v1/connect?portal=lab", h); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("a handshake with an Origin was not refused with 403: %v", err)
	}
	// Dial turns the 503 into an error with the router's words.
	_, err := r.dial(t, "empty")
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != 503 || err.Error() != "relay: no host is connected for portal empty (HTTP 503)" {
		t.Errorf("Dial to a portal with no host = %v", err)
	}
	// Listen with a client token fails at once, for good.
	_, err = Listen(context.Background(), r.url, r.token(t, RoleClient, "lab", "eve"), nil)
	if !errors.As(err, &re) || !re.Permanent() {
		t.Errorf("Listen with a client token = %v; want a permanent refusal", err)
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"wss://relay.example.org", "wss://relay.example.org/v1/host", ""},
		{"https://relay.example.org:8443/base/", "wss://relay.example.org:8443/base/v1/host", ""},
		{"ws://127.0.0.1:9000", "ws://127.0.0.1:9000/v1/host", ""},
		{"ws://[::1]:9000", "ws://[::1]:9000/v1/host", ""},
		{"http://localhost:9000", "ws://localhost:9000/v1/host", ""},
		{"ws://relay.example.org", "", "in the clear; use wss://"},
		{"http://10.0.0.1", "", "in the clear; use wss://"},
		{"wss://u:p@relay.example.org", "", "user name or password"},
		{"ftp://relay.example.org", "", "not valid"},
		{"relay.example.org", "", "not valid"},
	}
	for _, tt := range tests {
		got, err := endpoint(tt.in, pathHost, nil)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("endpoint(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestNewerHostWins(t *testing.T) {
	r := newRelay(t, Limits{})
	old := r.listen(t, "lab")
	first := r.hostOf("lab")
	oldAccept := acceptAsync(old)
	newer := r.listen(t, "lab")
	waitFor(t, "the newer host to take over", func() bool { h := r.hostOf("lab"); return h != nil && h != first })
	select {
	case a := <-oldAccept:
		if a.err == nil || !strings.Contains(a.err.Error(), "a newer host took over portal lab") {
			t.Errorf("the old host's Accept = %v, %v; want the takeover", a.c, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old host's Accept did not end")
	}
	ch := acceptAsync(newer)
	c, err := r.dial(t, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, recv(t, ch), "to the newer host")
	if !strings.Contains(r.logs.text(), "replacing the host from 127.0.0.1:") {
		t.Errorf("the takeover is not logged:\n%s", r.logs.text())
	}
}

// rawHost is a host control connection the test drives by hand.
func rawHost(t *testing.T, r *testRelay, portal string) *websocket.Conn {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + r.token(t, RoleHost, portal, "raw-"+portal)}}
	ws, _, err := websocket.DefaultDialer.Dial(r.url+pathHost, h)
	if err != nil {
		t.Fatalf("raw host: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	waitFor(t, "the raw host", func() bool { return r.hostOf(portal) != nil })
	return ws
}

// TestWrongPortalNeverReachesHost: a client of portal a is announced to a's host only,
// and b's host cannot take a's stream even with its id.
func TestWrongPortalNeverReachesHost(t *testing.T) {
	r := newRelay(t, Limits{})
	hostA := rawHost(t, r, "a")
	hostB := r.listen(t, "b")
	bAccept := acceptAsync(hostB)
	done := make(chan error, 1)
	go func() {
		c, err := r.dial(t, "a")
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	hostA.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m connectMsg
	if err := hostA.ReadJSON(&m); err != nil || m.Connect == "" {
		t.Fatalf("host a got %+v, %v; want a connect", m, err)
	}
	h := http.Header{"Authorization": {"Bearer " + r.token(t, RoleHost, "b", "box-b")}}
	_, resp, err := websocket.DefaultDialer.Dial(r.url+pathAccept+"?id="+m.Connect, h)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("b's host accepting a's stream: %v, %v; want 403", resp, err)
	}
	// a's own host still can.
	h = http.Header{"Authorization": {"Bearer " + r.token(t, RoleHost, "a", "box-a")}}
	ws, _, err := websocket.DefaultDialer.Dial(r.url+pathAccept+"?id="+m.Connect, h)
	if err != nil {
		t.Fatalf("a's host accepting: %v", err)
	}
	ws.Close()
	if err := <-done; err != nil {
		t.Errorf("the client of a: %v", err)
	}
	select {
	case a := <-bAccept:
		t.Errorf("b's host accepted %v, %v", a.c, a.err)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestSlowClientDoesNotStallAnother: one host streams to two clients; the first
// stops reading, the second still gets its data.
func TestSlowClientDoesNotStallAnother(t *testing.T) {
	r := newRelay(t, Limits{})
	l := r.listen(t, "lab")
	const total = 32 << 20
	var hostWG sync.WaitGroup
	t.Cleanup(hostWG.Wait)
	serve := func(c net.Conn) {
		defer hostWG.Done()
		buf := make([]byte, 32<<10)
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
	var conns [2]net.Conn
	for i := range conns {
		ch := acceptAsync(l)
		c, err := r.dial(t, "lab")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
		hostWG.Add(1)
		go serve(recv(t, ch))
	}
	// conns[0] reads nothing. conns[1] reads all of it.
	conns[1].SetReadDeadline(time.Now().Add(60 * time.Second))
	n, err := io.CopyN(io.Discard, conns[1], total)
	if err != nil || n != total {
		t.Fatalf("the second client read %d bytes, %v; want %d while the first read none", n, err, total)
	}
	conns[0].Close()
}

func TestPendingLimits(t *testing.T) {
	r := newRelay(t, Limits{PendingPerPortal: 2, Pending: 3, AcceptTimeout: 30 * time.Second})
	rawHost(t, r, "a") // never accepts
	rawHost(t, r, "b")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wait := func(portal string) {
		tok := r.token(t, RoleClient, portal, "alice")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := Dial(ctx, r.url, tok, portal, nil); err == nil {
				c.Close()
			}
		}()
	}
	wait("a")
	wait("a")
	waitFor(t, "two pending clients", func() bool { return r.pendingCount() == 2 })
	_, err := r.dial(t, "a")
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != 503 || !strings.Contains(re.Msg, "2 connections to portal a are waiting") {
		t.Errorf("a third client of a: %v; want 503 (per portal)", err)
	}
	wait("b")
	waitFor(t, "three pending clients", func() bool { return r.pendingCount() == 3 })
	_, err = r.dial(t, "b")
	if !errors.As(err, &re) || re.Status != 503 || !strings.Contains(re.Msg, "too many connections waiting") {
		t.Errorf("a fourth client: %v; want 503 (overall)", err)
	}
	cancel()
	waitFor(t, "the clients that gave up to be forgotten", func() bool { return r.pendingCount() == 0 })
}

func TestAcceptTimeout(t *testing.T) {
	r := newRelay(t, Limits{AcceptTimeout: 200 * time.Millisecond})
	rawHost(t, r, "lab")
	_, err := r.dial(t, "lab")
	var re *RefusedError
	if !errors.As(err, &re) || re.Status != 504 || !strings.Contains(re.Msg, "did not answer within 200ms") {
		t.Errorf("Dial to a host that never answers: %v; want 504", err)
	}
	if n := r.pendingCount(); n != 0 {
		t.Errorf("%d connections still pending", n)
	}
}

func TestHostsPerAddr(t *testing.T) {
	r := newRelay(t, Limits{HostsPerAddr: 2})
	r.listen(t, "a")
	r.listen(t, "b")
	_, err := Listen(context.Background(), r.url, r.token(t, RoleHost, "c", "box"), &Options{backoff: fastBackoff})
	if err == nil {
		// 429 heals; Listen keeps trying: the router must still hold two hosts only.
		time.Sleep(100 * time.Millisecond)
	}
	if n := r.srv.HostCount(); n != 2 {
		t.Errorf("%d hosts from one address; the limit is 2", n)
	}
	if !strings.Contains(r.logs.text(), "refused: 2 hosts from this address already") {
		t.Errorf("the refusal is not logged:\n%s", r.logs.text())
	}
}

// TestOversizeMessage: a message over 64 KiB closes its stream at both ends; one of
// exactly 64 KiB passes.
func TestOversizeMessage(t *testing.T) {
	r := newRelay(t, Limits{})
	l := r.listen(t, "lab")
	ch := acceptAsync(l)
	h := http.Header{"Authorization": {"Bearer " + r.token(t, RoleClient, "lab", "alice")}}
	ws, _, err := websocket.DefaultDialer.Dial(r.url+pathConnect+"?portal=lab", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	host := recv(t, ch)
	if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, MaxMessage)); err != nil {
		t.Fatal(err)
	}
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(host, make([]byte, MaxMessage)); err != nil {
		t.Fatalf("a 64 KiB message: read %d, %v", n, err)
	}
	ws.WriteMessage(websocket.BinaryMessage, make([]byte, MaxMessage+1))
	// The router may pass on the frames before the one that crosses the limit.
	_, err = io.Copy(io.Discard, host)
	var sc *StreamClosedError
	if !errors.As(err, &sc) || sc.Code != websocket.CloseMessageTooBig {
		t.Errorf("the host's Read after an oversize message = %v; want a close 1009", err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("the client after its oversize message = %v; want a close 1009", err)
	}
}

// TestHostLiveness: a host that answers no ping is dropped; one that does is kept.
func TestHostLiveness(t *testing.T) {
	r := newRelay(t, Limits{PingInterval: 100 * time.Millisecond})
	r.listen(t, "alive")
	rawHost(t, r, "dead") // never reads, so never answers a ping
	waitFor(t, "the silent host to be dropped", func() bool { return r.hostOf("dead") == nil })
	time.Sleep(400 * time.Millisecond) // four ping intervals
	if r.hostOf("alive") == nil {
		t.Error("the host that answers pings was dropped")
	}
	if !strings.Contains(r.logs.text(), "host portal=dead name=raw-dead from 127.0.0.1:") {
		t.Errorf("logs:\n%s", r.logs.text())
	}
}

// TestRelayRestart: the relay goes away and comes back on the same address; the
// host's Listen reconnects by itself and Accept keeps working.
func TestRelayRestart(t *testing.T) {
	key := testKey(t, "r")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	start := func(ln net.Listener) (*Server, *http.Server) {
		s := &Server{Key: key.Public().(ed25519.PublicKey)}
		hs := &http.Server{Handler: s}
		go hs.Serve(ln)
		return s, hs
	}
	s1, hs1 := start(ln)
	url := "ws://" + addr
	logs := &logBuf{}
	hostTok, _ := Mint(key, RoleHost, "lab", "box", time.Hour)
	clientTok, _ := Mint(key, RoleClient, "lab", "alice", time.Hour)
	var waits atomic.Int32 // backoffs waited: reconnect attempts
	backoff := func(n int) time.Duration { waits.Add(1); return fastBackoff(n) }
	l, err := Listen(context.Background(), url, hostTok, &Options{backoff: backoff, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stream := func(s *Server) {
		t.Helper()
		waitFor(t, "the host", func() bool { return s.HostCount() == 1 })
		ch := acceptAsync(l)
		c, err := Dial(context.Background(), url, clientTok, "lab", nil)
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		roundTrip(t, c, recv(t, ch), "across a restart")
	}
	stream(s1)
	s1.Close()
	hs1.Close()
	// Down for several attempts, each refused alike: told once.
	before := waits.Load()
	waitFor(t, "five attempts", func() bool { return waits.Load() >= before+5 })
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening again on %s: %v", addr, err)
	}
	s2, hs2 := start(ln2)
	defer func() { s2.Close(); hs2.Close() }()
	stream(s2)
	if !strings.Contains(logs.text(), "reconnected to "+addr) {
		t.Errorf("the host's logs:\n%s", logs.text())
	}
	refused := "relay: cannot reach the relay at " + addr + ": connection refused (is tether relay running there?); trying again"
	if n := strings.Count(logs.text(), refused); n != 1 || strings.Contains(logs.text(), "relay: relay:") {
		t.Errorf("%d attempts refused; the host's logs say %q %d times (want once, one prefix):\n%s", waits.Load()-before, refused, n, logs.text())
	}
	for _, tok := range []string{hostTok, clientTok} {
		if strings.Contains(logs.text(), tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Errorf("the host logged a token:\n%s", logs.text())
		}
	}
}

// TestWSS: the same over TLS (the wss:// path a real relay takes).
func TestWSS(t *testing.T) {
	key := testKey(t, "r")
	s := &Server{Key: key.Public().(ed25519.PublicKey)}
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case below
	hs.StartTLS()
	defer func() { s.Close(); hs.Close() }()
	url := "wss://" + hs.Listener.Addr().String()
	o := &Options{TLS: hs.Client().Transport.(*http.Transport).TLSClientConfig, backoff: fastBackoff}
	hostTok, _ := Mint(key, RoleHost, "lab", "box", time.Hour)
	clientTok, _ := Mint(key, RoleClient, "lab", "alice", time.Hour)
	l, err := Listen(context.Background(), url, hostTok, o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	waitFor(t, "the host", func() bool { return s.HostCount() == 1 })
	ch := acceptAsync(l)
	c, err := Dial(context.Background(), url, clientTok, "lab", o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, recv(t, ch), "over TLS")
	// Without the test CA, the certificate is refused, in one line and for good.
	addr := hs.Listener.Addr().String()
	_, err = Dial(context.Background(), url, clientTok, "lab", &Options{TLS: &tls.Config{}})
	var ue *UntrustedError
	want := "relay: the certificate of the relay at " + addr + " is not trusted: it is not signed by an authority this machine trusts (for a relay with a private CA, give the CA's certificate with --relay-ca FILE)"
	if !errors.As(err, &ue) || !ue.Permanent() || err.Error() != want {
		t.Errorf("Dial with an untrusted certificate: %v; want %q", err, want)
	}
	// The right CA, another name: said so.
	byName := o.TLS.Clone()
	byName.ServerName = "relay.example.org"
	_, err = Dial(context.Background(), url, clientTok, "lab", &Options{TLS: byName})
	if !errors.As(err, &ue) || !strings.HasSuffix(err.Error(), "is not trusted: it is for example.com, *.example.com, 127.0.0.1, ::1, not relay.example.org") {
		t.Errorf("Dial to a relay whose certificate names another host: %v", err)
	}
	// A listener with no TLS under a wss:// URL, and a relay that is not there.
	plain := httptest.NewServer(s)
	defer plain.Close()
	if _, err := Dial(context.Background(), "wss://"+plain.Listener.Addr().String(), clientTok, "lab", o); err == nil || !strings.HasSuffix(err.Error(), "does not answer in TLS (ws:// for a relay on loopback, wss:// elsewhere)") {
		t.Errorf("wss:// to a plain relay: %v", err)
	}
	plain.Close()
	if _, err := Dial(context.Background(), "ws://"+plain.Listener.Addr().String(), clientTok, "lab", o); err == nil ||
		err.Error() != "relay: cannot reach the relay at "+plain.Listener.Addr().String()+": connection refused (is tether relay running there?)" {
		t.Errorf("a relay that is not there: %v", err)
	}
}

// TestConcurrentReadWrite: several goroutines read and write one stream at once
// (the race detector checks the adapter); every byte arrives once.
func TestConcurrentReadWrite(t *testing.T) {
	r := newRelay(t, Limits{})
	l := r.listen(t, "lab")
	ch := acceptAsync(l)
	c, err := r.dial(t, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := recv(t, ch)
	go io.Copy(h, h) // the host echoes
	const writers, each = 4, 1 << 20
	want := (each + 999) / 1000 * 1000 // what each writer sends, in writes of 1000
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bytes.Repeat([]byte{byte('a' + i)}, 1000)
			for sent := 0; sent < each; sent += len(buf) {
				c.Write(buf)
			}
		}()
	}
	var mu sync.Mutex
	counts := map[byte]int{}
	got := 0
	var rwg sync.WaitGroup
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for range 3 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			buf := make([]byte, 7000)
			for {
				mu.Lock()
				done := got >= writers*want
				mu.Unlock()
				if done {
					return
				}
				n, err := c.Read(buf)
				mu.Lock()
				for _, b := range buf[:n] {
					counts[b]++
				}
				got += n
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the echo", func() bool { mu.Lock(); defer mu.Unlock(); return got >= writers*want })
	c.Close()
	rwg.Wait()
	for i := range writers {
		if counts[byte('a'+i)] != want {
			t.Errorf("writer %c: %d bytes came back, want %d", 'a'+i, counts[byte('a'+i)], want)
		}
	}
}
