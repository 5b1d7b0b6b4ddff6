package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// Launch is `tether launch HOST [-- COMMAND]`: connect, install tether on the remote if
// needed, start the app behind a guarded server there, forward a local port to it,
// verify it, open the browser, and stay until interrupted (detach) or, with Rm, stop it.
func Launch(ctx context.Context, o LaunchOptions) error {
	return launch(ctx, o, false)
}

func launch(ctx context.Context, o LaunchOptions, demo bool) error {
	if err := checkForward(o.ForwardOptions); err != nil {
		return err
	}
	// serve's flags are judged here, before anything connects or starts, by the rules
	// serve itself applies (wire.Serve.Check): a bad --name or the like costs no login,
	// install or queued job.
	if err := serveOf(o).Check(); err != nil {
		return &Error{Msg: wire.FailureOf(err).Said.String(), Code: 2, Err: err}
	}
	if !demo && o.Stderr != nil {
		o.Command = remoteHome(o.Command, o.Host, o.Stderr) // ~ the laptop's shell expanded
	}
	// The local port first: a port in use fails before anything starts on the remote.
	ln, err := listenLocal(o.Port)
	if err != nil {
		return err
	}
	defer func() { ln.Close() }() // stablePort may replace it
	s, err := open(ctx, o.Options, forwarding)
	if err != nil {
		if ctx.Err() != nil {
			return &Error{Msg: "interrupted; nothing was started", Code: 130}
		}
		return err
	}
	defer s.close()
	s.demo = demo
	if o.SiteProfile != nil {
		if o, err = s.applySiteProfile(ctx, o); err != nil {
			return err
		}
	}
	if o.Batch.Kind != "" {
		rec, err := s.startSlurm(ctx, o)
		switch {
		case errors.Is(err, errDetachedPending):
			return nil
		case err != nil:
			return err
		}
		if s.reused {
			// Reached the way it was launched, as attach does.
			o.Batch.ViaNodeSSH = o.Batch.ViaNodeSSH || rec.ViaNodeSSH
		}
		ln = s.stablePort(ln, rec, o.ForwardOptions)
		return s.serveSlurm(ctx, ln, rec, o.ForwardOptions, o.Batch, !s.reused)
	}
	rec, err := s.start(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(s, errors.Is(err, errStartStopped))
		}
		return err
	}
	s.sayReused(o, rec)
	ln = s.stablePort(ln, rec, o.ForwardOptions)
	return s.serveLocal(ctx, ln, rec, o.ForwardOptions, !s.reused)
}

// interrupted is the error of a launch that Ctrl-C ended before it was ready; clean
// says the remote confirmed that nothing it started is left.
func interrupted(s *session, clean bool) error {
	if clean {
		return &Error{Msg: "interrupted; nothing was left running on " + s.host, Code: 130}
	}
	return &Error{Msg: "interrupted", Hint: "`" + s.cmdline("ls") + "` shows whether a session was left starting", Code: 130}
}

func checkForward(fo ForwardOptions) error {
	if fo.OpenFile && fo.NoBrowser {
		return usageError("--open-file and --no-browser contradict each other; drop one")
	}
	return nil
}

// Attach is `tether attach HOST [ID|NAME]`: find a running session over SSH (its token
// read only through SSH), then forward, verify and open it as Launch does. Nothing local
// is needed but SSH access, so it works from another laptop.
func Attach(ctx context.Context, o AttachOptions) error {
	if err := checkForward(o.ForwardOptions); err != nil {
		return err
	}
	ln, err := listenLocal(o.Port)
	if err != nil {
		return err
	}
	defer func() { ln.Close() }() // stablePort may replace it
	s, err := open(ctx, o.Options, forwarding)
	if err != nil {
		return err
	}
	defer s.close()
	rec, err := s.findSession(ctx, o.Target)
	if err != nil {
		return err
	}
	ln = s.stablePort(ln, rec, o.ForwardOptions)
	if rec.JobID != "" {
		// A session launched with --via-node-ssh says so: attach reaches it the same way.
		o.Batch.ViaNodeSSH = o.Batch.ViaNodeSSH || rec.ViaNodeSSH
		rec, err := s.attachSlurm(ctx, rec, o.Batch)
		switch {
		case errors.Is(err, errDetachedPending):
			return nil
		case err != nil:
			return err
		}
		return s.serveSlurm(ctx, ln, rec, o.ForwardOptions, o.Batch, false)
	}
	return s.serveLocal(ctx, ln, rec, o.ForwardOptions, false)
}

