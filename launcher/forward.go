package launcher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// Endpoint opens one connection to a session's server. Forwarding, verification and
// re-verification all go through it, so a mode that reaches the server another way
// (Slurm: direct-tcpip to node:port, TLS pinned by cert_sha256) plugs in here.
type Endpoint func(ctx context.Context) (net.Conn, error)

// recordEndpoint reaches the server the record names: its Unix socket through the SSH
// connection (direct-streamlocal), inside TLS pinned to cert_sha256 when the record says
// TLS.
func recordEndpoint(c Conn, rec wire.Record) Endpoint {
	e := boundedDial(c, "unix", rec.Socket)
	if rec.TLS {
		e = PinnedTLS(e, rec)
	}
	return e
}

// forwardDialer is a Conn with a quicker dial for forwarding, where a refused
// connection may simply close (the OpenSSH transport: tunnel.OpenSSHClient).
type forwardDialer interface {
	DialForward(ctx context.Context, network, addr string) (net.Conn, error)
}

// forwardEndpoint is recordEndpoint for the browser's connections: through c's
// DialForward when it has one. That dial is a local connection to ssh's master, which
// cannot hang as a channel open can: it is not cut into dialAttempts, and so waits as
// long as the transport waits for a new master (while ssh asks for a new login's
// code, for as long as that takes: the browser's request then goes through).
func forwardEndpoint(c Conn, rec wire.Record) Endpoint {
	fd, ok := c.(forwardDialer)
	if !ok {
		return recordEndpoint(c, rec)
	}
	e := Endpoint(func(ctx context.Context) (net.Conn, error) { return fd.DialForward(ctx, "unix", rec.Socket) })
	if rec.TLS {
		e = PinnedTLS(e, rec)
	}
	return e
}

// dialAttempts bound each try to open a channel. A channel open sent just as the SSH
// connection dies can go unanswered for good (seen in e2e: a request hung 10 s after
// sshd's connection processes were killed), so each try is cut short and retried on
// the connection that replaces it.
var dialAttempts = []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second}

// boundedDial opens network/addr through c, each attempt bounded by dialAttempts.
func boundedDial(c Conn, network, addr string) Endpoint {
	return boundedDialFunc(c.DialContext, network, addr)
}

// boundedDialFunc is boundedDial with dial in place of a Conn's DialContext.
func boundedDialFunc(dial func(ctx context.Context, network, addr string) (net.Conn, error), network, addr string) Endpoint {
	return func(ctx context.Context) (net.Conn, error) {
		var err error
		for _, limit := range dialAttempts {
			actx, cancel := context.WithTimeout(ctx, limit)
			var conn net.Conn
			conn, err = dial(actx, network, addr)
			timedOut := actx.Err() != nil
			cancel()
			switch {
			case err == nil:
				return conn, nil
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case !timedOut:
				return nil, err // a real answer (no such socket): final
			}
		}
		return nil, err
	}
}

// PinnedTLS wraps e in a TLS client that accepts exactly the certificate whose DER
// SHA-256 is rec's cert_sha256 (hex), as delivered over SSH in the ready record: no CA,
// no name check, nothing else trusted. It names wire.ForwardedServerName (SNI): the
// browser gets plain http from the local forward, and the server's Origin checks must
// compare with that. It offers the session's owner hint besides http/1.1 (ALPN), so
// that the server keeps this connection through a flood of others' that have not
// signed in (a node's server in Slurm mode, which every user of the cluster reaches).
func PinnedTLS(e Endpoint, rec wire.Record) Endpoint {
	want, err := hex.DecodeString(rec.CertSHA256)
	hint := rec.OwnerHint()
	return func(ctx context.Context) (net.Conn, error) {
		if err != nil || len(want) != sha256.Size {
			return nil, errors.New("launcher: bad certificate fingerprint in the session record")
		}
		raw, err := e(ctx)
		if err != nil {
			return nil, err
		}
		conf := &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         wire.ForwardedServerName,
			NextProtos:         []string{"http/1.1", hint},
			InsecureSkipVerify: true, // replaced by the pin below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("launcher: the session's server sent no certificate")
				}
				got := sha256.Sum256(cs.PeerCertificates[0].Raw)
				if !hmac.Equal(got[:], want) {
					return fmt.Errorf("launcher: the session's server certificate (sha256 %x) is not the one in its record", got[:8])
				}
				return nil
			},
		}
		tc := tls.Client(raw, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, err
		}
		return tc, nil
	}
}

