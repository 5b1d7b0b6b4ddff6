package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults OpenSSH leaves unset but tether needs.
const (
	DefaultConnectTimeout      = 15 * time.Second
	DefaultServerAliveInterval = 15 * time.Second
	DefaultReconnectWait       = 30 * time.Second
	maxBackoff                 = 5 * time.Second
)

// State is a connection state reported in an Event.
type State int

const (
	// Connected: the first connection is up.
	Connected State = iota
	// Lost: the connection died (Event.Err says why); reconnecting starts.
	Lost
	// Reconnecting: attempt Event.Attempt is starting.
	Reconnecting
	// Back: a new connection is up after a loss.
	Back
	// Failed: reconnecting stopped for good (host key changed, authentication refused);
	// Event.Err says why. Later calls return that error.
	Failed
)

func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Lost:
		return "lost"
	case Reconnecting:
		return "reconnecting"
	case Back:
		return "back"
	case Failed:
		return "failed"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Event is a change of connection state, for the UI.
type Event struct {
	State   State
	Err     error
	Attempt int
}

// Options tunes Dial.
type Options struct {
	// Prompter asks for passphrases, passwords, keyboard-interactive answers and
	// unknown host keys. nil: the terminal (/dev/tty) when there is one, else no prompts
	// (such needs fail at once with ErrNoPrompt). Not used under BatchMode.
	Prompter Prompter
	// OnEvent is told of connected / lost / reconnecting / back / failed; it is called
	// from the client's own goroutine and must not block.
	OnEvent func(Event)
	// Warn receives one-line warnings, each a line of its own without a prefix (the
	// caller says whose they are); nil discards them.
	Warn io.Writer
	// ReconnectWait bounds how long DialContext, Run and friends wait for a new
	// connection while reconnecting (default 30 s).
	ReconnectWait time.Duration
	// NoDelayExec runs `exit 0` in a session, in the background, on every new
	// connection (the first and each reconnect). OpenSSH's sshd turns on TCP_NODELAY
	// for its socket only when a session starts a command or shell; a connection that
	// only forwards (like `ssh -N -L`) keeps Nagle's algorithm, and small responses then
	// wait up to 40 ms for a delayed ACK. Costs one remote shell start per connection.
	NoDelayExec bool
}

// Client is a connection to one host that keeps itself alive and reconnects.
type Client struct {
	cfg      *Config
	o        Options
	prompter Prompter

	ctx    context.Context // the client's lifetime
	cancel context.CancelFunc
	done   chan struct{} // the supervisor has exited

	mu     sync.Mutex
	cur    *clientConn
	up     chan struct{} // closed when cur is set or the client has failed/closed
	failed error

	started bool // supervise is running (set once by Dial)

	asking atomic.Int32 // questions to the user open now (see conn)

	backoff func(attempt int) time.Duration // test hook
}

// ErrClosed is returned by a Client's methods after Close.
var ErrClosed = errors.New("tunnel: client closed")