// maxListing bounds `ls --json` output read from the remote.
const maxListing = 8 << 20

// list runs `tether ls --json` on the remote and returns the records that validate
// (entries that do not are skipped: a broken or hostile remote gets no further).
func (s *session) list(ctx context.Context) ([]wire.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var raw []byte
	var readErr error
	res, err := s.ensure(ctx, []string{"ls", "--json", "--json-notes"}, func(br *bufio.Reader) error {
		raw, readErr = io.ReadAll(io.LimitReader(br, maxListing+1))
		return readErr
	}, nil)
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, &Error{Msg: fmt.Sprintf("listing sessions on %s failed: %s", s.host, termsafe.Clip(termsafe.OneLine(res.err.Error()), 200)), Hint: "try again", Err: res.err}
	}
	if res.status != 0 {
		why := fmt.Sprintf("tether ls exited with status %d", res.status)
		if f := failureIn(raw); f != nil {
			why = s.sayFailure(f)
		}
		return nil, errorf("try `"+s.cmdline("ls")+"`", "listing sessions on %s failed: %s", s.host, termsafe.Clip(why, 200))
	}
	if len(raw) > maxListing {
		return nil, errorf("try `"+s.cmdline("ls")+"`", "the session list from %s is too long", s.host)
	}
	return decodeListing(raw)
}

// failureIn is the failure a remote command printed on stdout (its first line that is
// JSON), if that is what it printed.
func failureIn(out []byte) *wire.Failure {
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "{") || strings.HasPrefix(l, "[") {
			if f, ok, err := wire.DecodeFailure([]byte(l)); ok && err == nil {
				return f
			}
			return nil
		}
	}
	return nil
}

