//go:build unix

package tunnel

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// The OpenSSH transport: everything tether does over SSH goes through the user's own
// ssh, by way of a ControlMaster. The master is the user's when their config names one
// that answers (no new login at all); otherwise it is tether's own, started once in a
// private directory with ControlPersist, so that a launch and the commands after it
// (ls, stop, logs, attach) log in once. Through the master (openssh_mux.go) commands
// run as sessions whose stdio the master handles itself, connections to the session's
// Unix socket arrive through a forward the master listens for in the private directory
// (the launcher splices them: kernel to kernel), TCP ones as stdio forwards. No ssh
// process runs per command or per connection.

// DefaultControlPersist is how long tether's own master stays after its last use.
const DefaultControlPersist = 10 * time.Minute

// Keepalives for tether's own master when the config sets none: a connection that went
// silent is given up after about ownAliveInterval × (ownAliveCountMax + 1), and the
// client reconnects.
const (
	ownAliveInterval  = 4
	ownAliveCountMax  = 3
	ownConnectTimeout = 15
)

// OpenSSHOptions tunes DialOpenSSH.
type OpenSSHOptions struct {
	// ConfigFile is ssh's -F: it replaces ~/.ssh/config and /etc/ssh/ssh_config.
	ConfigFile string
	// Program is the ssh to run; empty: "ssh" on PATH.
	Program string
	// Persist is the ControlPersist of tether's own master (default 10 minutes).
	Persist time.Duration
	// OnEvent is told of connected / lost / reconnecting / back / failed, as with Dial;
	// it must not block.
	OnEvent func(Event)
	// Warn receives one-line warnings, each a line of its own without a prefix (the
	// caller says whose they are); nil discards them.
	Warn io.Writer
	// ReconnectWait bounds how long calls wait for a new master while reconnecting
	// (default 30 s).
	ReconnectWait time.Duration
	// Terminal, when set, is called before ssh logs in (it may ask for a passphrase, a
	// one-time code or a host key on the terminal) and done after: the caller keeps its
	// own output off the terminal meanwhile, so that ssh's prompt has a line of its own.
	Terminal func() (done func())
	// LoginOutput receives, as it comes, what ssh prints while it logs in: the site's
	// banner, the instructions of an MFA prompt, why it failed. nil discards it.
	LoginOutput io.Writer
	// NoDelayExec runs `exit 0` as a session on every master tether comes to use (the
	// first and each after a reconnect): sshd turns TCP_NODELAY on for a connection
	// only once a session runs a command, and without it small answers through the
	// forwards wait up to 40 ms (as Options.NoDelayExec for the native client).
	NoDelayExec bool
	// JumpThrough, when set and the host's config has neither ProxyJump nor
	// ProxyCommand, reaches the host through that client's master (a stdio forward,
	// as ssh -J would but without another login): a compute node behind its login
	// node.
	JumpThrough *OpenSSHClient
	// DefaultUser, when set, is the user for a host whose config names none (ssh -G
	// then says the local user): a compute node logs in as the login host's User.
	DefaultUser string
}

// OpenSSHClient is a connection to one host through the user's ssh: a ControlMaster,
// kept and replaced as it dies.
type OpenSSHClient struct {
	host     string // as typed
	cfg      *Config
	g        SSHG
	o        OpenSSHOptions
	prog     string
	dir      string
	ownPath  string   // tether's own master's ControlPath
	userPath string   // the user's ControlPath ("" when none)
	extra    []string // more ssh options (-o ProxyCommand=… for JumpThrough)

	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	nudging sync.WaitGroup // the NoDelayExec sessions under way
	login   atomic.Int32   // ssh logins under way (they may be asking the user)

	mu     sync.Mutex
	cur    *master
	up     chan struct{} // closed when cur is set or the client has failed or closed
	failed error
	fwds   map[string]string // remote socket → local socket, on cur

}

// master is one ControlMaster in use.
type master struct {
	path  string
	pid   int
	ours  bool
	watch *muxConn      // held open: the master counts as in use, and its exit ends it
	dead  chan struct{} // closed when the master has gone
}

