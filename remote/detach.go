//go:build unix

package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tether-dev/tether/wire"
)

// The detached start. The parent (`tether serve --detach`) re-executes itself as the
// background server in a new session (setsid: no controlling terminal, so no SIGHUP
// when the terminal or the SSH connection goes), with stdin, stdout and stderr on
// /dev/null so the SSH channel can close, and one pipe on which the child reports
// progress and then ready (the record) or failure (the app's last output). The child
// makes the token itself or reads it from TETHER_TOKEN or --token-file: it is never in
// the child's argv.

// readyMsg is one JSON line on the ready pipe.
type readyMsg struct {
	Progress *wire.Note    `json:"progress,omitempty"`
	Ready    *wire.Record  `json:"ready,omitempty"`
	Failure  *wire.Failure `json:"failure,omitempty"`
}

// childArgs is the background server's command line: the same serve options (never
// the token), the ready pipe's descriptor, and none of what only the parent does
// (detach, print JSON, watch its stdin).
func childArgs(o ServeOptions) []string {
	s := o.wire()
	s.Detach, s.JSON, s.JSONNotes, s.CancelOnEOF, s.ReadyFD = false, false, false, false, 3
	s.SetupFile, s.SetupStdin = "", o.Setup != "" // the script itself follows on the child's stdin, never in its argv
	if s.BaseURL == "/" {
		s.BaseURL = ""
	}
	return append([]string{"serve"}, s.Args()...)
}

// detach starts the background server and waits for its report. Its steps, each a
// function below, in the order they run:
//
//	start the server         startChild: the ready pipe, /dev/null, setsid
//	hand it the setup        feedSetup: the setup frame on the child's stdin
//	read its reports         readReports: the ready pipe, one message at a time
//	wait for its word        await: progress, then ready or failure (or the end of ctx,
//	                         of the caller's stdin, of the wait)
//	clean up                 close: the reader, then the setup's writer, each waited for
//
// Each step returns its error where it is decided; close never changes it.
func detach(ctx context.Context, o ServeOptions) error {
	c, err := startChild(o)
	if err != nil {
		return err
	}
	c.feedSetup(o.Setup)
	c.readReports()
	err = c.await(ctx, o)
	c.close()
	return err
}

// detachedChild is the background server as detach sees it: the process and detach's
// goroutines on its pipes, each with its owner (close).
type detachedChild struct {
	cmd *exec.Cmd
	r   *os.File // the ready pipe's read end
	// setupW is the write end of the child's stdin with --setup (nil without);
	// written is closed once its writer returned.
	setupW  *os.File
	written chan struct{}
	// The ready pipe's reader sends on msgs, closed at EOF; it ends early once
	// stopReading is closed, and closes readerDone when it returns.
	msgs        chan readyMsg
	stopReading chan struct{}
	readerDone  chan struct{}
}

