package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// Batch sessions (launch --slurm, --sge, --pbs, --lsf, --batch). Over SSH to the login
// node, `tether batch submit` queues a batch job with the scheduler's submit command
// (package batch), whose step is `tether serve` in the foreground on a compute node;
// `tether batch watch` reports the job's state and then the ready record (read over
// SSH: the token never leaves it). The launcher then forwards its local port through
// the login node to node:port (direct-tcpip) and speaks TLS pinned to the record's
// cert_sha256 over that channel, or, with --via-node-ssh, hops to the node by SSH
// (ProxyJump) and uses the server's Unix socket there. While attached, the watch keeps
// reporting the job's time left (for the walltime warnings) and its end.

// errDetachedPending: the user left a pending job queued; launch ends without error.
var errDetachedPending = errors.New("left queued")

// slurmState is what a session knows of its batch job while it serves.
type slurmState struct {
	id, jobID string
	sched     batch.Scheduler
	// since is when the job was submitted (launch) or the session started (attach),
	// for the time it has waited.
	since time.Time
	watch *slurmWatch
	wall  walltime
	tick  *time.Ticker
	node  Conn // --via-node-ssh
	last  wire.JobStatus
}

func (s *session) slurmEvents() <-chan wire.Event {
	if s.slurm == nil || s.slurm.watch == nil {
		return nil
	}
	return s.slurm.watch.events
}

func (s *session) slurmTick() <-chan time.Time {
	if s.slurm == nil || s.slurm.tick == nil {
		return nil
	}
	return s.slurm.tick.C
}

// closeSlurm stops the watch and the node connection.
func (s *session) closeSlurm() {
	if s.slurm == nil {
		return
	}
	if s.slurm.watch != nil {
		s.slurm.watch.stop()
	}
	if s.slurm.tick != nil {
		s.slurm.tick.Stop()
	}
	if s.slurm.node != nil {
		s.slurm.node.Close()
	}
}

// startSlurm submits the job and waits for its server: the ready record, or an error
// after which nothing is left queued or running (errDetachedPending when the user left
// the job queued).
func (s *session) startSlurm(ctx context.Context, o LaunchOptions) (wire.Record, error) {
	words, sched, err := BatchArgs(o.Batch.Kind, o.Batch.Options)
	if err != nil {
		return wire.Record{}, err
	}
	if o.Batch.ViaNodeSSH {
		if err := s.checkNodeHop(ctx); err != nil {
			return wire.Record{}, err
		}
	}
	submitted := time.Now()
	sub, err := s.submitSlurm(ctx, o, sched, words)
	if err != nil {
		if ctx.Err() != nil {
			// The submit on the host sees its stdin close and cancels a job it queued.
			return wire.Record{}, &Error{Msg: "interrupted while submitting the job", Hint: "`" + s.cmdline("ls") + "` shows whether anything was left", Code: 130}
		}
		return wire.Record{}, err
	}
	if !s.sayReusedJob(o, sub) {
		s.status.line("tether: submitted job %s (tether-%s) on %s", sub.JobID, sub.ID, s.host)
	}
	ready := wire.DefaultReadyTimeout
	if o.ReadyTimeout > 0 {
		ready = o.ReadyTimeout
	}
	s.slurm = &slurmState{id: sub.ID, jobID: sub.JobID, sched: sched, since: submitted}
	return s.waitSlurm(ctx, o.Batch, ready, !s.reused)
}

// submitSlurm runs `tether batch submit` on the host, every option of the submit
// command and every serve argument its own argument. It answers with one line: the
// job it queued (wire.Submitted), or why not (wire.Failure), which is worded here.
func (s *session) submitSlurm(ctx context.Context, o LaunchOptions, sched batch.Scheduler, words []string) (wire.Submitted, error) {
	args, input := batchSubmitArgs(o, sched, words, s.reuses(o))
	s.status.step("submitting a %s job for %s on %s", sched.Title(), appWhat(o), s.host)
	var ans submitAnswer
	res, err := s.ensureInput(ctx, args, input, func(br *bufio.Reader) error {
		ans = readSubmitAnswer(br, s.host)
		return nil
	}, nil)
	s.status.done()
	switch {
	case ans.sub != nil:
		return *ans.sub, nil
	case err != nil:
		return wire.Submitted{}, err
	case ctx.Err() != nil:
		return wire.Submitted{}, ctx.Err()
	}
	return wire.Submitted{}, s.submitError(sched, ans, res)
}

// batchSubmitArgs is `tether batch submit`'s command line for o, and what goes on its
// stdin (the setup script's frame).
func batchSubmitArgs(o LaunchOptions, sched batch.Scheduler, words []string, reuse bool) (args []string, input []byte) {
	args = []string{"batch", "submit", "--scheduler=" + sched.Name()}
	if reuse {
		args = append(args, "--reuse")
	}
	if o.Setup != "" {
		args = append(args, "--setup-stdin")
		input = wire.SetupFrame(o.Setup)
	}
	if o.Name != "" {
		args = append(args, "--name="+o.Name)
	}
	for _, a := range words {
		args = append(args, "--option="+a)
	}
	if o.Batch.ViaNodeSSH {
		args = append(args, "--via-node-ssh")
	}
	sv := serveOf(o)
	sv.Name = "" // --name above: the session's, which batch submit gives the job's serve
	for _, a := range sv.Args() {
		args = append(args, "--serve="+a)
	}
	return args, input
}