func (m *master) isDead() bool {
	select {
	case <-m.dead:
		return true
	default:
		return false
	}
}

// errMasterGone: the ControlMaster exited (network lost and its keepalives gave up,
// `ssh -O exit`, killed).
var errMasterGone = errors.New("ssh's master connection ended")

// DialOpenSSH resolves host with `ssh -G`, then attaches to a ControlMaster that
// answers at the config's ControlPath or brings up tether's own (logging in: ssh may
// prompt on the terminal). The client then watches the master and replaces it when it
// dies, until Close.
func DialOpenSSH(ctx context.Context, host string, o OpenSSHOptions) (*OpenSSHClient, error) {
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	if o.Persist <= 0 {
		o.Persist = DefaultControlPersist
	}
	prog := o.Program
	if prog == "" {
		p, ok := OpenSSHAvailable()
		if !ok {
			return nil, &OpenSSHError{Host: host, Kind: SSHMissing}
		}
		prog = p
	}
	cfg, g, err := ResolveOpenSSH(ctx, prog, host, o.ConfigFile)
	if err != nil {
		return nil, err
	}
	var extra []string
	if j := o.JumpThrough; j != nil && cfg.ProxyJump == "" && cfg.ProxyCommand == "" {
		extra = []string{"-o", "ProxyCommand=" + j.proxyCommand()}
	}
	if u, err := user.Current(); err == nil && o.DefaultUser != "" && cfg.User == u.Username && o.DefaultUser != u.Username {
		if err := ValidUser(o.DefaultUser); err != nil {
			return nil, err
		}
		extra = append(extra, "-o", "User="+o.DefaultUser)
	}
	if len(extra) > 0 {
		if cfg, g, err = resolveOpenSSH(ctx, prog, host, o.ConfigFile, extra); err != nil {
			return nil, err
		}
	}
	dir, err := controlDir()
	if err != nil {
		return nil, err
	}
	c := &OpenSSHClient{host: host, cfg: cfg, g: g, o: o, prog: prog, dir: dir, extra: extra,
		ownPath: filepath.Join(dir, "c-"+masterName(g)), done: make(chan struct{}), up: make(chan struct{})}
	if cp := g.Get("controlpath"); cp != "" && cp != "none" {
		c.userPath = cp
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	m, err := c.connect(ctx)
	if err != nil {
		c.cancel()
		close(c.done)
		return nil, err
	}
	c.cur = m
	close(c.up)
	go c.supervise(m)
	c.nudge(m)
	c.emit(Event{State: Connected})
	return c, nil
}

// nudge runs `exit 0` on m in the background (see NoDelayExec).
func (c *OpenSSHClient) nudge(m *master) {
	if !c.o.NoDelayExec {
		return
	}
	c.nudging.Add(1)
	go func() {
		defer c.nudging.Done()
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		c.runOn(ctx, m, "exit 0", nil, nil, nil)
	}()
}

// masterName names tether's master for a destination as ssh's %C does (host, port,
// user, jump), shorter.
func masterName(g SSHG) string {
	h := sha256.New()
	for _, k := range []string{"hostname", "port", "user", "proxyjump", "proxycommand"} {
		fmt.Fprintf(h, "%s=%s\x00", k, g.Get(k))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Config is the host's configuration as `ssh -G` gave it.
func (c *OpenSSHClient) Config() *Config { return c.cfg }

// SSHG is the whole of `ssh -G`'s answer.
func (c *OpenSSHClient) SSHG() SSHG { return c.g }

// UsesOwnMaster reports whether the current master is tether's own (not the user's).
func (c *OpenSSHClient) UsesOwnMaster() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil && c.cur.ours
}

// ControlPath is where tether's own master for this host listens.
func (c *OpenSSHClient) ControlPath() string { return c.ownPath }

func (c *OpenSSHClient) emit(e Event) {
	if c.o.OnEvent != nil {
		c.o.OnEvent(e)
	}
}

// connect finds the master to use: the user's, when their ControlPath answers;
// otherwise tether's own, started when it is not running.
func (c *OpenSSHClient) connect(ctx context.Context) (*master, error) {
	if c.userPath != "" {
		m, err := c.attach(ctx, c.userPath, false)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, errNoMaster) {
			warnf(c.o.Warn, "not using the ControlMaster at %s: %v", c.userPath, Message(err))
		}
	}
	return c.ownMaster(ctx)
}

// attach checks that a master answers at path and holds a control connection to it.
func (c *OpenSSHClient) attach(ctx context.Context, path string, ours bool) (*master, error) {
	mc, err := dialMux(ctx, path)
	if err != nil {
		return nil, err
	}
	pid, err := mc.alive(ctx)
	if err != nil {
		mc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("tunnel: control socket %s: %w (%v)", path, errNoMaster, err)
	}
	m := &master{path: path, pid: pid, ours: ours, watch: mc, dead: make(chan struct{})}
	// Owned through m.dead, which it closes: whoever closes m.watch waits for it (the
	// supervisor, reconnect when closed meanwhile, Close); the supervisor also waits
	// for it before reconnecting.
	go func() {
		// Nothing more comes on this connection: a read ends when the master does.
		io.Copy(io.Discard, mc.c)
		close(m.dead)
	}()
	return m, nil
}

// ownMaster attaches to tether's own master for this host, starting it first when it
// is not running. One tether at a time does so (a lock beside the socket): two that
// started together would log in twice, and ssh, finding the ControlPath taken, would
// run on without one and forever.
func (c *OpenSSHClient) ownMaster(ctx context.Context) (*master, error) {
	unlock, err := lockFile(ctx, c.ownPath+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := c.attach(ctx, c.ownPath, true)
	if err == nil || !errors.Is(err, errNoMaster) {
		return m, err
	}
	// A socket left by a master that was killed: ssh would not listen over it.
	if err := os.Remove(c.ownPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("tunnel: removing the stale control socket: %w", err)
	}
	if err := c.startMaster(ctx); err != nil {
		return nil, err
	}
	m, err = c.attach(ctx, c.ownPath, true)
	if err != nil {
		return nil, fmt.Errorf("tunnel: ssh logged in to %s but its master does not answer at %s: %w", c.cfg.Alias, c.ownPath, err)
	}
	return m, nil
}

// masterArgs are the arguments of tether's own master: ControlMaster at ownPath with
// ControlPersist, no session and no forwards of the config's (-N, ClearAllForwardings),
// keepalives and a connect timeout where the config sets none. ssh goes to the
// background by itself once logged in (ControlPersist does that).
func (c *OpenSSHClient) masterArgs() []string {
	args := append(append(sshBaseArgs(c.o.ConfigFile), c.extra...), "-N",
		"-o", "ControlMaster=yes", "-o", "ControlPath="+strings.ReplaceAll(c.ownPath, "%", "%%"),
		"-o", "ControlPersist="+strconv.Itoa(max(1, int(c.o.Persist/time.Second))),
		"-o", "ClearAllForwardings=yes", "-o", "RequestTTY=no", "-o", "RemoteCommand=none")
	if c.keepaliveUnset() {
		args = append(args, "-o", "ServerAliveInterval="+strconv.Itoa(ownAliveInterval),
			"-o", "ServerAliveCountMax="+strconv.Itoa(ownAliveCountMax))
	}
	if v := c.g.Get("connecttimeout"); v == "" || v == "none" {
		args = append(args, "-o", "ConnectTimeout="+strconv.Itoa(ownConnectTimeout))
	}
	return append(args, "--", c.host)
}

// proxyCommand is a ProxyCommand that reaches %h:%p through this client's current
// master (ssh as a mux client: no login), for JumpThrough.
func (c *OpenSSHClient) proxyCommand() string {
	c.mu.Lock()
	path := c.ownPath
	if c.cur != nil {
		path = c.cur.path
	}
	c.mu.Unlock()
	pct := func(s string) string { return strings.ReplaceAll(shquote.Quote(s), "%", "%%") }
	cmd := []string{pct(c.prog)}
	if c.o.ConfigFile != "" {
		cmd = append(cmd, "-F", pct(c.o.ConfigFile))
	}
	return strings.Join(append(cmd, "-o", "ControlMaster=no", "-o", pct("ControlPath="+strings.ReplaceAll(path, "%", "%%")),
		"-W", "%h:%p", "--", pct(c.host)), " ")
}

// keepaliveUnset: the config sets no ServerAliveInterval (ssh -G says 0, or 300 under
// BatchMode, ssh's own default there).
func (c *OpenSSHClient) keepaliveUnset() bool {
	switch c.g.Get("serveraliveinterval") {
	case "", "0":
		return true
	case "300":
		return c.g.Get("batchmode") == "yes"
	}
	return false
}

// startMaster runs ssh to log in and leave a master behind. It stays in the
// foreground process group until it forks, so that it may ask on the terminal (ssh
// opens /dev/tty itself); what it prints goes to LoginOutput as it comes.
func (c *OpenSSHClient) startMaster(ctx context.Context) error {
	cmd := exec.Command(c.prog, c.masterArgs()...)
	if term.IsTerminal(int(os.Stdin.Fd())) {
		cmd.Stdin = os.Stdin
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	cmd.Stderr = pw
	var tail []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4096), 64<<10)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
			if c.o.LoginOutput != nil {
				fmt.Fprintln(c.o.LoginOutput, line)
			}
		}
	}()
	if c.o.Terminal != nil {
		done := c.o.Terminal()
		defer done()
	}
	c.login.Add(1)
	defer c.login.Add(-1)
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		<-read
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return &OpenSSHError{Host: c.cfg.Alias, Kind: SSHMissing}
		}
		return fmt.Errorf("tunnel: running ssh: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err = <-exited:
	case <-ctx.Done():
		// Before it forked (still logging in): it is ours to stop.
		cmd.Process.Kill()
		<-exited
		pr.Close()
		<-read
		return ctx.Err()
	}
	// Once forked, the master's stderr is /dev/null: the pipe ends.
	select {
	case <-read:
	case <-time.After(2 * time.Second):
		pr.Close()
		<-read
	}
	pr.Close()
	if err != nil {
		return classifySSH(c.cfg.Alias, tail)
	}
	return nil
}

