// Package localpeer tells who holds the other end of a TCP connection on this machine,
// and which TCP sockets listen here, as the kernel reports them. tether asks it so that
// nothing secret goes to, and nothing is accepted from, a socket another user owns:
// the launcher refuses browsers' connections that come from other users of the laptop,
// and the remote server sends the app's requests (and its injected secret) only to a
// listener the app's own user holds.
//
// Linux answers from the kernel's socket tables (one sock_diag netlink request per
// lookup, /proc/net/tcp and tcp6 where netlink is not allowed). Windows names the
// owning process (iphlpapi's GetExtendedTcpTable), and SameUser compares the user of
// that process's token with ours. Other systems (macOS among them) return
// ErrUnsupported.
package localpeer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrUnsupported: this system gives no way to learn a socket's owner here.
var ErrUnsupported = errors.New("localpeer: not supported on this system")

// ErrNotFound: the kernel has no socket with that address pair (the connection is gone,
// or it is not a TCP connection on this machine).
var ErrNotFound = errors.New("localpeer: no such socket")

// Socket is one TCP socket in the kernel's table.
type Socket struct {
	Local, Remote netip.AddrPort // Remote is the zero AddrPort of its family for a listener
	State         State
	UID           int    // the owner's user id (the creator's, inherited by accepted sockets); -1 where the system names a process instead
	Inode         uint64 // the socket's inode (Linux): /proc/PID/fd/N links to "socket:[Inode]"
	PID           int    // the owning process, where the system names one (Windows); 0 otherwise
}

// State is a TCP state as the kernel numbers it.
type State uint8

// The states tether looks at.
const (
	Established State = 1
	// SynRecv is a connection whose handshake the listening side has not completed
	// (its ACK is still on the way, or the accept queue was full). The kernel names no
	// owner for it: sock_diag reports uid 0, so its UID must not be trusted.
	SynRecv  State = 3
	TimeWait State = 6 // a closed connection's remains, which no process holds
	Listen   State = 10
)

func (s Socket) String() string {
	return fmt.Sprintf("%s->%s state %d uid %d inode %d", s.Local, s.Remote, s.State, s.UID, s.Inode)
}

// Peer returns the socket at the other end of c, a TCP connection between two
// sockets of this machine (loopback): the one whose local address is c's remote
// address and whose remote address is c's local one. Its UID is who accepted (for a
// connection c dialled) or who dialled (for one c accepted).
func Peer(c net.Conn) (Socket, error) {
	l, r, err := addrs(c)
	if err != nil {
		return Socket{}, err
	}
	return Lookup(r, l)
}

// Lookup returns the TCP socket whose local address is local and whose remote address
// is remote.
func Lookup(local, remote netip.AddrPort) (Socket, error) {
	return lookup(local, remote)
}

// SameUser reports whether s belongs to the user running this program. A socket that
// no process holds any more (closed while its connection waits to be accepted: Linux
// reports such sockets with inode 0, and as root's when in TIME_WAIT) belongs to no
// one. Where the system names a process instead of a user (Windows), the process's
// user is compared; a process this program may not open is not ours.
func SameUser(s Socket) (bool, error) { return sameUser(s) }

// Listening returns every TCP socket in the LISTEN state (IPv4 and IPv6) in this
// network namespace.
func Listening() ([]Socket, error) { return listening() }

// SocketInodes returns the inodes of the sockets the processes pids hold open (their
// descriptors), each with a pid that holds it. A pid that is gone, or whose
// descriptors this program may not read (another user's, unless root), is skipped.
func SocketInodes(pids []int) (map[uint64]int, error) { return socketInodes(pids) }

func addrs(c net.Conn) (local, remote netip.AddrPort, err error) {
	la, ok1 := c.LocalAddr().(*net.TCPAddr)
	ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || la == nil || ra == nil {
		return netip.AddrPort{}, netip.AddrPort{}, fmt.Errorf("localpeer: %T is not a TCP connection", c)
	}
	return la.AddrPort(), ra.AddrPort(), nil
}

// unmapPair writes an IPv4 pair as IPv4 (Go reports ::ffff:a.b.c.d for IPv4 peers
// of dual-stack sockets).
func unmapPair(a, b netip.AddrPort) (netip.AddrPort, netip.AddrPort) {
	if a.Addr().Is4In6() && b.Addr().Is4In6() {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		b = netip.AddrPortFrom(b.Addr().Unmap(), b.Port())
	}
	return a, b
}
