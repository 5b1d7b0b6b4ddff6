package tunnel

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Server is a minimal SSH server for `tether demo` (the remote played on 127.0.0.1),
// `tether host` (this machine offered through a relay) and tests. It serves exec
// (/bin/sh -c, or the user's login shell with LoginShell; stdin/stdout/stderr,
// exit-status), direct-streamlocal@openssh.com to Unix sockets, direct-tcpip to
// loopback addresses only, and answers keepalive@openssh.com; it refuses everything
// else (shells, ptys, subsystems, remote forwarding).
//
// Authentication is one of two kinds, never mixed (Serve refuses a mix):
//   - single factor (demo, tests): AuthorizedKey, and the test hooks Password and
//     KeyboardInteractive, each enough alone;
//   - CheckPassword and/or AuthorizedKeys (tether host): with one of them set, it
//     alone decides; with both, a client needs both, in either order (SSH partial
//     success, as OpenSSH's AuthenticationMethods publickey,password).
type Server struct {
	HostKey ssh.Signer
	// ExtraHostKeys are offered too (tests: a server with RSA, ECDSA and Ed25519 keys).
	ExtraHostKeys []ssh.Signer
	AuthorizedKey ssh.PublicKey // the only key accepted (single factor)
	Env           []string      // extra environment for exec'd commands (e.g. HOME=…)

	// AuthorizedKeys are the public keys accepted (an authorized_keys file's); with
	// CheckPassword set too, a key is only half of a login.
	AuthorizedKeys []ssh.PublicKey
	// CheckPassword, when set, decides password authentication (tether host: the
	// password is a client token). It must compare secrets in constant time and
	// return an error that names no secret. The user name is the client's, unchecked.
	// until, if not zero, is when the login's access ends (the token's expiry): the
	// server closes the connection then, whatever runs in it.
	CheckPassword func(user string, password []byte) (until time.Time, err error)
	// OnExpire, when set, is told when a connection is closed at its until.
	OnExpire func(remote net.Addr, user string, until time.Time)
	// LoginShell runs exec'd commands as sshd runs them for the user running the
	// server, whatever user name the client gave: `SHELL -c COMMAND` with the login
	// shell of the password database, in HOME, with a fresh environment (HOME, USER,
	// LOGNAME, SHELL, PATH, MAIL as a login sets them, then Env) instead of the
	// server's own. Without it: /bin/sh -c with the server's environment plus Env.
	LoginShell bool
	// AuthLog, when set, is told of each connection's authentication outcome (user
	// name as the client sent it, the method, nil or the error); never a secret.
	AuthLog func(remote net.Addr, user, method string, err error)

	// Test hooks. Password, when set, is also accepted by password authentication.
	Password string
	// KeyboardInteractive, when set, is offered and decides keyboard-interactive
	// authentication (e.g. a one-time code).
	KeyboardInteractive func(user string, challenge ssh.KeyboardInteractiveChallenge) bool
	// WrapConn, when set, wraps each accepted connection (fault injection: stalls,
	// drops).
	WrapConn func(net.Conn) net.Conn
	// IgnoreKeepalive makes the server leave keepalive requests unanswered (a stalled
	// peer).
	IgnoreKeepalive bool
	// dial, when set, replaces the dial of a forwarding target (test hook: an
	// in-memory network inside a synctest bubble).
	dial func(network, addr string) (net.Conn, error)

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	procs  map[*exec.Cmd]struct{}
	closed bool
	wg     sync.WaitGroup
}

// untilExtension carries a login's until (CheckPassword's) from authentication to the
// connection, in ssh.Permissions (UnixNano).
const untilExtension = "tether-until"

