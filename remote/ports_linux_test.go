package remote

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
)

// recordingListener runs the helper's "listen-record" as uid: a listener on
// 127.0.0.1:0 that prints a line for every connection and every read. It returns the
// port and what it printed so far.
func recordingListener(t *testing.T, uid int) (port int, printed func() string) {
	t.Helper()
	pr, pw := io.Pipe()
	asUser(t, uid, pw, "TETHER_REMOTE_TEST_HELPER=listen-record")
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	port, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("listener as uid %d: %q %v", uid, line, err)
	}
	var mu sync.Mutex
	var out strings.Builder
	go func() {
		for {
			l, err := br.ReadString('\n')
			mu.Lock()
			out.WriteString(l)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return port, func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
}

// ownListener listens as us on network/addr, counting connections accepted; each
// connection gets "hi" and is closed once the client closes it.
func ownListener(t *testing.T, network, addr string) (port int, accepted func() int) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			go func() {
				io.WriteString(c, "hi")
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// A listener of ours is reached on 127.0.0.1 when it takes connections there (bound
// to it, or to 0.0.0.0 or ::), else on ::1; what the dial returns is connected to it.
func TestPortReacherOwnListeners(t *testing.T) {
	for _, tt := range []struct{ network, addr, want string }{
		{"tcp4", "127.0.0.1:0", "127.0.0.1"},
		{"tcp4", "0.0.0.0:0", "127.0.0.1"},
		{"tcp6", "[::1]:0", "::1"},
		{"tcp", "[::]:0", "127.0.0.1"},
	} {
		port, accepted := ownListener(t, tt.network, tt.addr)
		p := newPortReacher()
		where, err := p.where(port)
		if err != nil || where.Addr().String() != tt.want {
			t.Errorf("%s: where %v, %v; want %s", tt.addr, where, err, tt.want)
			continue
		}
		if err := p.check(port); err != nil {
			t.Errorf("%s: check: %v", tt.addr, err)
		}
		c, err := p.dial(context.Background(), port)
		if err != nil {
			t.Errorf("%s: dial: %v", tt.addr, err)
			continue
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 2)
		io.ReadFull(c, b)
		c.Close()
		if string(b) != "hi" || accepted() != 1 {
			t.Errorf("%s: read %q, accepted %d", tt.addr, b, accepted())
		}
	}
}

// Another user's listener: refused from the listening table, naming the user and the
// port, without a connection to it, let alone a byte.
func TestPortReacherOtherUsersListener(t *testing.T) {
	needRootLinux(t)
	port, printed := recordingListener(t, nobody)
	p := newPortReacher()
	for name, err := range map[string]error{"check": p.check(port), "dial": func() error {
		c, err := p.dial(context.Background(), port)
		if c != nil {
			c.Close()
		}
		return err
	}()} {
		var pe *tokenserver.PortError
		if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || !strings.Contains(pe.Msg, "uid 65534") ||
			!strings.Contains(pe.Msg, "port "+strconv.Itoa(port)+" ") || !strings.Contains(pe.Msg, "held by another user") {
			t.Errorf("%s: %v; want a 403 naming uid 65534 and port %d", name, err, port)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := printed(); got != "" {
		t.Errorf("the other user's listener saw: %q; want nothing at all", got)
	}
}

// The race backstop: a connection that reached another user's listener anyway (the
// port changed hands between the look and the dial) is refused by judgePort before a
// byte is sent on it.
func TestJudgePortOtherUser(t *testing.T) {
	needRootLinux(t)
	port, printed := recordingListener(t, nobody)
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	err = judgePort(c, port)
	c.Close()
	var pe *tokenserver.PortError
	if !errors.As(err, &pe) || pe.Status != 403 || !strings.Contains(pe.Msg, "uid 65534") {
		t.Fatalf("judgePort: %v; want a 403 naming uid 65534", err)
	}
	waitUntil(t, 5*time.Second, "the listener to see the connection", func() bool { return strings.Contains(printed(), "conn") })
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(printed(), "got") {
		t.Errorf("bytes reached the other user's listener: %q", printed())
	}
	// Our own connection passes.
	own, _ := ownListener(t, "tcp4", "127.0.0.1:0")
	c2, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(own))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := judgePort(c2, own); err != nil {
		t.Errorf("our own listener: %v", err)
	}
}

// Denied ports (the session's app, the server's own) and ports nothing listens on are
// refused without a connection.
func TestPortReacherDeniedAndClosed(t *testing.T) {
	port, accepted := ownListener(t, "tcp4", "127.0.0.1:0")
	p := newPortReacher()
	p.deny(port, "the session's app itself: open the session's own URL")
	c, err := p.dial(context.Background(), port)
	var pe *tokenserver.PortError
	if c != nil || !errors.As(err, &pe) || pe.Status != 403 || pe.Msg != "port "+strconv.Itoa(port)+" is the session's app itself: open the session's own URL" {
		t.Errorf("denied port: %v, %v", c, err)
	}
	if accepted() != 0 {
		t.Errorf("the denied port was connected to")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	err = p.check(closed)
	if !errors.As(err, &pe) || pe.Status != 502 || !strings.Contains(pe.Msg, "nothing listens on port "+strconv.Itoa(closed)) {
		t.Errorf("closed port: %v", err)
	}
}

// Through a real serve: the built-in app's session reaches a server of ours at
// proxy/PORT/ and refuses another user's; its app's own port is refused when the app
// is on TCP; forward streams check ports the same way.
func TestServeSecondaryPorts(t *testing.T) {
	tempRoot(t)
	var seen []string
	var mu sync.Mutex
	dash := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.RequestURI+" "+r.Header.Get("X-Forwarded-Prefix"))
		mu.Unlock()
		io.WriteString(w, "dashboard")
	}))
	defer dash.Close()
	dport := strconv.Itoa(dash.Listener.Addr().(*net.TCPAddr).Port)
	r := startServe(t, ServeOptions{})
	defer r.stop(t)
	c := socketClient(r.rec.Socket, nil)
	if code, body := fetch(t, c, "http://localhost/proxy/"+dport+"/status?x=1", r.rec.Token); code != 200 || body != "dashboard" {
		t.Errorf("proxy/%s/: %d %q", dport, code, body)
	}
	if code, _ := fetch(t, c, "http://localhost/proxy/"+dport+"/status", ""); code != 401 {
		t.Errorf("without the token: %d", code)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != "/status?x=1 /proxy/"+dport {
		t.Errorf("the dashboard saw %q", seen)
	}
	mu.Unlock()
	if code, body := fetch(t, c, "http://localhost/_tether/forward/"+dport, r.rec.Token); code != 200 {
		t.Errorf("forward check: %d %q", code, body)
	}

	if isRoot() {
		nport, printed := recordingListener(t, nobody)
		code, body := fetch(t, c, "http://localhost/proxy/"+strconv.Itoa(nport)+"/", r.rec.Token)
		if code != 403 || !strings.Contains(body, "held by another user") || !strings.Contains(body, "uid 65534") {
			t.Errorf("another user's port: %d %q", code, body)
		}
		time.Sleep(200 * time.Millisecond)
		if got := printed(); got != "" {
			t.Errorf("the other user's listener saw %q", got)
		}
	}

	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("the app's own port: needs python3")
	}
	r2 := startServe(t, ServeOptions{Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}, ReadyTimeout: 30 * time.Second})
	defer r2.stop(t)
	msgs := r2.stderr.String()
	i := strings.Index(msgs, "listens on 127.0.0.1:")
	if i < 0 {
		t.Fatalf("no app port in the progress:\n%s", msgs)
	}
	aport := strings.TrimRight(strings.Fields(msgs[i+len("listens on 127.0.0.1:"):])[0], ",")
	c2 := socketClient(r2.rec.Socket, nil)
	code, body := fetch(t, c2, "http://localhost/proxy/"+aport+"/", r2.rec.Token)
	if code != 403 || !strings.Contains(body, "the session's app itself") {
		t.Errorf("the app's own port %s: %d %q", aport, code, body)
	}
	// --no-port-proxy: proxy/ is the app's (http.server answers 404 for it).
	r3 := startServe(t, ServeOptions{Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}, ReadyTimeout: 30 * time.Second, NoPortProxy: true})
	defer r3.stop(t)
	if code, body := fetch(t, socketClient(r3.rec.Socket, nil), "http://localhost/proxy/"+dport+"/", r3.rec.Token); code != 404 || strings.Contains(body, "dashboard") {
		t.Errorf("--no-port-proxy: %d %.100q; want the app's 404", code, body)
	}
}

