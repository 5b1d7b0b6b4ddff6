package remote

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
	"github.com/tether-dev/tether/wire"
)

const nobody = 65534

func needRootLinux(t *testing.T) {
	t.Helper()
	if !isRoot() {
		t.Skip("needs root (to run a helper as uid 65534)")
	}
}

// asUser starts the test binary as uid in helper mode with env, its stdout in out, and
// kills it when the test ends.
func asUser(t *testing.T, uid int, out io.Writer, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(helperBinary(t), "-test.run=^$")
	cmd.Env = env
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd
}

// listenAs runs a listener on 127.0.0.1 as uid and returns its port.
func listenAs(t *testing.T, uid int) int {
	t.Helper()
	pr, pw := io.Pipe()
	asUser(t, uid, pw, "TETHER_REMOTE_TEST_HELPER=listen")
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	port, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("listener as uid %d: %q %v", uid, line, err)
	}
	return port
}

// TestCheckAppConn is the per-connection check: a connection to our own listener
// passes; one to a listener of another uid is refused before anything is sent, naming
// the uid and the port.
func TestCheckAppConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := checkAppConn(c); err != nil {
		t.Fatalf("our own listener: %v", err)
	}

	needRootLinux(t)
	port := listenAs(t, nobody)
	c2, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	err = checkAppConn(c2)
	var taken *portTakenError
	if !errors.As(err, &taken) || taken.uid != nobody || taken.addr.Port() != uint16(port) {
		t.Fatalf("uid %d's listener: got %v; want a portTakenError naming it", nobody, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "uid 65534") || !strings.Contains(msg, "127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("message %q does not name the uid and the port", msg)
	}
}

// judgePeer trusts an owner only for an established connection: the kernel reports
// uid 0 for a half-open one (SynRecv) and for TIME_WAIT, which must not pass for
// root's; a lookup failure refuses; a system that cannot tell lets it through.
func TestJudgePeer(t *testing.T) {
	me := os.Getuid()
	app := netip.MustParseAddrPort("127.0.0.1:4242")
	tests := []struct {
		name  string
		s     localpeer.Socket
		err   error
		ok    bool
		taken int // the uid a portTakenError names, or -1
	}{
		{"ours", localpeer.Socket{State: localpeer.Established, UID: me, Local: app}, nil, true, -1},
		{"another user", localpeer.Socket{State: localpeer.Established, UID: me + 1, Local: app}, nil, false, me + 1},
		{"half-open, uid 0", localpeer.Socket{State: localpeer.SynRecv, UID: 0, Local: app}, nil, false, -1},
		{"half-open, our uid", localpeer.Socket{State: localpeer.SynRecv, UID: me, Local: app}, nil, false, -1},
		{"time-wait, uid 0", localpeer.Socket{State: 6, UID: 0, Local: app}, nil, false, -1},
		{"gone", localpeer.Socket{}, localpeer.ErrNotFound, false, -1},
		{"lookup failed", localpeer.Socket{}, errors.New("netlink: EPERM"), false, -1},
		{"unsupported system", localpeer.Socket{}, localpeer.ErrUnsupported, true, -1},
	}
	for _, tt := range tests {
		err := judgePeer(tt.s, tt.err, app.String())
		if (err == nil) != tt.ok {
			t.Errorf("for %s, got %v; want ok=%v", tt.name, err, tt.ok)
			continue
		}
		var taken *portTakenError
		if errors.As(err, &taken) != (tt.taken >= 0) || tt.taken >= 0 && (taken.uid != tt.taken || taken.addr != app) {
			t.Errorf("for %s, got %#v; want a taken port naming uid %d: %v", tt.name, taken, tt.taken, err)
		}
	}
}