// startChild starts the background server (see childArgs) in a session of its own,
// its stdio on /dev/null (stdin the setup pipe with --setup), the ready pipe as fd 3.
// This process keeps the pipes' other ends only.
func startChild(o ServeOptions) (*detachedChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find the tether binary to start in the background: %w", err)
	}
	if o.TokenFile != "" {
		if abs, err := filepath.Abs(o.TokenFile); err == nil {
			o.TokenFile = abs
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		closeFiles(r, w)
		return nil, err
	}
	cmd := exec.Command(exe, childArgs(o)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	var setupR, setupW *os.File
	if o.Setup != "" {
		if setupR, setupW, err = os.Pipe(); err != nil {
			closeFiles(r, w, devnull)
			return nil, err
		}
		cmd.Stdin = setupR
	}
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	closeFiles(w, devnull, setupR) // the child's ends: it has its own copies
	if err != nil {
		closeFiles(r, setupW)
		return nil, fmt.Errorf("cannot start the background server: %w", err)
	}
	return &detachedChild{cmd: cmd, r: r, setupW: setupW}, nil
}

// closeFiles closes each file that is not nil.
func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// feedSetup writes the setup frame to the child's stdin (--setup). The writer is
// detach's: the child reads the frame first thing (a child that died does not, and
// the write fails, EPIPE), and close closes the pipe under the writer (which ends a
// write the child never read) and waits for it.
func (c *detachedChild) feedSetup(setup string) {
	if c.setupW == nil {
		return
	}
	c.written = make(chan struct{})
	go func() {
		defer close(c.written)
		c.setupW.Write(wire.SetupFrame(setup))
	}()
}

// readReports starts the ready pipe's reader: each message on c.msgs, which it closes
// at EOF. The reader is detach's: close tells it to stop, closes the pipe under it and
// waits for it (it used to stay blocked for good, sending a message nobody would
// receive, after a timeout or an interrupt).
func (c *detachedChild) readReports() {
	c.msgs = make(chan readyMsg)
	c.stopReading, c.readerDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.readerDone)
		defer close(c.msgs)
		sc := bufio.NewScanner(c.r)
		sc.Buffer(make([]byte, 64<<10), wire.MaxRecordLength)
		for sc.Scan() {
			var m readyMsg
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case c.msgs <- m:
				case <-c.stopReading:
					return
				}
			}
		}
	}()
}

// await tells the child's progress as it comes, until its word: ready (the child is
// released and the record told: the banner, or the JSON line) or failure (its output
// told). The child's exit before either, the end of ctx, the caller's stdin closing
// (--cancel-on-eof) or the wait's limit end it too. In every case but ready, await
// returns only once the child has exited (stopped with SIGTERM where it did not end by
// itself).
func (c *detachedChild) await(ctx context.Context, o ServeOptions) error {
	limit := o.ReadyTimeout + 30*time.Second
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	var callerGone <-chan struct{}
	if o.CancelOnEOF {
		callerGone = watchEOF(o.Stdin)
	}
	for {
		select {
		case m, ok := <-c.msgs:
			switch {
			case !ok:
				c.waitExit(false)
				return wire.Fail(wire.FailServerExited, wire.Plain("the background server exited before it was ready"),
					wire.Textf("`tether serve -- COMMAND` in the foreground on %v shows why", wire.ThisMachine))
			case m.Progress != nil:
				printNote(o.Stderr, *m.Progress, o.JSONNotes)
			case m.Ready != nil:
				return c.ready(o, *m.Ready)
			case m.Failure != nil:
				c.waitExit(false)
				return failedStart(o, m.Failure)
			}
		case <-ctx.Done():
			c.waitExit(true)
			return errors.New("interrupted; the background server was stopped")
		case <-callerGone:
			c.waitExit(true)
			return errors.New("the caller went away (stdin closed) before the server was ready; it was stopped")
		case <-timeout.C:
			c.waitExit(true)
			return fmt.Errorf("the background server did not report within %s; it was stopped", limit)
		}
	}
}

// ready goes on without waiting for the ready child: the server now lives on its own,
// for hours, so nothing in this process can wait for it (`serve --detach` exits now;
// init reaps the server when it ends). The record is told: one JSON line (--json) or
// the banner.
func (c *detachedChild) ready(o ServeOptions, rec wire.Record) error {
	c.cmd.Process.Release()
	if o.JSON {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.Stdout, "%s\n", b)
		return err
	}
	printBanner(o.Stderr, rec, true)
	return nil
}

// failedStart is the child's failure, its output clipped to its last lines and told
// on stderr (unless --json-notes: the failure carries it).
func failedStart(o ServeOptions, f *wire.Failure) error {
	f.AppOutput = lastLines(joinLines(f.AppOutput), wire.MaxAppOutput)
	if len(f.AppOutput) > 0 && !o.JSONNotes {
		fmt.Fprintf(o.Stderr, "tether: %s:\n%s", tailHeading(f.OutputOf), indent(f.AppOutput))
	}
	return f
}

