package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// transport is what an SSH handshake runs over, and what must be closed with it.
type transport struct {
	conn    net.Conn
	closers []io.Closer // jump-host clients, in the order to close them (innermost first)
}

func (t *transport) Close() error {
	err := t.conn.Close()
	for _, c := range t.closers {
		c.Close()
	}
	return err
}

// dialTransport opens the byte stream to cfg's host: through cfg.Dial when set,
// directly, through a ProxyCommand, or through the ProxyJump chain (each hop checked
// under its own name).
func (d *dialer) dialTransport(ctx context.Context, cfg *Config) (*transport, error) {
	switch {
	case cfg.Dial != nil:
		c, err := cfg.Dial(ctx)
		if err != nil {
			// The hook's own words say where it was connecting (a relay, a portal).
			return nil, fmt.Errorf("%s%w", prefix, err)
		}
		return &transport{conn: c}, nil
	case cfg.ProxyJump != "":
		return d.dialJump(ctx, cfg)
	case cfg.ProxyCommand != "":
		c, err := startProxyCommand(cfg, d.o.Warn)
		if err != nil {
			return nil, err
		}
		return &transport{conn: c}, nil
	}
	addr := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, dialError(cfg, addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// Go's default, said out loud: forwarded requests are small writes that must
		// not wait for an ACK.
		tc.SetNoDelay(true)
	}
	return &transport{conn: c}, nil
}

// DialError: the TCP connection to the host (or first hop) could not be made.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return prefix + e.Msg() }

