package launcher

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
)

// Conn is what the launcher needs of an SSH connection; *tunnel.Client has it all.
type Conn interface {
	Run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	Upload(ctx context.Context, r io.Reader, size int64, remotePath string, progress func(int64)) error
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	Close() error
}

// maxExecLine is the longest exec command line sent: sshd runs SHELL -c LINE, and
// Linux takes no single argument over 128 KiB (MAX_ARG_STRLEN); a margin under it.
// Words with many characters shquote.Portable escapes (non-ASCII, newlines) take up to
// five bytes each.
const maxExecLine = 120 << 10

// probeTimeout bounds the wait for the probe line: a login shell that has not printed
// it by then is stuck (a prompt in .bashrc, a hung NFS home).
var probeTimeout = 30 * time.Second

// runResult is how one run of the probe script went.
type runResult struct {
	probe  *probe // nil when the probe line never came
	status int    // the remote exit status (-1 when it did not exit normally)
	err    error  // the connection failed, or ctx ended
	stderr *lineTail

	// The install in place (see probeScript), when the run was offered one:
	installed  string // the first probe's state when the build was sent and put in place; probe is then the second probe's
	installErr error  // the build was not sent, or not put in place: why (nothing ran)
	declined   bool   // the script cannot take the build there: upload it over an exec of its own
}

// runScriptInput runs the probe script with args over one exec, with input sent first
// on the command's stdin (the setup frame: the remote tether reads it before anything
// else). When the installed binary ran, consume gets what it wrote to stdout after the
// probe line; its error is returned as consumeErr. stderrLine, when set, sees each line
// of stderr as it arrives. The script is offered the build in place: if it finds none
// to run, the build goes on the same exec's stdin (the script skips input), then input
// again, and the script runs it once it is in place (res.installed).
func (l *session) runScriptInput(ctx context.Context, args []string, input []byte, consume func(*bufio.Reader) error, stderrLine func(string)) (res runResult, consumeErr error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pr, pw := io.Pipe()
	tail := newLineTail(40, stderrLine)
	res.stderr = tail
	// The remote command's stdin stays open while we read its answer and closes (EOF)
	// once we have it or give up: `serve --cancel-on-eof` abandons a start whose
	// caller went away. In between it may carry the build (installInPlace).
	held, release := io.Pipe()
	defer release.Close()
	var uploading atomic.Bool
	eof := stopsOnEOF(args)
	runCtx, kill := graceful(ctx, cancel, release, func() bool { return eof || uploading.Load() })
	defer kill(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var stdin io.Reader = held
		if len(input) > 0 {
			stdin = io.MultiReader(bytes.NewReader(input), held)
		}
		res.status, res.err = l.conn.Run(runCtx, scriptCommand(l.build.Version, l.build.Sum, l.build.sumList(), len(input), args), stdin, pw, tail)
		tail.flush()
		pw.Close()
		held.CloseWithError(io.ErrClosedPipe) // a write still waiting for the command (the build) ends
	}()

	// The probe line must come soon; the rest is the consumer's to bound.
	br := bufio.NewReaderSize(pr, 64<<10)
	readProbeTimed := func() (*probe, error) {
		probeTimer := time.AfterFunc(probeTimeout, func() {
			pr.CloseWithError(fmt.Errorf("no answer from the remote shell within %v", probeTimeout))
		})
		defer probeTimer.Stop()
		return readProbe(br)
	}
	p, perr := readProbeTimed()
	if perr == nil && (p.State == "missing" || p.State == "damaged" || p.State == "broken") {
		res.probe = p
		declined, err := l.installInPlace(ctx, p, br, release, &uploading, input)
		switch {
		case errors.Is(err, errNoProbe):
			p, perr = nil, err // the run ended before the script said how
		case err != nil:
			res.installErr = err
		case declined:
			res.declined = true
		default:
			res.installed = p.State
			p, perr = readProbeTimed()
		}
	}
	if perr == nil {
		res.probe = p
		if p.State == "ok" && consume != nil {
			consumeErr = consume(br)
		}
	} else {
		res.probe = nil
	}
	release.Close()
	// Drain (bounded) so the command can finish; a remote that keeps talking is cut off.
	// Both goroutines are waited for: the run ends (by itself, or killed after 10 s),
	// which closes pw, and the drain then reads to EOF.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if n, _ := io.Copy(io.Discard, io.LimitReader(br, 1<<20)); n >= 1<<20 {
			kill(errors.New("remote output over the limit"))
		}
		pr.Close()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		kill(errors.New("the remote command did not finish"))
		<-done
	}
	<-drained
	if perr != nil && res.err == nil && res.status == 0 {
		res.err = perr
	}
	return res, consumeErr
}

