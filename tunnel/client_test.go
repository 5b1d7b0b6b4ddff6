package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"golang.org/x/crypto/ssh"
)

func TestRunAndOutput(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	ctx := context.Background()

	var out, errb bytes.Buffer
	st, err := c.Run(ctx, "cat; echo err >&2; exit 3", strings.NewReader("hello"), &out, &errb)
	if err != nil || st != 3 || out.String() != "hello" || errb.String() != "err\n" {
		t.Fatalf("Run: status %d err %v out %q stderr %q", st, err, out.String(), errb.String())
	}
	so, se, st, err := c.Output(ctx, []string{"printf", "%s|%s", "a b", "c"}, 100)
	if err != nil || st != 0 || string(so) != "a b|c" || len(se) != 0 {
		t.Fatalf("Output: %q %q %d %v", so, se, st, err)
	}
	// More than the limit is an error, not a hang, even for endless output.
	start := time.Now()
	so, _, _, err = c.Output(ctx, []string{"yes"}, 1000)
	if !errors.Is(err, ErrOutputLimit) || len(so) != 1000 {
		t.Fatalf("endless output: %d bytes, err %v", len(so), err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the limit took %v", time.Since(start))
	}
	// Cancelling the context kills the remote command.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c.Run(cctx, "sleep 30", nil, io.Discard, io.Discard); err == nil {
		t.Fatal("Run of sleep 30 with a 300ms context succeeded")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	// A killed command is an error, not a status.
	if _, err := c.Run(ctx, "kill -9 $$", nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "signal") {
		t.Fatalf("killed command: %v", err)
	}
}

var quoteCases = []string{
	"", "plain", "with space", "  lead and trail  ", "it's", `double "quotes"`, "$HOME", "$(id)",
	"`id`", "back\\slash", "new\nline", "tab\there", "*", "?", "[a]", "~", "a;b", "a|b", "a&b",
	"-n", "--", "A=1", "'", "''", `\'`, "é ünïcödé", "#comment", "!bang", "{a,b}", "%s",
}

// TestQuoteRoundTrip runs every case through a real /bin/sh, locally and on the remote.
func TestQuoteRoundTrip(t *testing.T) {
	argv := append([]string{"printf", `%s\000`}, quoteCases...)
	want := strings.Join(quoteCases, "\x00") + "\x00"
	out, err := exec.Command("/bin/sh", "-c", shquote.Join(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Fatalf("local sh: got %q\nwant %q", out, want)
	}
	for _, s := range quoteCases {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+shquote.Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("for %q, got %q (%v); want it back", s, out, err)
		}
	}
	// An argument that looks like an assignment stays a word: no command runs here.
	if err := exec.Command("/bin/sh", "-c", shquote.Join([]string{"A=1", "true"})).Run(); err == nil {
		t.Error("A=1 in command position was taken as an assignment")
	}
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	so, _, st, err := c.Output(context.Background(), argv, 1<<20)
	if err != nil || st != 0 || string(so) != want {
		t.Fatalf("remote: got %q (%d, %v)\nwant %q", so, st, err, want)
	}
}

func TestUpload(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	ctx := context.Background()
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	target := filepath.Join(ts.Dir, "a b", "c'd", "tether")
	var last int64
	if err := c.Upload(ctx, bytes.NewReader(data), int64(len(data)), target, func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content differs (%v)", err)
	}
	if last != int64(len(data)) {
		t.Errorf("progress ended at %d of %d", last, len(data))
	}
	for _, p := range []string{target, filepath.Dir(target), filepath.Dir(filepath.Dir(target))} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v (%v); want 0700", p, fi.Mode().Perm(), err)
		}
	}
	// A non-seekable reader is spooled; "~/" is the remote HOME; overwriting works.
	if err := c.Upload(ctx, io.MultiReader(bytes.NewReader(data[:1000])), 1000, "~/bin/tether", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(ts.Dir, "bin", "tether")); !bytes.Equal(got, data[:1000]) {
		t.Fatal("~/ upload differs")
	}
	// A short reader fails before anything is sent.
	if err := c.Upload(ctx, io.MultiReader(bytes.NewReader(data[:10])), 1000, target, nil); err == nil {
		t.Fatal("short reader: upload succeeded")
	}
	// A failure on the remote (the target is a directory) leaves nothing behind.
	if err := os.Mkdir(filepath.Join(ts.Dir, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.Dir, "dir", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = c.Upload(ctx, bytes.NewReader(data[:100]), 100, filepath.Join(ts.Dir, "dir"), nil)
	var ue *UploadError
	if !errors.As(err, &ue) {
		t.Fatalf("upload over a non-empty directory: %v", err)
	}
	assertNoTemp(t, ts.Dir)

	// A source that fails part-way fails the upload, and leaves nothing behind: a
	// reader that cannot seek is spooled whole (for the hash on the command line)
	// before anything starts on the remote.
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Upload(ctx, struct{ io.Reader }{pr}, int64(len(data)), filepath.Join(ts.Dir, "dropped"), nil)
	}()
	if _, err := pw.Write(data[:1<<20]); err != nil { // returns once Upload has read it all
		t.Fatal(err)
	}
	pw.CloseWithError(errors.New("dropped"))
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "reading the source") {
		t.Fatalf("upload of a source that failed: %v; want an error reading the source", err)
	}
	assertNoTemp(t, ts.Dir)
}

