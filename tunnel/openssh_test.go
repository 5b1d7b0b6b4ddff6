//go:build unix

package tunnel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeMaster speaks the master's side of OpenSSH's multiplexing protocol on a Unix
// socket, as much as the client uses: hello, alive checks, sessions (the command's
// stdio arrive as descriptors; "echo" copies stdin to stdout, then exits 7), forwards
// (recorded) and stdio forwards (refused).
type fakeMaster struct {
	path string
	ln   *net.UnixListener
	wg   sync.WaitGroup

	mu       sync.Mutex
	forwards []string // "open local remote" / "close local remote"
}

func startFakeMaster(t *testing.T) *fakeMaster {
	t.Helper()
	dir, err := os.MkdirTemp("", "tm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeMaster{path: filepath.Join(dir, "m")}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: f.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeMaster) send(c *net.UnixConn, m *muxMsg) {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(m.b)))
	c.Write(append(b, m.b...))
}

func (f *fakeMaster) recv(c *net.UnixConn) (*muxReader, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	return reader(b), nil
}

func recvFD(c *net.UnixConn) (*os.File, error) {
	buf, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("no descriptor")
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("not one descriptor")
	}
	return os.NewFile(uintptr(fds[0]), "passed"), nil
}

func (f *fakeMaster) serve(c *net.UnixConn) {
	f.send(c, msg(muxHello).u32(muxVersion))
	r, err := f.recv(c)
	if err != nil || r.u32() != muxHello || r.u32() != muxVersion {
		return
	}
	for {
		r, err := f.recv(c)
		if err != nil {
			return
		}
		t, rid := r.u32(), r.u32()
		switch t {
		case muxCAliveCheck:
			f.send(c, msg(muxSAlive).u32(rid).u32(4242))
		case muxCOpenFwd, muxCCloseFwd:
			r.u32()
			local := r.str()
			r.u32()
			remote := r.str()
			verb := "open"
			if t == muxCCloseFwd {
				verb = "close"
			}
			f.mu.Lock()
			f.forwards = append(f.forwards, verb+" "+local+" "+remote)
			f.mu.Unlock()
			f.send(c, msg(muxSOK).u32(rid))
		case muxCNewStdioFwd:
			r.str()
			host := r.str()
			for range 2 {
				if fd, err := recvFD(c); err == nil {
					fd.Close()
				}
			}
			f.send(c, msg(muxSFailure).u32(rid).str("Session open refused by peer: "+host))
		case muxCNewSession:
			r.str()
			for range 5 {
				r.u32()
			}
			r.str()
			cmd := r.str()
			var fds [3]*os.File
			for i := range fds {
				if fds[i], err = recvFD(c); err != nil {
					return
				}
			}
			f.send(c, msg(muxSSessionOpened).u32(rid).u32(9))
			status := uint32(0)
			switch cmd {
			case "echo":
				io.Copy(fds[1], fds[0])
				io.WriteString(fds[2], "done\n")
				status = 7
			case "hang":
				buf := make([]byte, 1)
				c.Read(buf) // until the client goes away
			}
			for _, fd := range fds {
				fd.Close()
			}
			if cmd != "signal" {
				f.send(c, msg(muxSExitMessage).u32(9).u32(status))
			}
			return // the master closes the session's control connection
		default:
			f.send(c, msg(muxSFailure).u32(rid).str("unsupported request"))
		}
	}
}