func untilOf(p *ssh.Permissions) (string, bool) {
	if p == nil {
		return "", false
	}
	v, ok := p.Extensions[untilExtension]
	return v, ok
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("tunnel: server closed")

func (s *Server) config() (*ssh.ServerConfig, error) {
	if s.HostKey == nil {
		return nil, errors.New("tunnel: Server needs a HostKey")
	}
	cfg := &ssh.ServerConfig{ServerVersion: "SSH-2.0-tether-server"}
	if s.CheckPassword != nil || len(s.AuthorizedKeys) > 0 {
		if s.AuthorizedKey != nil || s.Password != "" || s.KeyboardInteractive != nil {
			return nil, errors.New("tunnel: Server's single-factor AuthorizedKey, Password and KeyboardInteractive cannot be mixed with AuthorizedKeys and CheckPassword")
		}
		s.multiFactor(cfg)
	} else {
		s.singleFactor(cfg)
	}
	if s.AuthLog != nil {
		cfg.AuthLogCallback = func(c ssh.ConnMetadata, method string, err error) {
			if method == "none" {
				return // every client asks "none" first, to learn the methods
			}
			s.AuthLog(c.RemoteAddr(), c.User(), method, err)
		}
	}
	cfg.AddHostKey(s.HostKey)
	for _, k := range s.ExtraHostKeys {
		cfg.AddHostKey(k)
	}
	return cfg, nil
}

// singleFactor: AuthorizedKey, Password and KeyboardInteractive, each enough alone.
func (s *Server) singleFactor(cfg *ssh.ServerConfig) {
	cfg.PublicKeyCallback = func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if s.AuthorizedKey != nil && subtle.ConstantTimeCompare(key.Marshal(), s.AuthorizedKey.Marshal()) == 1 {
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("key not authorized")
	}
	if s.Password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
			if subtle.ConstantTimeCompare(p, []byte(s.Password)) == 1 {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	if s.KeyboardInteractive != nil {
		cfg.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			if s.KeyboardInteractive(c.User(), ch) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("keyboard-interactive refused")
		}
	}
}

// multiFactor: AuthorizedKeys and CheckPassword, each alone when only it is set, both
// (either first) when both are. The second step's callbacks only offer the method not
// yet passed, so one factor twice never logs in.
func (s *Server) multiFactor(cfg *ssh.ServerConfig) {
	var keyCB func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error)
	var passwordCB func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error)
	keyOK := func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if s.keyAuthorized(key) {
			return nil, nil
		}
		return nil, errors.New("key not in the authorized keys")
	}
	passwordOK := func(c ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
		until, err := s.CheckPassword(c.User(), p)
		if err != nil {
			return nil, err
		}
		if until.IsZero() {
			return nil, nil
		}
		return &ssh.Permissions{Extensions: map[string]string{untilExtension: strconv.FormatInt(until.UnixNano(), 10)}}, nil
	}
	switch {
	case s.CheckPassword != nil && len(s.AuthorizedKeys) > 0:
		keyCB = func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if _, err := keyOK(c, key); err != nil {
				return nil, err
			}
			return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{PasswordCallback: passwordOK}}
		}
		passwordCB = func(c ssh.ConnMetadata, p []byte) (*ssh.Permissions, error) {
			perms, err := passwordOK(c, p)
			if err != nil {
				return nil, err
			}
			// The key completes the login; the password's until stays with it.
			keyThen := func(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				if _, err := keyOK(c, key); err != nil {
					return nil, err
				}
				return perms, nil
			}
			return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{PublicKeyCallback: keyThen}}
		}
	case s.CheckPassword != nil:
		passwordCB = passwordOK
	default:
		keyCB = keyOK
	}
	cfg.PublicKeyCallback = keyCB
	cfg.PasswordCallback = passwordCB
}

// keyAuthorized reports whether key is one of AuthorizedKeys.
func (s *Server) keyAuthorized(key ssh.PublicKey) bool {
	k := key.Marshal()
	ok := 0
	for _, a := range s.AuthorizedKeys {
		ok |= subtle.ConstantTimeCompare(k, a.Marshal())
	}
	return ok == 1
}

