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

// recordEndpoints are the ways to the server the record names: its Unix socket
// through the SSH connection (direct-streamlocal), inside TLS pinned to cert_sha256
// when the record says TLS. dial is for one-off requests (verification); fwd for the
// browser's connections: through c's DialForward when it has one (that dial is a
// local connection to ssh's master, which cannot hang as a channel open can: it is not
// cut into dialAttempts, and so waits as long as the transport waits for a new master;
// while ssh asks for a new login's code, for as long as that takes: the browser's
// request then goes through), and each carried over several channels (stripes.go)
// when the link is distant and the server joins stripes.
func recordEndpoints(c Conn, rec wire.Record) (dial, fwd Endpoint) {
	rtt := &linkRTT{}
	open := c.DialContext
	fd, forwards := c.(forwardDialer)
	if !forwards {
		// A channel open through x/crypto takes one round trip: it measures the link.
		// (Through ssh's master, a connection is local: it does not.)
		open = rtt.timed(open)
	}
	dial = boundedDialFunc(open, "unix", rec.Socket)
	fwd = dial
	if forwards {
		fwd = func(ctx context.Context) (net.Conn, error) { return fd.DialForward(ctx, "unix", rec.Socket) }
	}
	fwd = striped(fwd, rec, rtt)
	if rec.TLS {
		dial, fwd = PinnedTLS(dial, rec), PinnedTLS(fwd, rec)
	}
	return dial, fwd
}