// submitAnswer is what batch submit answered: the job it queued, why not, or a line
// that is neither (bad).
type submitAnswer struct {
	sub    *wire.Submitted
	failed *wire.Failure
	bad    error
}

// readSubmitAnswer reads batch submit's answer, its first JSON line, past what a login
// shell prints first (maxProbeLines lines at most).
func readSubmitAnswer(br *bufio.Reader, host string) submitAnswer {
	for i := 0; i < maxProbeLines; i++ {
		line, err := readLine(br, maxLine)
		if err != nil {
			return submitAnswer{}
		}
		if line = strings.TrimSpace(line); !strings.HasPrefix(line, "{") {
			continue
		}
		if f, ok, err := wire.DecodeFailure([]byte(line)); ok {
			return submitAnswer{failed: f, bad: err}
		}
		var got wire.Submitted
		if err := json.Unmarshal([]byte(line), &got); err != nil || got.Validate() != nil {
			return submitAnswer{bad: fmt.Errorf("%s sent a bad answer to the submit: %.100q", host, line)}
		}
		return submitAnswer{sub: &got}
	}
	return submitAnswer{}
}

// submitError is a submit that queued nothing, in the laptop's words: a bad answer,
// the scheduler's refusal with its hint, or how the command ended.
func (s *session) submitError(sched batch.Scheduler, ans submitAnswer, res runResult) error {
	if ans.bad != nil {
		return errorf("the remote tether may be damaged; check `"+s.cmdline("ls")+"` for a queued session", "%v", ans.bad)
	}
	if f := ans.failed; f != nil {
		hint := sched.SubmitHint(f.SchedulerSaid, s.host)
		if f.Kind == wire.FailNoScheduler {
			hint = sched.NoSubmitHint(s.host)
		}
		return &Error{Msg: fmt.Sprintf("could not submit the job on %s: %s", s.host, termsafe.Clip(s.sayFailure(f), 400)),
			Hint: hint + " (nothing was submitted)", Code: f.ExitCode()}
	}
	msg := fmt.Sprintf("tether batch submit exited with status %d", res.status)
	if res.err != nil {
		msg = "lost the connection while submitting: " + termsafe.OneLine(tunnel.Message(res.err))
	}
	return &Error{Msg: fmt.Sprintf("could not submit the job on %s: %s", s.host, termsafe.Clip(msg, 400)),
		Hint: "`" + s.cmdline("ls") + "` shows whether anything was left"}
}

func validJobID(id string) bool { return batch.JobIDPattern.MatchString(id) }

// waitSlurm shows the job's progress until its server is ready. Ctrl-C while waiting
// cancels the job (asking first on a terminal) or, with DetachPending, leaves it
// queued. A reason that can never resolve, a job that ends, or a server that does not
// get ready in time is an error, and the job is cancelled and its session removed.
// launched says this command submitted the job.
func (s *session) waitSlurm(ctx context.Context, so BatchOptions, ready time.Duration, launched bool) (rec wire.Record, err error) {
	st := s.slurm
	if st.watch == nil {
		st.watch = s.startWatch(st.id)
	}
	cleanup := func(err error) (wire.Record, error) {
		st.watch.stop()
		if launched && !errors.Is(err, errDetachedPending) {
			if serr := s.stopRemote(st.id); serr != nil {
				s.status.line("tether: could not remove session %s on %s (%v); remove it with `%s`", st.id, s.host, serr, s.cmdline("stop", st.id))
			}
		}
		return wire.Record{}, err
	}
	var readyBy <-chan time.Time
	shown, shownKey := "", ""
	// While the job waits, the line says for how long: on a terminal updated every
	// second, elsewhere a new line when it changes (at most one a minute, or when the
	// state, the reason or the expected start does).
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if st.last.JobID != "" && batch.IsPending(st.last.State) {
				s.status.update("%s", waitingLine(st.last, st.sched.Title(), time.Since(st.since), time.Now(), false))
			}
		case <-ctx.Done():
			s.status.done()
			return cleanup(s.interruptedWaiting(so, launched))
		case <-st.watch.done:
			if len(st.watch.events) > 0 {
				continue // its last events first
			}
			s.status.done()
			return cleanup(st.watch.failure(s))
		case <-s.connGaveUp():
			s.status.done()
			return cleanup(s.stopPump())
		case <-readyBy:
			s.status.done()
			hint := "the job was cancelled; check the app's start with `tether serve -- COMMAND` on the node"
			if !launched {
				hint = "`" + s.cmdline("logs", st.id) + "` shows what it does"
			}
			return cleanup(errorf(hint, "job %s runs on %s but tether serve there was not ready within %v", st.jobID, nodeOf(st.last), ready+readyMargin))
		case ev := <-st.watch.events:
			switch ev.Kind {
			case wire.EventNote:
				s.status.line("tether: warning: %s", termsafe.Clip(s.say(ev.Said), 300))
			case wire.EventJob:
				st.last = ev.Job
				st.wall.observe(ev.Job.TimeLeft, ev.Job.TimeLimit, time.Now())
				if never, ok := st.sched.NeverStarts(ev.Job, s.host); ok {
					s.status.done()
					done, hint := "it was cancelled", never.Hint
					if !launched {
						done = "it stays queued"
						hint = "cancel it with `" + s.cmdline("stop", st.id) + "`, then " + hint
					}
					return cleanup(&Error{Msg: fmt.Sprintf("job %s can never start: %s says %s (%s); %s", st.jobID, st.sched.Title(), termsafe.Clip(termsafe.OneLine(ev.Job.Reason), 100), never.Why, done),
						Hint: hint})
				}
				now := time.Now()
				line := waitingLine(ev.Job, st.sched.Title(), now.Sub(st.since), now, !s.status.tty)
				key := ev.Job.State + "|" + ev.Job.Native + "|" + ev.Job.Reason + "|" + ev.Job.Start + "|" + ev.Job.Node
				if s.status.tty && key != shownKey || !s.status.tty && line != shown {
					shown, shownKey = line, key
					s.status.step("%s", line)
				}
				if ev.Job.State == "RUNNING" && readyBy == nil {
					readyBy = time.After(ready + readyMargin)
				}
			case wire.EventReady:
				s.status.done()
				st.last = ev.Job
				st.wall.observe(ev.Job.TimeLeft, ev.Job.TimeLimit, time.Now())
				return *ev.Session, nil
			case wire.EventEnded:
				s.status.done()
				return cleanup(s.endedBeforeReady(ev))
			}
		}
	}
}

