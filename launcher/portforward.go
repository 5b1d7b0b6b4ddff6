package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// `tether forward HOST [ID] PORT`: raw TCP to a port of the session's user on HOST's
// loopback (a database, a debugger, anything that is not HTTP), from a local port.
//
// Each local connection becomes a stream through the session's own server: a GET of
// {base_url}_tether/forward/PORT with the token in Authorization and Upgrade:
// tether-forward, over the same channel the browser's traffic takes (the Unix socket
// by direct-streamlocal, ssh's master with --ssh openssh, node:port in TLS for Slurm).
// So the server, on HOST, checks that PORT is held by the session's user before a byte
// goes there, exactly as for proxy/PORT/, and a forward needs a running session and
// its token. SSH's direct-tcpip to 127.0.0.1:PORT would skip that check (any user's
// listener would do, and a squatter on the port would get the traffic), would work
// without a session, and is what sites turn off (AllowTcpForwarding no) where they
// leave the session's socket alone.

// ForwardPortOptions are `tether forward`'s.
type ForwardPortOptions struct {
	Options
	// Target is the session: an id, a unique id prefix, or a name; empty picks the
	// only or the newest running one.
	Target string
	// Port is the port on HOST's loopback.
	Port int
	// LocalPort is the port on 127.0.0.1 here; 0: Port's number when it is free here,
	// else one the system picks.
	LocalPort int
	// JSON prints one line {"local_port", "port", "session"} on stdout once it listens.
	JSON bool
	// Batch says how a batch session is reached (ViaNodeSSH; the session's record
	// may ask for it too).
	Batch BatchOptions
}

// ForwardLine is what --json prints, as one line, once the local port listens.
type ForwardLine struct {
	LocalPort int    `json:"local_port"`
	Port      int    `json:"port"`
	Session   string `json:"session"`
}

// ForwardPort is `tether forward HOST [ID] PORT`: check the port through the session's
// server, listen on 127.0.0.1 (this user's connections only), and turn each connection
// into a stream to PORT until interrupted or the session ends.
func ForwardPort(ctx context.Context, o ForwardPortOptions) error {
	if o.Port < 1 || o.Port > 65535 {
		return usageError("port %d is not a port number (1-65535)", o.Port)
	}
	if o.LocalPort < 0 || o.LocalPort > 65535 {
		return usageError("--local-port %d is not a port number", o.LocalPort)
	}
	s, err := open(ctx, o.Options, forwarding)
	if err != nil {
		return err
	}
	defer s.close()
	rec, err := s.findSession(ctx, o.Target)
	if err != nil {
		return err
	}
	dial, fwd, err := s.portEndpoints(ctx, rec, o.Batch)
	if err != nil {
		return err
	}
	// From here this goroutine owns the connection's events (see serveLocal).
	if err := s.handOff(); err != nil {
		return err
	}
	s.status.step("checking port %d through session %s's server", o.Port, rec.ID)
	err = s.checkPort(ctx, dial, rec, o.Port)
	s.status.done()
	if err != nil {
		return err
	}
	ln, err := listenForward(o.LocalPort, o.Port)
	if err != nil {
		return err
	}
	defer ln.Close()
	local := ln.Addr().(*net.TCPAddr).Port
	if o.LocalPort == 0 && local != o.Port {
		s.status.line("tether: local port %d is taken here; using %d", o.Port, local)
	}

	tell := newRefusalTeller(s.status.line)
	stream := forwardStream(fwd, rec, o.Port, func(err error) {
		tell.tell(s.host, o.Port, errors.New(s.refusalWords(err)))
	})
	lf := startForward(ln, s.status.line, stream)
	defer lf.stop()

	if o.JSON {
		b, _ := json.Marshal(ForwardLine{LocalPort: local, Port: o.Port, Session: rec.ID})
		fmt.Fprintf(s.o.Stdout, "%s\n", b)
	}
	s.status.line("tether: forwarding 127.0.0.1:%d to port %d on %s (session %s) — press Ctrl-C to stop", local, o.Port, s.host, rec.ID)

	var refused <-chan struct{}
	if rec.JobID == "" {
		w := s.watchSocket(rec)
		defer w.stop()
		refused = w.refused
	}
	deadSeen := 0
	for {
		select {
		case <-ctx.Done():
			s.status.line("tether: stopped forwarding port %d; session %s keeps running on %s", o.Port, rec.ID, s.host)
			return nil
		case <-lf.done:
			return errorf("try again", "forwarding local port %d stopped: %v", local, lf.err)
		case <-s.events.ready():
			for e, ok := s.events.next(); ok; e, ok = s.events.next() {
				switch e.State {
				case tunnel.Lost:
					s.tellLost(e)
				case tunnel.Reconnecting:
					if e.Attempt > 1 {
						s.status.update("connection to %s lost; reconnecting (attempt %d)", s.host, e.Attempt)
					}
				case tunnel.Back:
					s.status.done()
					s.status.line("tether: back: reconnected to %s; new connections to 127.0.0.1:%d go through again", s.host, local)
				case tunnel.Failed:
					return s.connectError(e.Err)
				}
			}
		case <-refused:
			if err := s.sessionEnded(ctx, rec, &deadSeen); err != nil {
				if errors.Is(err, errEndedCleanly) {
					return nil
				}
				return err
			}
		}
	}
}