// Msg is the error without the package prefix.
func (e *DialError) Msg() string {
	var dns *net.DNSError
	switch {
	case errors.As(e.Err, &dns) && dns.IsNotFound:
		return fmt.Sprintf("cannot resolve host name %q: check HostName in your ssh config", dns.Name)
	case errors.As(e.Err, &dns):
		return fmt.Sprintf("cannot resolve host name %q: %v", dns.Name, dns.Err)
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: connection refused (is sshd running on that port?)", e.Addr)
	case errors.Is(e.Err, context.DeadlineExceeded):
		return fmt.Sprintf("cannot connect to %s: timed out (ConnectTimeout)", e.Addr)
	case errors.Is(e.Err, syscall.EHOSTUNREACH), errors.Is(e.Err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot connect to %s: network unreachable", e.Addr)
	}
	return fmt.Sprintf("cannot connect to %s: %v", e.Addr, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

func dialError(_ *Config, addr string, err error) error { return &DialError{Addr: addr, Err: err} }

// dialJump connects to the first hop with its whole config, each later hop and then the
// target through the previous one, as `ssh -J a,b target` does.
func (d *dialer) dialJump(ctx context.Context, cfg *Config) (*transport, error) {
	hops, err := cfg.jumpHops()
	if err != nil {
		return nil, err
	}
	if cfg.resolve == nil {
		return nil, errors.New("tunnel: ProxyJump needs a Config from Resolve")
	}
	var closers []io.Closer
	fail := func(err error) (*transport, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
		return nil, err
	}
	var prev *clientConn
	for i, h := range hops {
		hc, err := cfg.resolve(h.host)
		if err != nil {
			return fail(fmt.Errorf("tunnel: resolving jump host %s: %w", h.host, err))
		}
		if h.user != "" {
			hc.User = h.user
		}
		if h.port != 0 {
			hc.Port = h.port
		}
		var cc *clientConn
		if i == 0 {
			cc, err = d.connect(ctx, hc)
		} else {
			// Later hops are reached through the previous one; their own proxy
			// settings do not apply, as with -J.
			hc.ProxyJump, hc.ProxyCommand, hc.jumps, hc.jumpsOf = "", "", nil, ""
			cc, err = d.connectVia(ctx, prev, hc)
		}
		if err != nil {
			return fail(fmt.Errorf("tunnel: jump host %s: %w", h.host, err))
		}
		closers = append(closers, cc)
		prev = cc
	}
	conn, err := dialVia(ctx, prev, cfg)
	if err != nil {
		return fail(err)
	}
	// Close the innermost hop first.
	for i, j := 0, len(closers)-1; i < j; i, j = i+1, j-1 {
		closers[i], closers[j] = closers[j], closers[i]
	}
	return &transport{conn: conn, closers: closers}, nil
}

// jumpHops are cfg's ProxyJump hops: those Resolve parsed, or, where the caller set
// ProxyJump itself (the launcher reaching a batch node through its login host), the
// caller's value parsed now.
func (cfg *Config) jumpHops() ([]jumpHop, error) {
	if cfg.jumpsOf == cfg.ProxyJump {
		return cfg.jumps, nil
	}
	return parseJumps(cfg.ProxyJump)
}

func dialVia(ctx context.Context, via *clientConn, cfg *Config) (net.Conn, error) {
	addr := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	c, err := via.client.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tunnel: jump host cannot reach %s: %w", addr, err)
	}
	return c, nil
}

func (d *dialer) connectVia(ctx context.Context, via *clientConn, cfg *Config) (*clientConn, error) {
	c, err := dialVia(ctx, via, cfg)
	if err != nil {
		return nil, err
	}
	return d.handshake(ctx, cfg, &transport{conn: c})
}

// ExpandProxyCommand substitutes %h, %p, %r, %n and %% in cfg.ProxyCommand after
// validating the host and user (CVE-2023-51385).
func ExpandProxyCommand(cfg *Config) (string, error) {
	if err := ValidHost(cfg.HostName); err != nil {
		return "", err
	}
	if err := ValidUser(cfg.User); err != nil {
		return "", err
	}
	if cfg.Alias != "" {
		if err := ValidHost(cfg.Alias); err != nil {
			return "", err
		}
	}
	return expandPercent(cfg.ProxyCommand, map[byte]string{
		'h': cfg.HostName, 'p': strconv.Itoa(cfg.Port), 'r': cfg.User, 'n': cfg.Alias,
	}), nil
}

// cmdConn is a ProxyCommand's stdio as a net.Conn.
type cmdConn struct {
	cmd    *exec.Cmd
	r      io.ReadCloser
	w      io.WriteCloser
	stderr *tailBuffer
	once   sync.Once
	done   chan struct{}
}

func startProxyCommand(cfg *Config, warn io.Writer) (*cmdConn, error) {
	line, err := ExpandProxyCommand(cfg)
	if err != nil {
		return nil, err
	}
	// `exec` so that the shell is replaced and closing kills the real proxy.
	cmd := exec.Command("/bin/sh", "-c", "exec "+line)
	setProcessGroup(cmd)
	c := &cmdConn{cmd: cmd, stderr: &tailBuffer{max: 2048, also: warn}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	// Pipes of our own rather than StdinPipe/StdoutPipe, which Wait closes: a command
	// that fails at once must leave us reading EOF and its stderr, not "file already
	// closed".
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = stdinR, stdoutW
	err = cmd.Start()
	stdinR.Close()
	stdoutW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		return nil, fmt.Errorf("tunnel: starting ProxyCommand: %w", err)
	}
	c.w, c.r = stdinW, stdoutR
	// Owned through c.done: Close (which the transport's Close calls) waits for it.
	go func() { cmd.Wait(); close(c.done) }()
	return c, nil
}

// ended turns an I/O error on the command's pipes into one that carries what the
// command said on stderr, once it has finished saying it.
func (c *cmdConn) ended(err error) error {
	select {
	case <-c.done:
	case <-time.After(time.Second):
	}
	if s := c.stderr.String(); s != "" {
		return fmt.Errorf("ProxyCommand ended: %s: %w", s, err)
	}
	return err
}

func (c *cmdConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && n == 0 {
		return 0, c.ended(err)
	}
	return n, err
}

func (c *cmdConn) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil {
		err = c.ended(err)
	}
	return n, err
}

// Close stops the proxy command by its process group and waits for it.
func (c *cmdConn) Close() error {
	c.once.Do(func() {
		c.w.Close()
		defer c.r.Close()
		select {
		case <-c.done:
			return // reaped: its PID may belong to someone else now
		default:
		}
		signalGroup(c.cmd, syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
			signalGroup(c.cmd, syscall.SIGKILL)
			<-c.done
		}
	})
	return nil
}

func (c *cmdConn) LocalAddr() net.Addr                { return pipeAddr{} }
func (c *cmdConn) RemoteAddr() net.Addr               { return pipeAddr{} }
func (c *cmdConn) SetDeadline(t time.Time) error      { return nil }
func (c *cmdConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *cmdConn) SetWriteDeadline(t time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "proxycommand" }

// tailBuffer keeps the last max bytes written, and copies them to also.
type tailBuffer struct {
	mu   sync.Mutex
	max  int
	b    []byte
	also io.Writer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	if t.also != nil {
		t.also.Write(p)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(trimSpaceBytes(t.b))
}

func trimSpaceBytes(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