// waitExit waits for a failed child to finish its cleanup, so nothing is left behind
// when detach returns; it kills it if it takes too long. signal: it is told to stop
// first (SIGTERM). Only a child that did not become ready is waited for.
func (c *detachedChild) waitExit(signal bool) {
	if signal {
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	kill := time.AfterFunc(serverStopWait+5*time.Second, func() { c.cmd.Process.Kill() })
	c.cmd.Wait()
	kill.Stop()
}

// close stops detach's goroutines and waits for them, the last started first: the
// ready pipe's reader (told to stop, the pipe closed under it), then the setup's
// writer (its pipe closed under it).
func (c *detachedChild) close() {
	close(c.stopReading)
	c.r.Close()
	<-c.readerDone
	if c.setupW != nil {
		c.setupW.Close()
		<-c.written
	}
}

// watchEOF returns a channel closed once r (os.Stdin when nil) reaches EOF or fails.
// The reading goroutine cannot have an owner that waits for it: a read of stdin cannot
// be interrupted. It is left blocked when the caller returns first; the process exits
// soon after (`serve --detach` once ready, `batch watch` once the job ends).
func watchEOF(r io.Reader) <-chan struct{} {
	if r == nil {
		r = os.Stdin
	}
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r)
		close(gone)
	}()
	return gone
}

func joinLines(ls []string) string {
	s := ""
	for _, l := range ls {
		s += l + "\n"
	}
	return s
}

// pipeReporter is the background server's side of the ready pipe.
type pipeReporter struct {
	mu   sync.Mutex
	f    *os.File
	enc  *json.Encoder
	done bool
	// The parent's watcher (watchParent) stops once finished is closed; close waits
	// for it.
	finished chan struct{}
	watcher  sync.WaitGroup
}

func newPipeReporter(fd int) (*pipeReporter, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("--ready-fd %d: %w", fd, err)
	}
	// Keep the pipe out of the app: it must not inherit it.
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "ready-pipe-"+strconv.Itoa(fd))
	return &pipeReporter{f: f, enc: json.NewEncoder(f), finished: make(chan struct{})}, nil
}

func (p *pipeReporter) send(m readyMsg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.enc.Encode(m)
}

func (p *pipeReporter) progress(n wire.Note) { p.send(readyMsg{Progress: &n}) }

func (p *pipeReporter) ready(r wire.Record) {
	p.send(readyMsg{Ready: &r})
	p.finish()
}

func (p *pipeReporter) failed(f *wire.Failure) {
	p.send(readyMsg{Failure: f})
	p.finish()
}

// tailHeading introduces the output lines shown after a failed start.
func tailHeading(of string) string {
	if of == wire.OutputSetup {
		return "the setup's output (in your login shell)"
	}
	return "the app's last output"
}

func (p *pipeReporter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		p.done = true
		p.f.Close()
		close(p.finished)
	}
}

// close finishes the report (nothing more is sent) and waits for the parent's watcher.
func (p *pipeReporter) close() {
	p.finish()
	p.watcher.Wait()
}

// parentBeat is how often a starting background server checks that its parent (the
// `serve --detach` the caller waits on) still reads the ready pipe.
var parentBeat = 250 * time.Millisecond

// watchParent calls gone once the ready pipe has no reader any more, until ready or
// failed is sent. The parent dies without a word when the caller's SSH session is
// killed: sshd sends the launcher's signal request to the session's process group
// (the parent), never to this server, which has a session of its own. Without this,
// the server and its app would run on, unseen by the caller, until the ready timeout,
// or for good if the app became ready. A blank line is the probe: the parent skips
// it, and with no reader the write fails (EPIPE; Go ignores SIGPIPE on this fd).
func (p *pipeReporter) watchParent(gone func()) {
	p.watcher.Go(func() {
		t := time.NewTicker(parentBeat)
		defer t.Stop()
		for {
			select {
			case <-p.finished:
				return
			case <-t.C:
			}
			p.mu.Lock()
			if p.done {
				p.mu.Unlock()
				return
			}
			_, err := p.f.Write([]byte("\n"))
			p.mu.Unlock()
			if err != nil {
				gone()
				return
			}
		}
	})
}