// decodeListing parses `ls --json` output: a JSON array of records (after any lines a
// login shell printed). Records that fail validation are dropped.
func decodeListing(raw []byte) ([]wire.Record, error) {
	i := strings.IndexByte(string(raw), '[')
	if i < 0 {
		return nil, errors.New("the session list is not JSON")
	}
	var items []json.RawMessage
	dec := json.NewDecoder(strings.NewReader(string(raw[i:])))
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("the session list is not JSON: %v", err)
	}
	var out []wire.Record
	for _, it := range items {
		var r wire.Record
		if json.Unmarshal(it, &r) != nil {
			continue
		}
		if r.Validate() != nil {
			// Slurm sessions are listed before their server is ready, and after.
			if r.JobID != "" && r.ValidateQueued() == nil {
				out = append(out, wire.Record{ID: r.ID, Name: r.Name, State: r.State, JobID: r.JobID, Node: r.Node,
					Job: r.Job, Command: r.Command, App: r.App, Started: r.Started, Version: r.Version, Exit: termsafe.Clip(termsafe.OneLine(r.Exit), 200)})
				continue
			}
			// Dead sessions may have partial records; keep their id for messages.
			if r.State != "" && r.State != wire.StateRunning && wire.ValidID(r.ID) {
				out = append(out, wire.Record{ID: r.ID, Name: safeName(r.Name), State: r.State})
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// safeName is a name from a partial record when it is a valid session name, else "".
func safeName(n string) string {
	if wire.CheckName(n) != nil {
		return ""
	}
	return n
}

// pickSession chooses the session to attach to: the one whose id, unique id prefix or
// name is target; with no target the only running one, or the newest (with a note
// naming the others). No running session, an unknown target or an ambiguous one is an
// error listing what there is.
func pickSession(recs []wire.Record, target string, s *session) (wire.Record, string, error) {
	var running []wire.Record
	for _, r := range recs {
		if r.State == "" || r.State == wire.StateRunning || r.State == wire.StatePending && r.JobID != "" {
			running = append(running, r)
		}
	}
	sort.SliceStable(running, func(i, j int) bool { return running[i].Started.After(running[j].Started) })
	host := s.host
	if target == "" {
		switch len(running) {
		case 0:
			msg := fmt.Sprintf("no running tether session on %s", host)
			if len(recs) > 0 {
				msg += " (" + describeAll(recs) + ")"
			}
			return wire.Record{}, "", errorf("start one with `tether launch "+host+" -- COMMAND`", "%s", msg)
		case 1:
			return running[0], "", nil
		}
		note := fmt.Sprintf("%d sessions run on %s; attaching to the newest, %s. Others: %s (name one: `%s`)",
			len(running), host, describe(running[0]), describeAll(running[1:]), s.cmdline("attach", "ID"))
		return running[0], note, nil
	}
	var exact, byName, byPrefix []wire.Record
	for _, r := range recs {
		switch {
		case r.ID == target:
			exact = append(exact, r)
		case r.Name != "" && r.Name == target:
			byName = append(byName, r)
		case strings.HasPrefix(r.ID, target):
			byPrefix = append(byPrefix, r)
		}
	}
	matches := exact
	if len(matches) == 0 {
		matches = byName
	}
	if len(matches) == 0 {
		matches = byPrefix
	}
	switch {
	case len(matches) == 0:
		list := "none is running"
		if len(recs) > 0 {
			list = "there are: " + describeAll(recs)
		}
		return wire.Record{}, "", errorf("`"+s.cmdline("ls")+"` lists them", "no session %q on %s; %s", target, host, list)
	case len(matches) > 1:
		return wire.Record{}, "", errorf("name it by its full id", "%q matches %d sessions on %s: %s", target, len(matches), host, describeAll(matches))
	}
	r := matches[0]
	switch r.State {
	case "", wire.StateRunning:
		return r, "", nil
	case wire.StatePending:
		if r.JobID != "" {
			return r, "", nil
		}
	case wire.StateEnded:
		return wire.Record{}, "", errorf("`"+s.cmdline("logs", r.ID)+"` shows its output; start a new one with `"+s.relaunchLine(r)+"`",
			"session %s on %s has ended (%s)", r.ID, host, describeJobOf(r))
	case wire.StateAppExited:
		return wire.Record{}, "", errorf("`"+s.cmdline("logs", r.ID)+"` shows why; start it again with `tether launch "+host+"`",
			"the app of session %s on %s has exited", r.ID, host)
	}
	return wire.Record{}, "", errorf("start a new one with `tether launch "+host+"`", "session %s on %s is %s", r.ID, host, r.State)
}

func describe(r wire.Record) string {
	d := r.ID
	if r.Name != "" {
		d += " (" + r.Name + ")"
	}
	if r.JobID != "" {
		d += " " + describeJobOf(r)
	}
	if r.State != "" && r.State != wire.StateRunning {
		d += " " + r.State
	} else if len(r.Command) > 0 {
		d += " " + termsafe.Clip(termsafe.OneLine(strings.Join(r.Command, " ")), 40)
	}
	if !r.Started.IsZero() {
		d += ", started " + r.Started.Local().Format("Jan 2 15:04")
	}
	return d
}

func describeAll(rs []wire.Record) string {
	parts := make([]string, 0, len(rs))
	for i, r := range rs {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(rs)-10))
			break
		}
		parts = append(parts, describe(r))
	}
	return strings.Join(parts, "; ")
}

// Stop is `tether stop HOST ID|NAME|--all`. The remote says what it stopped as data
// (stop --json: one wire.Stopped line per session), worded here with the host as the
// user typed it; nothing else it prints on stdout (a login shell's chatter) is shown.
func Stop(ctx context.Context, o StopOptions) error {
	switch {
	case o.All && o.Target != "":
		return usageError("give a session id or name, or --all, not both")
	case !o.All && o.Target == "":
		return usageError("stop needs a session id or name, or --all")
	}
	args := []string{"stop", "--json"}
	if o.All {
		args = append(args, "--all")
	} else {
		args = append(args, "--", o.Target)
	}
	var sess *session
	stopped, bad := 0, ""
	err := runRemote(ctx, o.Options, args, func(s *session, br *bufio.Reader) error {
		sess = s
		for {
			line, err := readLine(br, maxRecordLine)
			if errors.Is(err, errLineTooLong) {
				continue
			}
			if err != nil {
				return nil
			}
			done, ok, err := wire.DecodeStopped([]byte(strings.TrimSpace(line)))
			switch {
			case !ok:
				continue // a login shell's chatter
			case err != nil:
				bad = line
				continue
			}
			stopped++
			fmt.Fprintln(s.o.Stdout, stoppedLine(done))
		}
	})
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return nil
	case bad != "":
		return errorf("the remote tether may be damaged; `"+sess.cmdline("ls")+"` shows what is left", "%s sent a bad answer to the stop: %.100q", sess.host, bad)
	case o.All && stopped == 0 && sess != nil:
		fmt.Fprintf(sess.o.Stdout, "no tether sessions on %s\n", sess.host)
	}
	return nil
}