// waitingLine is the status line for a job that is not ready yet: its state in the
// scheduler's words, why it waits, for how long (in whole minutes when coarse: lines
// that are not rewritten in place), and when the scheduler expects it to start.
func waitingLine(j wire.JobStatus, sched string, waited time.Duration, now time.Time, coarse bool) string {
	switch {
	case batch.IsPending(j.State):
		line := fmt.Sprintf("job %s is %s", j.JobID, j.StateWords())
		if j.Reason != "" && j.Reason != "None" {
			line += " (" + termsafe.Clip(termsafe.OneLine(j.Reason), 100) + ")"
		}
		line += ", waiting " + waitedFor(waited, coarse)
		if start, err := time.Parse(time.RFC3339, j.Start); err == nil && start.After(now) {
			line += fmt.Sprintf("; %s expects it to start at %s (in %s)", sched, startAt(start, now), waitedFor(start.Sub(now), true))
		}
		return line + " (Ctrl-C to stop waiting)"
	case j.State == "RUNNING":
		return fmt.Sprintf("job %s is RUNNING on %s; starting tether serve there", j.JobID, nodeOf(j))
	}
	return fmt.Sprintf("job %s is %s", j.JobID, j.StateWords())
}

// waitedFor says a duration for people: "12s", "3m05s", "1h02m"; coarse drops the
// seconds past the first minute.
func waitedFor(d time.Duration, coarse bool) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		if coarse {
			return "under a minute"
		}
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour && coarse:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// startAt is an expected start time: the clock time today, or the date too.
func startAt(t, now time.Time) string {
	t = t.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Mon Jan 2 15:04")
}

// interruptedWaiting handles Ctrl-C before the server is ready: leave the job queued
// (DetachPending, the user's answer, or an attach), else cancel it. The returned error
// is errDetachedPending or the interruption (the caller cancels the job).
func (s *session) interruptedWaiting(so BatchOptions, launched bool) error {
	st := s.slurm
	what := fmt.Sprintf("job %s", st.jobID)
	if st.last.State != "" {
		what += " (" + st.last.State + ")"
	}
	leave := so.DetachPending || !launched
	if !leave {
		confirm := so.Confirm
		if confirm == nil {
			confirm = terminalConfirm(s.o.Stderr)
		}
		yes, asked := confirm(fmt.Sprintf("tether: cancel %s? [Y/n] ", what))
		switch {
		case !asked:
			s.status.line("tether: interrupted while %s waits; not a terminal, so cancelling it (--detach-pending leaves it queued)", what)
		case !yes:
			leave = true
		}
	}
	if leave {
		s.status.line("tether: %s stays queued on %s as session %s", what, s.host, st.id)
		s.status.line("  attach when it runs: %s", s.cmdline("attach", st.id))
		s.status.line("  cancel it:           %s", s.cmdline("stop", st.id))
		return errDetachedPending
	}
	return &Error{Msg: fmt.Sprintf("interrupted; cancelled %s on %s (nothing is left queued)", what, s.host), Code: 130}
}