// listenLocal listens on 127.0.0.1:port (0: the kernel picks).
func listenLocal(port int) (net.Listener, error) {
	if port < 0 || port > 65535 {
		return nil, usageError("--port %d is not a port number", port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, errorf("pick another with --port, or leave --port out to get a free one",
				"local port %d is already in use (another tether or app?)", port)
		}
		if errors.Is(err, syscall.EACCES) {
			return nil, errorf("use a port above 1023, or leave --port out", "not allowed to listen on local port %d", port)
		}
		return nil, errorf("leave --port out to get a free one", "cannot listen on 127.0.0.1:%d: %v", port, err)
	}
	if err := checkOwnerCheck(); err != nil { // other users are refused (ownerOnly): can we tell them?
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// JSONLine is what --json prints, as one line, once the local URL works.
type JSONLine struct {
	URL       string      `json:"url"`
	LocalPort int         `json:"local_port"`
	Session   wire.Record `json:"session"`
}

// errImpostor: whatever answered on the session's socket did not prove it holds the
// session's token.
var errImpostor = errors.New("challenge failed")

// localClient speaks HTTP to the local forward (or, with dial, straight through the
// tunnel): no proxy from the environment, no redirects, no connection reuse beyond one
// verification.
func localClient(dial Endpoint) *http.Client {
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConns: 1, IdleConnTimeout: 5 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second, ForceAttemptHTTP2: false}
	if dial != nil {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }
	} else {
		d := &net.Dialer{Timeout: 5 * time.Second}
		tr.DialContext = d.DialContext
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// challenge asks the server at base (…/{base_url}) for the answer to a fresh nonce and
// compares it in constant time with what the real server, holding the token, answers.
// Nothing secret is sent.
func challenge(ctx context.Context, c *http.Client, base string, rec wire.Record) error {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	want, err := challengeResponse(rec, nonce)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"_tether/challenge?nonce="+nonce, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w (status %d)", errImpostor, resp.StatusCode)
	}
	if !hmac.Equal(bytes.TrimSpace(body), []byte(want)) {
		return fmt.Errorf("%w (wrong answer)", errImpostor)
	}
	return nil
}

// authenticated checks that the server accepts the token (after the challenge passed).
func authenticated(ctx context.Context, c *http.Client, base, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		return fmt.Errorf("the server refused the session's token (status %d)", resp.StatusCode)
	}
	return nil
}

// verify proves, through the local forward, that the session's own server answers
// (challenge) and takes the token; only then is the URL given to anyone. On failure it
// looks through the tunnel directly to say why, and tries again when the server
// answers there (the connection had dropped under the first try).
func (s *session) verify(ctx context.Context, local string, rec wire.Record, dial Endpoint, withAuth bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := localClient(nil)
	defer c.CloseIdleConnections()
	for try := 1; ; try++ {
		err := challenge(ctx, c, local, rec)
		if err == nil && withAuth {
			err = authenticated(ctx, c, local, rec.Token)
			if err != nil {
				return &Error{Msg: fmt.Sprintf("session %s on %s: %v", rec.ID, s.host, err), Hint: "stop it with `" + s.cmdline("stop", rec.ID) + "` and launch a new one", Err: err}
			}
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, errImpostor) {
			return impostorError(s, rec, err)
		}
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err()
		}
		// Why? Look straight through the tunnel (waiting for a reconnect if need be).
		conn, derr := dial(ctx)
		if derr != nil {
			return &Error{Msg: fmt.Sprintf("cannot reach session %s's server on %s: %s", rec.ID, s.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(derr)), 200)),
				Hint: "it may have stopped; `" + s.cmdline("ls") + "` lists the sessions", Err: errSessionGone}
		}
		conn.Close()
		derr = challenge(ctx, localClient(dial), local, rec)
		if errors.Is(derr, errImpostor) {
			return impostorError(s, rec, derr)
		}
		// The server answers straight through the tunnel: the connection dropped
		// under the first try (a flapping link) and is back. Try again.
		if derr == nil && try < verifyTries && ctx.Err() == nil {
			c.CloseIdleConnections()
			continue
		}
		return &Error{Msg: fmt.Sprintf("session %s's server on %s does not answer: %s", rec.ID, s.host, termsafe.Clip(termsafe.OneLine(err.Error()), 200)),
			Hint: "try `" + s.cmdline("attach", rec.ID) + "` again; `" + s.cmdline("logs", rec.ID) + "` shows the app's output", Err: err}
	}
}