// Dial connects to cfg's host as `ssh` would. ctx and ConnectTimeout (default 15 s)
// bound TCP, ProxyJump/ProxyCommand and the handshake (time spent waiting for the user
// at a prompt does not count). After that the Client keeps the connection alive
// (keepalive@openssh.com every ServerAliveInterval, dead after ServerAliveCountMax
// misses; and a probe as soon as a channel open or channel data meets a few seconds of
// silence, see liveness.go) and reconnects with backoff until Close.
func Dial(ctx context.Context, cfg *Config, o Options) (*Client, error) {
	c := newClient(cfg, o)
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// start makes the first connection and hands it to the supervisor, whose owner is
// Close: it waits for c.done.
func (c *Client) start(ctx context.Context) error {
	cc, err := c.dialOnce(ctx)
	if err != nil {
		c.cancel()
		return err
	}
	c.cur = cc
	close(c.up)
	c.started = true
	go c.supervise(cc)
	c.emit(Event{State: Connected})
	return nil
}

func newClient(cfg *Config, o Options) *Client {
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	c := &Client{cfg: cfg, o: o, done: make(chan struct{}), up: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	switch {
	case cfg.BatchMode:
	case o.Prompter != nil:
		c.prompter = o.Prompter
	default:
		if tp := NewTerminalPrompter(); tp != nil {
			c.prompter = tp
		}
	}
	c.backoff = func(attempt int) time.Duration {
		d := 250 * time.Millisecond << min(attempt-1, 5)
		d = min(d, maxBackoff)
		// ±20% jitter so many clients do not redial in lockstep.
		return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	}
	return c
}

// Config returns the configuration the client was dialed with.
func (c *Client) Config() *Config { return c.cfg }

func (c *Client) emit(e Event) {
	if c.o.OnEvent != nil {
		c.o.OnEvent(e)
	}
}

var errConnectTimeout = errors.New("connect timeout")

// dialOnce makes one connection, bounded by ctx and ConnectTimeout.
func (c *Client) dialOnce(ctx context.Context) (*clientConn, error) {
	timeout := c.cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := newWatchdog(timeout, func() { cancel(errConnectTimeout) })
	defer wd.stop()
	d := &dialer{o: c.o}
	if c.prompter != nil {
		d.prompter = pausingPrompter{p: c.prompter, wd: wd, asking: &c.asking}
	}
	cc, err := d.connect(ctx, c.cfg)
	if err != nil {
		if errors.Is(context.Cause(ctx), errConnectTimeout) {
			return nil, fmt.Errorf("tunnel: connecting to %s: timed out after %v (ConnectTimeout): %w", c.cfg.Alias, timeout, err)
		}
		return nil, err
	}
	cc.startKeepalive(c.cfg)
	cc.wg.Go(cc.watchLiveness)
	if c.o.NoDelayExec {
		cc.wg.Go(cc.nudgeNoDelay)
	}
	return cc, nil
}

// nudgeNoDelay runs `exit 0` so that sshd sets TCP_NODELAY on this connection (see
// Options.NoDelayExec). Failure changes nothing but latency.
func (cc *clientConn) nudgeNoDelay() {
	s, err := cc.client.NewSession()
	if err != nil {
		return
	}
	defer s.Close()
	s.Run("exit 0")
}

// supervise waits for the connection to die and reconnects until Close.
func (c *Client) supervise(cc *clientConn) {
	defer close(c.done)
	for {
		select {
		case <-cc.dead:
		case <-c.ctx.Done():
			cc.closeAndWait()
			return
		}
		c.mu.Lock()
		c.cur = nil
		c.up = make(chan struct{})
		c.mu.Unlock()
		cc.closeAndWait()
		if c.ctx.Err() != nil {
			return
		}
		c.emit(Event{State: Lost, Err: fmt.Errorf("tunnel: connection to %s lost: %w", c.cfg.Alias, cc.deadErr())})
		var err error
		cc, err = c.reconnect()
		if err != nil {
			c.mu.Lock()
			if c.ctx.Err() == nil {
				c.failed = err
			}
			close(c.up)
			c.mu.Unlock()
			if c.ctx.Err() == nil {
				c.emit(Event{State: Failed, Err: err})
			}
			return
		}
	}
}

// reconnect redials with capped, jittered backoff; host keys are checked again.
func (c *Client) reconnect() (*clientConn, error) {
	said := "" // the last failure told: a run of the same one is told once
	for attempt := 1; ; attempt++ {
		c.emit(Event{State: Reconnecting, Attempt: attempt})
		cc, err := c.dialOnce(c.ctx)
		if err == nil {
			c.mu.Lock()
			if c.ctx.Err() != nil {
				c.mu.Unlock()
				cc.closeAndWait()
				return nil, ErrClosed
			}
			c.cur = cc
			close(c.up)
			c.mu.Unlock()
			c.emit(Event{State: Back, Attempt: attempt})
			return cc, nil
		}
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if permanent(err) {
			return nil, err
		}
		said = warnChange(c.o.Warn, said, c.cfg.Alias, attempt, err)
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil, ErrClosed
		}
	}
}

// permanent errors stop reconnecting: retrying cannot help and may hurt (a changed host
// key, refused credentials that would trip fail2ban). An error of Config.Dial says so
// itself with a Permanent method (a relay that refuses the token).
func permanent(err error) bool {
	var changed *HostKeyChangedError
	var unknown *HostKeyUnknownError
	var revoked *HostKeyRevokedError
	var auth *AuthError
	var p interface{ Permanent() bool }
	return errors.As(err, &changed) || errors.As(err, &unknown) || errors.As(err, &revoked) ||
		errors.As(err, &auth) || errors.Is(err, ErrInvalidName) || errors.As(err, &p) && p.Permanent()
}

// conn returns the live connection, waiting (bounded by ReconnectWait and ctx) while
// the client reconnects. While the user is being asked something for the new login (a
// one-time code, a passphrase) the wait goes on: the browser tab keeps waiting for the
// answer instead of failing behind the prompt.
func (c *Client) conn(ctx context.Context) (*clientConn, error) {
	t := time.NewTimer(c.o.ReconnectWait)
	defer t.Stop()
	for {
		c.mu.Lock()
		cur, up, failed := c.cur, c.up, c.failed
		c.mu.Unlock()
		switch {
		case c.ctx.Err() != nil:
			return nil, ErrClosed
		case failed != nil:
			return nil, failed
		case cur != nil:
			return cur, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		case <-t.C:
			if c.asking.Load() > 0 {
				t.Reset(c.o.ReconnectWait)
				continue
			}
			return nil, fmt.Errorf("tunnel: connection to %s lost; still reconnecting after %v", c.cfg.Alias, c.o.ReconnectWait)
		}
	}
}

// DialContext opens a connection from the remote host: "unix" to a socket path
// (direct-streamlocal@openssh.com), "tcp" to host:port (direct-tcpip). While the client
// is reconnecting it waits for the new connection (bounded by ReconnectWait and ctx).
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("tunnel: unsupported network %q", network)
	}
	for try := 0; try < 3; try++ {
		cc, err := c.conn(ctx)
		if err != nil {
			return nil, err
		}
		cc.lv.wait() // the open is answered, or the probe finds out why not
		conn, err := cc.client.DialContext(ctx, network, addr)
		if err == nil {
			return waitingConn{Conn: conn, l: cc.lv}, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The connection died under us: wait for the next one. A rejection from a
		// live server is final.
		select {
		case <-cc.dead:
			continue
		case <-time.After(50 * time.Millisecond):
		}
		if cc.isDead() {
			continue
		}
		return nil, fmt.Errorf("tunnel: opening %s %s on %s: %w", network, addr, c.cfg.Alias, err)
	}
	return nil, fmt.Errorf("tunnel: opening %s %s on %s: the connection keeps dropping", network, addr, c.cfg.Alias)
}

