package launcher

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
)

// TestMain doubles as a helper: run as another user, it connects to the address given
// and says what came back.
func TestMain(m *testing.M) {
	if os.Getenv("TETHER_LAUNCHER_TEST_HELPER") == "connect" {
		os.Exit(helperConnect(os.Getenv("TETHER_LAUNCHER_TEST_ADDR")))
	}
	// Launches remember their local ports (localports.go): in a directory of the
	// tests', never in the home directory of whoever runs them.
	state, err := os.MkdirTemp("", "tether-launcher-state-")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	os.Setenv("XDG_STATE_HOME", state)
	code := m.Run()
	os.RemoveAll(state)
	os.Exit(code)
}

// helperConnect sends a request with a (made-up) session cookie and prints what it
// read back: "read N: ERR".
func helperConnect(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fmt.Println("dial:", err)
		return 0
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nCookie: tether-abc-1=stolen\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	fmt.Printf("read %d: %v\n", len(b), err)
	return 0
}

// told collects the status lines a listener writes.
type told struct {
	mu    sync.Mutex
	lines []string
}

func (t *told) line(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
}

func (t *told) all() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// serveOwnerOnly wraps a fresh loopback listener and hands each accepted connection to
// the returned channel (after writing "hello" on it).
func serveOwnerOnly(t *testing.T) (addr string, accepted <-chan net.Conn, msgs *told) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	msgs = &told{}
	ol := ownerOnly(ln, msgs.line)
	ch := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ol.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			ch <- c
		}
	}()
	t.Cleanup(func() {
		ol.Close()
		<-done
		for {
			select {
			case c := <-ch:
				c.Close()
			default:
				return
			}
		}
	})
	return ln.Addr().String(), ch, msgs
}

// expectOwn dials addr as this user: the connection is accepted and answered.
func expectOwn(t *testing.T, addr string, accepted <-chan net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
		t.Fatalf("our own connection: read %q, %v", b, err)
	}
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("our own connection was not handed on")
	}
}

// refusedAnswer: the helper read nothing (the reset may even arrive before its
// connect returns).
func refusedAnswer(got string) bool {
	return strings.HasPrefix(got, "read 0:") || strings.HasPrefix(got, "dial:") && strings.Contains(got, "connection reset")
}

func noneAccepted(t *testing.T, accepted <-chan net.Conn, what string) {
	t.Helper()
	select {
	case c := <-accepted:
		c.Close()
		t.Errorf("%s was handed on", what)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestOwnerOnlyAcceptsOwnConnections(t *testing.T) {
	addr, accepted, msgs := serveOwnerOnly(t)
	for range 3 {
		expectOwn(t, addr, accepted)
	}
	if l := msgs.all(); len(l) != 0 {
		t.Errorf("told %q", l)
	}
}

// A connection whose other end closed at once (sent its request and went: the kernel
// reports that end as root's) is refused too.
func TestOwnerOnlyRefusesClosedPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	msgs := &told{}
	ol := ownerOnly(ln, msgs.line)
	defer ol.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	gone := c.LocalAddr().(*net.TCPAddr).AddrPort()
	c.Write([]byte("POST /api/run HTTP/1.1\r\nCookie: tether-abc-1=stolen\r\n\r\n"))
	c.Close()
	// Accept only once the kernel has let go of the closed end.
	waitFor(t, "the closed end to be orphaned", func() bool {
		s, err := localpeer.Lookup(gone, c.RemoteAddr().(*net.TCPAddr).AddrPort())
		return err != nil || s.Inode == 0
	})
	own, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	a, err := ol.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := a.RemoteAddr().(*net.TCPAddr).AddrPort(); got == gone {
		t.Errorf("the closed connection from %v was accepted", got)
	}
	// Linux still lists the closed end (as root's, with no inode); Windows may not.
	if l := msgs.all(); len(l) != 1 || !strings.Contains(l[0], "closed before tether could tell who made it") && !strings.Contains(l[0], "already gone") {
		t.Errorf("told %q", l)
	}
}

// Where the kernel's tables cannot be read, every connection is refused (fail closed)
// and the user is told why; listenLocal fails before anything starts.
func TestOwnerOnlyFailsClosed(t *testing.T) {
	saved := peerOwner
	t.Cleanup(func() { peerOwner = saved })
	broken := errors.Join(errors.New("localpeer: netlink: operation not permitted"), errors.New("localpeer: open /proc/net/tcp: permission denied"))
	peerOwner = func(net.Conn) (bool, localpeer.Socket, error) { return false, localpeer.Socket{}, broken }

	addr, accepted, msgs := serveOwnerOnly(t)
	if c, err := net.Dial("tcp", addr); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _ := c.Read(make([]byte, 16)); n != 0 {
			t.Errorf("read %d bytes from a refused connection", n)
		}
		c.Close()
	}
	noneAccepted(t, accepted, "a connection of unknown owner")
	waitFor(t, "the refusal line", func() bool { return len(msgs.all()) > 0 })
	if l := msgs.all(); len(l) != 1 || !strings.Contains(l[0], "cannot tell which user made it") || !strings.Contains(l[0], "permission denied") {
		t.Errorf("told %q", l)
	}

	ln, err := listenLocal(0)
	if err == nil {
		ln.Close()
		t.Fatal("listenLocal succeeded though owners cannot be told")
	}
	var le *Error
	if !errors.As(err, &le) || !strings.Contains(le.Msg, "cannot tell which user opens connections to the local port") ||
		!strings.Contains(le.Msg, "nothing was started") || strings.Contains(le.Error(), "\n") {
		t.Errorf("listenLocal: %v", err)
	}
}

