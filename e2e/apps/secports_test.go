//go:build unix

package apps

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/e2e"
)

// Secondary ports: the other servers a session's user runs on the remote's loopback
// (a dashboard started from a notebook), reached at {base_url}proxy/PORT/ behind the
// session's gate, and `tether forward HOST ID PORT` for raw TCP; another user's port is
// refused by both with nothing sent to it.

// secondServerPy is a Tornado app (Bokeh and Dask's dashboard are Tornado apps): a page
// at / whose script opens a WebSocket to the relative URL "ws" and shows the echo, and
// the echo at /ws with Tornado's own Origin check (the Origin's host must equal Host).
// It prints its port, then records every request's URI and headers, one JSON line
// each, in the file named by its argument.
const secondServerPy = `import json, sys
import tornado.escape, tornado.httpserver, tornado.ioloop, tornado.netutil, tornado.web, tornado.websocket

log = open(sys.argv[1], "a", buffering=1)

def record(h):
    log.write(json.dumps({"uri": h.request.uri, "headers": dict(h.request.headers)}) + "\n")

PAGE = """<!doctype html><title>second server</title>
<p>prefix: <span id="prefix">%s</span></p><p id="out">waiting</p>
<script>
const u = new URL("ws", location.href); u.protocol = u.protocol.replace("http", "ws");
const ws = new WebSocket(u);
ws.onopen = () => ws.send("hello from Chromium");
ws.onmessage = (e) => { document.getElementById("out").textContent = e.data; };
ws.onerror = () => { document.getElementById("out").textContent = "websocket error"; };
</script>"""

class Page(tornado.web.RequestHandler):
    def get(self):
        record(self)
        self.write(PAGE % tornado.escape.xhtml_escape(self.request.headers.get("X-Forwarded-Prefix", "")))

class Echo(tornado.websocket.WebSocketHandler):
    def open(self):
        record(self)
    def on_message(self, m):
        self.write_message("echo: " + m)

socks = tornado.netutil.bind_sockets(0, "127.0.0.1")
tornado.httpserver.HTTPServer(tornado.web.Application([(r"/", Page), (r"/ws", Echo)])).add_sockets(socks)
print(socks[0].getsockname()[1], flush=True)
tornado.ioloop.IOLoop.current().start()
`

// recorderPy listens on 127.0.0.1 (on the port given, else one the kernel picks),
// prints the port, then "conn" for every connection and "got N ..." for every read.
// Run as another user: whatever reaches it shows in its output.
const recorderPy = `import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    print("conn", flush=True)
    c.settimeout(5)
    try:
        while True:
            b = c.recv(4096)
            if not b:
                break
            print("got", len(b), repr(b[:64]), flush=True)
    except Exception:
        pass
    c.close()
`

// otherUsersListener runs recorderPy as u (on port, or a fresh one with 0) and returns
// its port and what it has printed since.
func otherUsersListener(t *testing.T, u e2e.User, port int) (int, func() string) {
	t.Helper()
	// The system's python3: a user's own (pyenv's shims under /root) is not another
	// user's to run.
	py := "/usr/bin/python3"
	if !e2e.IsExecutable(py) {
		py = e2e.Need(t, "python3", "python3")
	}
	args := []string{"-c", recorderPy} // no file: the test's temporary directories are ours alone
	if port != 0 {
		args = append(args, strconv.Itoa(port))
	}
	cmd := u.Command(py, args...)
	out := &e2e.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	e2e.Start(t, cmd)
	var first string
	if !e2e.WaitFor(10*time.Second, func() bool {
		first, _, _ = strings.Cut(out.String(), "\n")
		return strings.Contains(out.String(), "\n")
	}) {
		t.Fatalf("%s's listener did not start: %q", u.Name, out.String())
	}
	p, err := strconv.Atoi(first)
	if err != nil {
		t.Fatalf("%s's listener: %q", u.Name, out.String())
	}
	return p, func() string { _, rest, _ := strings.Cut(out.String(), "\n"); return rest }
}