// TestUploadRefusesOpenDirectory: a directory another user could write (or one that
// is not ours) gets nothing: its owner could swap the temporary file for a symlink
// before the chmod, which follows it, or the file itself before the rename.
func TestUploadRefusesOpenDirectory(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	ctx := context.Background()
	open := filepath.Join(ts.Dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o777, 0o770, os.ModeSticky | 0o777} {
		if err := os.Chmod(open, mode); err != nil {
			t.Fatal(err)
		}
		err := c.Upload(ctx, strings.NewReader("x"), 1, filepath.Join(open, "tether"), nil)
		var ue *UploadError
		if !errors.As(err, &ue) || !strings.Contains(ue.Stderr, "writable by other users") {
			t.Errorf("mode %v: got %v; want refused as writable by others", mode, err)
		}
		if _, err := os.Lstat(filepath.Join(open, "tether")); err == nil {
			t.Errorf("mode %v: the file was written", mode)
		}
		assertNoTemp(t, open)
	}
	if os.Getuid() == 0 {
		if err := os.Chmod(open, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(open, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err := c.Upload(ctx, strings.NewReader("x"), 1, filepath.Join(open, "tether"), nil)
		var ue *UploadError
		if !errors.As(err, &ue) || !strings.Contains(ue.Stderr, "belongs to another user") {
			t.Errorf("a directory of uid 65534: got %v; want refused", err)
		}
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.Contains(fi.Name(), ".tether-upload-") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}

// TestForwardManyConnections: hundreds of concurrent connections through one SSH
// connection to a remote Unix socket, each half-closed by the client; no goroutine
// outlives Forward. Real sockets (the point is TCP half-close and descriptors), so no
// synctest: the waits below poll a condition, bounded.
func TestForwardManyConnections(t *testing.T) {
	sock := echoUnix(t)
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	before := runtime.NumGoroutine()
	fdsBefore := openFDs(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fwdDone := make(chan error, 1)
	go func() {
		fwdDone <- Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) { return c.DialContext(ctx, "unix", sock) })
	}()
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			msg := bytes.Repeat([]byte{byte(i)}, 10000+i)
			if _, err := conn.Write(msg); err != nil {
				errs <- err
				return
			}
			conn.(*net.TCPConn).CloseWrite() // half-close: the echo must still come back
			got, err := io.ReadAll(conn)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("conn %d: got %d bytes, err %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One connection left open: Forward's end must close it.
	open, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	open.Write([]byte("x"))
	buf := make([]byte, 1)
	io.ReadFull(open, buf)
	cancel()
	select {
	case err := <-fwdDone:
		if err != nil {
			t.Fatalf("Forward: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Forward did not return after cancel")
	}
	open.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := open.Read(buf); err == nil {
		t.Error("a spliced connection survived Forward's end")
	}
	open.Close()
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener is still open")
	}
	waitGoroutines(t, before)
	// The echo server's side of each connection closes on its own schedule: allow a
	// moment, then no descriptor may be left.
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > fdsBefore && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := openFDs(t); n > fdsBefore {
		t.Errorf("open file descriptors: %d, before %d", n, fdsBefore)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, before %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForwardDialFailure: a failed dial closes only that local connection.
func TestForwardDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Forward(ctx, ln, func(context.Context) (net.Conn, error) { return nil, errors.New("no") })
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read: %v; want EOF", err)
		}
		c.Close()
	}
}

// TestReconnect drops the server's connections while a forward is in use: the client
// reports lost/reconnecting/back, and a new local connection works again. Real sockets
// (Forward's local listener and what it closes), so it waits on events, not the clock;
// the reconnect's timing is TestReconnectWaitsForServer's.
func TestReconnect(t *testing.T) {
	sock := echoUnix(t)
	ts := startServer(t, nil)
	ev := newEvents()
	c := ts.dial(t, ts.config(), Options{OnEvent: ev.on})
	ev.waitFor(t, Connected, time.Second)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) { return c.DialContext(ctx, "unix", sock) })
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	echo := func() error {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(conn, b); err != nil {
			return err
		}
		if string(b) != "ping" {
			return fmt.Errorf("got %q", b)
		}
		return nil
	}
	if err := echo(); err != nil {
		t.Fatal(err)
	}
	inUse, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer inUse.Close()

	for round := 1; round <= 3; round++ {
		start := time.Now()
		if n := ts.CloseConnections(); n == 0 {
			t.Fatal("no connection to drop")
		}
		lost := ev.waitFor(t, Lost, 5*time.Second)
		if lost.Err == nil {
			t.Error("Lost event without a reason")
		}
		// A connection made right after the drop waits for the new SSH connection.
		if err := echo(); err != nil {
			t.Fatalf("round %d: echo after drop: %v", round, err)
		}
		ev.waitFor(t, Back, 5*time.Second)
		t.Logf("round %d: working again after %v", round, time.Since(start))
	}
	if s := ev.states(); !strings.HasPrefix(s, "connected,lost,reconnecting,back") {
		t.Errorf("events: %s", s)
	}
	// The connection in use when the first drop came has been closed, not hung.
	inUse.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := inUse.Read(make([]byte, 1)); err == nil {
		t.Error("a forwarded connection survived the drop")
	}
}

