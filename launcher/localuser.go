package launcher

import (
	"errors"
	"fmt"
	"net"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
	"github.com/tether-dev/tether/internal/termsafe"
)

// Only the user who runs tether may use its local port. Every local user can connect to
// 127.0.0.1, and a browser sends its 127.0.0.1 cookies to every port, so another user of
// the laptop could collect the session's cookie (or read the one-time code in the
// browser's argv) and replay it. The kernel knows who holds the other end of each
// loopback connection (internal/localpeer): a connection from anyone else is closed
// before a byte of it is read or forwarded.
//
// Where the system cannot tell (macOS, others), the check is off (README says so per
// platform). Where it should be able to but cannot (Linux with neither sock_diag nor
// /proc/net/tcp, a sandbox), tether refuses to start rather than serve everyone.

// peerOwner tells whether the other end of c, a connection accepted on the local port,
// belongs to the user running tether (a variable for tests).
var peerOwner = func(c net.Conn) (mine bool, peer localpeer.Socket, err error) {
	peer, err = localpeer.Peer(c)
	if err != nil {
		return false, peer, err
	}
	mine, err = localpeer.SameUser(peer)
	return mine, peer, err
}

// refuseQuiet: after telling of a refused connection, others from the same user are
// only counted for this long (a page retrying would fill the terminal).
const refuseQuiet = time.Minute

// ownerListener accepts only the connections of the user running tether; it closes
// the others and says so on the status output (rate-limited, one line per user).
type ownerListener struct {
	net.Listener
	port int
	tell func(format string, args ...any)
	now  func() time.Time

	mu   sync.Mutex
	off  bool // the system cannot tell owners: every connection is let through
	told map[string]*refusal
}

type refusal struct {
	last  time.Time
	since int // refused and not told since last
}

// ownerOnly wraps ln, the launcher's local listener, so that only this user's
// connections are accepted; refusals are told through tell (the status line).
func ownerOnly(ln net.Listener, tell func(format string, args ...any)) net.Listener {
	port := 0
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	return &ownerListener{Listener: ln, port: port, tell: tell, now: time.Now, told: map[string]*refusal{}}
}

// Accept returns the next connection of this user. Another user's, or one whose owner
// cannot be told, is closed at once (a reset: nothing read, nothing answered).
func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		off := l.off
		l.mu.Unlock()
		if off {
			return c, nil
		}
		mine, peer, err := peerOwner(c)
		if err == nil && mine {
			return c, nil
		}
		if errors.Is(err, localpeer.ErrUnsupported) {
			l.mu.Lock()
			l.off = true
			l.mu.Unlock()
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		l.refused(peer, err)
	}
}

// refused tells the user of a refused connection: the first from each user at once,
// then at most one line per refuseQuiet with how many more there were.
func (l *ownerListener) refused(peer localpeer.Socket, err error) {
	key, who := describePeer(peer, err)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.told[key]
	if r != nil && now.Sub(r.last) < refuseQuiet {
		r.since++
		return
	}
	more := ""
	if r != nil && r.since > 0 {
		more = fmt.Sprintf(" (and %d more since the last notice)", r.since)
	}
	l.told[key] = &refusal{last: now}
	if l.tell != nil {
		l.tell("tether: refused a connection to local port %d %s%s; only your own programs may use it", l.port, who, more)
	}
}

// describePeer names who made a refused connection, and a key to count them by.
func describePeer(peer localpeer.Socket, err error) (key, who string) {
	switch {
	case err != nil && errors.Is(err, localpeer.ErrNotFound):
		return "gone", "whose other end was already gone"
	case err != nil:
		return "error", "because tether cannot tell which user made it (" + termsafe.OneLine(err.Error()) + ")"
	case peer.Inode == 0 && peer.PID == 0 && (peer.UID >= 0 || peer.State != localpeer.Established):
		// No process holds that end any more (closed at once): Linux names no inode
		// (and a TIME_WAIT socket as uid 0's), Windows no process.
		return "orphan", "whose other end was closed before tether could tell who made it"
	case peer.PID == 0 && peer.UID < 0:
		return "unknown", "from a process the system does not name (not one of yours)"
	case peer.UID >= 0:
		name := "uid " + strconv.Itoa(peer.UID)
		if u, err := user.LookupId(strconv.Itoa(peer.UID)); err == nil && u.Username != "" {
			name = termsafe.OneLine(u.Username) + " (" + name + ")"
		}
		return "uid " + strconv.Itoa(peer.UID), "from another user of this machine, " + name
	case peer.PID > 0:
		return "pid " + strconv.Itoa(peer.PID), fmt.Sprintf("from process %d, which does not run as you", peer.PID)
	}
	return "other", "from another user of this machine"
}

// checkOwnerCheck makes sure, before anything starts, that the system can tell who
// makes connections to the local port: one loopback connection of our own must be
// found and recognised as ours. nil where it works and where the system offers no way
// (the check is off there).
func checkOwnerCheck() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil // listenLocal has just listened; this cannot fail for long, and it is no proof either way
	}
	defer ln.Close()
	// The accepting goroutine is checkOwnerCheck's: every return receives from got.
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		got <- c
	}()
	d, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		ln.Close() // ends the Accept, which is waited for
		if c, ok := <-got; ok {
			c.Close()
		}
		return nil
	}
	defer d.Close()
	a, ok := <-got
	if !ok {
		return nil
	}
	defer a.Close()
	mine, _, err := peerOwner(a)
	switch {
	case errors.Is(err, localpeer.ErrUnsupported):
		return nil
	case err != nil:
		return errorf("run tether where it may read /proc/net/tcp or use sock_diag netlink (outside this sandbox)",
			"cannot tell which user opens connections to the local port (%s), so other users of this machine could not be kept out; nothing was started", termsafe.Clip(termsafe.OneLine(err.Error()), 200))
	case !mine:
		return errorf("run tether where the kernel's socket table shows your own user (outside this sandbox)",
			"cannot tell your own connections to the local port from other users' (a test connection of tether's own was not recognised as yours); nothing was started")
	}
	return nil
}
