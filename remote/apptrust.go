//go:build unix

package remote

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/wire"
)

// Trusting a TCP app's port, and seeing where the app listens.
//
// A TCP app gets a port the kernel found free on 127.0.0.1 and binds it itself, seconds
// later when it is slow to start. In between any user of the machine may bind it first
// (the port is on the app's command line when it takes {port}, and /proc/PID/cmdline is
// world-readable); that impostor would get the readiness probe and the proxied requests
// with the app's injected secret. So, where the kernel says who owns a socket (Linux):
//   - every connection to the app, the readiness probe's and the proxy's, is judged
//     before a byte is sent on it: the socket at the other end must be our user's
//     (checkAppConn: one sock_diag lookup, about 15 µs);
//   - no request goes before the LISTEN socket on the port is found among the
//     descriptors of the app's own processes (verifyListener), so even the readiness
//     probe that carries the app's secret (marimo's) goes only to the app;
//   - a port another user holds ends that start: the app is stopped and started again
//     on a fresh port, and after portAttempts the start fails, naming the user.
//
// Once the app is ready, every LISTEN socket its processes hold must be on loopback:
// one on 0.0.0.0, :: or a real address lets anyone who can reach the machine around the
// gate, so serve refuses it unless --allow-exposed (exposedListeners).

// portAttempts is how many times the app is started on a fresh port when another user
// takes its port first.
const portAttempts = 3

// portTakenError: a listener that is not the app's holds the app's port.
type portTakenError struct {
	addr netip.AddrPort
	uid  int // the holder's user
	pid  int // the holding process, when it is ours and known
}

func (e *portTakenError) Error() string {
	return fmt.Sprintf("the app's port %s is held by %s, not by the app", e.addr, e.holder())
}

// holder names who holds the port: "another user, bob (uid 1001)".
func (e *portTakenError) holder() string {
	switch {
	case e.uid != os.Getuid():
		return "another user, " + describeUID(e.uid)
	case e.pid > 0:
		return fmt.Sprintf("another process of yours (pid %d%s)", e.pid, procName(e.pid))
	}
	return "a process that is not the app's"
}

// describeUID names a user for messages: "bob (uid 1001)", or "uid 1001".
func describeUID(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// procName is ", NAME" for a pid whose command name can be read, else "".
func procName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return ", " + termsafe.Line(strings.TrimSpace(string(b)))
}

// checkAppConn judges a new connection to a TCP app before anything is sent on it: the
// socket at the other end must belong to our user. It is Upstream.CheckConn for the
// proxy and the readiness probe's dial. Where the system cannot tell (not Linux), every
// connection passes.
func checkAppConn(c net.Conn) error {
	s, err := peerOf(c)
	return judgePeer(s, err, c.RemoteAddr().String())
}

// judgePeer decides on the socket at the other end of a connection to addr. The
// kernel names a real owner only for a connection whose handshake is complete: a
// half-open one (SynRecv) or one in TIME_WAIT reports uid 0, which must not pass for
// root's.
func judgePeer(s localpeer.Socket, err error, addr string) error {
	switch {
	case errors.Is(err, localpeer.ErrUnsupported):
		return nil
	case err != nil:
		return fmt.Errorf("cannot tell who holds %s, so nothing is sent to it: %w", addr, err)
	case s.State != localpeer.Established:
		return fmt.Errorf("the connection to %s is in TCP state %d, not established; nothing is sent to it", addr, s.State)
	case s.UID != os.Getuid():
		return &portTakenError{addr: netip.AddrPortFrom(s.Local.Addr().Unmap(), s.Local.Port()), uid: s.UID}
	}
	return nil
}

// peerOf is localpeer.Peer, waiting (at most about 100 ms) while the other end is still
// completing the handshake: the kernel reports no owner for it then (uid 0).
func peerOf(c net.Conn) (localpeer.Socket, error) {
	for i := 1; ; i++ {
		s, err := localpeer.Peer(c)
		if err != nil || s.State != localpeer.SynRecv || i > 20 {
			return s, err
		}
		time.Sleep(time.Duration(i) * 500 * time.Microsecond)
	}
}

// reaches reports whether a listener on l gets connections made to addr: same port,
// and l is addr itself or a wildcard (0.0.0.0, or :: which takes IPv4 too unless it
// is IPv6-only, which /proc does not say: counted, to be safe).
func reaches(l, addr netip.AddrPort) bool {
	if l.Port() != addr.Port() {
		return false
	}
	a := l.Addr().Unmap()
	return a == addr.Addr() || a.IsUnspecified()
}

// foreignHolder is the error for a listener of another user on addr, or nil: why an
// app that exited before it was ready could not bind its port.
func foreignHolder(addr netip.AddrPort) *portTakenError {
	all, err := localpeer.Listening()
	if err != nil {
		return nil
	}
	for _, s := range all {
		if reaches(s.Local, addr) && s.UID != os.Getuid() {
			return &portTakenError{addr: addr, uid: s.UID}
		}
	}
	return nil
}

// exposed are the addresses in ls beyond loopback, as the kernel reports them (0.0.0.0:8000,
// [::]:8000), sorted and without repeats.
func exposed(ls []localpeer.Socket) []string {
	var out []string
	for _, s := range ls {
		if a := s.Local.Addr().Unmap(); !a.IsLoopback() {
			if t := netip.AddrPortFrom(a, s.Local.Port()).String(); !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// loopbackOn are the loopback addresses in ls on port, as text.
func loopbackOn(ls []localpeer.Socket, port uint16) []string {
	var out []string
	for _, s := range ls {
		if a := s.Local.Addr().Unmap(); a.IsLoopback() && s.Local.Port() == port {
			if t := netip.AddrPortFrom(a, port).String(); !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// joinAddrs lists at most three addresses: "0.0.0.0:8000 and [::]:8001".
func joinAddrs(as []string) string {
	more := ""
	if len(as) > 3 {
		more = fmt.Sprintf(" (and %d more)", len(as)-3)
		as = as[:3]
	}
	if len(as) > 1 {
		return strings.Join(as[:len(as)-1], ", ") + " and " + as[len(as)-1] + more
	}
	return strings.Join(as, "") + more
}

// exposedError is the one-line refusal of an app listening beyond loopback.
func exposedError(addrs []string) wire.Text {
	return wire.Textf("the app listens on %s, where anyone who can reach %v gets to it without the token; "+
		"make it listen on 127.0.0.1 (e.g. python3 -m http.server {port} --bind 127.0.0.1) or pass --allow-exposed", joinAddrs(addrs), wire.ThisMachine)
}

// exposedWarning is what --allow-exposed runs with.
func exposedWarning(addrs []string) wire.Note {
	return wire.Warnf("the app listens on %s, where anyone who can reach %v gets to it without the token (--allow-exposed)", joinAddrs(addrs), wire.ThisMachine)
}