// TestReconnectWaitsForServer: the server is down for a while (connections refused);
// the client redials with backoff that grows (doubling from 250 ms, capped at 5 s, ±20%
// jitter), DialContext waits for the new connection, and gives up after ReconnectWait
// when none comes. On synctest's clock, over an in-memory network.
func TestReconnectWaitsForServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts := startMemServer(t, nil)
		var mu sync.Mutex
		ln := ts.ln.(*memListener)
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			l := ln
			mu.Unlock()
			return l.dial(ctx, network, addr)
		}
		var attempts []time.Duration // when each Reconnecting came, since the drop
		var dropped time.Time        // under mu
		ev := newEvents()
		on := func(e Event) {
			if e.State == Reconnecting {
				mu.Lock()
				attempts = append(attempts, time.Since(dropped))
				mu.Unlock()
			}
			ev.on(e)
		}
		const wait = 10 * time.Second
		warn := &lockedBuffer{}
		c := memDial(t, ts.config(), Options{OnEvent: on, ReconnectWait: wait, Warn: warn}, dial)
		// Take the server down: close its listener and connections.
		mu.Lock()
		dropped = time.Now()
		mu.Unlock()
		ts.ln.Close()
		ts.CloseConnections()
		ev.waitFor(t, Lost, time.Minute)

		// Down for longer than ReconnectWait: DialContext gives up, at that bound.
		start := time.Now()
		if _, err := c.DialContext(context.Background(), "unix", "/echo"); err == nil || !strings.Contains(err.Error(), "still reconnecting after 10s") {
			t.Fatalf("DialContext with the server down: %v; want still reconnecting after %v", err, wait)
		}
		if took := time.Since(start); took != wait {
			t.Errorf("DialContext gave up after %v; want ReconnectWait, %v", took, wait)
		}

		// Bring a server with the same host key back on the same address.
		time.Sleep(20*time.Second - time.Since(start)) // down 20 s in all
		ln2 := newMemListener(ln.addr.Port)
		mu.Lock()
		ln = ln2
		mu.Unlock()
		srv2 := &Server{HostKey: ts.HostKey, AuthorizedKey: ts.AuthorizedKey, dial: memEcho(t)}
		served := make(chan struct{})
		go func() { srv2.Serve(ln2); close(served) }()
		t.Cleanup(func() { srv2.Close(); <-served })
		up := time.Now()
		conn, err := c.DialContext(context.Background(), "unix", "/echo")
		if err != nil {
			t.Fatalf("DialContext while reconnecting: %v", err)
		}
		waited := time.Since(up)
		conn.Write([]byte("ok"))
		b := make([]byte, 2)
		if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ok" {
			t.Fatalf("echo after the reconnect: %q, %v", b, err)
		}
		conn.Close()
		back := ev.waitFor(t, Back, time.Minute)

		mu.Lock()
		defer mu.Unlock()
		t.Logf("attempts at %v; DialContext waited %v for attempt %d", attempts, waited, back.Attempt)
		if back.Attempt != len(attempts) || back.Attempt < 2 {
			t.Fatalf("back at attempt %d of %d; want the last of several", back.Attempt, len(attempts))
		}
		if waited > time.Duration(1.2*float64(maxBackoff)) {
			t.Errorf("DialContext waited %v after the server came back; want at most one capped backoff", waited)
		}
		// Several attempts failed alike: told once, in one line without the package's
		// prefix (the next different failure would be told again).
		lines := strings.Split(strings.TrimSpace(warn.String()), "\n")
		t.Logf("warnings: %q", lines)
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "reconnecting to "+ts.config().Alias+" (attempt 1): ") ||
			!strings.HasSuffix(lines[0], "; trying again") || strings.Contains(lines[0], "tunnel:") {
			t.Errorf("warnings over %d failed attempts: %q; want one line, attempt 1's", len(attempts)-1, lines)
		}
		// Each refused attempt waits its backoff (refusal takes no time here).
		for i := 1; i < len(attempts); i++ {
			gap := attempts[i] - attempts[i-1]
			nominal := min(250*time.Millisecond<<min(i-1, 5), maxBackoff)
			if lo, hi := time.Duration(0.8*float64(nominal)), time.Duration(1.2*float64(nominal)); gap < lo || gap > hi {
				t.Errorf("attempt %d came %v after attempt %d; want %v ±20%%", i+1, gap, i, nominal)
			}
		}
	})
}

