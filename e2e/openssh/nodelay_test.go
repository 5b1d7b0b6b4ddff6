//go:build linux

package openssh

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/tunnel"

	"github.com/tether-dev/tether/e2e"
)

// sshdNoDelay reads TCP_NODELAY of every connected socket that sshd's per-connection
// processes hold on s.Port, by duplicating them with pidfd_getfd (the processes are
// this test's descendants, so ptrace rules allow it). It returns one value per socket.
func sshdNoDelay(t *testing.T, s *e2e.SSHD) ([]int, error) {
	t.Helper()
	var values []int
	for _, pid := range e2e.Descendants(s.PID(), "sshd") {
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone already
		}
		entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range entries {
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:") {
				continue
			}
			n, _ := strconv.Atoi(e.Name())
			fd, err := unix.PidfdGetfd(pidfd, n, 0)
			if err != nil {
				unix.Close(pidfd)
				return nil, fmt.Errorf("pidfd_getfd on sshd %d: %w", pid, err)
			}
			sa, err1 := unix.Getsockname(fd)
			_, err2 := unix.Getpeername(fd)
			if in, ok := sa.(*unix.SockaddrInet4); ok && err1 == nil && err2 == nil && in.Port == s.Port {
				v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
				if err == nil {
					values = append(values, v)
				}
			}
			unix.Close(fd)
		}
		unix.Close(pidfd)
	}
	return values, nil
}

// allSet: at least one socket, and TCP_NODELAY on every one.
func allSet(v []int) bool {
	for _, x := range v {
		if x == 0 {
			return false
		}
	}
	return len(v) > 0
}

// TestNoDelayExec: a stock sshd leaves Nagle on for a connection that only forwards,
// and tunnel's NoDelayExec makes it set TCP_NODELAY, on the first connection and on
// the one that replaces it after the connection dies.
func TestNoDelayExec(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	cfg := e2e.Resolve(t, s.Config, s.Alias)

	// Something to forward to that is not sshd (a forwarded connection to sshd's own
	// port would add a socket of its own to the count).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	target := ln.Addr().String()

	plain := e2e.DialT(t, cfg, tunnel.Options{})
	conn, err := plain.DialContext(e2e.Context(t, 10*time.Second), "tcp", target)
	if err != nil {
		t.Fatalf("forward through the plain connection: %v", err)
	}
	conn.Close()
	time.Sleep(300 * time.Millisecond)
	v, err := sshdNoDelay(t, s)
	if err != nil {
		// pidfd_getfd needs Linux 5.6 and ptrace rights over sshd: a kernel or
		// sandbox limit, not a missing package, so it skips even under
		// TETHER_E2E=require, saying why.
		if e2e.Required() && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			t.Fatalf("TETHER_E2E=require: cannot inspect sshd's sockets: %v", err)
		}
		t.Skipf("cannot inspect sshd's sockets here (pidfd_getfd): %v", err)
	}
	if len(v) == 0 || allSet(v) {
		t.Fatalf("a forwarding-only connection: TCP_NODELAY on sshd's sockets = %v; want found and off (the premise of NoDelayExec)", v)
	}
	plain.Close()
	if !e2e.WaitFor(5*time.Second, func() bool { v, _ := sshdNoDelay(t, s); return len(v) == 0 }) {
		t.Fatal("the plain connection's sshd processes did not go away")
	}

	c := e2e.DialT(t, cfg, tunnel.Options{NoDelayExec: true})
	if !e2e.WaitFor(10*time.Second, func() bool { v, _ := sshdNoDelay(t, s); return allSet(v) }) {
		v, _ := sshdNoDelay(t, s)
		t.Fatalf("with NoDelayExec, TCP_NODELAY on sshd's sockets = %v; want all on", v)
	}
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	// The replacement connection is made on demand or by the supervisor; ask for a
	// channel so the test does not depend on which.
	if !e2e.WaitFor(20*time.Second, func() bool {
		conn, err := c.DialContext(e2e.Context(t, 5*time.Second), "tcp", target)
		if err != nil {
			return false
		}
		conn.Close()
		v, _ := sshdNoDelay(t, s)
		return allSet(v)
	}) {
		v, _ := sshdNoDelay(t, s)
		t.Fatalf("after a reconnect, TCP_NODELAY on sshd's sockets = %v; want all on", v)
	}
}
