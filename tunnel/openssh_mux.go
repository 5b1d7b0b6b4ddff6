//go:build unix

package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// A client of OpenSSH's connection multiplexing (ControlMaster), speaking the master's
// control protocol (PROTOCOL.mux in OpenSSH's sources) over its Unix socket, the way
// `ssh -S PATH` does: each request on a connection of its own; a session or stdio
// forward hands the master file descriptors (SCM_RIGHTS) that it then reads and writes
// itself. No ssh process is started per command or per connection, and ssh_config (with
// its Match exec) is not read again for each of them.

const (
	muxHello          = 0x00000001
	muxCNewSession    = 0x10000002
	muxCAliveCheck    = 0x10000004
	muxCOpenFwd       = 0x10000006
	muxCCloseFwd      = 0x10000007
	muxCNewStdioFwd   = 0x10000008
	muxSOK            = 0x80000001
	muxSDenied        = 0x80000002
	muxSFailure       = 0x80000003
	muxSExitMessage   = 0x80000004
	muxSAlive         = 0x80000005
	muxSSessionOpened = 0x80000006
	muxSRemotePort    = 0x80000007
	muxSTTYAllocFail  = 0x80000008

	muxVersion      = 4
	muxFwdLocal     = 1
	portStreamLocal = 0xfffffffe // (u_int)-2: the host field is a Unix socket path

	maxMuxMessage = 256 << 10
)

// muxConn is one connection to a master's control socket.
type muxConn struct {
	c        *net.UnixConn
	rid      uint32
	timedOut atomic.Bool // bound's muxTimeout closed it
}

// MuxError is the master's refusal of a request (MUX_S_FAILURE or
// MUX_S_PERMISSION_DENIED), with its reason.
type MuxError struct {
	Denied bool
	Reason string
}

func (e *MuxError) Error() string {
	if e.Denied {
		return "tunnel: the ssh master refused: " + e.Reason
	}
	return "tunnel: the ssh master says: " + e.Reason
}

// errNoMaster: nothing answers on the control socket (no master, or a stale socket).
var errNoMaster = errors.New("no ssh master answers there")

// dialMux connects to the master at path and exchanges hellos. The socket must be the
// user's own (the master runs as the user): one that another user made, where a
// ControlPath in a shared directory lets them, is refused, since whatever answers there
// would see every command and its output.
func dialMux(ctx context.Context, path string) (*muxConn, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("tunnel: control socket %s: %w", path, errNoMaster)
		}
		return nil, fmt.Errorf("tunnel: control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("tunnel: control socket %s is not a socket", path)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return nil, fmt.Errorf("tunnel: control socket %s belongs to uid %d, not to you; refusing to use it", path, uid)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, fmt.Errorf("tunnel: control socket %s: %w", path, errNoMaster)
		}
		return nil, fmt.Errorf("tunnel: control socket %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	if uid, ok := peerUID(uc); ok && uid != os.Geteuid() {
		uc.Close()
		return nil, fmt.Errorf("tunnel: the process on control socket %s runs as uid %d, not as you; refusing to use it", path, uid)
	}
	m := &muxConn{c: uc}
	stop := m.bound(ctx)
	defer stop()
	if err := m.write(msg(muxHello).u32(muxVersion)); err != nil {
		m.Close()
		return nil, m.ctxErr(ctx, err)
	}
	b, err := m.read()
	if err != nil {
		m.Close()
		return nil, m.ctxErr(ctx, fmt.Errorf("tunnel: control socket %s: no hello: %w", path, err))
	}
	r := reader(b)
	if t := r.u32(); t != muxHello {
		m.Close()
		return nil, fmt.Errorf("tunnel: control socket %s: unexpected message %#x", path, t)
	}
	if v := r.u32(); v != muxVersion || r.err != nil {
		m.Close()
		return nil, fmt.Errorf("tunnel: control socket %s speaks multiplexing version %d, not %d", path, v, muxVersion)
	}
	return m, nil
}

