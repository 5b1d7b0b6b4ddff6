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
	"github.com/tether-dev/tether/remote"
	"github.com/tether-dev/tether/tunnel"
)

// session is one command's connection to a host: the SSH client, the build to run
// there, and where to tell the user what happens.
type session struct {
	host   string // as the user named it, for messages
	o      Options
	conn   Conn
	build  *build
	status *status
	events chan tunnel.Event // connection changes after the first connect (buffered)
	demo   bool
	slurm  *slurmState // a Slurm session's job; nil otherwise
	// viaNode: the session is reached by SSH to its node (--via-node-ssh), which the
	// hints to come back repeat.
	viaNode bool
	// endpoint reaches the session's server when not by its record's Unix socket
	// through conn (Slurm); nil otherwise.
	endpoint Endpoint
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
	s := &session{host: o.Host, o: o, status: newStatus(o.Stderr), events: make(chan tunnel.Event, 16)}
	if s.host == "" && o.SSH != nil {
		s.host = o.SSH.Alias
	}
	type hashed struct {
		b   *build
		err error
	}
	hc := make(chan hashed, 1)
	go func() {
		b, err := newBuild(o.Version, o.RemoteBinary)
		hc <- hashed{b, err}
	}()

	onEvent := func(e tunnel.Event) {
		if e.State == tunnel.Connected {
			return // the first connection: the steps say so
		}
		select {
		case s.events <- e:
		default:
		}
	}
	cfg, openssh, err := chooseTransport(o)
	if err != nil {
		return nil, err
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
			return nil, ctx.Err()
		}
		return nil, suggestHost(o, err, connectError(s.host, err))
	}
	s.conn = client
	h := <-hc
	if h.err != nil {
		client.Close()
		return nil, h.err
	}
	s.build = h.b
	return s, nil
}