// Serve accepts connections on ln until Close (or ln fails).
func (s *Server) Serve(ln net.Listener) error {
	cfg, err := s.config()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.lns == nil {
		s.lns, s.conns, s.procs = map[net.Listener]struct{}{}, map[net.Conn]struct{}{}, map[*exec.Cmd]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.lns, ln)
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return fmt.Errorf("tunnel: server accept: %w", err)
		}
		if s.WrapConn != nil {
			c = s.WrapConn(c)
		}
		if !s.track(c) {
			c.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(c, cfg)
		}()
	}
}

// track registers c and counts its goroutine in s.wg, under the lock that Close takes
// to set closed: a connection Close did not see is refused, and one it saw is waited
// for (an Add after Close's Wait began would not be).
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// CloseConnections drops every client connection, as a network failure would, and
// kills what they started; the server keeps accepting (tests).
func (s *Server) CloseConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.conns)
	for c := range s.conns {
		c.Close()
	}
	return n
}

// Close stops accepting, drops every connection, kills every command exec started
// (its whole process group) and waits for the server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	for cmd := range s.procs {
		killGroup(cmd)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		signalGroup(cmd, syscall.SIGKILL)
	}
}

func (s *Server) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	c.SetDeadline(time.Time{})
	defer sc.Close()
	if v, ok := untilOf(sc.Permissions); ok {
		// The login's access ends at until: close the connection then.
		n, _ := strconv.ParseInt(v, 10, 64)
		until := time.Unix(0, n)
		t := time.AfterFunc(time.Until(until), func() {
			if s.OnExpire != nil {
				s.OnExpire(sc.RemoteAddr(), sc.User(), until)
			}
			sc.Close()
		})
		defer t.Stop()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for r := range reqs {
			switch {
			case r.Type == "keepalive@openssh.com" && !s.IgnoreKeepalive:
				r.Reply(true, nil)
			case r.Type == "keepalive@openssh.com":
				// Stalled: never answer.
			default:
				r.Reply(false, nil)
			}
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.session(ch, creqs) }()
		case "direct-streamlocal@openssh.com":
			var p struct {
				Path      string
				Reserved0 string
				Reserved1 uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
				nc.Reject(ssh.ConnectionFailed, "bad direct-streamlocal payload")
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.forward(nc, "unix", p.Path) }()
		case "direct-tcpip":
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil || p.Port == 0 || p.Port > 65535 {
				nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip payload")
				continue
			}
			addr, ok := loopbackAddr(p.Host, int(p.Port))
			if !ok {
				nc.Reject(ssh.Prohibited, "only loopback addresses may be reached")
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); s.forward(nc, "tcp", addr) }()
		default:
			nc.Reject(ssh.UnknownChannelType, "not supported")
		}
	}
}

// loopbackAddr accepts "localhost" and loopback IP literals only: no name resolution,
// so no other host can be reached through the demo server.
func loopbackAddr(host string, port int) (string, bool) {
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return "", false
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), true
}

func (s *Server) forward(nc ssh.NewChannel, network, addr string) {
	dial := (&net.Dialer{Timeout: 10 * time.Second}).Dial
	if s.dial != nil {
		dial = s.dial
	}
	target, err := dial(network, addr)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	discarded := make(chan struct{})
	go func() { ssh.DiscardRequests(reqs); close(discarded) }()
	Splice(target, channelConn{ch})
	target.Close()
	ch.Close()
	<-discarded // reqs ends once the client answers the close, or the connection ends
}

// channelConn adapts an ssh.Channel to net.Conn for Splice.
type channelConn struct{ ssh.Channel }