// portEndpoints are the ways to the session's server: dial for one-off requests (the
// challenge, the check), fwd for the streams.
func (s *session) portEndpoints(ctx context.Context, rec wire.Record, so BatchOptions) (dial, fwd Endpoint, err error) {
	if rec.JobID == "" {
		dial, fwd := recordEndpoints(s.conn, rec)
		return dial, fwd, nil
	}
	if rec.State == wire.StatePending {
		return nil, nil, errorf("`"+s.cmdline("attach", rec.ID)+"` waits for it; forward once it runs",
			"session %s on %s is still waiting in the queue (%s)", rec.ID, s.host, describeJobOf(rec))
	}
	sched, err := batch.Lookup(rec.Scheduler)
	if err != nil {
		return nil, nil, errorf("update tether", "session %s on %s: %v", rec.ID, s.host, err)
	}
	s.slurm = &slurmState{id: rec.ID, jobID: rec.JobID, sched: sched, since: rec.Started}
	e, err := s.slurmEndpoint(ctx, rec, so.ViaNodeSSH || rec.ViaNodeSSH)
	return e, e, err
}

// checkPort proves the session's server is the real one (challenge: nothing secret is
// sent before), then asks it whether port may be forwarded, without connecting to it.
func (s *session) checkPort(ctx context.Context, dial Endpoint, rec wire.Record, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := localClient(dial)
	defer c.CloseIdleConnections()
	base := "http://localhost" + rec.BaseURL
	if _, err := challenge(ctx, c, base, rec, false); err != nil {
		if errors.Is(err, errImpostor) {
			return impostorError(s, rec, err)
		}
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err()
		}
		return &Error{Msg: fmt.Sprintf("cannot reach session %s's server on %s: %s", rec.ID, s.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(err)), 200)),
			Hint: "it may have stopped; `" + s.cmdline("ls") + "` lists the sessions", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+wire.ForwardPath(rec.BaseURL, port), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+rec.Token)
	req.Header.Set("Accept", "application/json") // a refusal as data (wire.Failure)
	resp, err := c.Do(req)
	if err != nil {
		return &Error{Msg: fmt.Sprintf("session %s's server on %s does not answer: %s", rec.ID, s.host, termsafe.Clip(termsafe.OneLine(err.Error()), 200)), Hint: "try again", Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return s.portRefusal(rec, port, refusalOf(resp.StatusCode, resp.Header, body))
}

// refusalOf reads the gate's answer to a port it would not reach: a wire.Failure when
// the session's server said why as data, else the gate's own one-line text.
func refusalOf(status int, h http.Header, body []byte) *streamRefused {
	r := &streamRefused{status: status}
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		if f, ok, err := wire.DecodeFailure(body); ok && err == nil {
			r.failure = f
			return r
		}
	}
	r.words = serverWords(string(body))
	return r
}

// refusalWords is why a stream was refused (or failed), in the laptop's words.
func (s *session) refusalWords(err error) string {
	var r *streamRefused
	if errors.As(err, &r) && r.failure != nil {
		return termsafe.Clip(s.say(r.failure.Said), 300)
	}
	return termsafe.Clip(termsafe.OneLine(tunnel.Message(err)), 300)
}

// portRefusal is the error for a port the session's server would not forward: why, and
// the next step (by the refusal's kind, or the gate's status).
func (s *session) portRefusal(rec wire.Record, port int, r *streamRefused) error {
	msg, hint, status := s.refusalWords(r), "", r.status
	var kind wire.FailKind
	if r.failure != nil {
		kind = r.failure.Kind
	}
	switch {
	case status == http.StatusNotFound:
		msg = fmt.Sprintf("session %s on %s runs a tether without forwarding", rec.ID, s.host)
		hint = "start a new session (`tether launch " + shquote.Quote(s.host) + "`) and forward through it"
	case status == http.StatusUnauthorized || status == http.StatusTooManyRequests:
		hint = "stop it with `" + s.cmdline("stop", rec.ID) + "` and launch a new one"
	case kind == wire.FailPortTaken:
		hint = "forward a port that a program of yours listens on"
	case kind == wire.FailPortFree:
		hint = "start the program on " + s.host + " first (on 127.0.0.1:" + strconv.Itoa(port) + "), or check the port number"
	}
	if msg == "" {
		msg = fmt.Sprintf("the server answered %d", status)
	}
	return &Error{Msg: fmt.Sprintf("cannot forward port %d on %s: %s", port, s.host, msg), Hint: hint}
}