// BenchmarkCheckAppConn is what each new backend connection pays: dial alone, and dial
// plus the check.
func BenchmarkCheckAppConn(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }() // held open, as an app does
		}
	}()
	addr := ln.Addr().String()
	b.Run("dial", func(b *testing.B) {
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("dial+check", func(b *testing.B) {
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			if err := checkAppConn(c); err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
	})
	b.Run("check", func(b *testing.B) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for b.Loop() {
			if err := checkAppConn(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestVerifyListener: the app's own listener is verified; a listener of another
// process of ours, or of another user, on the app's port is a taken port, named.
func TestVerifyListener(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	p := testPlan(t, "python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1")
	app, err := startApp(p, &syncBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer app.stop(time.Second)
	if err := waitReady(context.Background(), p, app, 20*time.Second, func(wire.Note) {}); err != nil {
		t.Fatal(err)
	}
	if ok, err := verifyListener(p.addrPort, app); !ok || err != nil {
		t.Fatalf("the app's own listener: %v %v", ok, err)
	}

	// Another process of ours holds the port the app was given.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	addr := other.Addr().(*net.TCPAddr).AddrPort()
	ok, err := verifyListener(addr, app)
	var taken *portTakenError
	if ok || !errors.As(err, &taken) || taken.pid != os.Getpid() {
		t.Fatalf("our own other listener: %v %v; want taken by pid %d", ok, err, os.Getpid())
	}

	// Nothing listens: not yet.
	port := freePort(t)
	if ok, err := verifyListener(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), app); ok || err != nil {
		t.Fatalf("nothing listening: %v %v; want not yet", ok, err)
	}

	needRootLinux(t)
	port = listenAs(t, nobody)
	ok, err = verifyListener(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), app)
	if ok || !errors.As(err, &taken) || taken.uid != nobody {
		t.Fatalf("uid %d's listener: %v %v", nobody, ok, err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// slowApp binds 127.0.0.1:{port} a second after it starts (as Jupyter or marimo take
// seconds to import), with marker and the port on its command line where every user can
// read them.
func slowApp(marker string) []string {
	return []string{"sh", "-c", `sleep 1; exec python3 -m http.server "$1" --bind 127.0.0.1`, marker, "{port}"}
}

// TestImpostorTakesAppPort is the attack of issue 11: another user reads the app's port
// from /proc/*/cmdline and binds it before the slow app does. Readiness is probed by
// HTTP with the app's secret (as marimo's preset does) and every proxied request
// carries it. The impostor must receive no request at all; serve says who holds the
// port and starts the app again on a fresh port, which then serves.
func TestImpostorTakesAppPort(t *testing.T) {
	needRootLinux(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	root := tempRoot(t)
	os.Chmod(filepath.Dir(root), 0o755)
	marker := "tether-test-marker-" + strconv.Itoa(os.Getpid()) + "-once"
	var seen syncBuffer
	asUser(t, nobody, &seen, "TETHER_REMOTE_TEST_HELPER=impostor", "TETHER_REMOTE_TEST_MARKER="+marker)
	spec := &AppSpec{Command: slowApp(marker), Bind: BindTCP, ReadyPath: "/",
		Env: []string{"APP_SECRET={app_secret}"}, Header: http.Header{"Authorization": {"Bearer {app_secret}"}}}
	r := startServe(t, ServeOptions{App: spec, ReadyTimeout: 30 * time.Second})
	defer r.stop(t)

	c := socketClient(r.rec.Socket, nil)
	code, body := fetch(t, c, "http://localhost/", r.rec.Token)
	if code != http.StatusOK || !strings.Contains(body, "Directory listing") {
		t.Errorf("through the gate: %d %.200q; want the real app's page", code, body)
	}
	took := seen.String()
	if !strings.Contains(took, "took ") {
		t.Fatalf("the impostor took no port (test did not attack):\n%s", took)
	}
	if strings.Contains(took, "got ") {
		t.Errorf("the impostor received requests:\n%s", took)
	}
	port := strings.Fields(took[strings.Index(took, "took ")+5:])[0]
	msgs := r.stderr.String()
	if !strings.Contains(msgs, "warning: the app's port 127.0.0.1:"+port+" is held by another user") || !strings.Contains(msgs, "uid 65534") ||
		!strings.Contains(msgs, "starting the app again on another port") {
		t.Errorf("serve did not say who held port %s:\n%s", port, msgs)
	}
	for _, l := range strings.Split(msgs, "\n") {
		if strings.Contains(l, "warning:") {
			t.Log(l)
		}
	}
}

// TestImpostorTakesEveryPort: an impostor that takes every port the app is given
// makes serve fail clearly after portAttempts, having sent it nothing, with no app
// process left.
func TestImpostorTakesEveryPort(t *testing.T) {
	needRootLinux(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	root := tempRoot(t)
	os.Chmod(filepath.Dir(root), 0o755)
	marker := "tether-test-marker-" + strconv.Itoa(os.Getpid()) + "-always"
	var seen syncBuffer
	asUser(t, nobody, &seen, "TETHER_REMOTE_TEST_HELPER=impostor", "TETHER_REMOTE_TEST_MARKER="+marker, "TETHER_REMOTE_TEST_IMPOSTOR=always")
	spec := &AppSpec{Command: slowApp(marker), Bind: BindTCP, ReadyPath: "/",
		Env: []string{"APP_SECRET={app_secret}"}, Header: http.Header{"Authorization": {"Bearer {app_secret}"}}}
	var stderr syncBuffer
	start := time.Now()
	// A ready record means serve trusted the impostor: stop it at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := &cancelOnWrite{cancel: cancel}
	err := Serve(ctx, ServeOptions{App: spec, ReadyTimeout: 30 * time.Second, JSON: true, Stdout: ready, Stderr: &stderr})
	if ready.String() != "" {
		t.Fatalf("serve became ready on the impostor's port: %s\nimpostor: %s", ready.String(), seen.String())
	}
	if err == nil || !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), "3 times in a row") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Serve: %v; want one line naming uid 65534 and the 3 ports\n%s", err, stderr.String())
	}
	t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if got := strings.Count(seen.String(), "took "); got != portAttempts {
		t.Errorf("the impostor took %d ports; want %d:\n%s", got, portAttempts, seen.String())
	}
	if strings.Contains(seen.String(), "got ") {
		t.Errorf("the impostor received requests:\n%s", seen.String())
	}
	if left := markedProcs(marker); len(left) > 0 {
		t.Errorf("app processes left: %v", left)
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("session left: %v", entries)
	}
}

// cancelOnWrite records what is written and calls cancel.
type cancelOnWrite struct {
	syncBuffer
	cancel func()
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	defer w.cancel()
	return w.syncBuffer.Write(p)
}

// markedProcs are the pids whose command line holds marker (besides the impostor,
// which does not have it on its command line).
func markedProcs(marker string) []int {
	var out []int
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), marker) {
			pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
			out = append(out, pid)
		}
	}
	return out
}

// TestExposedAppRefused: an app listening on every interface is refused with the
// one-line fix and stopped; with AllowExposed it runs, with a warning.
func TestExposedAppRefused(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	root := tempRoot(t)
	marker := "tether-test-exposed-" + strconv.Itoa(os.Getpid())
	// http.server without --bind listens on 0.0.0.0 (or ::).
	command := []string{"sh", "-c", `exec python3 -m http.server "$1"`, marker, "{port}"}
	var stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ready := &cancelOnWrite{cancel: cancel}
	err := Serve(ctx, ServeOptions{Command: command, JSON: true, Stdout: ready, Stderr: &stderr, ReadyTimeout: 30 * time.Second})
	if ready.String() != "" {
		t.Fatalf("serve became ready with the app on every interface: %s", ready.String())
	}
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "--allow-exposed") ||
		!strings.Contains(err.Error(), "--bind 127.0.0.1") || !(strings.Contains(err.Error(), "0.0.0.0:") || strings.Contains(err.Error(), "[::]:")) {
		t.Fatalf("Serve: %v; want one line naming the address and the fix\n%s", err, stderr.String())
	}
	if left := markedProcs(marker); len(left) > 0 {
		t.Errorf("app processes left: %v", left)
	}
	if entries, _ := os.ReadDir(root); len(entries) > 0 {
		t.Errorf("session left: %v", entries)
	}

	r := startServe(t, ServeOptions{Command: command, AllowExposed: true, ReadyTimeout: 30 * time.Second})
	defer r.stop(t)
	if msgs := r.stderr.String(); !strings.Contains(msgs, "warning: the app listens on ") || !strings.Contains(msgs, "--allow-exposed") {
		t.Errorf("no warning with --allow-exposed:\n%s", msgs)
	}
	if code, body := fetch(t, socketClient(r.rec.Socket, nil), "http://localhost/", r.rec.Token); code != http.StatusOK {
		t.Errorf("exposed app with --allow-exposed: %d %.200q", code, body)
	}
}

// TestLoopbackAppNote: an app on 127.0.0.1 runs, and the note names where it really
// listens.
func TestLoopbackAppNote(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	tempRoot(t)
	r := startServe(t, ServeOptions{Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}, ReadyTimeout: 30 * time.Second})
	defer r.stop(t)
	msgs := r.stderr.String()
	if !strings.Contains(msgs, "note: the app listens on 127.0.0.1:") || strings.Contains(msgs, "warning:") {
		t.Errorf("progress:\n%s", msgs)
	}
}

// TestPortNotOnArgv: an app that reads $PORT gets its port on no command line tether
// builds (the supervisor's included), so other users cannot read it there.
func TestPortNotOnArgv(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	const script = `import http.server, os
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()`
	p := testPlan(t, "python3", "-c", script)
	app, err := startApp(p, &syncBuffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer app.stop(time.Second)
	if err := waitReady(context.Background(), p, app, 20*time.Second, func(wire.Note) {}); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(int(p.addrPort.Port()))
	pids := append(appProcsIn(liveProcs(), app.pid, app.sid), os.Getpid())
	if len(pids) < 2 {
		t.Fatalf("app processes %v", pids)
	}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == port || strings.Contains(a, ":"+port) || strings.Contains(a, "="+port) {
				t.Errorf("pid %d has the port on its command line: %q", pid, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
	}
}