// TestReconnectRefusesChangedKey: a redial meets a different host key: reconnecting
// stops with HostKeyChangedError and calls fail with it.
func TestReconnectRefusesChangedKey(t *testing.T) {
	ts := startServer(t, nil)
	ev := newEvents()
	c := ts.dial(t, ts.config(), Options{OnEvent: ev.on})
	ts.HostKeyMu(newEd25519(t))
	ts.CloseConnections()
	f := ev.waitFor(t, Failed, 10*time.Second)
	var ce *HostKeyChangedError
	if !errors.As(f.Err, &ce) {
		t.Fatalf("failed with %v; want HostKeyChangedError", f.Err)
	}
	if _, err := c.DialContext(context.Background(), "tcp", "127.0.0.1:1"); !errors.As(err, &ce) {
		t.Fatalf("DialContext after failure: %v", err)
	}
}

// HostKeyMu swaps the host key for new connections (test only).
func (ts *testServer) HostKeyMu(k ssh.Signer) {
	ts.ln.Close()
	ts.Server.Close()
	srv := &Server{HostKey: k, AuthorizedKey: ts.AuthorizedKey}
	ln, err := net.Listen("tcp", ts.Addr)
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)
	ts.Server = srv
}

// TestKeepaliveDetectsStall: a server that stops answering keepalives is declared dead
// after ServerAliveCountMax intervals without an answer, on synctest's clock with the
// default 15 s interval (an in-memory network: no real socket in a bubble).
func TestKeepaliveDetectsStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts := startMemServer(t, func(s *Server) { s.IgnoreKeepalive = true })
		ev := newEvents()
		cfg := ts.config()
		cfg.ServerAliveInterval, cfg.ServerAliveCountMax = 0, 2 // DefaultServerAliveInterval
		start := time.Now()
		memDial(t, cfg, Options{OnEvent: ev.on}, ts.ln.(*memListener).dial)
		lost := ev.waitFor(t, Lost, time.Hour)
		took := time.Since(start)
		if lost.Err == nil || !strings.Contains(lost.Err.Error(), "no answer to 2 keepalives") {
			t.Fatalf("lost: %v; want no answer to 2 keepalives", lost.Err)
		}
		// The first keepalive goes out one interval in; two more intervals without its
		// answer and the connection is dead.
		if want := 3 * DefaultServerAliveInterval; took != want {
			t.Errorf("declared dead after %v; want %v", took, want)
		}
	})
}