// lockFile takes an exclusive lock on path (created 0600), waiting as long as ctx
// allows; unlock releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("tunnel: locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// supervise waits for the master to go and brings up another, until Close.
func (c *OpenSSHClient) supervise(m *master) {
	defer close(c.done)
	for {
		select {
		case <-m.dead:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		c.cur = nil
		fwds := c.fwds
		c.fwds = nil
		c.up = make(chan struct{})
		c.mu.Unlock()
		m.watch.Close()
		for _, local := range fwds {
			os.Remove(local) // the master that listened there is gone
		}
		if c.ctx.Err() != nil {
			return
		}
		c.emit(Event{State: Lost, Err: fmt.Errorf("tunnel: connection to %s lost: %w", c.cfg.Alias, errMasterGone)})
		var err error
		m, err = c.reconnect()
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

// reconnect finds or starts a master with backoff. A login that fails for good (the
// server refused, the host key, the config) is not tried again: the user was asked
// once.
func (c *OpenSSHClient) reconnect() (*master, error) {
	said := "" // the last failure told: a run of the same one is told once
	for attempt := 1; ; attempt++ {
		c.emit(Event{State: Reconnecting, Attempt: attempt})
		m, err := c.connect(c.ctx)
		if err == nil {
			c.mu.Lock()
			if c.ctx.Err() != nil {
				c.mu.Unlock()
				m.watch.Close()
				<-m.dead
				return nil, ErrClosed
			}
			c.cur = m
			close(c.up)
			c.mu.Unlock()
			c.nudge(m)
			c.emit(Event{State: Back, Attempt: attempt})
			return m, nil
		}
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		var oe *OpenSSHError
		if errors.As(err, &oe) && oe.permanent() || errors.Is(err, ErrInvalidName) {
			return nil, err
		}
		said = warnChange(c.o.Warn, said, c.cfg.Alias, attempt, err)
		t := time.NewTimer(min(250*time.Millisecond<<min(attempt-1, 5), maxBackoff))
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return nil, ErrClosed
		}
	}
}

// master returns the master in use, waiting (bounded by ReconnectWait and ctx) while
// the client reconnects. While ssh is logging in (it may be asking the user for a code
// or passphrase) the wait goes on: the browser's request waits for the answer instead
// of failing behind the prompt.
func (c *OpenSSHClient) master(ctx context.Context) (*master, error) {
	t := time.NewTimer(c.o.ReconnectWait)
	defer t.Stop()
	expired := false
	for {
		// The wait's end is judged after looking at the master again, so a master that
		// came up as the wait ran out is found, not reported lost (the login count is
		// read first: one that drops after setting the master still finds it).
		loggingIn := c.login.Load() > 0
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
		case expired && !loggingIn:
			return nil, fmt.Errorf("tunnel: connection to %s lost; still reconnecting after %v", c.cfg.Alias, c.o.ReconnectWait)
		case expired:
			expired = false
			t.Reset(c.o.ReconnectWait)
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			return nil, ErrClosed
		case <-t.C:
			expired = true
		}
	}
}

// gone reports whether m has died (waiting a moment for the watch to notice): the
// caller then tries again on the next master.
func gone(m *master) bool {
	select {
	case <-m.dead:
		return true
	case <-time.After(200 * time.Millisecond):
		return false
	}
}

// Run runs command (a remote shell string) with the given stdio, as Client.Run does:
// (status, nil) for a command that exited; an error for one that could not run, ended
// without a status (a signal), or lost its connection. Cancelling ctx ends the session
// (the remote command sees its stdin close and its output go nowhere).
func (c *OpenSSHClient) Run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	for try := 0; ; try++ {
		m, err := c.master(ctx)
		if err != nil {
			return -1, err
		}
		status, err, retry := c.runOn(ctx, m, command, stdin, stdout, stderr)
		if retry && try < 2 && gone(m) {
			continue
		}
		return status, err
	}
}