// eofGrace is how long a command that stops itself on EOF gets, once ctx ends, to
// clean up and exit (serve --detach: stop the background server, which gives the app
// appGrace): longer than the remote's own waits, so it is never cut short.
var eofGrace = 25 * time.Second

// stopsOnEOF says whether the remote command ends itself, cleanly, when its stdin ends.
func stopsOnEOF(args []string) bool { return slices.Contains(args, "--cancel-on-eof") }

// graceful is the run context of a command that stops itself on EOF, while soft says
// so: when ctx ends (Ctrl-C, the launcher's own timeout), its stdin is closed and it is
// given eofGrace to clean up and say so, instead of being killed. Killing it would be
// worse than useless: sshd sends the signal to the session's process group, which
// holds `serve --detach` but not the background server it started, and that server
// and its app would run on; and the probe script taking the build in place would leave
// its temporary file (its trap runs on EOF, not on KILL). When soft says no, the end
// of ctx ends the run at once, as without graceful. kill ends the run at once (and
// ctx).
func graceful(ctx context.Context, cancel context.CancelCauseFunc, stdin io.Closer, soft func() bool) (context.Context, context.CancelCauseFunc) {
	run, stop := context.WithCancelCause(context.WithoutCancel(ctx))
	context.AfterFunc(ctx, func() {
		if run.Err() != nil {
			return // over already
		}
		if !soft() {
			stop(context.Cause(ctx))
			return
		}
		stdin.Close()
		t := time.AfterFunc(eofGrace, func() { stop(fmt.Errorf("no clean exit within %v: %w", eofGrace, context.Cause(ctx))) })
		context.AfterFunc(run, func() { t.Stop() })
	})
	return run, func(err error) { stop(err); cancel(err) }
}

// lineTail splits a stream into lines, keeps the last n (each capped), and passes each
// to fn as it completes.
type lineTail struct {
	mu      sync.Mutex
	n       int
	lines   []string
	partial []byte
	fn      func(string)
}

func newLineTail(n int, fn func(string)) *lineTail { return &lineTail{n: n, fn: fn} }

const maxStderrLine = 2 << 10

func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range p {
		if c == '\n' {
			t.emit()
			continue
		}
		if len(t.partial) < maxStderrLine {
			t.partial = append(t.partial, c)
		}
	}
	return len(p), nil
}

func (t *lineTail) emit() {
	l := termsafe.OneLine(string(t.partial))
	t.partial = t.partial[:0]
	t.lines = append(t.lines, l)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
	if t.fn != nil {
		t.fn(l)
	}
}

func (t *lineTail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 {
		t.emit()
	}
}