// muxTimeout bounds each exchange with a master (hello, a request and its reply, a
// session's or stdio forward's opening, which waits for the server): a master that
// stopped (SIGSTOP) still accepts connections, and would hang the caller otherwise.
var muxTimeout = 20 * time.Second

// bound closes the connection when ctx ends or muxTimeout passes, until the returned
// stop is called.
func (m *muxConn) bound(ctx context.Context) (stop func() bool) {
	t := time.AfterFunc(muxTimeout, func() { m.timedOut.Store(true); m.c.Close() })
	cancel := context.AfterFunc(ctx, func() { m.c.Close() })
	return func() bool {
		a, b := t.Stop(), cancel()
		return a && b
	}
}

func (m *muxConn) ctxErr(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case m.timedOut.Load():
		return fmt.Errorf("the ssh master did not answer within %v", muxTimeout)
	}
	return err
}

func (m *muxConn) Close() error { return m.c.Close() }

func (m *muxConn) nextID() uint32 {
	m.rid++
	return m.rid
}

func (m *muxConn) write(b *muxMsg) error {
	buf := make([]byte, 4, 4+len(b.b))
	binary.BigEndian.PutUint32(buf, uint32(len(b.b)))
	_, err := m.c.Write(append(buf, b.b...))
	return err
}