// runOn runs command as a session of master m. retry says the session never started
// (the master may have just died).
func (c *OpenSSHClient) runOn(ctx context.Context, m *master, command string, stdin io.Reader, stdout, stderr io.Writer) (status int, err error, retry bool) {
	mc, err := dialMux(ctx, m.path)
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err(), false
		}
		return -1, fmt.Errorf("tunnel: opening a session on %s: %w", c.cfg.Alias, err), true
	}
	defer mc.Close()
	var theirs [3]*os.File
	var ours [3]*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	defer closeAll(ours[:])
	for i := range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(theirs[:])
			return -1, fmt.Errorf("tunnel: %w", err), false
		}
		if i == 0 {
			theirs[i], ours[i] = r, w
		} else {
			theirs[i], ours[i] = w, r
		}
	}
	var fds [3]int
	for i, f := range theirs {
		fds[i] = int(f.Fd())
	}
	err = mc.session(ctx, command, fds)
	closeAll(theirs[:]) // the master has its own copies now
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err(), false
		}
		return -1, fmt.Errorf("tunnel: starting remote command on %s: %w", c.cfg.Alias, err), !isMuxRefusal(err)
	}
	// stdin: copied until its EOF (then the remote sees EOF), not waited for, as with
	// x/crypto's sessions.
	stdinW := ours[0]
	ours[0] = nil
	go func() {
		if stdin != nil {
			io.Copy(stdinW, stdin)
		}
		stdinW.Close()
	}()
	var copies sync.WaitGroup
	for i, w := range []io.Writer{stdout, stderr} {
		r := ours[i+1]
		if w == nil {
			w = io.Discard
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(w, r)
		}()
	}
	stop := context.AfterFunc(ctx, func() { mc.Close() })
	status, werr := mc.wait()
	// The master closed its ends when the session closed: the copies finish once
	// they have read what is left.
	drained := make(chan struct{})
	go func() { copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		ours[1].Close()
		ours[2].Close()
		<-drained
	}
	if !stop() {
		return -1, fmt.Errorf("tunnel: remote command on %s: %w", c.cfg.Alias, context.Cause(ctx)), false
	}
	if werr != nil {
		if m.isDead() || gone(m) {
			return -1, fmt.Errorf("tunnel: connection to %s lost while the remote command ran: %w", c.cfg.Alias, werr), false
		}
		return -1, fmt.Errorf("tunnel: remote command on %s: %w", c.cfg.Alias, werr), false
	}
	return status, nil, false
}