// terminalConfirm asks on the terminal (stdin and w), defaulting to yes; ok is false
// when stdin is not a terminal. No answer within two minutes counts as the default.
// The answer is read from the terminal device opened afresh (/dev/tty), with a read
// deadline and no goroutine: a line typed after the two minutes stays for whoever
// reads next. Where that cannot be done (Windows), it reads stdin as before, from a
// goroutine that a timed-out question leaves behind.
func terminalConfirm(w io.Writer) func(string) (bool, bool) {
	return func(q string) (bool, bool) {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return false, false
		}
		fmt.Fprint(w, q)
		if tty, err := os.OpenFile("/dev/tty", os.O_RDONLY, 0); err == nil {
			defer tty.Close()
			if yes, ok := confirmFrom(tty, w, confirmWait); ok {
				return yes, true
			}
		}
		answer := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
			answer <- line
		}()
		select {
		case a := <-answer:
			return yesAnswer(a), true
		case <-time.After(confirmWait):
			fmt.Fprintln(w)
			return true, true
		}
	}
}

// confirmWait is how long a question on the terminal waits for its answer.
const confirmWait = 2 * time.Minute

// confirmFrom reads one answer line from f, at most d, on the calling goroutine; no
// answer in time is the default, yes. ok is false when f takes no read deadline (not
// pollable): nothing was read then.
func confirmFrom(f *os.File, w io.Writer, d time.Duration) (yes, ok bool) {
	if f.SetReadDeadline(time.Now().Add(d)) != nil {
		return false, false
	}
	defer f.SetReadDeadline(time.Time{})
	var line []byte
	b := make([]byte, 1)
	for len(line) < 1024 {
		n, err := f.Read(b) // a byte at a time: nothing after the newline is taken
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			fmt.Fprintln(w)
			return true, true
		}
		if err != nil {
			break
		}
	}
	return yesAnswer(string(line)), true
}

func yesAnswer(a string) bool {
	a = strings.ToLower(strings.TrimSpace(a))
	return a == "" || a == "y" || a == "yes"
}

// endedBeforeReady explains a job that ended before its server was ready, with the
// last lines of its output file.
func (s *session) endedBeforeReady(ev wire.Event) error {
	st := s.slurm
	j := ev.Job
	how := batch.EndedHow(j.State)
	detail := ""
	if j.Reason != "" && j.Reason != "None" {
		detail = termsafe.Clip(termsafe.OneLine(j.Reason), 80)
	}
	// Slurm's ExitCode is status:signal.
	if status := ev.ExitCode; status != "" && status != "0:0" && ev.Exit == "" {
		if detail != "" {
			detail += ", "
		}
		detail += "exit code " + termsafe.Clip(termsafe.OneLine(status), 16)
	}
	if detail != "" {
		how += " (" + detail + ")"
	}
	shared := "the nodes must share your home directory with " + s.host + " (tether installs itself and keeps the session there); run it where they do"
	if ev.NotVisible {
		s.printJobOutput(ev)
		return &Error{Msg: fmt.Sprintf("job %s on %s could not run tether: the tether installed on %s is not visible on the node", st.jobID, nodeOf(j), s.host), Hint: shared}
	}
	if !ev.OutputSeen && j.State != "CANCELLED" && len(ev.Said) == 0 {
		return &Error{Msg: fmt.Sprintf("job %s %s, and its output file %s is not on %s: the node cannot see the session directory", st.jobID, how, termsafe.Clip(termsafe.OneLine(ev.OutputPath), 200), s.host), Hint: shared}
	}
	s.printJobOutput(ev)
	msg := fmt.Sprintf("job %s %s before tether was ready on %s", st.jobID, how, nodeOf(j))
	hint := "fix the command or the " + st.sched.Flag() + " options and try again (nothing was left queued or running)"
	if f := ev.Why; f != nil {
		// What serve said, without its advice: ours replaces it.
		msg += ": " + termsafe.Clip(s.say(f.Said), 300)
		if f.Kind == wire.FailSetupFailed {
			hint = setupHint(s.host, true)
		}
	}
	if len(ev.Said) > 0 {
		msg += ": " + termsafe.Clip(s.say(ev.Said), 200)
	}
	return &Error{Msg: msg, Hint: hint}
}

func nodeOf(j wire.JobStatus) string {
	if j.Node != "" {
		return j.Node
	}
	return "its node"
}

// printJobOutput shows the last lines of the job's output file.
func (s *session) printJobOutput(ev wire.Event) {
	if len(ev.Output) == 0 {
		return
	}
	s.status.line("tether: the last lines of job %s's output (%s on %s):", s.slurm.jobID, termsafe.Clip(termsafe.OneLine(ev.OutputPath), 200), s.host)
	for _, l := range ev.Output {
		s.status.line("  | %s", termsafe.Clip(termsafe.OneLine(l), 300))
	}
}

// slurmWatch is `tether slurm watch ID` running on the host, restarted after a lost
// connection, its events on a channel.
type slurmWatch struct {
	events chan wire.Event
	done   chan struct{} // closed when the watch gives up (after "ended", or failing)
	err    error         // why it gave up, when not after "ended"
	cancel context.CancelFunc
}

