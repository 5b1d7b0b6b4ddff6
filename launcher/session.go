package launcher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// session is one command's connection to a host: the SSH client, the build to run
// there, and where to tell the user what happens.
type session struct {
	host   string // as the user named it, for messages
	o      Options
	conn   Conn
	build  *build
	status *status
	events *connEvents // connection changes after the first connect, in order
	pump   *pump       // owns events until serving starts (forwarding sessions)
	demo   bool
	slurm  *slurmState // a Slurm session's job; nil otherwise
	// viaNode: the session is reached by SSH to its node (--via-node-ssh), which the
	// hints to come back repeat.
	viaNode bool
	// endpoint reaches the session's server when not by its record's Unix socket
	// through conn (Slurm); nil otherwise.
	endpoint Endpoint
	// reused: the launch attached to a session of the same app that was there
	// already, instead of starting one (reuse.go).
	reused bool
}

// How a session's connection is used: forwarding (launch, attach, demo: long-lived,
// many small requests) or one command (ls, stop, logs, apps: quiet, and spared the
// extra exec that only helps forwarding).
type use int

const (
	forwarding use = iota
	oneCommand
)

// open connects to o.Host (hashing this executable meanwhile, to name the remote
// install) and returns the session. For oneCommand the connecting step stays off
// stderr (ls, stop and logs print only what the remote prints).
func open(ctx context.Context, o Options, u use) (*session, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	s := &session{host: o.Host, o: o, status: newStatus(o.Stderr), events: newConnEvents()}
	if s.host == "" && o.SSH != nil {
		s.host = o.SSH.Alias
	}
	type hashed struct {
		b   *build
		err error
	}
	// The hashing goroutine is open's: every return receives its result (a failed
	// connect also waits for the hashing, which reads the executable once).
	hc := make(chan hashed, 1)
	go func() {
		b, err := newBuild(o.Version, o.RemoteBinary)
		hc <- hashed{b, err}
	}()
	fail := func(err error) (*session, error) {
		<-hc
		return nil, err
	}

	onEvent := func(e tunnel.Event) {
		if e.State == tunnel.Connected || u == oneCommand {
			// The first connection: the steps say so. A one-command session tells no
			// connection changes: its command's own result does.
			return
		}
		s.events.add(e)
	}
	var cfg *tunnel.Config
	var openssh bool
	var err error
	if o.Relay != "" {
		var portal string
		if portal, err = checkRelay(o); err == nil {
			cfg, err = relayConfig(o, portal, func(note string) { s.status.line("%s", note) })
		}
	} else {
		cfg, openssh, err = chooseTransport(o)
	}
	if err != nil {
		return fail(err)
	}
	var client Conn
	if openssh {
		client, err = s.dialOpenSSH(ctx, u, onEvent)
	} else {
		if u == forwarding {
			s.status.step("connecting to %s", s.host)
		}
		var c *tunnel.Client
		c, err = tunnel.Dial(ctx, cfg, tunnel.Options{
			Prompter: s.prompter(),
			Warn:     prefixWriter{o.Stderr},
			// sshd turns TCP_NODELAY on only once a session runs a command; without it
			// small answers through the forward wait up to 40 ms (Nagle + delayed ACK).
			NoDelayExec: u == forwarding,
			OnEvent:     onEvent,
		})
		if err == nil {
			client = c
		}
	}
	if err != nil {
		s.status.done()
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		if o.Relay != "" {
			return fail(s.connectError(err))
		}
		return fail(suggestHost(o, err, connectError(s.host, err)))
	}
	s.conn = client
	if u == forwarding {
		s.startPump()
	}
	if testHookOpened != nil {
		testHookOpened(s, onEvent)
	}
	h := <-hc
	if h.err != nil {
		s.stopPump()
		client.Close()
		return nil, h.err
	}
	s.build = h.b
	return s, nil
}

// testHookOpened, when set by a test, is called once a session is connected, with the
// function the transport reports connection changes to.
var testHookOpened func(s *session, onEvent func(tunnel.Event))

func (s *session) close() {
	s.stopPump() // what it would still tell no longer matters
	s.closeSlurm()
	if s.conn != nil {
		s.conn.Close()
	}
}

// prefixWriter prints tunnel's one-line warnings (each a line without a prefix) as
// tether's.
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l = termsafe.OneLine(l); l != "" {
			fmt.Fprintf(p.w, "tether: warning: %s\n", l)
		}
	}
	return len(b), nil
}

// readyMargin is added to serve's own ready timeout: serve gives up first and says why.
const readyMargin = 45 * time.Second

// maxRecordLine bounds the ready record line (remote's own limit is 1 MiB).
const maxRecordLine = 1 << 20