func isMuxRefusal(err error) bool {
	var me *MuxError
	return errors.As(err, &me)
}

// Upload streams size bytes of r to remotePath as Client.Upload does (the same
// script, run through the master).
func (c *OpenSSHClient) Upload(ctx context.Context, r io.Reader, size int64, remotePath string, progress func(written int64)) error {
	return upload(ctx, c.Run, r, size, remotePath, progress)
}

// UploadGzip is Client.UploadGzip through the master: the file goes compressed and is
// checked by the SHA-256 of what it decompresses to.
func (c *OpenSSHClient) UploadGzip(ctx context.Context, gz io.Reader, size int64, sum, remotePath string, progress func(written int64)) error {
	return uploadGzip(ctx, c.Run, gz, size, sum, remotePath, progress)
}

// DialContext opens a connection from the remote host: "unix" to a socket path,
// "tcp" to host:port. A refusal by the server is an *ssh.OpenChannelError, as with
// Client. "tcp" is a stdio forward, which the master confirms or refuses. "unix" goes
// through a forward the master listens for in tether's private directory, which only
// closes when the server refuses: the connection is held for refusalWait to see
// whether it closes at once (nothing answers so fast but a refusal; the session's
// server waits seconds for a request). OpenSSH has no better way before 9.4 (stdio
// forwards to Unix sockets), and its proxy mode, which would carry the server's
// answer, takes the whole master down when a refused channel's client goes away
// (OpenSSH 9.2 to at least 10.1: "chan_send_close2: no remote_id").
func (c *OpenSSHClient) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.dial(ctx, network, addr, true)
}

