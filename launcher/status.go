package launcher

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
)

// status shows what the launcher is doing on stderr: on a terminal one line per step,
// updated in place while the step progresses (upload bytes and rate); otherwise plain
// lines, one per step, with no in-place updates. Safe for concurrent use (tunnel events
// arrive on the client's goroutine).
type status struct {
	mu       sync.Mutex
	w        io.Writer // where steps go now: out, or held while the user is asked something
	out      io.Writer // stderr
	tty      bool
	open     bool // a step line is on screen without its newline (tty only)
	last     string
	lastTick time.Time
	seq      int // the current step's number (step returns it)

	holds int          // questions to the user on screen now (see hold)
	held  bytes.Buffer // what was said meanwhile
}

func newStatus(w io.Writer) *status {
	return &status{w: w, out: w, tty: termsafe.IsTerminal(w)}
}

// hold makes room for a question to the user (a passphrase, a one-time code, a host
// key): the open step line is finished, so the question starts on a line of its own,
// and what the launcher says meanwhile (a reconnect's steps, from other goroutines)
// waits until release, so nothing is written into the line the user types on.
func (s *status) hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		io.WriteString(s.out, "\n")
		s.open = false
	}
	s.holds++
	s.w = &s.held
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.holds--; s.holds == 0 {
				s.w = s.out
				s.out.Write(s.held.Bytes())
				s.held.Reset()
			}
		})
	}
}

// step starts a new step: on a terminal the previous step's line is finished first.
// It returns the step's number, for updateStep and finish.
func (s *status) step(format string, args ...any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	msg := termsafe.OneLine(fmt.Sprintf(format, args...))
	if s.tty {
		if s.open {
			io.WriteString(s.w, "\n")
		}
		fmt.Fprintf(s.w, "tether: %s", msg)
		s.open = true
	} else {
		fmt.Fprintf(s.w, "tether: %s\n", msg)
	}
	s.last = msg
	return s.seq
}

// update rewrites the current step's line on a terminal (rate-limited to 10 a second);
// elsewhere it prints nothing, so logs stay short. A line already finished (a note or
// a question came after it) is not reopened.
func (s *status) update(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateLocked(format, args...)
}

// updateStep is update for step seq only: progress that arrives once another step
// began (the start's last lines after "stopping the start") is dropped, rather than
// written over that step as a stale "starting …".
func (s *status) updateStep(seq int, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq == s.seq {
		s.updateLocked(format, args...)
	}
}

// finish ends step seq's line with what came of it ("installed … in 1.2s"), whatever
// the rate limit dropped before: on a terminal the line is rewritten, elsewhere
// nothing more is printed. A step no longer current is left as it is.
func (s *status) finish(seq int, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != s.seq || !s.tty || !s.open {
		return
	}
	fmt.Fprintf(s.w, "\r\x1b[Ktether: %s\n", termsafe.OneLine(fmt.Sprintf(format, args...)))
	s.open = false
}

func (s *status) updateLocked(format string, args ...any) {
	if !s.tty || !s.open {
		return
	}
	if time.Since(s.lastTick) < 100*time.Millisecond {
		return
	}
	s.lastTick = time.Now()
	fmt.Fprintf(s.w, "\r\x1b[Ktether: %s", termsafe.OneLine(fmt.Sprintf(format, args...)))
	s.open = true
}

// line prints a whole line (a note, a warning) below the current step. Control
// characters and escape sequences in it (remote text among its arguments) are dropped.
func (s *status) line(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		io.WriteString(s.w, "\n")
		s.open = false
	}
	io.WriteString(s.w, termsafe.Strip(fmt.Sprintf(format, args...))+"\n")
}

// done finishes the current step's line.
func (s *status) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		io.WriteString(s.w, "\n")
		s.open = false
	}
}

// byteSize formats n bytes for people: 12.3 MB.
func byteSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