// runInKernel starts a kernel of the launched Jupyter through the gate (the token in
// Authorization, as a script would send it) and runs code in it; it returns what the
// code printed.
func runInKernel(t *testing.T, l *e2e.Launched, code string) string {
	t.Helper()
	tok, base, kernel := e2e.StartKernel(t, l)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, wsResp, err := d.Dial("ws://"+base+"/api/kernels/"+kernel+"/channels", http.Header{"Authorization": {"token " + tok}})
	if err != nil {
		t.Fatalf("kernel WebSocket: %v (%v)", err, wsResp)
	}
	defer c.Close()
	msgID := "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	msg := map[string]any{
		"header":        map[string]any{"msg_id": msgID, "username": "e2e", "session": msgID, "msg_type": "execute_request", "version": "5.3"},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true},
	}
	if err := c.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var out strings.Builder
	for {
		var m struct {
			Channel string `json:"channel"`
			Header  struct {
				MsgType string `json:"msg_type"`
			}
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Text      string   `json:"text"`
				Status    string   `json:"status"`
				Ename     string   `json:"ename"`
				Evalue    string   `json:"evalue"`
				Traceback []string `json:"traceback"`
			}
		}
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("the kernel's answer to %q: %v (so far %q)", code, err, out.String())
		}
		if m.ParentHeader.MsgID != msgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			out.WriteString(m.Content.Text)
		case "error":
			t.Fatalf("the kernel ran %q: %s: %s", code, m.Content.Ename, m.Content.Evalue)
		case "execute_reply":
			if m.Content.Status != "ok" {
				t.Fatalf("the kernel ran %q: %s", code, m.Content.Status)
			}
			return out.String()
		}
	}
}