// DialForward is DialContext without the wait: a refused "unix" connection closes at
// once instead of failing. For forwarding, where that comes to the same.
func (c *OpenSSHClient) DialForward(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.dial(ctx, network, addr, false)
}

// refusalWait is how long DialContext watches a new "unix" connection for the close
// that means the server refused it: a few round trips of a slow link.
var refusalWait = 1500 * time.Millisecond

func (c *OpenSSHClient) dial(ctx context.Context, network, addr string, exact bool) (net.Conn, error) {
	switch network {
	case "unix", "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("tunnel: unsupported network %q", network)
	}
	for try := 0; ; try++ {
		m, err := c.master(ctx)
		if err != nil {
			return nil, err
		}
		var conn net.Conn
		if network == "unix" {
			conn, err = c.dialUnix(ctx, m, addr, exact)
		} else {
			conn, err = c.dialTCP(ctx, m, addr)
		}
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) && try < 2 && gone(m) {
			continue
		}
		return nil, fmt.Errorf("tunnel: opening %s %s on %s: %w", network, addr, c.cfg.Alias, err)
	}
}

func (c *OpenSSHClient) dialUnix(ctx context.Context, m *master, path string, exact bool) (net.Conn, error) {
	var conn net.Conn
	for try := 0; ; try++ {
		local, err := c.forwardFor(ctx, m, path)
		if err != nil {
			return nil, err
		}
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", local)
		if err == nil {
			break
		}
		// The forward went away (the master was told to drop it): ask again.
		c.mu.Lock()
		if c.cur == m && c.fwds[path] == local {
			delete(c.fwds, path)
		}
		c.mu.Unlock()
		if try > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
	if !exact {
		return conn, nil
	}
	wait := refusalWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)*3/4)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	n, err := conn.Read(b[:])
	conn.SetReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case n > 0:
		return &peekedConn{Conn: conn, first: b[:n]}, nil
	case errors.As(err, &ne) && ne.Timeout():
		return conn, nil // open: nobody closed it
	}
	conn.Close()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if m.isDead() || gone(m) {
		return nil, fmt.Errorf("the connection ended: %w", errMasterGone)
	}
	return nil, &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: "connect failed (ssh closed the forwarded connection at once)"}
}

