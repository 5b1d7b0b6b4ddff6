package tunnel

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// An in-memory network for tests in a synctest bubble, where the clock only moves once
// every goroutine is blocked on the bubble's own channels: a goroutine blocked on a real
// socket never is. net.Pipe cannot carry SSH either: it is synchronous, and both ends of
// a handshake begin by writing their version line.

// memConn is one end of a buffered in-memory connection. One reader and one writer at
// a time, as x/crypto/ssh uses a connection. Deadlines are accepted and ignored: the
// only one set (Server's handshake guard) never matters where nothing stalls a
// handshake.
type memConn struct {
	in, out    chan []byte
	rbuf       []byte
	closed     chan struct{} // this end closed
	peerClosed chan struct{}
	once       *sync.Once
	addr       net.Addr
}

func memPipe(addr net.Addr) (a, b *memConn) {
	ab, ba := make(chan []byte, 1024), make(chan []byte, 1024)
	ca, cb := make(chan struct{}), make(chan struct{})
	a = &memConn{in: ba, out: ab, closed: ca, peerClosed: cb, once: new(sync.Once), addr: addr}
	b = &memConn{in: ab, out: ba, closed: cb, peerClosed: ca, once: new(sync.Once), addr: addr}
	return a, b
}

func (c *memConn) Read(p []byte) (int, error) {
	if len(c.rbuf) == 0 {
		select {
		case c.rbuf = <-c.in:
		case <-c.closed:
			return 0, net.ErrClosed
		case <-c.peerClosed:
			select {
			case c.rbuf = <-c.in: // what the peer wrote before closing
			default:
				return 0, io.EOF
			}
		}
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case <-c.peerClosed:
		return 0, io.ErrClosedPipe
	default:
	}
	select {
	case c.out <- bytes.Clone(p):
		return len(p), nil
	case <-c.closed:
		return 0, net.ErrClosed
	case <-c.peerClosed:
		return 0, io.ErrClosedPipe
	}
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return c.addr }
func (c *memConn) RemoteAddr() net.Addr             { return c.addr }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// memListener accepts the connections its dial makes.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  *net.TCPAddr
}

func newMemListener(port int) *memListener {
	return &memListener{conns: make(chan net.Conn), done: make(chan struct{}),
		addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// dial connects to l, or is refused as TCP would be once l is closed.
func (l *memListener) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	a, b := memPipe(l.addr)
	select {
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: network, Addr: l.addr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	default:
	}
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, &net.OpError{Op: "dial", Net: network, Addr: l.addr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// memEcho is a Server.dial that reaches an echo service in memory, whatever the
// address; its goroutines end when their connection closes, and the test's cleanup
// waits for them.
func memEcho(tb testing.TB) func(network, addr string) (net.Conn, error) {
	var wg sync.WaitGroup
	tb.Cleanup(wg.Wait)
	return func(network, addr string) (net.Conn, error) {
		a, b := memPipe(&net.UnixAddr{Name: addr, Net: network})
		wg.Go(func() {
			defer b.Close()
			io.Copy(b, b)
		})
		return a, nil
	}
}

// startMemServer is startServer on an in-memory listener (port 2222 on 127.0.0.1, as
// far as the client's config and known_hosts are concerned), with forwards answered by
// memEcho. Dial it with memDial.
func startMemServer(tb testing.TB, tweak func(*Server)) *testServer {
	tb.Helper()
	return serveOn(tb, newMemListener(2222), func(s *Server) {
		s.dial = memEcho(tb)
		if tweak != nil {
			tweak(s)
		}
	})
}

// memDial is Dial through dial (a memListener's, or one that picks the listener of
// the moment); Close is the test's cleanup.
func memDial(tb testing.TB, cfg *Config, o Options, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Client {
	tb.Helper()
	cfg = dialThrough(cfg, dial)
	c := newClient(cfg, o)
	if err := c.start(context.Background()); err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// dialThrough is a copy of cfg that reaches its HostName:Port through dial (Config.Dial).
func dialThrough(cfg *Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Config {
	c := *cfg
	addr := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	c.Dial = func(ctx context.Context) (net.Conn, error) { return dial(ctx, "tcp", addr) }
	return &c
}