// TestSecondaryPortJupyterE2E: a notebook of `tether launch HOST jupyter` starts a
// second server (Tornado, as a Bokeh or Dask dashboard is) on another loopback port;
// Chromium, signed in to the session once, opens {base}proxy/PORT (the redirect adds the
// slash), the page loads and its WebSocket echoes through the gate. The second server
// sees the browser's Host (Tornado's Origin check passes on it), our prefix in
// X-Forwarded-Prefix and none of our credentials. Another Unix user's listener is
// refused with the message naming that user, for the page, a fetch and a WebSocket,
// and gets not even a connection.
func TestSecondaryPortJupyterE2E(t *testing.T) {
	needClassicNotebook(t)
	began := time.Now()
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	l := launchPreset(t, s, "jupyter")
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)

	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	script, reqLog := filepath.Join(dir, "second.py"), filepath.Join(dir, "requests.jsonl")
	if err := os.WriteFile(script, []byte(secondServerPy), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runInKernel(t, l, fmt.Sprintf(`import subprocess, sys
p = subprocess.Popen([sys.executable, %q, %q], stdout=subprocess.PIPE, text=True)
print("second", p.pid, p.stdout.readline().strip(), flush=True)`, script, reqLog))
	var pid, port int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "second %d %d", &pid, &port); err != nil || port == 0 {
		t.Fatalf("the notebook did not start the second server: %q (is python3-tornado there?)", out)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	t.Logf("the notebook started a Tornado server on port %d (pid %d) after %s", port, pid, e2e.FmtDur(time.Since(began)))

	ctx, ws := browse(t, l)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	fail := func(step string, err error) {
		shot(t, ctx, "secondary-port")
		t.Fatalf("Chromium, %s: %v (websockets %s)", step, err, ws)
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(l.Line.URL), chromedp.WaitVisible(chromedp.CSS(`#notebook_list`))); err != nil {
		fail("the notebook list", err)
	}
	pstart := time.Now()
	pbase := fmt.Sprintf("%sproxy/%d/", base, port)
	if err := chromedp.Do(tctx, chromedp.Navigate(strings.TrimSuffix(pbase, "/"))); err != nil {
		fail("proxy/PORT", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.getElementById("out") && document.getElementById("out").textContent === "echo: hello from Chromium"`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		txt, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		fail("the second server's WebSocket echo", fmt.Errorf("%v; page: %q", err, txt))
	}
	t.Logf("Chromium: proxy/%d/ loaded and its WebSocket echoed after %s", port, e2e.FmtDur(time.Since(pstart)))
	if loc, _ := chromedp.Run(tctx, chromedp.Location()); loc != pbase {
		t.Errorf("landed on %q; want %q", loc, pbase)
	}
	if prefix, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.getElementById("prefix").textContent`)); prefix != fmt.Sprintf("/proxy/%d", port) {
		t.Errorf("the second server saw X-Forwarded-Prefix %q", prefix)
	}
	if !ws.upgraded(fmt.Sprintf("/proxy/%d/ws", port)) {
		t.Errorf("no WebSocket to proxy/%d/ws got 101: %s", port, ws)
	}

	// What the second server saw: the browser's Host and Origin, nothing of ours.
	b, _ := os.ReadFile(reqLog)
	type request struct {
		URI     string            `json:"uri"`
		Headers map[string]string `json:"headers"`
	}
	var seen []request
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r request
		if json.Unmarshal([]byte(line), &r) == nil {
			seen = append(seen, r)
		}
	}
	if len(seen) < 2 || seen[0].URI != "/" || seen[len(seen)-1].URI != "/ws" {
		t.Errorf("the second server saw %+v; want / then /ws", seen)
	}
	for _, r := range seen {
		if r.Headers["Host"] != strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/") {
			t.Errorf("%s: Host %q; want the browser's", r.URI, r.Headers["Host"])
		}
		if r.URI == "/ws" && r.Headers["Origin"] != strings.TrimSuffix(base, "/") {
			t.Errorf("/ws: Origin %q", r.Headers["Origin"])
		}
	}
	if strings.Contains(string(b), tok) || strings.Contains(string(b), "tether-") || strings.Contains(strings.ToLower(string(b)), "authorization") {
		t.Errorf("the second server saw a credential of ours:\n%s", b)
	}

	// Another user's port: a fetch and a WebSocket from the second server's page (same
	// origin, the cookie goes along), and the page itself, are refused by the gate with
	// the user named; their listener gets nothing.
	t.Run("another user's port", func(t *testing.T) {
		u := e2e.OtherUser(t)
		uport, printed := otherUsersListener(t, u, 0)
		ubase := fmt.Sprintf("%sproxy/%d/", base, uport)
		want := fmt.Sprintf("403 Forbidden: port %d on this machine is held by another user, %s (uid %d), not by you; nothing was sent to it", uport, u.Name, u.UID)
		got, err := chromedp.Run(tctx, chromedp.Evaluate[string](fmt.Sprintf(`(async () => {
			const r = await fetch(%q, {method: "POST", body: "x"});
			const text = await r.text();
			const w = await new Promise((res) => {
				const s = new WebSocket(%q);
				s.onopen = () => res("open"); s.onerror = () => res("error");
			});
			return r.status + " " + w + " " + text.trim(); })()`, ubase+"x", "ws"+strings.TrimPrefix(ubase, "http")+"ws"), chromedp.EvalAwaitPromise))
		if err != nil || got != "403 error "+want {
			t.Errorf("a fetch and a WebSocket to another user's port: %q, %v; want %q", got, err, "403 error "+want)
		}
		if err := chromedp.Do(tctx, chromedp.Navigate(ubase)); err != nil {
			t.Fatalf("Chromium, another user's port: %v", err)
		}
		if body, err := chromedp.Run(tctx, chromedp.Text("body")); err != nil || strings.TrimSpace(body) != want {
			t.Errorf("another user's port in Chromium shows %q (%v); want %q", body, err, want)
		}
		time.Sleep(300 * time.Millisecond) // anything in flight would show by now
		if p := printed(); p != "" {
			t.Errorf("%s's listener on port %d saw: %q; want nothing, not even a connection", u.Name, uport, p)
		}
	})
	t.Logf("secondary port test: %s in all", e2e.FmtDur(time.Since(began)))
}

