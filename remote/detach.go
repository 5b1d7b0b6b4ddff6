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

// detach starts the background server and waits for its report.
func detach(ctx context.Context, o ServeOptions) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the tether binary to start in the background: %w", err)
	}
	if o.TokenFile != "" {
		if abs, err := filepath.Abs(o.TokenFile); err == nil {
			o.TokenFile = abs
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return err
	}
	cmd := exec.Command(exe, childArgs(o)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	var setupR, setupW *os.File
	if o.Setup != "" {
		if setupR, setupW, err = os.Pipe(); err != nil {
			w.Close()
			devnull.Close()
			return err
		}
		cmd.Stdin = setupR
	}
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	devnull.Close()
	if setupR != nil {
		setupR.Close()
		// The setup's writer is detach's: the child reads the frame first thing (a
		// child that died does not, and the write fails, EPIPE), and on every return
		// the pipe is closed under the writer (which ends a write the child never
		// read) and the writer waited for.
		written := make(chan struct{})
		go func() {
			defer close(written)
			setupW.Write(wire.SetupFrame(o.Setup))
		}()
		defer func() {
			setupW.Close()
			<-written
		}()
	}
	if err != nil {
		return fmt.Errorf("cannot start the background server: %w", err)
	}
	// waitExit waits for a failed child to finish its cleanup, so nothing is left
	// behind when we return; it kills it if it takes too long. Only then is the child
	// waited for: a ready one is released instead (below), and no goroutine waits on it.
	waitExit := func(signal bool) {
		if signal {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		kill := time.AfterFunc(serverStopWait+5*time.Second, func() { cmd.Process.Kill() })
		cmd.Wait()
		kill.Stop()
	}

	// The ready pipe's reader is detach's: on every return it is told to stop, the
	// pipe is closed under it and it is waited for (it used to stay blocked for good,
	// sending a message nobody would receive, after a timeout or an interrupt).
	msgs := make(chan readyMsg)
	stopReading, readerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(msgs)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), wire.MaxRecordLength)
		for sc.Scan() {
			var m readyMsg
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case msgs <- m:
				case <-stopReading:
					return
				}
			}
		}
	}()
	defer func() {
		close(stopReading)
		r.Close()
		<-readerDone
	}()
	timeout := time.NewTimer(o.ReadyTimeout + 30*time.Second)
	defer timeout.Stop()
	var callerGone <-chan struct{}
	if o.CancelOnEOF {
		callerGone = watchEOF(o.Stdin)
	}
	for {
		select {
		case m, ok := <-msgs:
			switch {
			case !ok:
				waitExit(false)
				return wire.Fail(wire.FailServerExited, wire.Plain("the background server exited before it was ready"),
					wire.Textf("`tether serve -- COMMAND` in the foreground on %v shows why", wire.ThisMachine))
			case m.Progress != nil:
				printNote(o.Stderr, *m.Progress, o.JSONNotes)
			case m.Ready != nil:
				// Go on without waiting: the server now lives on its own, for hours,
				// so nothing in this process can wait for it (`serve --detach` exits
				// now; init reaps the server when it ends).
				cmd.Process.Release()
				if o.JSON {
					b, err := json.Marshal(m.Ready)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(o.Stdout, "%s\n", b)
					return err
				}
				printBanner(o.Stderr, *m.Ready, true)
				return nil
			case m.Failure != nil:
				waitExit(false)
				f := m.Failure
				f.AppOutput = lastLines(joinLines(f.AppOutput), wire.MaxAppOutput)
				if len(f.AppOutput) > 0 && !o.JSONNotes {
					fmt.Fprintf(o.Stderr, "tether: %s:\n%s", tailHeading(f.OutputOf), indent(f.AppOutput))
				}
				return f
			}
		case <-ctx.Done():
			waitExit(true)
			return errors.New("interrupted; the background server was stopped")
		case <-callerGone:
			waitExit(true)
			return errors.New("the caller went away (stdin closed) before the server was ready; it was stopped")
		case <-timeout.C:
			waitExit(true)
			return fmt.Errorf("the background server did not report within %s; it was stopped", o.ReadyTimeout+30*time.Second)
		}
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