// verifyTries bounds how often verify looks again when the connection keeps dropping
// under it while the server itself answers.
const verifyTries = 5

var errSessionGone = errors.New("session gone")

func impostorError(s *session, rec wire.Record, err error) error {
	return &Error{Msg: fmt.Sprintf("whatever listens on session %s's socket on %s (%s) did not prove it is tether's server (%v); nothing was sent to it and no browser was opened",
		rec.ID, s.host, rec.Socket, err), Hint: "someone else may control that socket: check who owns it, then `" + s.cmdline("stop", rec.ID) + "`", Err: errImpostor}
}

// cmdline is a tether command line for the user to run against this host.
func (s *session) cmdline(args ...string) string {
	if s.demo {
		return "tether demo"
	}
	parts := []string{"tether", args[0]}
	if s.o.ConfigFile != "" {
		parts = append(parts, "-F", shquote.Quote(s.o.ConfigFile))
	}
	if s.o.SSHMode == SSHNative || s.o.SSHMode == SSHOpenSSH {
		parts = append(parts, "--ssh", s.o.SSHMode) // chosen on the command line: again
	}
	if s.o.Relay != "" {
		parts = append(parts, "--relay", shquote.Quote(redactURL(s.o.Relay)))
	}
	parts = append(parts, shquote.Quote(s.host))
	if args[0] == "attach" && s.viaNode {
		parts = append(parts, "--via-node-ssh")
	}
	for _, a := range args[1:] {
		parts = append(parts, shquote.Quote(a))
	}
	return strings.Join(parts, " ")
}

// serveLocal forwards ln to the session, verifies it, tells the user (URL, JSON line,
// browser) and stays until ctx ends (detach, or --rm: stop) or the session is gone.
// launched says this command started the session, which then must not outlive a
// failure here.
func (s *session) serveLocal(ctx context.Context, ln net.Listener, rec wire.Record, fo ForwardOptions, launched bool) (err error) {
	dial, fwd := s.endpoint, s.endpoint
	if dial == nil {
		dial, fwd = recordEndpoint(s.conn, rec), forwardEndpoint(s.conn, rec)
	}
	lf := startForward(ln, s.status.line, fwd)
	stopped := false
	defer func() {
		lf.stop()
		cleaned := false
		if err != nil && launched && !stopped && !errors.Is(err, errSessionGone) {
			if serr := s.stopRemote(rec.ID); serr != nil {
				s.status.line("tether: could not stop session %s on %s (%v); stop it with `%s`", rec.ID, s.host, serr, s.cmdline("stop", rec.ID))
			} else {
				cleaned = true
			}
		}
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Ctrl-C before the session was ready for the user.
			err = &Error{Msg: "interrupted", Code: 130}
			if cleaned {
				err = interrupted(s, true)
			}
		}
	}()

	// From here this goroutine owns the connection's events: what happened before is
	// told now, in order, and a connection that failed for good ends here, before ready.
	if err := s.handOff(); err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	local := "http://127.0.0.1:" + strconv.Itoa(port) + rec.BaseURL
	s.status.step("checking session %s's server through the tunnel", rec.ID)
	if err := s.verify(ctx, local, rec, dial, true); err != nil {
		s.status.done()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	s.status.done()
	tokenURL := local + "?token=" + url.QueryEscape(rec.Token)

	if fo.JSON {
		b, err := json.Marshal(JSONLine{URL: tokenURL, LocalPort: port, Session: rec})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(s.o.Stdout, "%s\n", b); err != nil {
			return err
		}
	} else if fo.NoBrowser {
		fmt.Fprintln(s.o.Stdout, tokenURL)
	}
	var cleanup func()
	if !fo.NoBrowser {
		// No browser (no display, the opener failed): the user opens the URL by hand.
		// It goes to the user's terminal only, never to a log.
		var oerr error
		if cleanup, oerr = s.openBrowser(fo, local, rec); oerr != nil {
			why := termsafe.Clip(termsafe.OneLine(oerr.Error()), 200)
			if fo.JSON {
				s.status.line("tether: could not open a browser (%s); open the url of the JSON line yourself", why)
			} else {
				s.status.line("tether: could not open a browser (%s); open this URL yourself:", why)
				fmt.Fprintln(s.o.Stdout, tokenURL)
			}
		}
	}
	if cleanup != nil {
		defer cleanup()
	}
	what := "session " + rec.ID
	if rec.Name != "" {
		what += " (" + rec.Name + ")"
	}
	if s.demo {
		s.status.line("tether: ready: %s at %s — press Ctrl-C to stop the demo", what, local)
	} else if fo.Rm {
		s.status.line("tether: ready: %s on %s at %s — press Ctrl-C to stop it", what, s.host, local)
	} else {
		s.status.line("tether: ready: %s on %s at %s — press Ctrl-C to detach (it keeps running)", what, s.host, local)
	}
	if s.slurm != nil {
		s.slurmReadyLine(rec)
		s.checkWalltime()
	}
	// A Slurm session's end is told by its watch; any other's by its socket.
	var refused <-chan struct{}
	if s.slurm == nil {
		w := s.watchSocket(rec)
		defer w.stop()
		refused = w.refused
	}
	deadSeen := 0

	for {
		select {
		case <-ctx.Done():
			lf.stop()
			if fo.Rm || s.demo {
				stopped = true
				if err := s.stopRemote(rec.ID); err != nil {
					return errorf("stop it with `"+s.cmdline("stop", rec.ID)+"`", "could not stop session %s on %s: %v", rec.ID, s.host, err)
				}
				s.status.line("tether: stopped session %s on %s", rec.ID, s.host)
				return nil
			}
			s.status.line("tether: detached; session %s keeps running on %s", rec.ID, s.host)
			s.status.line("  come back: %s", s.cmdline("attach", rec.ID))
			s.status.line("  stop it:   %s", s.cmdline("stop", rec.ID))
			return nil
		case <-lf.done:
			return errorf("try again", "forwarding local port %d stopped: %v", port, lf.err)
		case <-s.events.ready():
			for e, ok := s.events.next(); ok; e, ok = s.events.next() {
				if err := s.onEvent(ctx, e, local, rec, dial); err != nil {
					if errors.Is(err, errEndedCleanly) {
						return nil
					}
					return err
				}
			}
		case <-refused:
			if err := s.sessionEnded(ctx, rec, &deadSeen); err != nil {
				if errors.Is(err, errEndedCleanly) {
					return nil
				}
				return err
			}
		case ev := <-s.slurmEvents():
			if err := s.onBatchEvent(ev, rec); err != nil {
				return err
			}
		case <-s.slurmTick():
			s.checkWalltime()
		case <-s.slurmWatchDone():
			if err := s.slurmWatchLost(rec); err != nil {
				return err
			}
		}
	}
}