// TestConnectTimeout: a peer that accepts the connection but never speaks SSH: Dial
// gives up at ConnectTimeout (default 15 s), or at the caller's deadline. On synctest's
// clock, over an in-memory network.
func TestConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newMemListener(2222)
		var wg sync.WaitGroup
		t.Cleanup(wg.Wait)
		t.Cleanup(func() { ln.Close() })
		wg.Go(func() {
			// Mute: hold each connection, say nothing; the client's timeout closes it.
			for {
				if _, err := ln.Accept(); err != nil {
					return
				}
			}
		})
		dial := func(ctx context.Context, cfg *Config) error {
			c := newClient(dialThrough(cfg, ln.dial), Options{})
			if err := c.start(ctx); err != nil {
				return err
			}
			c.Close()
			return nil
		}
		cfg := &Config{Alias: "mute", HostName: "127.0.0.1", Port: 2222, User: "u",
			IdentityAgent: "none", BatchMode: true, StrictHostKeyChecking: "yes"}
		start := time.Now()
		err := dial(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "timed out after 15s (ConnectTimeout)") {
			t.Fatalf("err %v; want a timeout", err)
		}
		if took := time.Since(start); took != DefaultConnectTimeout {
			t.Errorf("gave up after %v; want %v", took, DefaultConnectTimeout)
		}
		// The caller's context is honoured too.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cfg.ConnectTimeout = time.Minute
		start = time.Now()
		if err := dial(ctx, cfg); err == nil || time.Since(start) != 200*time.Millisecond {
			t.Fatalf("ctx: err %v after %v; want an error after 200ms", err, time.Since(start))
		}
	})
}

func TestDialErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := &Config{Alias: "x", HostName: "127.0.0.1", Port: port, User: "u", IdentityAgent: "none", BatchMode: true}
	_, err := Dial(context.Background(), cfg, Options{})
	var de *DialError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("refused: %v", err)
	}
	cfg.HostName = "no-such-host.invalid"
	_, err = Dial(context.Background(), cfg, Options{})
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "cannot resolve") {
		t.Fatalf("dns: %v", err)
	}
}