// forwardDialer is a Conn with a quicker dial for forwarding, where a refused
// connection may simply close (the OpenSSH transport: tunnel.OpenSSHClient).
type forwardDialer interface {
	DialForward(ctx context.Context, network, addr string) (net.Conn, error)
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

// owner is what a challenge learned of whether the server takes the session's token.
type owner int

const (
	ownerUnasked owner = iota // no proof sent, or a server that does not answer one (older)
	ownerAccepted
	ownerRefused
)

// challenge asks the server at base (…/{base_url}) for the answer to a fresh nonce and
// compares it in constant time with what the real server, holding the token, answers.
// Nothing secret is sent. With proof, the request also carries the owner proof
// (wire.Record.OwnerProof: derived from the token and bound to the nonce, so useless
// to an impostor) and the answer says whether the server takes the token: the check
// that needed a second request, with the token, once the answer had proved the server.
// What the server says of the proof counts only once its answer is right.
func challenge(ctx context.Context, c *http.Client, base string, rec wire.Record, proof bool) (owner, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ownerUnasked, err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b[:])
	want, err := challengeResponse(rec, nonce)
	if err != nil {
		return ownerUnasked, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"_tether/challenge?nonce="+nonce, nil)
	if err != nil {
		return ownerUnasked, err
	}
	if proof {
		req.Header.Set(wire.OwnerProofHeader, rec.OwnerProof(nonce))
	}
	resp, err := c.Do(req)
	if err != nil {
		return ownerUnasked, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return ownerUnasked, fmt.Errorf("%w (status %d)", errImpostor, resp.StatusCode)
	}
	if !hmac.Equal(bytes.TrimSpace(body), []byte(want)) {
		return ownerUnasked, fmt.Errorf("%w (wrong answer)", errImpostor)
	}
	switch v := resp.Header.Values(wire.OwnerAcceptedHeader); {
	case !proof || len(v) == 0:
		return ownerUnasked, nil
	case len(v) == 1 && v[0] == wire.OwnerAccepted:
		return ownerAccepted, nil
	}
	return ownerRefused, nil
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
		// One exchange: the challenge proves the server, and with withAuth its answer
		// also says whether it takes the token. Only a server that does not say (an
		// older tether) is asked again, with the token, now that it is proved.
		took, err := challenge(ctx, c, local, rec, withAuth)
		if err == nil && withAuth && took != ownerAccepted {
			err = errOwnerRefused
			if took == ownerUnasked {
				err = authenticated(ctx, c, local, rec.Token)
			}
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
		_, derr = challenge(ctx, localClient(dial), local, rec, false)
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

// errOwnerRefused: the server proved it holds the session's token, yet said it does not
// take the launcher's proof of it.
var errOwnerRefused = errors.New("the server refused the session's token")

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
// failure here. Its steps, each a function below, in the order they run:
//
//	forward the local port    forwardLocal: the browser's connections, through the tunnel
//	check the server          check: the connection's events so far, then verify
//	tell the user             tell: the URL or JSON line, the browser, "ready"
//	stay                      stay: connection, socket and batch events until the end
//	clean up                  close: the socket watch, the redirect file, the forward
//	end                       leave (ctx ended: detach, or stop with --rm) or abandon
//
// Each step returns its error where it is decided; abandon, given a failure, stops
// what this command launched and words an interrupt.
func (s *session) serveLocal(ctx context.Context, ln net.Listener, rec wire.Record, fo ForwardOptions, launched bool) error {
	l := s.forwardLocal(ln, rec, fo)
	err := l.check(ctx)
	if err == nil {
		err = l.tell()
	}
	if err == nil {
		err = l.stay(ctx)
	}
	l.close()
	switch {
	case err == nil: // ctx ended while the session was served
		return l.leave()
	case errors.Is(err, errEndedCleanly): // the session ended, and stay said so
		return nil
	}
	return l.abandon(ctx, err, launched)
}

// localServing is one session served on a local port: what serveLocal's steps made,
// which close undoes.
type localServing struct {
	s       *session
	rec     wire.Record
	fo      ForwardOptions
	dial    Endpoint      // straight through the tunnel: verification
	fwd     *localForward // the browser's connections
	port    int
	local   string       // http://127.0.0.1:PORT/BASE_URL/
	browser func()       // removes the browser's redirect file (--open-file); nil: none
	watch   *socketWatch // the session's socket, once served; nil for a Slurm session
}

// forwardLocal starts forwarding ln to the session: through s.endpoint when set (a
// Slurm session's node), otherwise through the record's socket.
func (s *session) forwardLocal(ln net.Listener, rec wire.Record, fo ForwardOptions) *localServing {
	dial, fwd := s.endpoint, s.endpoint
	if dial == nil {
		dial, fwd = recordEndpoints(s.conn, rec)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return &localServing{s: s, rec: rec, fo: fo, dial: dial, port: port,
		local: "http://127.0.0.1:" + strconv.Itoa(port) + rec.BaseURL,
		fwd:   startForward(ln, s.status.line, fwd)}
}

// check takes over the connection's events and verifies the session's server through
// the forward. From here this goroutine owns the events: what happened before is told
// now, in order, and a connection that failed for good ends here, before ready. A
// check cut short by ctx returns ctx's error.
func (l *localServing) check(ctx context.Context) error {
	s := l.s
	if err := s.handOff(); err != nil {
		return err
	}
	s.status.step("checking session %s's server through the tunnel", l.rec.ID)
	err := s.verify(ctx, l.local, l.rec, l.dial, true)
	s.status.done()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// tell gives the user the session: the JSON line or the URL (--no-browser), the
// browser, then the ready line (and a batch job's node and time left).
func (l *localServing) tell() error {
	s, rec, fo := l.s, l.rec, l.fo
	tokenURL := l.local + "?token=" + url.QueryEscape(rec.Token)
	if fo.JSON {
		b, err := json.Marshal(JSONLine{URL: tokenURL, LocalPort: l.port, Session: rec})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(s.o.Stdout, "%s\n", b); err != nil {
			return err
		}
	} else if fo.NoBrowser {
		fmt.Fprintln(s.o.Stdout, tokenURL)
	}
	if !fo.NoBrowser {
		// No browser (no display, the opener failed): the user opens the URL by hand.
		// It goes to the user's terminal only, never to a log.
		cleanup, err := s.openBrowser(fo, l.local, rec)
		l.browser = cleanup
		if err != nil {
			why := termsafe.Clip(termsafe.OneLine(err.Error()), 200)
			if fo.JSON {
				s.status.line("tether: could not open a browser (%s); open the url of the JSON line yourself", why)
			} else {
				s.status.line("tether: could not open a browser (%s); open this URL yourself:", why)
				fmt.Fprintln(s.o.Stdout, tokenURL)
			}
		}
	}
	what := "session " + rec.ID
	if rec.Name != "" {
		what += " (" + rec.Name + ")"
	}
	switch {
	case s.demo:
		s.status.line("tether: ready: %s at %s — press Ctrl-C to stop the demo", what, l.local)
	case fo.Rm:
		s.status.line("tether: ready: %s on %s at %s — press Ctrl-C to stop it", what, s.host, l.local)
	default:
		s.status.line("tether: ready: %s on %s at %s — press Ctrl-C to detach (it keeps running)", what, s.host, l.local)
	}
	if s.slurm != nil {
		s.slurmReadyLine(rec)
		s.checkWalltime()
	}
	return nil
}

// stay serves the session until it ends, in order handling the connection's events,
// the forward's end, and the session's: a Slurm session's end is told by its watch
// (with the walltime warnings), any other's by its socket, watched from here on. It
// returns nil once ctx ends (the user leaves), errEndedCleanly once the session ended
// as someone meant it to (after a line saying so), or the error to end with.
func (l *localServing) stay(ctx context.Context) error {
	s := l.s
	var refused <-chan struct{}
	if s.slurm == nil {
		l.watch = s.watchSocket(l.rec)
		refused = l.watch.refused
	}
	deadSeen := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.fwd.done:
			return errorf("try again", "forwarding local port %d stopped: %v", l.port, l.fwd.err)
		case <-s.events.ready():
			for e, ok := s.events.next(); ok; e, ok = s.events.next() {
				if err := s.onEvent(ctx, e, l.local, l.rec, l.dial); err != nil {
					return err
				}
			}
		case <-refused:
			if err := s.sessionEnded(ctx, l.rec, &deadSeen); err != nil {
				return err
			}
		case ev := <-s.slurmEvents():
			if err := s.onBatchEvent(ev, l.rec); err != nil {
				return err
			}
		case <-s.slurmTick():
			s.checkWalltime()
		case <-s.slurmWatchDone():
			if err := s.slurmWatchLost(l.rec); err != nil {
				return err
			}
		}
	}
}

// close undoes what the steps made, the last first: the socket watch, the browser's
// redirect file, then the forward (no browser connection goes through once it returns).
func (l *localServing) close() {
	if l.watch != nil {
		l.watch.stop()
	}
	if l.browser != nil {
		l.browser()
	}
	l.fwd.stop()
}

// leave ends a session served until ctx ended (Ctrl-C): --rm and the demo stop it;
// otherwise it keeps running, and the user is told how to come back.
func (l *localServing) leave() error {
	s, id := l.s, l.rec.ID
	if l.fo.Rm || s.demo {
		if err := s.stopRemote(id); err != nil {
			return errorf("stop it with `"+s.cmdline("stop", id)+"`", "could not stop session %s on %s: %v", id, s.host, err)
		}
		s.status.line("tether: stopped session %s on %s", id, s.host)
		return nil
	}
	s.status.line("tether: detached; session %s keeps running on %s", id, s.host)
	s.status.line("  come back: %s", s.cmdline("attach", id))
	s.status.line("  stop it:   %s", s.cmdline("stop", id))
	return nil
}

// abandon ends a serve that failed with err. A session this command launched must not
// outlive the failure: it is stopped, unless it is gone already (a failed stop is told,
// with the command that stops it). A failure that is ctx's end (Ctrl-C before the
// session was ready for the user) is returned as "interrupted", exit code 130, saying
// so when nothing was left running.
func (l *localServing) abandon(ctx context.Context, err error, launched bool) error {
	s, id := l.s, l.rec.ID
	cleaned := false
	if launched && !errors.Is(err, errSessionGone) {
		if serr := s.stopRemote(id); serr != nil {
			s.status.line("tether: could not stop session %s on %s (%v); stop it with `%s`", id, s.host, serr, s.cmdline("stop", id))
		} else {
			cleaned = true
		}
	}
	if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
		return err
	}
	if cleaned {
		return interrupted(s, true)
	}
	return &Error{Msg: "interrupted", Code: 130}
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