// onEvent shows a connection change; after a reconnect it checks the session again.
func (s *session) onEvent(ctx context.Context, e tunnel.Event, local string, rec wire.Record, dial Endpoint) error {
	switch e.State {
	case tunnel.Lost:
		s.tellLost(e)
	case tunnel.Reconnecting:
		if e.Attempt > 1 {
			s.status.update("connection to %s lost; reconnecting (attempt %d)", s.host, e.Attempt)
		}
	case tunnel.Back:
		s.status.step("back: reconnected to %s; checking session %s", s.host, rec.ID)
		err := s.verify(ctx, local, rec, dial, false)
		s.status.done()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var le *Error
			if errors.As(err, &le) && errors.Is(err, errSessionGone) {
				dead := 1 // the socket refused after a reconnect: a dead listing is final
				if err := s.sessionEnded(ctx, rec, &dead); err != nil {
					return err
				}
				return &Error{Msg: fmt.Sprintf("session %s on %s is gone (stopped, or the machine restarted)", rec.ID, s.host),
					Hint: "start a new one with `tether launch " + shquote.Quote(s.host) + "`; `" + s.cmdline("ls") + "` lists what is running", Err: errSessionGone}
			}
			return err
		}
		s.status.line("tether: back: session %s on %s answers again at %s", rec.ID, s.host, local)
	case tunnel.Failed:
		return s.connectError(e.Err)
	}
	return nil
}

// tellLost says that the connection was lost, and why.
func (s *session) tellLost(e tunnel.Event) {
	why := ""
	if cause := errors.Unwrap(e.Err); cause != nil {
		why = " (" + termsafe.Clip(termsafe.OneLine(tunnel.Message(cause)), 100) + ")"
	} else if e.Err != nil {
		why = " (" + termsafe.Clip(termsafe.OneLine(tunnel.Message(e.Err)), 100) + ")"
	}
	s.status.step("connection to %s lost%s; reconnecting", s.host, why)
}