// serverWords is the reason in one of the gate's one-line answers ("403 Forbidden:
// REASON"), made safe for the terminal.
func serverWords(body string) string {
	line := strings.TrimSpace(strings.SplitN(body, "\n", 2)[0])
	if i := strings.Index(line, ": "); i >= 0 && i < 40 {
		line = line[i+2:]
	}
	return termsafe.Clip(termsafe.OneLine(line), 300)
}

// listenForward listens on 127.0.0.1:local, or with local 0 on port's number when it is
// free here, else on a port the system picks.
func listenForward(local, port int) (net.Listener, error) {
	if local != 0 {
		ln, err := listenLocal(local)
		var e *Error
		if errors.As(err, &e) {
			// listenLocal speaks of launch's --port; here it is --local-port.
			e.Hint = strings.ReplaceAll(e.Hint, "--port", "--local-port")
			e.Msg = strings.ReplaceAll(e.Msg, "--port", "--local-port")
		}
		return ln, err
	}
	if ln, err := listenLocal(port); err == nil {
		return ln, nil
	}
	return listenLocal(0)
}

// forwardStream opens one stream to port: a connection to the session's server by e,
// the upgrade request with the token, the server's 101, then the port's bytes both
// ways. A refusal is told through refused (the server's words) and fails the dial, so
// the local connection is closed.
func forwardStream(e Endpoint, rec wire.Record, port int, refused func(error)) Endpoint {
	req := "GET " + wire.ForwardPath(rec.BaseURL, port) + " HTTP/1.1\r\nHost: localhost\r\n" +
		"Authorization: token " + rec.Token + "\r\nAccept: application/json\r\nConnection: Upgrade\r\nUpgrade: " + wire.ForwardProtocol + "\r\n\r\n"
	return func(ctx context.Context) (net.Conn, error) {
		c, err := e(ctx)
		if err != nil {
			if ctx.Err() == nil {
				refused(err)
			}
			return nil, err
		}
		// The handshake is bounded; an SSH channel has no deadlines, so close it.
		timer := time.AfterFunc(30*time.Second, func() { c.Close() })
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		br := bufio.NewReader(c)
		resp, err := func() (*http.Response, error) {
			if _, err := io.WriteString(c, req); err != nil {
				return nil, err
			}
			return http.ReadResponse(br, nil)
		}()
		if !timer.Stop() && err == nil {
			err = errors.New("the server did not answer in time")
		}
		if err != nil {
			c.Close()
			if ctx.Err() == nil {
				refused(err)
			}
			return nil, err
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), wire.ForwardProtocol) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
			c.Close()
			err := refusalOf(resp.StatusCode, resp.Header, body)
			refused(err)
			return nil, err
		}
		return &streamConn{Conn: c, r: br}, nil
	}
}

// streamRefused: the session's server would not open a stream (or reach a port): why,
// as data (failure) or in the gate's own words.
type streamRefused struct {
	status  int
	failure *wire.Failure
	words   string
}

func (e *streamRefused) Error() string {
	if e.failure != nil {
		return e.failure.Said.String()
	}
	if e.words == "" {
		return fmt.Sprintf("the server answered %d", e.status)
	}
	return e.words
}

// streamConn is a stream after its handshake: what the server sent behind its 101 is
// in r first.
type streamConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite passes a half-close on, where the connection can.
func (c *streamConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("no half-close")
}

// refusalTeller tells of streams that could not be opened: each distinct reason at
// most once per refuseQuiet, so a client retrying does not fill the terminal.
type refusalTeller struct {
	mu   sync.Mutex
	told map[string]time.Time
	line func(format string, args ...any)
	now  func() time.Time
}

func newRefusalTeller(line func(string, ...any)) *refusalTeller {
	return &refusalTeller{told: map[string]time.Time{}, line: line, now: time.Now}
}

func (t *refusalTeller) tell(host string, port int, err error) {
	why := termsafe.Clip(termsafe.OneLine(tunnel.Message(err)), 300)
	t.mu.Lock()
	last, seen := t.told[why]
	now := t.now()
	if seen && now.Sub(last) < refuseQuiet {
		t.mu.Unlock()
		return
	}
	t.told[why] = now
	t.mu.Unlock()
	t.line("tether: a connection to port %d on %s was closed: %s", port, host, why)
}