// rawServer is a TCP program of ours that is not HTTP: it says hello, reads until the
// client's half-close, and answers with the length and sha256 of what it read. It
// returns the port and a function that stops it (its listener closed).
func rawServer(t *testing.T) (int, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
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
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.WriteString(c, "hello\n")
				h := sha256.New()
				n, _ := io.Copy(h, c)
				fmt.Fprintf(c, "%d %x\n", n, h.Sum(nil))
			}()
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { ln.Close() }) }
	t.Cleanup(func() { stop(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port, stop
}

// forwardLine is `tether forward --json`'s line.
type forwardLine struct {
	LocalPort int    `json:"local_port"`
	Port      int    `json:"port"`
	Session   string `json:"session"`
}

// startForward runs `tether forward ... --json` (args from "forward" on) and waits for
// its line.
func startForward(t *testing.T, args []string, env ...string) (*e2e.Launched, forwardLine) {
	t.Helper()
	l := e2e.StartLauncher(t, append(args, "--json"), false, env...)
	var line forwardLine
	if !e2e.WaitFor(60*time.Second, func() bool {
		select {
		case <-l.Proc.Done():
			return true
		default:
		}
		return strings.Contains(l.Stdout.String(), "\n")
	}) {
		t.Fatalf("no JSON line from tether forward; stderr:\n%s", l.Stderr.String())
	}
	if err := json.Unmarshal([]byte(l.Stdout.String()), &line); err != nil || line.LocalPort == 0 {
		t.Fatalf("tether forward: stdout %q (%v); stderr:\n%s", l.Stdout.String(), err, l.Stderr.String())
	}
	return l, line
}

// moveBytes connects to the forward's local port, reads the hello, sends n random
// bytes, half-closes, and checks the program's count and digest of them.
func moveBytes(t *testing.T, localPort, n int) time.Duration {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", localPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if hello, err := br.ReadString('\n'); hello != "hello\n" {
		t.Fatalf("through the forward: %q, %v; want the program's hello", hello, err)
	}
	data := make([]byte, n)
	rand.Read(data)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	sum := sha256.Sum256(data)
	want := fmt.Sprintf("%d %s\n", n, hex.EncodeToString(sum[:]))
	if got, err := br.ReadString('\n'); got != want {
		t.Fatalf("the program's answer: %q, %v; want %q (the half-close must reach it)", got, err, want)
	}
	return time.Since(start)
}

// TestForwardE2E: `tether forward HOST ID PORT` through a real sshd moves bytes both
// ways to a raw TCP program of ours (the half-close reaches it), with the native
// transport and with --ssh openssh; a port of another Unix user is refused before the
// local port listens, naming that user, and a port that changes hands to another user
// while the forward runs is refused per connection; their listener gets nothing.
func TestForwardE2E(t *testing.T) {
	began := time.Now()
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	l := e2e.StartLauncher(t, []string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--json"}, true)
	id := l.Line.Session.ID
	port, stopProgram := rawServer(t)

	t.Run("native", func(t *testing.T) {
		start := time.Now()
		f, line := startForward(t, []string{"forward", "-F", s.Config, s.Alias, id, strconv.Itoa(port)})
		if line.Port != port || line.Session != id {
			t.Errorf("forward line %+v; want port %d, session %s", line, port, id)
		}
		d := moveBytes(t, line.LocalPort, 4<<20)
		t.Logf("4 MiB through the forward and back its digest in %s", e2e.FmtDur(d))
		moveBytes(t, line.LocalPort, 10) // a second connection: a second stream
		e2e.MustContain(t, "forward's stderr", f.Stderr.String(), fmt.Sprintf("forwarding 127.0.0.1:%d to port %d on %s (session %s)", line.LocalPort, port, s.Alias, id))
		if p := e2e.ProcessesWith(l.Line.Session.Token); len(p) > 0 {
			t.Errorf("the token is on a command line: %q", p)
		}
		f.Interrupt(t)
		e2e.MustContain(t, "forward's stderr", f.Stderr.String(), "stopped forwarding port "+strconv.Itoa(port))
		t.Logf("native forward: %s", e2e.FmtDur(time.Since(start)))
	})

	t.Run("openssh", func(t *testing.T) {
		start := time.Now()
		env, _ := e2e.OpenSSHEnv(t, s)
		f, line := startForward(t, []string{"forward", "--ssh", "openssh", "-F", s.Config, s.Alias, id, strconv.Itoa(port)}, env...)
		moveBytes(t, line.LocalPort, 1<<20)
		f.Interrupt(t)
		t.Logf("openssh forward: %s", e2e.FmtDur(time.Since(start)))
	})

	t.Run("another user's port", func(t *testing.T) {
		start := time.Now()
		u := e2e.OtherUser(t)
		uport, printed := otherUsersListener(t, u, 0)
		_, errOut, code := e2e.RunTether(t, "forward", "-F", s.Config, s.Alias, id, strconv.Itoa(uport))
		want := fmt.Sprintf("tether: cannot forward port %d on %s: port %d on %s is held by another user, %s (uid %d), not by you; nothing was sent to it; forward a port that a program of yours listens on",
			uport, s.Alias, uport, s.Alias, u.Name, u.UID)
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("forward to %s's port: exit %d, stderr %q; want 1 and %q", u.Name, code, errOut, want)
		}
		time.Sleep(300 * time.Millisecond)
		if p := printed(); p != "" {
			t.Errorf("%s's listener saw %q; want nothing", u.Name, p)
		}
		t.Logf("refused: %s", e2e.FmtDur(time.Since(start)))
	})

	t.Run("port changes hands", func(t *testing.T) {
		start := time.Now()
		u := e2e.OtherUser(t)
		f, line := startForward(t, []string{"forward", "-F", s.Config, s.Alias, id, strconv.Itoa(port)})
		moveBytes(t, line.LocalPort, 10)
		// Our program goes; another user takes its port number.
		stopProgram()
		_, printed := otherUsersListener(t, u, port)
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", line.LocalPort), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte("secret query"))
		rest, _ := io.ReadAll(c)
		c.Close()
		if len(rest) > 0 {
			t.Errorf("the local connection read %q from another user's port", rest)
		}
		want := fmt.Sprintf("a connection to port %d on %s was closed: port %d on %s is held by another user, %s (uid %d)", port, s.Alias, port, s.Alias, u.Name, u.UID)
		if !e2e.WaitFor(10*time.Second, func() bool { return strings.Contains(f.Stderr.String(), want) }) {
			t.Errorf("forward's stderr lacks %q:\n%s", want, f.Stderr.String())
		}
		time.Sleep(300 * time.Millisecond)
		if p := printed(); p != "" {
			t.Errorf("%s's listener saw %q; want nothing", u.Name, p)
		}
		f.Interrupt(t)
		t.Logf("port changed hands: %s", e2e.FmtDur(time.Since(start)))
	})
	if bytes.Contains([]byte(s.Log()), []byte(l.Line.Session.Token)) {
		t.Errorf("the token is in sshd's log")
	}
	l.Interrupt(t)
	t.Logf("forward test: %s in all", e2e.FmtDur(time.Since(began)))
}

// TestForwardSlurmE2E: `tether forward` to a Slurm session reaches the node's server
// (node:port in TLS pinned to the record, through the login node) and moves bytes to a
// raw program of ours on the node; another user's port there is refused.
func TestForwardSlurmE2E(t *testing.T) {
	began := time.Now()
	site := e2e.StartSlurmSite(t, e2e.SlurmOptions{EnforcePartLimits: "NO"})
	t.Logf("cluster and login node up after %s", e2e.FmtDur(time.Since(began)))
	l := site.Launch(t, "-p debug -t 5", "--no-browser")
	id := l.Line.Session.ID
	l.Interrupt(t) // detached: the job keeps running
	port, _ := rawServer(t)
	fstart := time.Now()
	f, line := startForward(t, site.Args("forward", id, strconv.Itoa(port)))
	t.Logf("forward listening after %s", e2e.FmtDur(time.Since(fstart)))
	d := moveBytes(t, line.LocalPort, 1<<20)
	t.Logf("1 MiB to the node's program and its digest back in %s", e2e.FmtDur(d))
	f.Interrupt(t)

	t.Run("another user's port", func(t *testing.T) {
		u := e2e.OtherUser(t)
		uport, printed := otherUsersListener(t, u, 0)
		_, errOut, code := e2e.RunTether(t, site.Args("forward", id, strconv.Itoa(uport))...)
		if code != 1 || !strings.Contains(errOut, fmt.Sprintf("held by another user, %s (uid %d), not by you; nothing was sent to it", u.Name, u.UID)) {
			t.Errorf("forward to %s's port on the node: exit %d, stderr %q", u.Name, code, errOut)
		}
		time.Sleep(300 * time.Millisecond)
		if p := printed(); p != "" {
			t.Errorf("%s's listener saw %q; want nothing", u.Name, p)
		}
	})
	stopped := time.Now()
	if _, errOut, code := e2e.RunTether(t, site.Args("stop", id)...); code != 0 {
		t.Errorf("stop: exit %d: %s", code, errOut)
	}
	t.Logf("stop (scancel, waiting for the job to go): %s", e2e.FmtDur(time.Since(stopped)))
	t.Logf("slurm forward test: %s in all", e2e.FmtDur(time.Since(began)))
}

// TestCodeServerPortRoutesE2E: code-server has port proxies of its own at /proxy/PORT/
// and /absproxy/PORT/, which connect to any port, another user's too. Through tether
// both paths are the gate's: another user's port is refused (their listener sees
// nothing) and code-server never gets the request; a port of ours answers, with the
// whole path for absproxy/ as code-server would pass it.
func TestCodeServerPortRoutesE2E(t *testing.T) {
	cs := codeServerPath(t)
	began := time.Now()
	s := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"PATH": filepath.Dir(cs) + ":/usr/local/bin:/usr/bin:/bin"}})
	setLoginPATH(t, s, filepath.Dir(cs)+":/usr/local/bin:/usr/bin:/bin")
	e2e.StopAllOnCleanup(t, s)
	l := launchPreset(t, s, "code-server")
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)

	u := e2e.OtherUser(t)
	uport, printed := otherUsersListener(t, u, 0)
	want := fmt.Sprintf("403 Forbidden: port %d on this machine is held by another user, %s (uid %d), not by you; nothing was sent to it", uport, u.Name, u.UID)
	for _, p := range []string{"absproxy/%d/", "absproxy/%d/x?y=1", "proxy/%d/"} {
		p = fmt.Sprintf(p, uport)
		if code, body, _ := e2e.Fetch(t, base+p, "Authorization", "token "+tok); code != 403 || strings.TrimSpace(body) != want {
			t.Errorf("%s (another user's port, through code-server's route): %d %.200q; want 403 %q", p, code, body, want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if p := printed(); p != "" {
		t.Errorf("%s's listener saw %q; want nothing", u.Name, p)
	}

	var mu sync.Mutex
	var got []string
	ours := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.RequestURI)
		mu.Unlock()
		io.WriteString(w, "ours")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ours.Serve(ln)
	t.Cleanup(func() { ours.Close() })
	oport := ln.Addr().(*net.TCPAddr).Port
	if code, body, _ := e2e.Fetch(t, fmt.Sprintf("%sabsproxy/%d/a?b=1", base, oport), "Authorization", "token "+tok); code != 200 || body != "ours" {
		t.Errorf("absproxy/%d/ (ours): %d %.200q", oport, code, body)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != fmt.Sprintf("/absproxy/%d/a?b=1", oport) {
		t.Errorf("our program saw %q; want the whole path", got)
	}
	mu.Unlock()
	t.Logf("code-server port routes test: %s in all", e2e.FmtDur(time.Since(began)))
}