func (s *session) close() {
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
// needed) and returns the ready record.
func (s *session) start(ctx context.Context, o LaunchOptions) (remote.Record, error) {
	// --cancel-on-eof: runScript holds the channel's stdin open until the record is
	// read, so if we go away first (Ctrl-C, lost connection) the remote start is
	// abandoned and leaves nothing behind.
	args := []string{"serve", "--detach", "--json", "--cancel-on-eof"}
	var input []byte
	if o.Setup != "" {
		args = append(args, "--setup-stdin")
		input = remote.SetupFrame(o.Setup)
	}
	args = append(args, serveArgs(o)...)
	ready := remote.DefaultReadyTimeout
	if o.ReadyTimeout > 0 {
		ready = o.ReadyTimeout
	}
	what := appWhat(o)

	ctx, cancel := context.WithTimeout(ctx, ready+readyMargin)
	defer cancel()
	// Ending the start (Ctrl-C, our own timeout) closes serve's stdin and waits for
	// it to stop what it started (see graceful): say so meanwhile.
	defer context.AfterFunc(ctx, func() { s.status.step("stopping the start on %s", s.host) })()
	var rec *remote.Record
	var recErr error
	var starting atomic.Int64 // the "starting" step's number, once shown
	began := time.Now()
	consume := func(br *bufio.Reader) error {
		starting.Store(int64(s.status.step("starting %s on %s", what, s.host)))
		r, err := readRecord(br)
		if err != nil {
			recErr = err // judged below, with serve's exit status and stderr
			return nil
		}
		rec = &r
		return nil
	}
	shown := ""
	if o.App == "" {
		shown = remote.PortHint(o.Command) // Launch printed it already
	}
	progress := func(line string) {
		if m, ok := strings.CutPrefix(line, "tether: "); ok {
			// serve's warnings and notes (who holds the app's port, where the app
			// listens) stay on screen; other progress only updates the status line.
			if (strings.HasPrefix(m, "warning: ") || strings.HasPrefix(m, "note: ")) && m != shown {
				s.status.line("tether: %s: %s", s.host, termsafe.Clip(s.words(m), 400))
				return
			}
			if m != shown {
				s.status.updateStep(int(starting.Load()), "starting %s on %s: %s", what, s.host, termsafe.Clip(s.words(m), 80))
			}
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
		return remote.Record{}, err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return remote.Record{}, errorf(fmt.Sprintf("check the command with `tether logs %s ID`, or start it by hand on %s", s.host, s.host),
			"the app did not become ready on %s within %v", s.host, ready+readyMargin)
	}
	if ctx.Err() != nil {
		if res.err == nil && res.probe != nil && res.status >= 0 {
			// serve saw its stdin end, stopped everything and exited on its own.
			return remote.Record{}, errStartStopped
		}
		return remote.Record{}, ctx.Err()
	}
	// The app (or serve) failed: show what the app said, then one line.
	s.printAppOutput(res.stderr.Lines())
	msg := res.stderr.lastError()
	switch {
	case msg != "":
	case res.err != nil:
		msg = "lost the connection while starting: " + termsafe.OneLine(tunnel.Message(res.err))
	case recErr != nil && !errors.Is(recErr, io.EOF):
		return remote.Record{}, errorf("the remote tether may be damaged or hostile; try `tether ls "+s.host+"`",
			"%s sent a bad ready record: %s", s.host, termsafe.Clip(termsafe.OneLine(recErr.Error()), 200))
	default:
		msg = fmt.Sprintf("tether serve exited with status %d without a ready record", res.status)
	}
	// serve's own advice is replaced by ours, which also says nothing was left behind;
	// "fix the command" only when the command is what failed (the app exited).
	hint := "nothing was left running"
	if commandFailed(msg) {
		hint = "fix the command and try again (nothing was left running)"
	}
	msg = strings.TrimSuffix(strings.TrimSuffix(msg, "; check the command and try again"), ".")
	if o.Setup != "" && setupFailure(msg) {
		hint = setupHint(s.host, false)
	}
	return remote.Record{}, &Error{Msg: fmt.Sprintf("could not start %s on %s: %s", what, s.host, termsafe.Clip(s.words(msg), 500)),
		Hint: hint}
}

// errStartStopped: the start was interrupted and the remote confirmed it stopped what
// it had started.
var errStartStopped = errors.New("the start was stopped")

// serveArgs are `tether serve`'s arguments for the app of a launch (name, timeouts,
// -- COMMAND), the same whether serve runs detached on the host or in a Slurm job.
func serveArgs(o LaunchOptions) []string {
	// The app starts in the environment of the user's login shell, as in a terminal
	// there: an SSH exec's has no modules, no conda, no ~/.bashrc.
	args := []string{"--login-shell"}
	if o.Name != "" {
		args = append(args, "--name", o.Name)
	}
	if o.ReadyTimeout > 0 {
		args = append(args, "--ready-timeout", o.ReadyTimeout.String())
	}
	if o.IdleTimeout > 0 {
		args = append(args, "--idle-timeout", o.IdleTimeout.String())
	}
	if o.App != "" {
		args = append(args, "--app", o.App)
	}
	if o.AppSecretEnv != "" {
		args = append(args, "--app-secret-env", o.AppSecretEnv)
	}
	for _, h := range o.AppHeaders {
		args = append(args, "--app-header", h)
	}
	if o.AllowExposed {
		args = append(args, "--allow-exposed")
	}
	if o.NoPortProxy {
		args = append(args, "--no-port-proxy")
	}
	if len(o.Command) > 0 {
		args = append(args, "--")
		args = append(args, o.Command...)
	}
	return args
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

// printAppOutput prints the output lines that serve passed on stderr after a failed
// start: the app's last ones, or the setup's (with the login shell's).
func (s *session) printAppOutput(lines []string) {
	from, whose := -1, "the app's last output"
	for i, l := range lines {
		switch {
		case strings.Contains(l, "the app's last output"):
			from, whose = i+1, "the app's last output"
		case strings.Contains(l, "the setup's output"):
			from, whose = i+1, "the setup's output (in your login shell)"
		}
	}
	if from < 0 {
		return
	}
	end := len(lines)
	if end > from && strings.HasPrefix(lines[end-1], "tether: ") {
		end--
	}
	if end-from > 20 {
		from = end - 20
	}
	if from >= end {
		return
	}
	s.status.line("tether: %s on %s:", whose, s.host)
	for _, l := range lines[from:end] {
		s.status.line("  %s", termsafe.Clip(strings.TrimSpace(l), 300))
	}
}

// readRecord reads the ready record from serve's stdout: the first line that starts
// with '{' (a login shell may print something first), at most maxRecordLine bytes,
// decoded and validated as coming from a remote that may be hostile.
func readRecord(br *bufio.Reader) (remote.Record, error) {
	for i := 0; i < maxProbeLines; i++ {
		line, err := readLine(br, maxRecordLine)
		if errors.Is(err, errLineTooLong) {
			return remote.Record{}, fmt.Errorf("the ready record is longer than %d bytes", maxRecordLine)
		}
		if err != nil {
			return remote.Record{}, err
		}
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		rec, err := remote.DecodeRecord([]byte(line))
		if err != nil {
			return remote.Record{}, err
		}
		if rec.State != "" && rec.State != remote.StateRunning {
			return remote.Record{}, fmt.Errorf("the ready record says the session is %s", rec.State)
		}
		return rec, nil
	}
	return remote.Record{}, errors.New("no ready record")
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
	var out strings.Builder
	res, err := s.ensure(ctx, []string{"stop", id}, func(br *bufio.Reader) error {
		_, err := io.Copy(&limitedBuilder{b: &out, n: 4096}, br)
		return err
	}, nil)
	if err != nil {
		return err
	}
	if res.err != nil {
		return res.err
	}
	if res.status != 0 {
		return fmt.Errorf("%s", termsafe.Clip(s.words(res.stderr.lastError()), 200))
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