// TestServerRefusals: the in-process server refuses what it must.
func TestServerRefusals(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, ts.config(), Options{})
	ctx := context.Background()
	for _, addr := range []string{"10.0.0.1:80", "example.com:80", "0.0.0.0:22"} {
		if conn, err := c.DialContext(ctx, "tcp", addr); err == nil {
			conn.Close()
			t.Errorf("direct-tcpip to %s allowed", addr)
		}
	}
	cc, _ := c.conn(ctx)
	s, err := cc.client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Shell(); err == nil {
		t.Error("shell allowed")
	}
	if err := s.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Error("pty allowed")
	}
	if _, err := cc.client.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote forwarding allowed")
	}
	// Loopback TCP works.
	tl, _ := net.Listen("tcp", "127.0.0.1:0")
	defer tl.Close()
	go func() {
		if c, err := tl.Accept(); err == nil {
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	conn, err := c.DialContext(ctx, "tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(conn)
	conn.Close()
	if string(b) != "ok" {
		t.Fatalf("loopback tcp: %q", b)
	}
	// A bad key is refused.
	cfg := ts.config()
	cfg.Signers = []ssh.Signer{newEd25519(t)}
	_, err = Dial(ctx, cfg, Options{})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("wrong key: %v; want AuthError", err)
	}
	// Close kills what exec started: the command reports its own PID (the shell execs
	// sleep, so it keeps that PID), and that process must be gone.
	pids := make(chan int, 1)
	go func() {
		c.Run(ctx, "echo $$; exec sleep 60", nil, writerFunc(func(p []byte) {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(p))); err == nil {
				select {
				case pids <- pid:
				default:
				}
			}
		}), io.Discard)
	}()
	var pid int
	select {
	case pid = <-pids:
	case <-time.After(10 * time.Second):
		t.Fatal("the exec'd command did not report its PID")
	}
	ts.Server.Close()
	// A real process: poll until it is gone, bounded (2 s).
	gone := false
	for i := 0; i < 100 && !gone; i++ {
		gone = processGone(pid)
		if !gone {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !gone {
		t.Errorf("sleep (pid %d) survived Server.Close", pid)
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// stallConn stops passing bytes either way once stalled is set: a network that went
// silent without a FIN or RST.
type stallConn struct {
	net.Conn
	stalled *atomicBool
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) set(v bool) { b.mu.Lock(); b.v = v; b.mu.Unlock() }
func (b *atomicBool) get() bool  { b.mu.Lock(); defer b.mu.Unlock(); return b.v }

func (c stallConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for c.stalled.get() && err == nil {
		// Swallow what arrives while stalled, as a black hole would.
		n, err = c.Conn.Read(p)
	}
	return n, err
}

func (c stallConn) Write(p []byte) (int, error) {
	if c.stalled.get() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestStalledNetwork: the server side goes silent mid-stream (no FIN, no RST): with
// nobody waiting, the idle keepalive declares the connection dead after
// ServerAliveCountMax unanswered intervals; a redial into the same silence ends at
// ConnectTimeout and is retried; once the network is back, the client reconnects and a
// forward works again. OpenSSH's defaults (15 s × 3, ConnectTimeout 15 s) on
// synctest's clock, over an in-memory network.
func TestStalledNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalled := &atomicBool{}
		ts := startMemServer(t, func(s *Server) {
			s.WrapConn = func(c net.Conn) net.Conn { return stallConn{Conn: c, stalled: stalled} }
		})
		ev := newEvents()
		cfg := ts.config()
		cfg.ServerAliveInterval, cfg.ServerAliveCountMax, cfg.ConnectTimeout = 0, 3, 0
		c := memDial(t, cfg, Options{OnEvent: ev.on}, ts.ln.(*memListener).dial)
		echo := func(what string) {
			t.Helper()
			conn, err := c.DialContext(context.Background(), "unix", "/echo")
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			defer conn.Close()
			conn.Write([]byte("ok"))
			b := make([]byte, 2)
			if _, err := io.ReadFull(conn, b); err != nil || string(b) != "ok" {
				t.Fatalf("%s: %q %v", what, b, err)
			}
		}
		echo("before the stall")
		stalled.set(true)
		start := time.Now()
		lost := ev.waitFor(t, Lost, time.Hour)
		took := time.Since(start)
		t.Logf("stall noticed after %v: %v", took, lost.Err)
		if lost.Err == nil || !strings.Contains(lost.Err.Error(), "no answer to 3 keepalives") {
			t.Errorf("lost: %v; want the idle keepalive's verdict", lost.Err)
		}
		if lo, hi := 3*DefaultServerAliveInterval, 4*DefaultServerAliveInterval; took < lo || took > hi {
			t.Errorf("stall noticed after %v; want %v to %v", took, lo, hi)
		}
		// Still silent: the first redial's handshake times out and a second one starts.
		ev.waitFor(t, Reconnecting, time.Minute)
		r1 := time.Now()
		if a := ev.waitFor(t, Reconnecting, time.Hour); a.Attempt != 2 {
			t.Fatalf("the redial after a timed-out one is attempt %d; want 2", a.Attempt)
		}
		if took := time.Since(r1); took < DefaultConnectTimeout || took > DefaultConnectTimeout+time.Duration(1.2*float64(250*time.Millisecond)) {
			t.Errorf("second redial %v after the first; want ConnectTimeout (%v) and one backoff", took, DefaultConnectTimeout)
		}
		stalled.set(false) // the network is back; the old connection stays dead
		ev.waitFor(t, Back, time.Hour)
		echo("after the stall")
	})
}

// TestUploadThroughCsh: the upload command works when the remote login shell is tcsh
// (sshd runs `$SHELL -c COMMAND`), which refuses a newline inside a single-quoted word
// and expands history (!x) even there, or fish, which reads \\ and \' there as
// escapes: the target's path holds all of them.
func TestUploadThroughCsh(t *testing.T) {
	ran := 0
	for _, sh := range []string{"tcsh", "fish"} {
		p, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("SKIP %s: not installed", sh)
			continue
		}
		ran++
		t.Run(sh, func(t *testing.T) {
			dir := t.TempDir()
			run := func(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
				cmd := exec.CommandContext(ctx, p, "-c", command)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return ee.ExitCode(), nil
				}
				return 0, err
			}
			data := []byte("#!/bin/sh\necho it's me\n")
			target := filepath.Join(dir, "a b", "c'd", "x!y", `p\\q`, "l1\nl2", "tether")
			if err := upload(context.Background(), run, bytes.NewReader(data), int64(len(data)), target, nil); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(target); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("content %q, %v", got, err)
			}
			assertNoTemp(t, dir)
		})
	}
	if ran == 0 {
		t.Skip("neither tcsh nor fish is installed")
	}
}

// lockedBuffer is a bytes.Buffer safe for the client's goroutines and the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