// Close ends the connection and stops reconnecting.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	cur := c.cur
	c.mu.Unlock()
	if cur != nil {
		cur.Close()
	}
	if c.started {
		<-c.done
	}
	if closer, ok := c.prompter.(io.Closer); ok && c.o.Prompter == nil {
		closer.Close()
	}
	return nil
}

// dialer makes connections (with jump hosts) for one dial attempt.
type dialer struct {
	o        Options
	prompter Prompter
}

// clientConn is one live SSH connection and what it rides on.
type clientConn struct {
	client *ssh.Client
	tr     *transport
	auth   *authState
	lv     *liveness

	dead     chan struct{}
	deadOnce sync.Once
	mu       sync.Mutex
	err      error

	// wg holds the connection's own goroutines (its reader's Wait, keepalives, the
	// liveness watch, probes, the NoDelay nudge): each ends once the connection is
	// closed, and closeAndWait waits for them, so a Client leaves none behind.
	wg sync.WaitGroup
}

// closeAndWait closes the connection and waits for its goroutines.
func (cc *clientConn) closeAndWait() {
	cc.Close()
	cc.wg.Wait()
}

func (cc *clientConn) markDead(err error) {
	cc.deadOnce.Do(func() {
		cc.mu.Lock()
		cc.err = err
		cc.mu.Unlock()
		close(cc.dead)
	})
}

func (cc *clientConn) deadErr() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

func (cc *clientConn) isDead() bool {
	select {
	case <-cc.dead:
		return true
	default:
		return false
	}
}

func (cc *clientConn) Close() error {
	cc.markDead(errors.New("closed"))
	err := cc.client.Close()
	cc.tr.Close()
	cc.auth.Close()
	return err
}

func (d *dialer) connect(ctx context.Context, cfg *Config) (*clientConn, error) {
	tr, err := d.dialTransport(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return d.handshake(ctx, cfg, tr)
}

// preferredCiphers puts AES-GCM first: x/crypto has assembly for it on amd64 and arm64,
// none for chacha20-poly1305.
var preferredCiphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"}

func (d *dialer) handshake(ctx context.Context, cfg *Config, tr *transport) (*clientConn, error) {
	fail := func(err error) (*clientConn, error) {
		tr.Close()
		return nil, err
	}
	hk, err := newHostKeyChecker(cfg, cfg.HostName, cfg.Port, d.prompter)
	if err != nil {
		return fail(err)
	}
	auth := buildAuth(cfg, d.prompter, d.o.Warn)
	ccfg := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth.methods,
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algos,
		AuthCallback:      auth.callback,
		Config:            ssh.Config{Ciphers: preferredCiphers},
		ClientVersion:     "SSH-2.0-tether",
	}
	// Closing the transport is the only way to interrupt a handshake.
	stop := context.AfterFunc(ctx, func() { tr.conn.Close() })
	addr := net.JoinHostPort(cfg.HostName, strconv.Itoa(cfg.Port))
	lv := newLiveness()
	conn, chans, reqs, err := ssh.NewClientConn(countingConn{Conn: tr.conn, l: lv}, addr, ccfg)
	if !stop() {
		if err == nil {
			conn.Close()
		}
		auth.Close()
		return fail(fmt.Errorf("tunnel: ssh handshake with %s: %w", cfg.Alias, context.Cause(ctx)))
	}
	if err != nil {
		auth.Close()
		return fail(classifyHandshake(cfg, auth, err))
	}
	cc := &clientConn{client: ssh.NewClient(conn, chans, reqs), tr: tr, auth: auth, lv: lv, dead: make(chan struct{})}
	cc.wg.Go(func() {
		err := cc.client.Wait()
		if err == nil {
			err = errors.New("connection closed")
		}
		cc.markDead(err)
	})
	return cc, nil
}

