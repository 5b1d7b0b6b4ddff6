package localpeer

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// TestMain doubles as a helper process: it dials the address given, prints "ok", and
// holds the connection until its stdin closes.
func TestMain(m *testing.M) {
	if addr := os.Getenv("LOCALPEER_TEST_DIAL"); addr != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		fmt.Println("ok", c.LocalAddr())
		bufio.NewReader(os.Stdin).ReadString('\n')
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// underWine: wine 8 (used to run these tests on Linux) attributes an IPv4
// connection's dialling socket to its process, as Windows does, but reports accepted
// and listening sockets, and every socket of its IPv6 table, with pid 0.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func winPair(t *testing.T, network, addr string) (ln net.Listener, dialled, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s %s here: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
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
		t.Fatal(err)
	}
	a, ok := <-got
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return ln, d, a
}

// Both ends of a connection within this process: found, owned by this process, ours.
func TestWindowsPeerOwnProcess(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		_, d, a := winPair(t, tc.network, tc.addr)
		for name, c := range map[string]net.Conn{"dialled": d, "accepted": a} {
			if underWine() && (name == "dialled" || tc.network == "tcp6") {
				// Wine 8 gives no pid to accepted sockets, nor to any in its IPv6 table.
				t.Logf("%s %s: not checked under wine, which gives that socket no pid", tc.network, name)
				continue
			}
			s, err := Peer(c)
			if err != nil {
				t.Fatalf("%s %s: Peer: %v", tc.network, name, err)
			}
			if s.PID != os.Getpid() || s.State != Established || s.UID != -1 {
				t.Errorf("%s %s: got %v pid %d; want established, pid %d", tc.network, name, s, s.PID, os.Getpid())
			}
			if ok, err := SameUser(s); !ok || err != nil {
				t.Errorf("%s %s: SameUser = %v, %v", tc.network, name, ok, err)
			}
		}
	}
}

// A connection from another process of ours: its PID, and (its token opened and
// compared) the same user.
func TestWindowsPeerChildProcess(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOCALPEER_TEST_DIAL="+ln.Addr().String())
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "ok") {
		t.Fatalf("helper: %q", line)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s, err := Peer(a)
	if err != nil {
		t.Fatalf("Peer: %v", err)
	}
	if s.PID != cmd.Process.Pid {
		t.Errorf("got %v pid %d; want the helper's pid %d", s, s.PID, cmd.Process.Pid)
	}
	if ok, err := SameUser(s); !ok || err != nil {
		t.Errorf("SameUser(helper) = %v, %v; want true", ok, err)
	}
}

// A process we may not open (the System process, pid 4), no process (pid 0, closed
// connections) and a pid that does not exist are not ours.
func TestWindowsSameUserOthers(t *testing.T) {
	for _, pid := range []int{0, 4, 0x7ffffff0} {
		if ok, err := SameUser(Socket{PID: pid, UID: -1, State: Established}); ok || err != nil {
			t.Errorf("pid %d: SameUser = %v, %v; want false", pid, ok, err)
		}
	}
	if ok, _ := SameUser(Socket{PID: os.Getpid(), UID: -1, State: Established}); !ok {
		t.Error("our own pid is not ours")
	}
}

func TestWindowsListening(t *testing.T) {
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
			if underWine() && s.PID == 0 && s.State == Listen {
				t.Logf("found %v; wine gives listeners no pid", s)
				return
			}
			if s.PID != os.Getpid() || s.State != Listen {
				t.Errorf("got %v pid %d", s, s.PID)
			}
			return
		}
	}
	t.Errorf("listener %v not among %d listening sockets", want, len(all))
}

func BenchmarkWindowsPeer(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for b.Loop() {
		if _, err := Peer(d); err != nil {
			b.Fatal(err)
		}
	}
}