// start runs `tether serve --detach --json` on the remote (installing tether first when
// needed) and returns the ready record. serve answers on stdout with one line, the
// record or its failure (wire.Failure), and says how it goes on stderr in notes
// (--json-notes): data, which the launcher words for the laptop.
func (s *session) start(ctx context.Context, o LaunchOptions) (wire.Record, error) {
	// --cancel-on-eof: runScript holds the channel's stdin open until the record is
	// read, so if we go away first (Ctrl-C, lost connection) the remote start is
	// abandoned and leaves nothing behind.
	sv := serveOf(o)
	sv.Detach, sv.JSON, sv.JSONNotes, sv.CancelOnEOF = true, true, true, true
	sv.Reuse = s.reuses(o)
	var input []byte
	if o.Setup != "" {
		sv.SetupStdin = true
		input = wire.SetupFrame(o.Setup)
	}
	args := append([]string{"serve"}, sv.Args()...)
	ready := wire.DefaultReadyTimeout
	if o.ReadyTimeout > 0 {
		ready = o.ReadyTimeout
	}
	what := appWhat(o)

	ctx, cancel := context.WithTimeout(ctx, ready+readyMargin)
	defer cancel()
	// Ending the start (Ctrl-C, our own timeout) closes serve's stdin and waits for
	// it to stop what it started (see graceful): say so meanwhile.
	defer context.AfterFunc(ctx, func() { s.status.step("stopping the start on %s", s.host) })()
	var rec *wire.Record
	var failure *wire.Failure
	var recErr error
	var starting atomic.Int64 // the "starting" step's number, once shown
	began := time.Now()
	consume := func(br *bufio.Reader) error {
		starting.Store(int64(s.status.step("starting %s on %s", what, s.host)))
		r, f, err := readAnswer(br)
		switch {
		case err != nil:
			recErr = err // judged below, with serve's exit status
		case f != nil:
			failure = f
		default:
			rec = &r
		}
		return nil
	}
	progress := func(line string) {
		n, ok, err := wire.DecodeNote([]byte(line))
		if !ok || err != nil {
			return // not serve's (a login shell's chatter), or not a note it could send
		}
		switch n.Level {
		case wire.LevelNote, wire.LevelWarning:
			// serve's warnings and notes (who holds the app's port, where the app
			// listens) stay on screen; other progress only updates the status line.
			s.status.line("tether: %s: %s", s.host, termsafe.Clip(n.Say(s.wording()), 400))
		default:
			s.status.updateStep(int(starting.Load()), "starting %s on %s: %s", what, s.host, termsafe.Clip(n.Say(s.wording()), 80))
		}
	}
	res, err := s.ensureInput(ctx, args, input, consume, progress)
	if rec != nil {
		s.status.finish(int(starting.Load()), "started %s on %s in %.1fs", what, s.host, time.Since(began).Seconds())
		s.status.done()
		return *rec, nil
	}
	s.status.done()
	if err != nil {
		return wire.Record{}, err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return wire.Record{}, errorf(fmt.Sprintf("check the command with `tether logs %s ID`, or start it by hand on %s", s.host, s.host),
			"the app did not become ready on %s within %v", s.host, ready+readyMargin)
	}
	if ctx.Err() != nil {
		if res.err == nil && res.probe != nil && res.status >= 0 {
			// serve saw its stdin end, stopped everything and exited on its own.
			return wire.Record{}, errStartStopped
		}
		return wire.Record{}, ctx.Err()
	}
	if failure != nil {
		return wire.Record{}, s.startFailed(failure, what, o.Setup != "")
	}
	switch {
	case res.err != nil:
		return wire.Record{}, &Error{Msg: fmt.Sprintf("could not start %s on %s: lost the connection while starting: %s", what, s.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(res.err)), 300)),
			Hint: "nothing was left running", Err: res.err}
	case recErr != nil && !errors.Is(recErr, io.EOF):
		return wire.Record{}, errorf("the remote tether may be damaged or hostile; try `"+s.cmdline("ls")+"`",
			"%s sent a bad answer to the start: %s", s.host, termsafe.Clip(termsafe.OneLine(recErr.Error()), 200))
	}
	return wire.Record{}, &Error{Msg: fmt.Sprintf("could not start %s on %s: tether serve exited with status %d without a ready record", what, s.host, res.status),
		Hint: "nothing was left running"}
}