func classifyHandshake(cfg *Config, auth *authState, err error) error {
	var changed *HostKeyChangedError
	var unknown *HostKeyUnknownError
	var revoked *HostKeyRevokedError
	switch {
	case errors.As(err, &changed):
		return changed
	case errors.As(err, &unknown):
		return unknown
	case errors.As(err, &revoked):
		return revoked
	case errors.Is(err, ErrNoPrompt), errors.As(err, new(*noAnswerError)), strings.Contains(err.Error(), "unable to authenticate"):
		var cause error
		var na *noAnswerError
		switch {
		case errors.As(err, &na):
			cause = na // what the user was asked and did not answer, without x/crypto's words
		case errors.Is(err, ErrNoPrompt):
			cause = err
		}
		skipped := auth.skipped
		if pe := (*PassphraseError)(nil); errors.As(err, &pe) && !slices.Contains(skipped, pe.File) {
			skipped = append(slices.Clone(skipped), pe.File)
		}
		return &AuthError{User: cfg.User, Host: cfg.Alias, Tried: auth.tried, Locked: auth.locked, NotUnlocked: skipped,
			ServerMethods: auth.methodsOffered(), Partial: auth.partialSuccess(), Err: cause}
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("tunnel: ssh handshake with %s: the connection was closed (is it an ssh server? a ProxyCommand that failed?): %w", cfg.Alias, err)
	}
	return fmt.Errorf("tunnel: ssh handshake with %s: %w", cfg.Alias, err)
}

// startKeepalive sends keepalive@openssh.com every ServerAliveInterval and closes the
// connection after ServerAliveCountMax intervals without an answer.
func (cc *clientConn) startKeepalive(cfg *Config) {
	interval := cfg.ServerAliveInterval
	if interval <= 0 {
		interval = DefaultServerAliveInterval
	}
	maxMiss := cfg.ServerAliveCountMax
	if maxMiss <= 0 {
		maxMiss = 3
	}
	cc.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		var reply chan error
		missed := 0
		for {
			select {
			case <-cc.dead:
				return
			case err := <-reply:
				reply = nil
				missed = 0
				if err != nil {
					cc.kill(fmt.Errorf("keepalive: %w", err))
					return
				}
			case <-t.C:
				if reply != nil {
					missed++
					if missed >= maxMiss {
						cc.kill(fmt.Errorf("no answer to %d keepalives in %v", missed, time.Duration(missed)*interval))
						return
					}
					continue
				}
				r := make(chan error, 1)
				reply = r
				cc.wg.Go(func() {
					_, _, err := cc.client.SendRequest("keepalive@openssh.com", true, nil)
					r <- err
				})
			}
		}
	})
}

// watchdog calls fire after d of running time; pause and resume stop the clock while
// the user is being asked something.
type watchdog struct {
	mu      sync.Mutex
	t       *time.Timer
	left    time.Duration
	started time.Time
	paused  int
	stopped bool
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	return &watchdog{t: time.AfterFunc(d, fire), left: d, started: time.Now()}
}

func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.paused == 0 && !w.stopped && w.t.Stop() {
		w.left -= time.Since(w.started)
	}
	w.paused++
}

func (w *watchdog) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused--
	if w.paused == 0 && !w.stopped {
		w.started = time.Now()
		w.t.Reset(max(w.left, time.Second))
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// pausingPrompter stops the connect clock while the user answers, and counts the
// questions open (conn keeps waiting meanwhile).
type pausingPrompter struct {
	p      Prompter
	wd     *watchdog
	asking *atomic.Int32
}

func (p pausingPrompter) pause() (resume func()) {
	p.wd.pause()
	p.asking.Add(1)
	return func() {
		p.asking.Add(-1)
		p.wd.resume()
	}
}

func (p pausingPrompter) Passphrase(f string) ([]byte, error) {
	defer p.pause()()
	return p.p.Passphrase(f)
}

func (p pausingPrompter) Password(u, h string) (string, error) {
	defer p.pause()()
	return p.p.Password(u, h)
}

func (p pausingPrompter) KeyboardInteractive(u, h, name, instr string, q []string, e []bool) ([]string, error) {
	defer p.pause()()
	return p.p.KeyboardInteractive(u, h, name, instr, q, e)
}

func (p pausingPrompter) ConfirmHostKey(h, msg string) (bool, error) {
	defer p.pause()()
	return p.p.ConfirmHostKey(h, msg)
}
