//go:build unix

package remote

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/localpeer"
	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// Secondary ports: the other servers the session's user runs on this machine's
// loopback (a Dask dashboard, TensorBoard, Bokeh started from a notebook; a database
// for `tether forward`), reached through the gate at {base_url}proxy/PORT/ and
// {base_url}_tether/forward/PORT (tokenserver.Ports).
//
// Who may be reached: a listener of the session's own user, on 127.0.0.1 or ::1, and
// nothing else. The request names a port number, never a host; the address is ours to
// pick (127.0.0.1 where a listener of ours takes connections there, else ::1). The
// listening sockets are looked at first, so a port another user holds is refused
// without even a connection to it; then every connection is judged before a byte is
// sent on it, as the app's are (checkAppConn): the socket that accepted it must be our
// user's and the connection established, which no race between the look and the dial
// can get around. Where the system cannot tell who holds a socket (not Linux), no port
// is reached: the check is the whole point.
//
// Not required: that the listener belong to the app's processes. The threat is other
// users; the token that opens proxy/ is the user's own, and anything of theirs on
// loopback they can reach anyway (a shell, ssh -L); TensorBoard or a Dask scheduler
// started from another shell, and sessions of the built-in app, would be shut out by
// such a rule for no one's benefit. The port of the session's app (which gets its
// secret only through the app's own route) and the server's own TCP port are refused.

// portReacher decides and dials secondary ports for one server.
type portReacher struct {
	mu     sync.Mutex
	denied map[int]string // ports never reached, and why
}

func newPortReacher() *portReacher { return &portReacher{denied: map[int]string{}} }

// deny refuses port from now on, saying why (a clause after "port N is").
func (p *portReacher) deny(port int, why string) {
	p.mu.Lock()
	p.denied[port] = why
	p.mu.Unlock()
}

// options are the gate's Ports; leaveProxy hands {base_url}proxy/ to the app.
func (p *portReacher) options(leaveProxy bool) *tokenserver.Ports {
	return &tokenserver.Ports{Dial: p.dial, Check: p.check, LeaveProxyToApp: leaveProxy}
}

// portRefused is a refusal the gate shows as text, and to a launcher as a
// wire.Failure of this kind (its words formatted as wire.Textf).
func portRefused(status int, kind wire.FailKind, format string, args ...any) *tokenserver.PortError {
	f := wire.Fail(kind, wire.Textf(format, args...), nil)
	return &tokenserver.PortError{Status: status, Msg: f.Said.String(), Detail: f.Line()}
}

var errPortsUnsupported = portRefused(http.StatusForbidden, "",
	"this system does not tell tether who holds a port, so tether reaches no other port here")

// check tells, without connecting, whether port may be reached now.
func (p *portReacher) check(port int) error {
	_, err := p.where(port)
	return err
}

// where is the loopback address to dial for port, or why not.
func (p *portReacher) where(port int) (netip.AddrPort, error) {
	p.mu.Lock()
	why, no := p.denied[port]
	p.mu.Unlock()
	if no {
		return netip.AddrPort{}, portRefused(http.StatusForbidden, "", "port %d is %s", port, why)
	}
	all, err := localpeer.Listening()
	switch {
	case errors.Is(err, localpeer.ErrUnsupported):
		return netip.AddrPort{}, errPortsUnsupported
	case err != nil:
		return netip.AddrPort{}, portRefused(http.StatusBadGateway, "", "cannot list %v's listening sockets (%v), so nothing was sent to port %d", wire.ThisMachine, err, port)
	}
	me := os.Getuid()
	v4 := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(port))
	h4, h6 := holder(all, v4), holder(all, v6)
	switch {
	case h4 != nil && h4.UID == me:
		return v4, nil
	case h6 != nil && h6.UID == me:
		return v6, nil
	case h4 != nil:
		return netip.AddrPort{}, heldByOther(port, h4.UID)
	case h6 != nil:
		return netip.AddrPort{}, heldByOther(port, h6.UID)
	}
	return netip.AddrPort{}, portRefused(http.StatusBadGateway, wire.FailPortFree, "nothing listens on port %d on %v's loopback (127.0.0.1 or ::1)", port, wire.ThisMachine)
}

func heldByOther(port, uid int) *tokenserver.PortError {
	return portRefused(http.StatusForbidden, wire.FailPortTaken, "port %d on %v is held by another user, %s, not by you; nothing was sent to it", port, wire.ThisMachine, describeUID(uid))
}

// holder is the listener that gets connections made to addr, as the kernel picks it:
// one bound to addr itself before a wildcard (0.0.0.0 for IPv4; ::, which takes IPv4
// too unless it is IPv6-only, which the tables do not say: counted, to be safe). nil:
// none.
func holder(all []localpeer.Socket, addr netip.AddrPort) *localpeer.Socket {
	var exact, wild *localpeer.Socket
	for i := range all {
		s := &all[i]
		if s.Local.Port() != addr.Port() {
			continue
		}
		a := s.Local.Addr().Unmap()
		switch {
		case a == addr.Addr():
			exact = s
		case a.IsUnspecified() && (a.Is6() || addr.Addr().Is4()):
			if wild == nil || a.Is4() {
				wild = s
			}
		}
	}
	if exact != nil {
		return exact
	}
	return wild
}

// dial connects to port where a listener of ours takes it, and judges the socket that
// accepted before returning: nothing has been sent on a connection it refuses.
func (p *portReacher) dial(ctx context.Context, port int) (net.Conn, error) {
	addr, err := p.where(port)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, portRefused(http.StatusBadGateway, wire.FailPortFree, "nothing listens on %s any more", addr)
		}
		return nil, err
	}
	if err := judgePort(c, port); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// judgePort judges a new connection to a secondary port: the accepting socket must be
// our user's (judgePeer), and a system that cannot tell refuses.
func judgePort(c net.Conn, port int) error {
	s, err := peerOf(c)
	if errors.Is(err, localpeer.ErrUnsupported) {
		return errPortsUnsupported
	}
	err = judgePeer(s, err, c.RemoteAddr().String())
	var taken *portTakenError
	switch {
	case errors.As(err, &taken):
		return heldByOther(port, taken.uid)
	case err != nil:
		return portRefused(http.StatusBadGateway, "", "%v", err)
	}
	return nil
}