// stop ends the watch and waits for its goroutine (its owner is the session: waitSlurm
// or closeSlurm stops it).
func (w *slurmWatch) stop() {
	w.cancel()
	<-w.done
}

// failure is the error for a watch that gave up.
func (w *slurmWatch) failure(s *session) error {
	if w.err != nil {
		return w.err
	}
	return errorf("try `"+s.cmdline("ls")+"`", "lost track of the batch job on %s", s.host)
}

// startWatch runs the watch until stopped or the job ends. A watch cut off by a lost
// connection starts again (the SSH connection reconnects by itself); one the remote
// refuses ends with the remote's words.
func (s *session) startWatch(id string) *slurmWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &slurmWatch{events: make(chan wire.Event, 64), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		w.err = w.follow(ctx, func(ctx context.Context) watchRun { return s.watchOnce(ctx, id, w.events) }, func(why string) error {
			return errorf("check the connection and `"+s.cmdline("ls")+"`", "lost track of the batch job on %s: %s", s.host, termsafe.Clip(why, 200))
		})
	}()
	return w
}

// watchRun is how one run of `tether batch watch` ended.
type watchRun struct {
	ended bool   // it sent the job's end: the watch is over
	got   bool   // it sent an event
	err   error  // the remote refused the watch, in its words: the watch is over
	lost  string // why it was cut off (a lost connection), for when the watch gives up
}

// watchRetries is how many runs in a row without an event the watch makes before it
// gives up.
const watchRetries = 20

// watchRetryWait is the pause before the next run after failures runs in a row
// without an event: a second more each time, at most 5.
func watchRetryWait(failures int) time.Duration { return time.Duration(min(failures, 5)) * time.Second }

// follow runs the watch (once: one run) again after each cut, until the job ends, the
// remote refuses it, ctx ends, or watchRetries runs in a row send nothing (lost says
// that). It returns why it gave up; nil after the job's end or ctx's.
func (w *slurmWatch) follow(ctx context.Context, once func(context.Context) watchRun, lost func(why string) error) error {
	failures := 0
	for ctx.Err() == nil {
		r := once(ctx)
		switch {
		case r.ended || ctx.Err() != nil:
			return nil
		case r.err != nil:
			return r.err
		}
		if r.got {
			failures = 0
		}
		failures++
		if failures > watchRetries {
			return lost(r.lost)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchRetryWait(failures)):
		}
	}
	return nil
}

// watchOnce runs `tether batch watch ID` on the host once, its events onto events
// until it ends or ctx does.
func (s *session) watchOnce(ctx context.Context, id string, events chan<- wire.Event) watchRun {
	var r watchRun
	var failed *wire.Failure
	res, err := s.ensure(ctx, []string{"batch", "watch", id}, func(br *bufio.Reader) error {
		for {
			line, err := readLine(br, maxRecordLine)
			if err != nil {
				return nil
			}
			if line = strings.TrimSpace(line); !strings.HasPrefix(line, "{") {
				continue
			}
			ev, f, err := wire.DecodeWatchLine([]byte(line))
			switch {
			case f != nil:
				failed = f
				return nil
			case ev == nil || err != nil:
				continue
			}
			r.got = true
			select {
			case events <- *ev:
			case <-ctx.Done():
				return nil
			}
			if ev.Kind == wire.EventEnded {
				r.ended = true
				return nil
			}
		}
	}, nil)
	switch {
	case r.ended || ctx.Err() != nil:
	case err == nil && res.err == nil && res.status != 0:
		why := fmt.Sprintf("tether batch watch exited with status %d", res.status)
		if failed != nil {
			why = s.sayFailure(failed)
		}
		r.err = errorf("`"+s.cmdline("ls")+"` lists the sessions", "watching the batch job on %s failed: %s", s.host, termsafe.Clip(why, 300))
	case err != nil:
		r.lost = termsafe.OneLine(err.Error())
	case res.err != nil:
		r.lost = termsafe.OneLine(tunnel.Message(res.err))
	default:
		r.lost = "no answer"
	}
	return r
}