func (m *muxConn) read() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(m.c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMuxMessage {
		return nil, fmt.Errorf("control message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(m.c, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// sendFD passes fd to the master: one byte with the descriptor attached, as OpenSSH's
// mm_send_fd, which the master reads with exactly one recvmsg per descriptor.
func (m *muxConn) sendFD(fd int) error {
	_, _, err := m.c.WriteMsgUnix([]byte{0}, syscall.UnixRights(fd), nil)
	return err
}

// reply reads the answer to request rid: its type and the rest of the message.
// MUX_S_FAILURE and MUX_S_PERMISSION_DENIED become a *MuxError.
func (m *muxConn) reply(rid uint32) (uint32, *muxReader, error) {
	b, err := m.read()
	if err != nil {
		return 0, nil, err
	}
	r := reader(b)
	t, id := r.u32(), r.u32()
	if r.err != nil {
		return 0, nil, errors.New("short control message")
	}
	if id != rid {
		return 0, nil, fmt.Errorf("control reply for request %d, not %d", id, rid)
	}
	switch t {
	case muxSFailure, muxSDenied:
		return t, r, &MuxError{Denied: t == muxSDenied, Reason: r.str()}
	}
	return t, r, nil
}

// alive asks the master for its process ID (MUX_C_ALIVE_CHECK, `ssh -O check`).
func (m *muxConn) alive(ctx context.Context) (int, error) {
	stop := m.bound(ctx)
	defer stop()
	rid := m.nextID()
	if err := m.write(msg(muxCAliveCheck).u32(rid)); err != nil {
		return 0, m.ctxErr(ctx, err)
	}
	t, r, err := m.reply(rid)
	if err != nil {
		return 0, m.ctxErr(ctx, err)
	}
	if t != muxSAlive {
		return 0, fmt.Errorf("unexpected reply %#x to an alive check", t)
	}
	return int(r.u32()), nil
}

// forward asks the master to listen on the Unix socket local and forward each
// connection to remote (a Unix socket path, or host:port), as `ssh -O forward -L`;
// cancel removes such a forward.
func (m *muxConn) forward(ctx context.Context, cancel bool, local, remoteHost string, remotePort uint32) error {
	stop := m.bound(ctx)
	defer stop()
	t := uint32(muxCOpenFwd)
	if cancel {
		t = muxCCloseFwd
	}
	rid := m.nextID()
	if err := m.write(msg(t).u32(rid).u32(muxFwdLocal).str(local).u32(portStreamLocal).str(remoteHost).u32(remotePort)); err != nil {
		return m.ctxErr(ctx, err)
	}
	rt, _, err := m.reply(rid)
	if err != nil {
		return m.ctxErr(ctx, err)
	}
	if rt != muxSOK {
		return fmt.Errorf("unexpected reply %#x to a forward request", rt)
	}
	return nil
}

// stdioForward asks the master for a channel to host:port (direct-tcpip) carried over
// fd, as `ssh -W`. It returns once the server confirmed the channel; the channel
// lives as long as this control connection (and ends it when it closes).
func (m *muxConn) stdioForward(ctx context.Context, host string, port uint32, fd int) error {
	stop := m.bound(ctx)
	defer stop()
	rid := m.nextID()
	if err := m.write(msg(muxCNewStdioFwd).u32(rid).str("").str(host).u32(port)); err != nil {
		return m.ctxErr(ctx, err)
	}
	for range 2 { // stdin, stdout
		if err := m.sendFD(fd); err != nil {
			return m.ctxErr(ctx, err)
		}
	}
	t, _, err := m.reply(rid)
	if err != nil {
		return m.ctxErr(ctx, err)
	}
	if t != muxSSessionOpened {
		return fmt.Errorf("unexpected reply %#x to a stdio forward", t)
	}
	return nil
}

// session starts command in a new session channel with the given descriptors as its
// stdin, stdout and stderr (MUX_C_NEW_SESSION, no tty, no forwarding of X11 or the
// agent, no escape character). It returns once the session is open; wait then reads
// its exit status.
func (m *muxConn) session(ctx context.Context, command string, fds [3]int) error {
	stop := m.bound(ctx)
	defer stop()
	rid := m.nextID()
	req := msg(muxCNewSession).u32(rid).str("").u32(0).u32(0).u32(0).u32(0).u32(0xffffffff).str("").str(command)
	if err := m.write(req); err != nil {
		return m.ctxErr(ctx, err)
	}
	for _, fd := range fds {
		if err := m.sendFD(fd); err != nil {
			return m.ctxErr(ctx, err)
		}
	}
	t, _, err := m.reply(rid)
	if err != nil {
		return m.ctxErr(ctx, err)
	}
	if t != muxSSessionOpened {
		return fmt.Errorf("unexpected reply %#x to a session request", t)
	}
	return nil
}

// errNoExitStatus: the session ended without an exit status (the remote command was
// killed by a signal, or the master went away).
var errNoExitStatus = errors.New("the remote command ended without an exit status")

// wait reads until the master closes the session's control connection and returns the
// exit status it reported.
func (m *muxConn) wait() (int, error) {
	status, seen := -1, false
	for {
		b, err := m.read()
		if err != nil {
			if seen && (err == io.EOF || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)) {
				return status, nil
			}
			if err == io.EOF {
				err = errNoExitStatus
			}
			return -1, err
		}
		r := reader(b)
		switch t := r.u32(); t {
		case muxSExitMessage:
			r.u32() // session id
			status, seen = int(r.u32()), true
		case muxSTTYAllocFail:
		default:
			return -1, fmt.Errorf("unexpected control message %#x during a session", t)
		}
	}
}

// muxMsg builds a message in SSH wire format.
type muxMsg struct{ b []byte }

func msg(t uint32) *muxMsg { return (&muxMsg{}).u32(t) }

func (m *muxMsg) u32(v uint32) *muxMsg {
	m.b = binary.BigEndian.AppendUint32(m.b, v)
	return m
}

func (m *muxMsg) str(s string) *muxMsg {
	m.u32(uint32(len(s)))
	m.b = append(m.b, s...)
	return m
}

type muxReader struct {
	b   []byte
	err error
}

func reader(b []byte) *muxReader { return &muxReader{b: b} }

func (r *muxReader) u32() uint32 {
	if len(r.b) < 4 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *muxReader) str() string {
	n := r.u32()
	if r.err != nil || uint32(len(r.b)) < n {
		r.err = io.ErrUnexpectedEOF
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