// startFailed words serve's failure for the laptop: the app's (or the setup's) last
// output, then one line. serve's own advice to fix the command is replaced by the
// launcher's, which also says nothing was left behind; --setup's when the setup is
// what failed.
func (s *session) startFailed(f *wire.Failure, what string, setup bool) error {
	s.printAppOutput(f)
	msg, hint := s.sayFailure(f), "nothing was left running"
	switch f.Kind {
	case wire.FailAppExited, wire.FailNotReady:
		msg, hint = s.say(f.Said), "fix the command and try again (nothing was left running)"
	case wire.FailSetupFailed:
		msg = s.say(f.Said)
		if setup {
			hint = setupHint(s.host, false)
		}
	}
	return &Error{Msg: fmt.Sprintf("could not start %s on %s: %s", what, s.host, termsafe.Clip(msg, 500)), Hint: hint, Code: f.ExitCode()}
}

// errStartStopped: the start was interrupted and the remote confirmed it stopped what
// it had started.
var errStartStopped = errors.New("the start was stopped")

// serveOf is `tether serve`'s command line for the app of a launch (name, timeouts,
// -- COMMAND), the same whether serve runs detached on the host or in a batch job.
func serveOf(o LaunchOptions) wire.Serve {
	return wire.Serve{
		// The app starts in the environment of the user's login shell, as in a terminal
		// there: an SSH exec's has no modules, no conda, no ~/.bashrc.
		LoginShell: true, Name: o.Name, ReadyTimeout: o.ReadyTimeout, IdleTimeout: o.IdleTimeout,
		App: o.App, AppSecretEnv: o.AppSecretEnv, AppHeaders: o.AppHeaders, AllowExposed: o.AllowExposed,
		NoPortProxy: o.NoPortProxy, Command: o.Command,
	}
}

// appWhat names the app of a launch for messages.
func appWhat(o LaunchOptions) string {
	switch {
	case o.App != "":
		return termsafe.Clip(termsafe.OneLine(strings.Join(append([]string{o.App}, o.Command...), " ")), 60)
	case len(o.Command) > 0:
		return termsafe.Clip(termsafe.OneLine(strings.Join(o.Command, " ")), 60)
	}
	return "tether's built-in app"
}

// printAppOutput prints the output lines a failure carries: the app's last ones, or
// the setup's (with the login shell's).
func (s *session) printAppOutput(f *wire.Failure) {
	lines := f.AppOutput
	if len(lines) == 0 {
		return
	}
	whose := "the app's last output"
	if f.OutputOf == wire.OutputSetup {
		whose = "the setup's output (in your login shell)"
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	s.status.line("tether: %s on %s:", whose, s.host)
	for _, l := range lines {
		s.status.line("  %s", termsafe.Clip(strings.TrimSpace(l), 300))
	}
}

// readAnswer reads a remote command's one-line answer on stdout: the first line that
// starts with '{' (a login shell may print something first), at most maxRecordLine
// bytes: a failure (wire.Failure), else the ready record, decoded and validated as
// coming from a remote that may be hostile.
func readAnswer(br *bufio.Reader) (wire.Record, *wire.Failure, error) {
	for i := 0; i < maxProbeLines; i++ {
		line, err := readLine(br, maxRecordLine)
		if errors.Is(err, errLineTooLong) {
			return wire.Record{}, nil, fmt.Errorf("the answer is longer than %d bytes", maxRecordLine)
		}
		if err != nil {
			return wire.Record{}, nil, err
		}
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		if f, ok, err := wire.DecodeFailure([]byte(line)); ok {
			return wire.Record{}, f, err
		}
		rec, err := wire.DecodeRecord([]byte(line))
		if err != nil {
			return wire.Record{}, nil, err
		}
		if rec.State != "" && rec.State != wire.StateRunning {
			return wire.Record{}, nil, fmt.Errorf("the ready record says the session is %s", rec.State)
		}
		return rec, nil, nil
	}
	return wire.Record{}, nil, errors.New("no ready record")
}

// stopRemote stops the session on the remote (`tether stop ID`), bounded in time, for
// --rm and for launches that fail after the session started.
func (s *session) stopRemote(id string) error {
	limit := 30 * time.Second
	if s.slurm != nil {
		limit = 2 * time.Minute // scancel, then Slurm's KillWait (30 s by default) and the epilog
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var failed *wire.Failure
	res, err := s.ensure(ctx, []string{"stop", "--json-notes", "--", id}, func(br *bufio.Reader) error {
		_, err := io.Copy(io.Discard, io.LimitReader(br, 1<<20))
		return err
	}, func(line string) {
		if f, ok, err := wire.DecodeFailure([]byte(line)); ok && err == nil {
			failed = f
		}
	})
	if err != nil {
		return err
	}
	if res.err != nil {
		return res.err
	}
	if res.status != 0 {
		if failed != nil {
			return errors.New(termsafe.Clip(s.sayFailure(failed), 200))
		}
		return fmt.Errorf("tether stop exited with status %d", res.status)
	}
	return nil
}

type limitedBuilder struct {
	b *strings.Builder
	n int
}

func (l *limitedBuilder) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