// Where the system has no way to tell (macOS), connections pass and nothing is said.
func TestOwnerOnlyUnsupportedLetsThrough(t *testing.T) {
	saved := peerOwner
	t.Cleanup(func() { peerOwner = saved })
	peerOwner = func(net.Conn) (bool, localpeer.Socket, error) {
		return false, localpeer.Socket{}, localpeer.ErrUnsupported
	}
	addr, accepted, msgs := serveOwnerOnly(t)
	expectOwn(t, addr, accepted)
	expectOwn(t, addr, accepted)
	if l := msgs.all(); len(l) != 0 {
		t.Errorf("told %q", l)
	}
	ln, err := listenLocal(0)
	if err != nil {
		t.Fatalf("listenLocal with the check unsupported: %v", err)
	}
	ln.Close()
}

// A user retrying gets one line a minute, with the count of the others.
func TestOwnerOnlyTellsOncePerMinute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := &told{}
	ol := ownerOnly(ln, msgs.line).(*ownerListener)
	now := time.Unix(1e9, 0)
	ol.now = func() time.Time { return now }
	other := localpeer.Socket{UID: 1234, Inode: 99}
	third := localpeer.Socket{UID: 4321, Inode: 98}
	for range 5 {
		ol.refused(other, nil)
		now = now.Add(time.Second)
	}
	ol.refused(third, nil)
	now = now.Add(refuseQuiet)
	ol.refused(other, nil)
	l := msgs.all()
	want := []string{"uid 1234", "uid 4321", "uid 1234 (and 4 more since the last notice)"}
	if len(l) != len(want) {
		t.Fatalf("told %q", l)
	}
	for i, w := range want {
		if !strings.Contains(l[i], w+";") {
			t.Errorf("line %d: %q; want %q in it", i, l[i], w)
		}
	}
}

// BenchmarkOwnerOnlyAccept is the cost per connection: dial, accept through the
// check, close; and the same without the check, for comparison.
func BenchmarkOwnerOnlyAccept(b *testing.B) {
	for _, check := range []bool{false, true} {
		name := "plain"
		if check {
			name = "owner-only"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			var l net.Listener = ln
			if check {
				l = ownerOnly(ln, func(string, ...any) {})
			}
			addr := ln.Addr().String()
			for b.Loop() {
				d, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				a, err := l.Accept()
				if err != nil {
					b.Fatal(err)
				}
				a.Close()
				d.Close()
			}
		})
	}
}

// BenchmarkPeerOwner is the check alone (one sock_diag lookup on Linux).
func BenchmarkPeerOwner(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	a, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	for b.Loop() {
		if mine, _, err := peerOwner(a); !mine || err != nil {
			b.Fatal(mine, err)
		}
	}
}

// How each kind of refused connection is named in the notice.
func TestDescribePeer(t *testing.T) {
	tests := []struct {
		peer localpeer.Socket
		err  error
		want string
	}{
		{localpeer.Socket{UID: 65534, Inode: 7, State: localpeer.Established}, nil, "from another user of this machine, "},
		{localpeer.Socket{UID: 65534, Inode: 7, State: localpeer.Established}, nil, "uid 65534"},
		{localpeer.Socket{UID: 0, Inode: 0, State: localpeer.TimeWait}, nil, "closed before tether could tell who made it"},
		{localpeer.Socket{UID: 1001, Inode: 0, State: 4}, nil, "closed before tether could tell who made it"},
		{localpeer.Socket{UID: -1, PID: 4242, State: localpeer.Established}, nil, "from process 4242, which does not run as you"},
		{localpeer.Socket{UID: -1, PID: 0, State: localpeer.TimeWait}, nil, "closed before tether could tell who made it"},
		{localpeer.Socket{UID: -1, PID: 0, State: localpeer.Established}, nil, "from a process the system does not name"},
		{localpeer.Socket{}, localpeer.ErrNotFound, "already gone"},
		{localpeer.Socket{}, errors.New("localpeer: netlink: operation\nnot permitted"), "cannot tell which user made it (localpeer: netlink: operation not permitted)"},
	}
	for _, tc := range tests {
		if _, got := describePeer(tc.peer, tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("for %v pid %d, %v: got %q; want %q in it", tc.peer, tc.peer.PID, tc.err, got, tc.want)
		}
	}
}
