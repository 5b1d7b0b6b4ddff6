package localpeer

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"
)

// pair makes a loopback TCP connection on network ("tcp4" or "tcp6") and returns
// the dialled and the accepted ends.
func pair(tb testing.TB, network, addr string) (dialled, accepted net.Conn) {
	tb.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		tb.Skipf("cannot listen on %s %s here: %v", network, addr, err)
	}
	tb.Cleanup(func() { ln.Close() })
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		got <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a, ok := <-got
	if !ok {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

func TestPeerBothEnds(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		d, a := pair(t, tc.network, tc.addr)
		for name, c := range map[string]net.Conn{"dialled": d, "accepted": a} {
			s, err := Peer(c)
			if err != nil {
				t.Fatalf("%s %s: Peer: %v", tc.network, name, err)
			}
			if s.UID != os.Getuid() {
				t.Errorf("%s %s: uid %d; want %d", tc.network, name, s.UID, os.Getuid())
			}
			if s.Local != c.RemoteAddr().(*net.TCPAddr).AddrPort() || s.Remote != c.LocalAddr().(*net.TCPAddr).AddrPort() {
				t.Errorf("%s %s: got %v; want the pair reversed from %v->%v", tc.network, name, s, c.LocalAddr(), c.RemoteAddr())
			}
			if s.Inode == 0 || s.State != Established {
				t.Errorf("%s %s: got %v; want an established socket with an inode", tc.network, name, s)
			}
			if ok, err := SameUser(s); !ok || err != nil {
				t.Errorf("%s %s: SameUser = %v, %v", tc.network, name, ok, err)
			}
			// netlink answered (not the /proc fallback), and /proc agrees.
			l, r := unmapPair(s.Local, s.Remote)
			if _, err := diagLookup(l, r); err != nil {
				t.Errorf("%s %s: netlink lookup: %v", tc.network, name, err)
			}
			ps, err := procLookup(l, r)
			if err != nil || ps.UID != s.UID || ps.Inode != s.Inode {
				t.Errorf("%s %s: /proc says %v, %v; netlink %v", tc.network, name, ps, err, s)
			}
		}
	}
}

func TestPeerDualStackListener(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack listener here: %v", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			var b [1]byte
			c.Read(b[:])
		}
	}()
	d, err := net.Dial("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
	if err != nil {
		t.Skipf("no IPv4 to a dual-stack listener here: %v", err)
	}
	defer d.Close()
	s, err := Peer(d)
	if err != nil {
		t.Fatalf("Peer of a dual-stack listener's connection: %v", err)
	}
	if s.UID != os.Getuid() || s.Local.Port() != uint16(port) || !s.Local.Addr().Is4() {
		t.Errorf("got %v; want our uid, 127.0.0.1:%d written as IPv4", s, port)
	}
}

func TestLookupGoneIsNotFound(t *testing.T) {
	d, a := pair(t, "tcp4", "127.0.0.1:0")
	l, r := d.LocalAddr().(*net.TCPAddr).AddrPort(), d.RemoteAddr().(*net.TCPAddr).AddrPort()
	a.Close()
	d.Close()
	// After both closed, the pair may linger in TIME_WAIT (owned by nobody: uid 0) but
	// never as a live socket of ours; a made-up pair is simply not found.
	if _, err := Lookup(netip.AddrPortFrom(l.Addr(), 1), r); !errors.Is(err, ErrNotFound) {
		t.Errorf("made-up pair: err %v; want ErrNotFound", err)
	}
}

// A listener on the port answers no exact lookup of a pair that is not connected
// (the kernel's exact lookup falls back to listeners; we must not).
func TestLookupIgnoresListenerFallback(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lp := ln.Addr().(*net.TCPAddr).AddrPort()
	if s, err := Lookup(lp, netip.MustParseAddrPort("127.0.0.1:9")); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, %v; want ErrNotFound", s, err)
	}
}

func TestListening(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := ln.Addr().(*net.TCPAddr).AddrPort()
	all, err := Listening()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Local == want {
			if s.UID != os.Getuid() || s.Inode == 0 || s.State != Listen {
				t.Errorf("got %v", s)
			}
			return
		}
	}
	t.Errorf("listener %v not among %d listening sockets", want, len(all))
}

func TestSocketInodes(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	var inode uint64
	all, err := Listening()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Local == addr {
			inode = s.Inode
		}
	}
	if inode == 0 {
		t.Fatalf("listener %v not found", addr)
	}
	// Our process holds it; a pid that does not exist is skipped, not an error.
	got, err := SocketInodes([]int{1 << 30, os.Getpid()})
	if err != nil || got[inode] != os.Getpid() {
		t.Fatalf("SocketInodes(self) = %v, %v; want inode %d held by %d", got, err, inode, os.Getpid())
	}
	// Another process does not (sleep holds no socket).
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	got, err = SocketInodes([]int{cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[inode]; ok {
		t.Errorf("SocketInodes(sleep) claims our listener: %v", got)
	}
}

func TestParseProcAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0016", "0.0.0.0:22"},
		{"00000000000000000000000001000000:0050", "[::1]:80"},
		{"0000000000000000FFFF00000100007F:1F90", "[::ffff:127.0.0.1]:8080"},
	}
	for _, tc := range tests {
		got, err := parseProcAddr(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("for %q, got %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007:1F90", "zz00007F:1F90", "0100007F:10000"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("for %q, got no error", bad)
		}
	}
}

// BenchmarkPeer is what the launcher pays per accepted connection.
func BenchmarkPeer(b *testing.B) {
	d, _ := pair(b, "tcp4", "127.0.0.1:0")
	for b.Loop() {
		if _, err := Peer(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPeerProc(b *testing.B) {
	d, _ := pair(b, "tcp4", "127.0.0.1:0")
	l, r := d.RemoteAddr().(*net.TCPAddr).AddrPort(), d.LocalAddr().(*net.TCPAddr).AddrPort()
	for b.Loop() {
		if _, err := procLookup(l, r); err != nil {
			b.Fatal(err)
		}
	}
}

// A connection whose dialling end was closed before it was accepted (send, close at
// once) has no owner any more: the kernel reports that end with inode 0, and as uid 0
// once it is a TIME_WAIT socket. It must not pass for root's (or anyone's).
func TestClosedPeerIsNobodys(t *testing.T) {
	d, a := pair(t, "tcp4", "127.0.0.1:0")
	d.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	d.Close()
	var s Socket
	var err error
	for range 200 {
		if s, err = Peer(a); err != nil || s.Inode == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Peer after the other end closed: %v", err)
	}
	if s.Inode != 0 {
		t.Fatalf("the closed end still has inode %d: %v", s.Inode, s)
	}
	if ok, err := SameUser(s); ok || err != nil {
		t.Errorf("SameUser(%v) = %v, %v; want false (uid %d reported, we are uid %d)", s, ok, err, s.UID, os.Getuid())
	}
}