// fakeClient is an OpenSSHClient attached to m, as DialOpenSSH leaves it.
func fakeClient(t *testing.T, m *fakeMaster) *OpenSSHClient {
	t.Helper()
	c := &OpenSSHClient{host: "fake", cfg: &Config{Alias: "fake"}, dir: filepath.Dir(m.path),
		o: OpenSSHOptions{ReconnectWait: time.Second}, done: make(chan struct{}), up: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ms, err := c.attach(context.Background(), m.path, true)
	if err != nil {
		t.Fatal(err)
	}
	if ms.pid != 4242 {
		t.Errorf("alive check: pid %d, want 4242", ms.pid)
	}
	c.cur = ms
	close(c.up)
	go c.supervise(ms)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMuxSession: Run passes its stdio to the master as descriptors and returns the
// exit status the master reports; stdin's EOF reaches the command.
func TestMuxSession(t *testing.T) {
	c := fakeClient(t, startFakeMaster(t))
	var out, errb bytes.Buffer
	status, err := c.Run(context.Background(), "echo", strings.NewReader("hello through the master\n"), &out, &errb)
	if err != nil || status != 7 || out.String() != "hello through the master\n" || errb.String() != "done\n" {
		t.Errorf("Run: status %d, err %v, stdout %q, stderr %q; want 7, nil, the input, \"done\"", status, err, out.String(), errb.String())
	}
	// No exit status (the remote command was killed by a signal): an error.
	if status, err := c.Run(context.Background(), "signal", nil, nil, nil); err == nil || status != -1 {
		t.Errorf("a session without exit status: %d, %v; want -1 and an error", status, err)
	}
	// Cancelled: the session is dropped and Run returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Run(ctx, "hang", nil, nil, nil); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("a cancelled Run: %v after %v", err, time.Since(start))
	}
}

// TestMuxForwardsAndRefusals: a "unix" dial asks the master for one forward per
// remote socket, in the client's directory, and Close cancels it; a stdio forward the
// server refused is an *ssh.OpenChannelError, as from tether's own client.
func TestMuxForwardsAndRefusals(t *testing.T) {
	m := startFakeMaster(t)
	c := fakeClient(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.forwardFor(ctx, c.cur, "/remote/server.sock"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.forwardFor(ctx, c.cur, "/remote/server.sock"); err != nil {
		t.Fatal(err)
	}
	_, err := c.DialContext(ctx, "tcp", "node7:8443")
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed || !strings.Contains(err.Error(), "node7") {
		t.Errorf("a refused stdio forward: %v; want an *ssh.OpenChannelError (connect failed)", err)
	}
	c.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.forwards) != 2 || !strings.HasPrefix(m.forwards[0], "open "+filepath.Join(c.dir, "f-")) ||
		!strings.HasSuffix(m.forwards[0], " /remote/server.sock") || m.forwards[1] != "close"+strings.TrimPrefix(m.forwards[0], "open") {
		t.Errorf("forwards asked of the master: %q; want one opened and, at Close, cancelled", m.forwards)
	}
}

// TestMuxMasterGone: when the master exits, the client reports the loss and waits for
// a new one; calls in the meantime give up after ReconnectWait.
func TestMuxMasterGone(t *testing.T) {
	m := startFakeMaster(t)
	c := &OpenSSHClient{host: "fake", cfg: &Config{Alias: "fake"}, dir: filepath.Dir(m.path), userPath: m.path,
		o: OpenSSHOptions{ReconnectWait: 500 * time.Millisecond}, done: make(chan struct{}), up: make(chan struct{})}
	events := make(chan Event, 16)
	c.o.OnEvent = func(e Event) { events <- e }
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ms, err := c.attach(context.Background(), m.path, false)
	if err != nil {
		t.Fatal(err)
	}
	c.cur = ms
	close(c.up)
	// The user's master is the only one; tether's own would need ssh: none here.
	c.prog = "/nonexistent/ssh"
	c.ownPath = filepath.Join(c.dir, "c-own")
	go c.supervise(ms)
	defer c.Close()
	m.ln.Close()
	os.Remove(m.path)
	ms.watch.c.Close() // as the master's exit would end it
	select {
	case e := <-events:
		if e.State != Lost || !errors.Is(e.Err, errMasterGone) {
			t.Errorf("first event %v %v; want lost: %v", e.State, e.Err, errMasterGone)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after the master went away")
	}
	if _, err := c.Run(context.Background(), "echo", nil, nil, nil); err == nil {
		t.Error("Run without a master succeeded")
	}
}

// TestPrivateDir: tether's socket directory must be a directory of the user's own,
// closed to everyone else; anything else is refused, never used or changed.
func TestPrivateDir(t *testing.T) {
	base := t.TempDir()
	uid := os.Geteuid()
	ok := filepath.Join(base, "ok")
	if err := privateDir(ok, uid); err != nil {
		t.Fatalf("a fresh directory: %v", err)
	}
	if fi, _ := os.Stat(ok); fi.Mode().Perm() != 0o700 {
		t.Errorf("made with mode %v; want 0700", fi.Mode().Perm())
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o755)
	if err := privateDir(open, uid); err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Errorf("a 0755 directory: %v", err)
	}
	link := filepath.Join(base, "link")
	os.Symlink(ok, link)
	if err := privateDir(link, uid); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a symlink: %v", err)
	}
	if uid == 0 {
		other := filepath.Join(base, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		if err := privateDir(other, uid); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("another user's directory: %v", err)
		}
	}
}

// TestControlDir: $XDG_RUNTIME_DIR/tether when that is set and short enough for socket
// paths; otherwise a tether-UID directory under /tmp.
func TestControlDir(t *testing.T) {
	tmpBase = t.TempDir()
	defer func() { tmpBase = "/tmp" }()
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	if d, err := controlDir(); err != nil || d != filepath.Join(rt, "tether") {
		t.Errorf("with XDG_RUNTIME_DIR: %q, %v", d, err)
	}
	long := filepath.Join(rt, strings.Repeat("x", 80))
	os.Mkdir(long, 0o700)
	t.Setenv("XDG_RUNTIME_DIR", long)
	want := filepath.Join(tmpBase, "tether-"+strconv.Itoa(os.Geteuid()))
	if d, err := controlDir(); err != nil || d != want {
		t.Errorf("with a long XDG_RUNTIME_DIR: %q, %v; want %q", d, err, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if d, err := controlDir(); err != nil || d != want {
		t.Errorf("without XDG_RUNTIME_DIR: %q, %v; want %q", d, err, want)
	}
}

// TestDialMuxRefusesForeignSockets: a control socket that is not a socket, or does
// not exist, is no master.
func TestDialMuxRefusesForeignSockets(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := dialMux(ctx, filepath.Join(dir, "none")); !errors.Is(err, errNoMaster) {
		t.Errorf("a missing socket: %v; want errNoMaster", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := dialMux(ctx, file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a plain file: %v", err)
	}
	if os.Geteuid() == 0 {
		// Another user's socket (a ControlPath in a shared directory) is not used.
		m := startFakeMaster(t)
		os.Chown(m.path, 65534, 65534)
		if _, err := dialMux(ctx, m.path); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Errorf("another user's control socket: %v", err)
		}
	}
}

// TestParseSSHG: `ssh -G` output becomes a Config.
func TestParseSSHG(t *testing.T) {
	g := ParseSSHG([]byte("hostname gpu.example.com\nport 2222\nuser bob\nidentityfile ~/.ssh/a\nidentityfile ~/.ssh/b\n" +
		"proxyjump j1,j2\nproxycommand none\nconnecttimeout none\nserveraliveinterval 30\nserveralivecountmax 5\n" +
		"userknownhostsfile /k1 /k2\nglobalknownhostsfile none\nstricthostkeychecking true\nbatchmode yes\ncontrolpath /tmp/cm\n"))
	c, err := configFromSSHG("gpu", g)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostName != "gpu.example.com" || c.Port != 2222 || c.User != "bob" || len(c.IdentityFiles) != 2 ||
		c.ProxyJump != "j1,j2" || c.ProxyCommand != "" || c.ConnectTimeout != 0 || c.ServerAliveInterval != 30*time.Second ||
		c.ServerAliveCountMax != 5 || strings.Join(c.UserKnownHostsFiles, " ") != "/k1 /k2" || len(c.GlobalKnownHostsFiles) != 0 ||
		c.StrictHostKeyChecking != "yes" || !c.BatchMode || g.Get("controlpath") != "/tmp/cm" {
		t.Errorf("got %+v", c)
	}
	if _, err := configFromSSHG("x", ParseSSHG([]byte("hostname -oProxyCommand=x\nuser u\n"))); !errors.Is(err, ErrInvalidName) {
		t.Errorf("a host name like an option: %v", err)
	}
}

// TestClassifySSH: what ssh prints tells retrying apart from giving up.
func TestClassifySSH(t *testing.T) {
	tests := []struct {
		line string
		kind OpenSSHErrorKind
	}{
		{"user@host: Permission denied (publickey,keyboard-interactive).", SSHAuth},
		{"Host key verification failed.", SSHHostKey},
		{"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @", SSHHostKey},
		{"ssh: Could not resolve hostname nowhere.invalid: Name or service not known", SSHUnreachable},
		{"ssh: connect to host 10.0.0.1 port 22: Connection timed out", SSHUnreachable},
		{"kex_exchange_identification: read: Connection reset by peer", SSHUnreachable},
		{"/home/u/.ssh/config: line 3: Bad configuration option: controlmasterr", SSHConfig},
		{"something else", SSHFailed},
	}
	for _, tt := range tests {
		e := classifySSH("h", []string{"Warning: Permanently added", tt.line})
		if e.Kind != tt.kind || e.Msg() != tt.line {
			t.Errorf("for %q, got kind %d, msg %q; want %d", tt.line, e.Kind, e.Msg(), tt.kind)
		}
		if p := e.permanent(); p != (tt.kind == SSHAuth || tt.kind == SSHHostKey || tt.kind == SSHConfig) {
			t.Errorf("for %q, permanent %v", tt.line, p)
		}
	}
}

// TestMasterWaitsForLogin: while the client has no master, calls wait up to
// ReconnectWait, and longer while ssh is logging in (it may be asking the user): the
// browser's request then goes through once the answer is in.
func TestMasterWaitsForLogin(t *testing.T) {
	c := &OpenSSHClient{cfg: &Config{Alias: "fake"}, o: OpenSSHOptions{ReconnectWait: 200 * time.Millisecond}, up: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	start := time.Now()
	if _, err := c.master(context.Background()); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("no master and no login: %v after %v; want an error after ReconnectWait", err, time.Since(start))
	}
	c.login.Add(1)
	got := make(chan error, 1)
	start = time.Now()
	go func() { _, err := c.master(context.Background()); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("gave up while ssh was logging in: %v after %v", err, time.Since(start))
	case <-time.After(time.Second): // five ReconnectWaits
	}
	c.mu.Lock()
	c.cur = &master{path: "m", dead: make(chan struct{})}
	close(c.up)
	c.mu.Unlock()
	c.login.Add(-1)
	if err := <-got; err != nil {
		t.Errorf("after the login: %v", err)
	}
}