// TETHER_NO_AUTH=1 with --listen lets every user of the machine reach the server: they
// get the app (what the user asked for), but not the user's other ports through it.
// Another user asks the server for a forward stream and for proxy/PORT/ to our
// listener; neither reaches it. Without --listen (the socket only: our user's) the
// ports are served as with a token.
func TestServeNoAuthListenServesNoOtherPorts(t *testing.T) {
	tempRoot(t)
	t.Setenv("TETHER_NO_AUTH", "1")
	port, accepted := ownListener(t, "tcp4", "127.0.0.1:0")
	ps := strconv.Itoa(port)
	r := startServe(t, ServeOptions{Listen: "127.0.0.1:0"})
	defer r.stop(t)
	if !strings.Contains(r.stderr.String(), "your other loopback ports are not served") {
		t.Errorf("no note that ports are off: %q", r.stderr.String())
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(r.rec.URL, "http://"), "/")
	for _, req := range []string{
		"GET /_tether/forward/" + ps + " HTTP/1.1\r\nHost: " + addr + "\r\nOrigin: http://" + addr + "\r\nConnection: Upgrade\r\nUpgrade: tether-forward\r\n\r\n",
		"GET /proxy/" + ps + "/ HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n",
	} {
		var out syncBuffer
		env := []string{"TETHER_REMOTE_TEST_HELPER=raw-request", "TETHER_REMOTE_TEST_ADDR=" + addr, "TETHER_REMOTE_TEST_REQUEST=" + req}
		who := "another user (uid 65534)"
		if isRoot() {
			asUser(t, nobody, &out, env...)
			waitUntil(t, 10*time.Second, "the helper's answer", func() bool {
				return strings.Contains(out.String(), "status") || strings.Contains(out.String(), "dial:")
			})
			time.Sleep(300 * time.Millisecond) // its "probe", after a 101
		} else {
			who = "a client" // the server cannot tell users apart on TCP; the point is the same
			cmd := exec.Command(helperBinary(t), "-test.run=^$")
			cmd.Env, cmd.Stdout = env, &out
			cmd.Run()
		}
		if got := out.String(); !strings.Contains(got, "status") || strings.Contains(got, " 101 ") || strings.Contains(got, " 200 ") {
			t.Errorf("%s asked %q: %s; want a refusal", who, strings.SplitN(req, "\r\n", 2)[0], got)
		}
	}
	if n := accepted(); n != 0 {
		t.Errorf("our listener on port %d accepted %d connections through a server without a token", port, n)
	}

	// The socket only: our user's alone, so the ports are served.
	r2 := startServe(t, ServeOptions{})
	defer r2.stop(t)
	if code, body := fetch(t, socketClient(r2.rec.Socket, nil), "http://localhost/_tether/forward/"+ps, ""); code != 200 {
		t.Errorf("TETHER_NO_AUTH=1 on the socket only: forward check %d %q; want 200", code, body)
	}
}

// The server's own --listen port is not a secondary port: proxy/PORT/ and a forward
// check of it are refused saying why (a request to itself would only go round).
func TestServeRefusesItsOwnListenPort(t *testing.T) {
	tempRoot(t)
	r := startServe(t, ServeOptions{Listen: "127.0.0.1:0"})
	defer r.stop(t)
	_, ps, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(r.rec.URL, "http://"), "/"))
	if err != nil {
		t.Fatalf("URL %q: %v", r.rec.URL, err)
	}
	c := socketClient(r.rec.Socket, nil)
	for _, p := range []string{"/proxy/" + ps + "/", "/proxy/absolute/" + ps + "/", "/_tether/forward/" + ps} {
		if code, body := fetch(t, c, "http://localhost"+p, r.rec.Token); code != 403 || !strings.Contains(body, "port "+ps+" is this tether server's own") {
			t.Errorf("%s: %d %q; want 403 naming the server's own port", p, code, body)
		}
	}
}