func (channelConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (channelConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (channelConn) SetDeadline(time.Time) error      { return nil }
func (channelConn) SetReadDeadline(time.Time) error  { return nil }
func (channelConn) SetWriteDeadline(time.Time) error { return nil }

// session serves one session channel: exec only.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	exited := make(chan struct{})
	for r := range reqs {
		switch r.Type {
		case "exec":
			if cmd != nil {
				r.Reply(false, nil)
				continue
			}
			var p struct{ Command string }
			if err := ssh.Unmarshal(r.Payload, &p); err != nil {
				r.Reply(false, nil)
				continue
			}
			replied := make(chan struct{})
			c, err := s.start(ch, p.Command, exited, replied)
			if err != nil {
				r.Reply(false, nil)
				fmt.Fprintf(ch.Stderr(), "tether server: %v\n", err)
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{127}))
				return
			}
			cmd = c
			r.Reply(true, nil)
			close(replied)
		case "signal":
			var p struct{ Signal string }
			if cmd != nil && ssh.Unmarshal(r.Payload, &p) == nil {
				if sig, ok := signals[ssh.Signal(p.Signal)]; ok {
					signalGroup(cmd, sig)
				}
			}
			if r.WantReply {
				r.Reply(true, nil)
			}
		case "env":
			// Ignored, as sshd ignores what AcceptEnv does not list.
			r.Reply(false, nil)
		default: // shell, pty-req, subsystem, x11-req, auth-agent-req…
			r.Reply(false, nil)
		}
	}
	// The client closed the channel (or the connection died): stop the command.
	if cmd != nil {
		select {
		case <-exited:
		default:
			killGroup(cmd)
			<-exited
		}
	}
}

var signalNames = func() map[syscall.Signal]ssh.Signal {
	m := map[syscall.Signal]ssh.Signal{}
	for k, v := range signals {
		m[v] = k
	}
	return m
}()

// start runs command under /bin/sh -c (or the login shell) in its own process group, wired to ch, and sends
// exit-status (or exit-signal) and closes ch when it ends.
//
// Nothing is sent on ch until replied is closed: a fast command must not close the
// channel before the exec request has been answered.
func (s *Server) start(ch ssh.Channel, command string, exited, replied chan struct{}) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	if s.LoginShell {
		l, err := currentLogin()
		if err != nil {
			return nil, err
		}
		cmd = l.command(command)
		cmd.Env = append(cmd.Env, s.Env...)
	} else {
		cmd = exec.Command("/bin/sh", "-c", command)
		cmd.Env = append(os.Environ(), s.Env...)
	}
	if home := envValue(cmd.Env, "HOME"); home != "" {
		cmd.Dir = home
		if fi, err := os.Stat(home); s.LoginShell && (err != nil || !fi.IsDir()) {
			cmd.Dir = "/" // as sshd, when it cannot chdir to the home directory
		}
	}
	setProcessGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrServerClosed
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.procs[cmd] = struct{}{}
	s.mu.Unlock()

	// Both goroutines are counted in s.wg (Close waits for them; the count is above
	// zero here, this connection's own goroutine being in it). The stdin copy ends at
	// the channel's EOF or close, which the second one does when the command exits.
	s.wg.Go(func() {
		io.Copy(stdin, ch)
		stdin.Close()
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-replied
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); io.Copy(ch, stdout) }()
		go func() { defer wg.Done(); io.Copy(ch.Stderr(), stderr) }()
		wg.Wait()
		err := cmd.Wait()
		s.mu.Lock()
		delete(s.procs, cmd)
		s.mu.Unlock()
		var ee *exec.ExitError
		status := 0
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				name, ok := signalNames[ws.Signal()]
				if !ok {
					name = ssh.Signal(fmt.Sprintf("SIG%d", int(ws.Signal())))
				}
				ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
					Signal     string
					CoreDumped bool
					Error      string
					Lang       string
				}{string(name), ws.CoreDump(), "", ""}))
				ch.Close()
				close(exited)
				return
			}
			status = ee.ExitCode()
		} else if err != nil {
			status = 255
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
		ch.Close()
		close(exited)
	}()
	return cmd, nil
}

func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if len(e) > len(key) && e[:len(key)] == key && e[len(key)] == '=' {
			v = e[len(key)+1:]
		}
	}
	return v
}