// slurmEndpoint reaches a Slurm session's server: through the host to node:port
// (direct-tcpip), or by SSH to the node (--via-node-ssh) and the Unix socket there;
// TLS pinned to the record's certificate either way.
func (s *session) slurmEndpoint(ctx context.Context, rec wire.Record, viaNode bool) (Endpoint, error) {
	if !viaNode {
		return PinnedTLS(boundedDial(s.conn, "tcp", rec.Addr), rec), nil
	}
	if err := s.nodeSSHPossible(); err != nil {
		return nil, err
	}
	if oc, ok := s.conn.(*tunnel.OpenSSHClient); ok {
		return s.nodeEndpointOpenSSH(ctx, rec, oc)
	}
	s.status.step("connecting to node %s through %s (ProxyJump)", rec.Node, s.host)
	defer s.status.done()
	cfg, err := s.nodeConfig(rec.Node)
	if err != nil {
		return nil, connectError(rec.Node, err)
	}
	if cfg.ProxyJump == "" && cfg.ProxyCommand == "" {
		cfg.ProxyJump = s.o.Host
	}
	node, err := tunnel.Dial(ctx, cfg, tunnel.Options{Prompter: s.prompter(), Warn: prefixWriter{s.o.Stderr}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e := connectError(rec.Node, err)
		var le *Error
		if errors.As(e, &le) {
			le.Msg = "--via-node-ssh: " + le.Msg
			le.Hint += "; or leave --via-node-ssh out to reach the node through " + s.host
		}
		return nil, e
	}
	s.slurm.node = node
	return PinnedTLS(boundedDial(node, "unix", rec.Socket), rec), nil
}

// nodeConfig resolves a compute node's ssh_config the way the launcher reaches it: a
// node whose config names no User logs in as the login host's User (the same account
// on the same cluster), not as the laptop's user, which is ssh's default.
func (s *session) nodeConfig(node string) (*tunnel.Config, error) {
	warn := prefixWriter{s.o.Stderr}
	login, err := tunnel.Resolve(s.o.Host, tunnel.ResolveOptions{ConfigFile: s.o.ConfigFile})
	if err != nil {
		return nil, err
	}
	return tunnel.Resolve(node, tunnel.ResolveOptions{ConfigFile: s.o.ConfigFile, DefaultUser: login.User, Warn: warn})
}

// nodeSSHPossible refuses --via-node-ssh where the host does not come from ssh_config.
func (s *session) nodeSSHPossible() error {
	switch {
	case s.o.Relay != "":
		return usageError("--via-node-ssh cannot go through a relay (only %s is reached through it, not its nodes); leave --via-node-ssh out: the node is then reached through %s", s.host, s.host)
	case s.o.SSH != nil:
		return usageError("--via-node-ssh needs a host from ssh_config")
	}
	return nil
}

// checkNodeHop is --via-node-ssh's check before anything is submitted: the login node
// must let tether through to another machine's sshd (direct-tcpip), which the hop to
// the node needs. It opens a channel through the connection it has to the login
// node's own SSH address and reads the server's banner; no login. A site that refuses
// it would otherwise cost a job submitted and cancelled on every try.
func (s *session) checkNodeHop(ctx context.Context) error {
	if err := s.nodeSSHPossible(); err != nil {
		return err
	}
	var host string
	port := 22
	if oc, ok := s.conn.(*tunnel.OpenSSHClient); ok {
		host, port = oc.Config().HostName, oc.Config().Port
	} else {
		cfg, err := tunnel.Resolve(s.o.Host, tunnel.ResolveOptions{ConfigFile: s.o.ConfigFile})
		if err != nil {
			return connectError(s.o.Host, err)
		}
		host, port = cfg.HostName, cfg.Port
	}
	s.status.step("checking that %s lets tether through to its nodes (--via-node-ssh)", s.host)
	defer s.status.done()
	// The login node's own sshd, as the laptop names it, else as the login node itself
	// reaches it (a name that leads through a gateway may not resolve inside).
	var err error
	tried := map[string]bool{}
	for _, addr := range []string{net.JoinHostPort(host, strconv.Itoa(port)), net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "127.0.0.1:22"} {
		if tried[addr] {
			continue
		}
		tried[addr] = true
		e := readSSHBanner(ctx, s.conn, addr)
		if e == nil {
			return nil
		}
		if err == nil {
			err = e
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Msg: fmt.Sprintf("--via-node-ssh: %s does not let tether through to another machine's SSH server (%s); nothing was submitted", s.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(err)), 200)),
			Hint: "leave --via-node-ssh out to reach the node through " + s.host + " (the site may allow only that), or ask the site whether SSH to nodes running your jobs is allowed"}
	}
	return nil
}