// Lines returns the kept lines.
func (t *lineTail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// lastLine is the last line that is not blank: what the remote shell said last (the
// probe script's own stderr, before any tether runs).
func (t *lineTail) lastLine() string {
	ls := t.Lines()
	for i := len(ls) - 1; i >= 0; i-- {
		if strings.TrimSpace(ls[i]) != "" {
			return ls[i]
		}
	}
	return ""
}

// ensure runs the probe script with args and, when the binary is missing, damaged or
// broken, installs it: on the same exec when the script can take it there (one exec
// in all), else over an exec of its own, then runs the script again (three). consume
// and stderrLine are as for runScriptInput. An unsafe install directory or a remote
// without any SHA-256 tool is refused: nothing is installed or run.
func (l *session) ensure(ctx context.Context, args []string, consume func(*bufio.Reader) error, stderrLine func(string)) (runResult, error) {
	return l.ensureInput(ctx, args, nil, consume, stderrLine)
}

// ensureInput is ensure with input sent first on the remote command's stdin, on each
// run of the script.
func (l *session) ensureInput(ctx context.Context, args []string, input []byte, consume func(*bufio.Reader) error, stderrLine func(string)) (runResult, error) {
	if n := len(scriptCommand(l.build.Version, l.build.Sum, l.build.sumList(), 0, args)); n > maxExecLine {
		// sshd hands the line to the login shell as one argument, which Linux caps at
		// 128 KiB: refused here, before anything runs, rather than there.
		return runResult{}, errorf("shorten it, or put it in a script on "+l.host+" and launch that",
			"the command is too long to send to %s: %d KiB once quoted for its login shell, over the %d KiB a remote takes",
			l.host, n>>10, maxExecLine>>10)
	}
	res, cerr := l.runScriptInput(ctx, args, input, consume, stderrLine)
	if res.probe == nil {
		return res, l.scriptError(ctx, res)
	}
	if res.installErr != nil {
		return res, res.installErr
	}
	was := res.installed
	if was == "" {
		switch res.probe.State {
		case "ok":
			return res, cerr
		case "unsafe", "nohash":
			return res, l.refusal(res.probe)
		}
		l.noteReplacing(res.probe)
		if err := l.install(ctx, res.probe); err != nil {
			return res, err
		}
		was = res.probe.State
		res, cerr = l.runScriptInput(ctx, args, input, consume, stderrLine)
		if res.probe == nil {
			return res, l.scriptError(ctx, res)
		}
	}
	switch res.probe.State {
	case "ok":
		return res, cerr
	case "unsafe", "nohash":
		return res, l.refusal(res.probe)
	case "damaged":
		return res, errorf("check the disk there, and that `openssl dgst -sha256` or `sha256sum` work",
			"tether was uploaded to %s but its SHA-256 there does not match what was sent", l.host)
	}
	hint := fmt.Sprintf("is %s mounted noexec? point XDG_CACHE_HOME on %s to a directory where programs may run", res.probe.Dir, l.host)
	if was == "broken" {
		hint = "the installed copy did not run either; " + hint
	}
	return res, errorf(hint, "tether was uploaded to %s but does not run there", l.host)
}

// refusal explains why the probe would not run tether: an unsafe directory, or no way
// to check the installed file.
func (l *session) refusal(p *probe) error {
	if p.State == "unsafe" && p.Unsafe != nil {
		return unsafeError(l.host, p.Unsafe)
	}
	return errorf("install openssl or coreutils (sha256sum) there",
		"on %s, tether cannot check its installed program before running it: none of openssl, sha256sum, shasum or sha256 works there", l.host)
}

// scriptError explains a run whose probe line never came.
func (l *session) scriptError(ctx context.Context, res runResult) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if res.err != nil && !errors.Is(res.err, errNoProbe) {
		return &Error{Msg: fmt.Sprintf("lost %s while checking the remote: %s", l.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(res.err)), 200)),
			Hint: "check the network and try again", Err: res.err}
	}
	msg := l.host + " did not answer tether's check"
	if e := res.stderr.lastLine(); e != "" {
		msg += ": " + termsafe.Clip(e, 200)
	} else if res.status > 0 {
		msg += fmt.Sprintf(" (exit status %d)", res.status)
	}
	return errorf(fmt.Sprintf("tether needs a POSIX /bin/sh with uname on the remote (Linux, macOS, BSD); check that `ssh %s uname -a` works", l.host), "%s", msg)
}