// peekedConn gives back the bytes read while watching for a refusal.
type peekedConn struct {
	net.Conn
	first []byte
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite half-closes (tunnel.Splice relies on it).
func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return p.Conn.Close()
}

// forwardFor returns the local socket through which m forwards to the remote socket
// path, asking m for one (in tether's private directory) the first time.
func (c *OpenSSHClient) forwardFor(ctx context.Context, m *master, path string) (string, error) {
	c.mu.Lock()
	if c.cur == m {
		if l, ok := c.fwds[path]; ok {
			c.mu.Unlock()
			return l, nil
		}
	}
	c.mu.Unlock()
	var b [8]byte
	rand.Read(b[:])
	local := filepath.Join(c.dir, "f-"+hex.EncodeToString(b[:]))
	mc, err := dialMux(ctx, m.path)
	if err != nil {
		return "", err
	}
	err = mc.forward(ctx, false, local, path, portStreamLocal)
	mc.Close()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.cur != m {
		c.mu.Unlock()
		return local, nil // used once; the master it lives on is gone or going
	}
	if l, ok := c.fwds[path]; ok {
		c.mu.Unlock()
		// Another caller got one first: keep theirs, drop ours, here (bounded by
		// cancelForward's 3 s) rather than in a goroutine nobody would wait for.
		c.cancelForward(m, local, path)
		return l, nil
	}
	if c.fwds == nil {
		c.fwds = map[string]string{}
	}
	c.fwds[path] = local
	c.mu.Unlock()
	return local, nil
}

// cancelForward asks m to drop the forward listening at local and removes its socket.
func (c *OpenSSHClient) cancelForward(m *master, local, remote string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if mc, err := dialMux(ctx, m.path); err == nil {
		mc.forward(ctx, true, local, remote, portStreamLocal)
		mc.Close()
	}
	os.Remove(local)
}

// dialTCP opens a direct-tcpip channel through the master (a stdio forward over a
// socket pair).
func (c *OpenSSHClient) dialTCP(ctx context.Context, m *master, addr string) (net.Conn, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", addr)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	mc, err := dialMux(ctx, m.path)
	if err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, err
	}
	err = mc.stdioForward(ctx, host, uint32(port), fds[1])
	syscall.Close(fds[1])
	if err != nil {
		syscall.Close(fds[0])
		mc.Close()
		var me *MuxError
		if errors.As(err, &me) {
			return nil, &ssh.OpenChannelError{Reason: ssh.ConnectionFailed, Message: me.Reason}
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fds[0]), "ssh-stdio-forward")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		mc.Close()
		return nil, err
	}
	return &stdioConn{Conn: nc, ctl: mc}, nil
}

// stdioConn is a stdio forward: the data socket and the control connection whose
// closing ends the channel.
type stdioConn struct {
	net.Conn
	ctl *muxConn
}

func (s *stdioConn) Close() error {
	err := s.Conn.Close()
	s.ctl.Close()
	return err
}

// CloseWrite half-closes: the remote end reads EOF.
func (s *stdioConn) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return s.Close()
}

// Close stops watching and reconnecting and drops the forwards tether asked of the
// master. The master itself stays: the user's is theirs; tether's own serves the next
// command and exits ControlPersist after its last use.
func (c *OpenSSHClient) Close() error {
	c.cancel()
	c.mu.Lock()
	m, fwds := c.cur, c.fwds
	c.fwds = nil
	c.mu.Unlock()
	if m != nil {
		var wg sync.WaitGroup
		for remote, local := range fwds {
			wg.Add(1)
			go func() { defer wg.Done(); c.cancelForward(m, local, remote) }()
		}
		wg.Wait()
		m.watch.Close()
		<-m.dead // attach's watcher, ended by the Close
	}
	<-c.done
	c.nudging.Wait()
	return nil
}
