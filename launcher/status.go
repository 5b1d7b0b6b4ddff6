package launcher

import (
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
	w        io.Writer
	tty      bool
	open     bool // a step line is on screen without its newline (tty only)
	last     string
	lastTick time.Time
	held     int    // hold is in force: lines wait in pending
	pending  []byte // what was written while held
}

// maxPending bounds what waits while the output is held.
const maxPending = 64 << 10

// write writes b, or keeps it for later while the output is held. Called with mu held.
func (s *status) write(b string) {
	if s.held > 0 {
		if len(s.pending)+len(b) <= maxPending {
			s.pending = append(s.pending, b...)
		}
		return
	}
	io.WriteString(s.w, b)
}

// hold keeps the status output off the terminal until release is called: ssh is
// logging in and may ask the user something there (a passphrase, a one-time code), on
// a line of its own. The open step's line is finished first; lines written meanwhile
// appear after release, whole (in-place updates are dropped).
func (s *status) hold() (release func()) {
	s.mu.Lock()
	if s.open {
		io.WriteString(s.w, "\n")
		s.open = false
	}
	s.held++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.held--; s.held == 0 && len(s.pending) > 0 {
				s.w.Write(s.pending)
				s.pending = nil
			}
		})
	}
}

func newStatus(w io.Writer) *status {
	return &status{w: w, tty: termsafe.IsTerminal(w)}
}

// step starts a new step: on a terminal the previous step's line is finished first.
func (s *status) step(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := oneLine(fmt.Sprintf(format, args...))
	switch {
	case s.held > 0:
		s.write("tether: " + msg + "\n")
	case s.tty:
		if s.open {
			io.WriteString(s.w, "\n")
		}
		fmt.Fprintf(s.w, "tether: %s", msg)
		s.open = true
	default:
		fmt.Fprintf(s.w, "tether: %s\n", msg)
	}
	s.last = msg
}

// update rewrites the current step's line on a terminal (rate-limited to 10 a second);
// elsewhere it prints nothing, so logs stay short.
func (s *status) update(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tty || s.held > 0 {
		return
	}
	if time.Since(s.lastTick) < 100*time.Millisecond {
		return
	}
	s.lastTick = time.Now()
	fmt.Fprintf(s.w, "\r\x1b[Ktether: %s", oneLine(fmt.Sprintf(format, args...)))
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
	s.write(termsafe.Strip(fmt.Sprintf(format, args...)) + "\n")
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