// stoppedLine says that a session was stopped: "stopped ID", with "(job N cancelled)"
// for a batch session.
func stoppedLine(done wire.Stopped) string {
	if done.JobID != "" {
		return fmt.Sprintf("stopped %s (job %s cancelled)", done.ID, done.JobID)
	}
	return "stopped " + done.ID
}

// Logs is `tether logs HOST ID [-f]`.
func Logs(ctx context.Context, o LogsOptions) error {
	if o.Target == "" {
		return usageError("logs needs a session id or name")
	}
	args := []string{"logs"}
	if o.Follow {
		args = append(args, "-f")
	}
	args = append(args, "--", o.Target)
	return passThrough(ctx, o.Options, args)
}

// passThrough runs a remote tether command, copying its stdout here (on a terminal
// filtered by termsafe: only text and colours) and returning its exit status.
func passThrough(ctx context.Context, o Options, args []string) error {
	return runRemote(ctx, o, args, func(s *session, br *bufio.Reader) error {
		stdout := termsafe.Writer(s.o.Stdout)
		_, err := io.Copy(stdout, br)
		if f, ok := stdout.(*termsafe.Filter); ok {
			f.Flush() // a last character cut short is shown as U+FFFD, not lost
		}
		return err
	})
}

// runRemote runs a remote tether command with --json-notes, its stdout read by
// stdout, and returns its exit status: what tether says there on stderr comes as data
// (wire.Note, and the failure as a wire.Failure), worded here; any other line there (a
// login shell's) comes line by line without control characters.
func runRemote(ctx context.Context, o Options, args []string, stdout func(*session, *bufio.Reader) error) error {
	s, err := open(ctx, o, oneCommand)
	if err != nil {
		return err
	}
	defer s.close()
	args = append(args[:1:1], append([]string{"--json-notes"}, args[1:]...)...)
	var failed *wire.Failure
	res, err := s.ensure(ctx, args, func(br *bufio.Reader) error { return stdout(s, br) }, s.relayNotes(&failed))
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil // Ctrl-C on `logs -f`
	}
	if res.err != nil {
		return &Error{Msg: fmt.Sprintf("lost %s: %s", s.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(res.err)), 200)), Hint: "try again", Err: res.err}
	}
	return s.remoteStatus(res.status, failed)
}

// relayNotes is the stderr handler of a remote command run with --json-notes: its
// notes said here in the laptop's words, its failure kept in *failed (the command's
// error, worded by remoteStatus), any other line (a login shell's) shown as it is.
func (s *session) relayNotes(failed **wire.Failure) func(string) {
	return func(line string) {
		if f, ok, err := wire.DecodeFailure([]byte(line)); ok {
			if err == nil {
				*failed = f
			}
			return
		}
		if n, ok, err := wire.DecodeNote([]byte(line)); ok {
			if err == nil {
				fmt.Fprintf(s.o.Stderr, "tether: %s\n", n.Say(s.wording()))
			}
			return
		}
		fmt.Fprintln(s.o.Stderr, termsafe.OneLine(line))
	}
}

// remoteStatus is the error of a remote command that exited with status: its failure
// in the laptop's words, or its status alone (it said nothing as data).
func (s *session) remoteStatus(status int, failed *wire.Failure) error {
	switch {
	case status == 0:
		return nil
	case failed != nil:
		return &Error{Msg: termsafe.Clip(s.sayFailure(failed), 500), Code: failed.ExitCode()}
	}
	return &ExitStatusError{Status: status}
}

// findSession lists the sessions on the host and picks target's (the only or newest
// running one when target is empty), saying so when it had to choose.
func (s *session) findSession(ctx context.Context, target string) (wire.Record, error) {
	s.status.step("looking for sessions on %s", s.host)
	recs, err := s.list(ctx)
	s.status.done()
	if err != nil {
		return wire.Record{}, err
	}
	rec, note, err := pickSession(recs, target, s)
	if err != nil {
		return wire.Record{}, err
	}
	if note != "" {
		s.status.line("tether: %s", note)
	}
	return rec, nil
}