// readSSHBanner opens a channel to addr through c and reads the start of an SSH
// server's banner, within 10 seconds.
func readSSHBanner(ctx context.Context, c Conn, addr string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := c.DialContext(cctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	banner := make([]byte, 4)
	if _, err := io.ReadFull(conn, banner); err != nil {
		return err
	}
	if string(banner) != "SSH-" {
		return fmt.Errorf("%s answered %q, not an SSH server", addr, banner)
	}
	return nil
}

// nodeEndpointOpenSSH is slurmEndpoint's --via-node-ssh through the user's ssh: a
// master to the node, reached through the login node's master (no second login
// there) unless the node's config says how.
func (s *session) nodeEndpointOpenSSH(ctx context.Context, rec wire.Record, host *tunnel.OpenSSHClient) (Endpoint, error) {
	persist, err := controlPersist(s.o)
	if err != nil {
		return nil, err
	}
	s.status.step("connecting to node %s through %s (OpenSSH)", rec.Node, s.host)
	defer s.status.done()
	node, err := tunnel.DialOpenSSH(ctx, rec.Node, tunnel.OpenSSHOptions{
		ConfigFile: s.o.ConfigFile, Persist: persist, Warn: prefixWriter{s.o.Stderr},
		Terminal: s.status.hold, LoginOutput: termsafe.Writer(s.o.Stderr), JumpThrough: host,
		DefaultUser: host.Config().User,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e := connectError(rec.Node, err)
		var le *Error
		if errors.As(e, &le) {
			le.Msg = "--via-node-ssh: " + le.Msg
			le.Hint += "; or leave --via-node-ssh out to reach the node through " + s.host
		}
		return nil, e
	}
	s.slurm.node = node
	return PinnedTLS(boundedDial(node, "unix", rec.Socket), rec), nil
}

// onBatchEvent handles the watch while the session is served: time left (warnings
// come from the ticker), notes, and the job's end.
func (s *session) onBatchEvent(ev wire.Event, rec wire.Record) error {
	st := s.slurm
	switch ev.Kind {
	case wire.EventNote:
		s.status.line("tether: warning: %s", termsafe.Clip(s.say(ev.Said), 300))
	case wire.EventJob, wire.EventReady:
		st.last = ev.Job
		st.wall.observe(ev.Job.TimeLeft, ev.Job.TimeLimit, time.Now())
		s.checkWalltime()
	case wire.EventEnded:
		how := batch.EndedHow(ev.Job.State)
		if ev.Job.State != "" {
			how += " (" + ev.Job.State + ")"
		}
		if ev.Removed {
			// `tether stop` (another terminal) cancelled the job and removed the session,
			// its logs with it: there is nothing for `tether logs` to show.
			return &Error{Msg: fmt.Sprintf("session %s on %s was stopped (tether stop): job %s was cancelled and the session removed, its logs with it", rec.ID, s.host, st.jobID),
				Hint: "start a new one with `" + s.relaunchLine(rec) + "`", Err: errSessionGone}
		}
		msg := fmt.Sprintf("session %s on %s has ended: job %s %s", rec.ID, s.host, st.jobID, how)
		if ev.Why != nil {
			msg += "; " + termsafe.Clip(s.say(ev.Why.Said), 200)
		}
		return &Error{Msg: msg, Hint: "`" + s.cmdline("logs", rec.ID) + "` shows its output; start a new one with `" + s.relaunchLine(rec) + "`", Err: errSessionGone}
	}
	return nil
}

// relaunchLine is the command that starts a session like r again: the same scheduler
// and options (the record keeps them), --via-node-ssh if it had it, the same preset.
func (s *session) relaunchLine(r wire.Record) string {
	line := s.cmdline("launch")
	if r.JobID != "" {
		opts := joinOptions(r.BatchOptions)
		flag := "--slurm"
		if sched, err := batch.Lookup(r.Scheduler); err == nil {
			flag = sched.Flag()
			if _, site := sched.(batch.Site); site {
				flag, opts = "--batch", strings.TrimSpace(sched.Name()+" "+opts)
			}
		}
		line += " " + flag + " " + shquote.Quote(opts)
		if r.ViaNodeSSH {
			line += " --via-node-ssh"
		}
	}
	if r.App != "" {
		line += " " + shquote.Quote(r.App)
	}
	return line
}

// checkWalltime prints the walltime warnings that are due.
func (s *session) checkWalltime() {
	if left, due := s.slurm.wall.due(time.Now()); due {
		s.status.line("tether: warning: job %s reaches its time limit in %s (at %s); the session ends then: save your work",
			s.slurm.jobID, roundLeft(left), time.Now().Add(left).Format("15:04"))
	}
}

// walltimeTick is how often a served batch session checks whether a walltime warning
// is due (between the watch's job events, which come once a minute).
const walltimeTick = 5 * time.Second

// walltimeWarnings are how long before the job's time limit the launcher warns.
var walltimeWarnings = []time.Duration{10 * time.Minute, 2 * time.Minute}

// walltime tracks when the job will reach its time limit, from squeue's time left, and
// which warnings are due.
type walltime struct {
	end    time.Time     // zero: no limit, or not known yet
	limit  time.Duration // the job's whole time limit; zero: not known
	warned []bool        // per walltimeWarnings
}

// observe takes a time-left sample (squeue's %L) taken at now, with the job's whole
// time limit (%l; empty when the scheduler does not say).
func (w *walltime) observe(timeLeft, timeLimit string, now time.Time) {
	if l, err := batch.ParseTimeLeft(timeLimit); err == nil {
		w.limit = l
	}
	d, err := batch.ParseTimeLeft(timeLeft)
	switch {
	case errors.Is(err, batch.ErrNoTimeLimit):
		w.end = time.Time{}
		return
	case err != nil:
		return // INVALID, or nothing yet: keep what we had
	}
	w.end = now.Add(d)
	if w.warned == nil {
		w.warned = make([]bool, len(walltimeWarnings))
	}
	// A limit extended beyond a warning's point (scontrol update) re-arms it.
	for i, t := range walltimeWarnings {
		if d > t {
			w.warned[i] = false
		}
	}
}

// due reports whether a warning is due at now, and the time left; each warning comes
// once, and a job found with less time left than several of them gets one.
func (w *walltime) due(now time.Time) (time.Duration, bool) {
	if w.end.IsZero() {
		return 0, false
	}
	left := w.end.Sub(now)
	if left < 0 {
		left = 0
	}
	due := false
	for i, t := range walltimeWarnings {
		if left <= t && !w.warned[i] && w.applies(t) {
			w.warned[i] = true
			due = true
		}
	}
	return left, due
}

// applies says whether the warning t minutes before the end is for this job: not for
// a job whose whole limit is t or less (a -t 10 job would be warned at its start that
// it has 10 minutes left), except that a job shorter than every warning gets one, at
// once. Without a known limit (an older remote) every warning applies.
func (w *walltime) applies(t time.Duration) bool {
	shortest := walltimeWarnings[len(walltimeWarnings)-1]
	return w.limit <= 0 || w.limit > t || w.limit <= shortest
}

// roundLeft says a time left for people: "about 10 minutes", "about 1 minute", "less
// than a minute".
func roundLeft(d time.Duration) string {
	m := int((d + 30*time.Second) / time.Minute)
	switch {
	case d < 45*time.Second:
		return "less than a minute"
	case m == 1:
		return "about 1 minute"
	}
	return fmt.Sprintf("about %d minutes", m)
}

// slurmReadyLine is printed with the ready line: where the job runs and how long it has.
func (s *session) slurmReadyLine(rec wire.Record) {
	left := ""
	if _, err := batch.ParseTimeLeft(s.slurm.last.TimeLeft); err == nil {
		left = ", " + s.slurm.last.TimeLeft + " left"
	} else if errors.Is(err, batch.ErrNoTimeLimit) {
		left = ", no time limit"
	}
	s.status.line("tether: job %s runs on %s (%s)%s", rec.JobID, rec.Node, rec.Addr, left)
}

// attachSlurm waits for a pending Slurm session to be ready (Ctrl-C leaves it queued),
// or starts watching a running one.
func (s *session) attachSlurm(ctx context.Context, rec wire.Record, so BatchOptions) (wire.Record, error) {
	sched, err := batch.Lookup(rec.Scheduler)
	if err != nil {
		return wire.Record{}, errorf("update tether", "session %s on %s: %v", rec.ID, s.host, err)
	}
	s.slurm = &slurmState{id: rec.ID, jobID: rec.JobID, sched: sched, since: rec.Started}
	if rec.Job != nil {
		s.slurm.last = *rec.Job
	}
	if rec.State == wire.StatePending {
		return s.waitSlurm(ctx, so, wire.DefaultReadyTimeout, false)
	}
	s.slurm.watch = s.startWatch(rec.ID)
	if rec.Job != nil {
		s.slurm.wall.observe(rec.Job.TimeLeft, rec.Job.TimeLimit, time.Now())
	}
	rec.State, rec.Job = "", nil
	return rec, nil
}

// serveSlurm serves a ready Slurm session: the endpoint through the login node (or the
// node itself), the walltime ticker, then serveLocal.
func (s *session) serveSlurm(ctx context.Context, ln net.Listener, rec wire.Record, fo ForwardOptions, so BatchOptions, launched bool) error {
	s.viaNode = so.ViaNodeSSH
	dial, err := s.slurmEndpoint(ctx, rec, so.ViaNodeSSH)
	if err != nil {
		if launched {
			if serr := s.stopRemote(rec.ID); serr != nil {
				s.status.line("tether: could not stop session %s on %s (%v); stop it with `%s`", rec.ID, s.host, serr, s.cmdline("stop", rec.ID))
			}
		}
		return err
	}
	s.endpoint = dial
	s.slurm.tick = time.NewTicker(walltimeTick)
	return s.serveLocal(ctx, ln, rec, fo, launched)
}

func (s *session) slurmWatchDone() <-chan struct{} {
	if s.slurm == nil || s.slurm.watch == nil {
		return nil
	}
	return s.slurm.watch.done
}

// slurmWatchLost handles a watch that gave up while the session is served: events it
// sent first are handled (the job's end among them); otherwise the session goes on
// without walltime warnings.
func (s *session) slurmWatchLost(rec wire.Record) error {
	w := s.slurm.watch
	for len(w.events) > 0 {
		if err := s.onBatchEvent(<-w.events, rec); err != nil {
			return err
		}
	}
	s.status.line("tether: warning: %v; no more walltime warnings", w.failure(s))
	s.slurm.watch = nil
	return nil
}

// describeJobOf is a Slurm session's job for messages: "job 5 PENDING (Resources)".
func describeJobOf(r wire.Record) string {
	if r.JobID == "" {
		return ""
	}
	if r.Job == nil || r.Job.State == "" {
		return "job " + r.JobID
	}
	d := "job " + r.JobID + " " + r.Job.State
	if r.Job.Reason != "" && r.Job.Reason != "None" {
		d += " (" + termsafe.Clip(termsafe.OneLine(r.Job.Reason), 60) + ")"
	}
	if r.Job.Node != "" && !batch.IsPending(r.Job.State) {
		d += " on " + r.Job.Node
	}
	return d
}
