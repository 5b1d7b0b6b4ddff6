//go:build unix

package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
)

// defaultLogCap is how large a session log grows before it is rotated; with the one
// rotated file kept, a log takes at most twice this on disk.
const defaultLogCap = 8 << 20

// cappedLog is an append-only log file of at most max bytes. When a write would pass
// max, the file is renamed to path.1 (replacing the previous one) and a new one starts.
type cappedLog struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openCappedLog(path string, max int64) (*cappedLog, error) {
	l := &cappedLog{path: path, max: max}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *cappedLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would not fit. It never fails the writer
// because of the log: an app must not die because its log could not be written.
func (l *cappedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if l.f == nil {
		return n, nil
	}
	if int64(len(p)) > l.max {
		p = p[int64(len(p))-l.max:]
	}
	if l.size+int64(len(p)) > l.max {
		l.f.Close()
		l.f = nil
		os.Rename(l.path, l.path+".1")
		if err := l.open(); err != nil {
			return n, nil
		}
	}
	w, _ := l.f.Write(p)
	l.size += int64(w)
	return n, nil
}

func (l *cappedLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// tailBuffer keeps the last max bytes written to it: the app's latest output, for the
// message shown when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// Lines returns up to n last non-empty lines, control characters other than tab
// replaced so a hostile app cannot drive the user's terminal.
func (t *tailBuffer) Lines(n int) []string {
	t.mu.Lock()
	s := string(t.buf)
	t.mu.Unlock()
	return lastLines(s, n)
}

func lastLines(s string, n int) []string {
	var out []string
	for _, l := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		l = strings.TrimRight(termsafe.Line(l), " \t")
		if l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// copyLog writes the rotated and the current log to w, oldest first, and returns the
// size of the current log it read up to.
func copyLog(w io.Writer, path string) (*os.File, error) {
	if old, err := openLog(path + ".1"); err == nil {
		_, err = io.Copy(w, old)
		old.Close()
		if err != nil {
			return nil, err
		}
	}
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// logTail returns the last n lines of the log at path (from its last 16 KiB, cleaned
// of control characters and clipped), or nil when there is none.
func logTail(path string, n int) []string {
	f, err := openLog(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const window = 16 << 10
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(fi.Size()-window, 0)
	b := make([]byte, fi.Size()-off)
	k, _ := f.ReadAt(b, off)
	s := string(b[:k])
	if off > 0 {
		// The first line is cut: drop it.
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	out := lastLines(s, n)
	for i, l := range out {
		out[i] = termsafe.Clip(l, 300)
	}
	return out
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New(path + " is not a regular file")
	}
	return f, nil
}

// followLog prints the log and then what is appended to it, across rotations, until
// ctx ends or done reports the writer is gone for good (then it prints what is left).
func followLog(ctx context.Context, w io.Writer, path string, done func() bool) error {
	f, err := copyLog(w, path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		finished := done()
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		// Rotated: the path now names a new file. Finish the old one, go on with the new.
		if cur, err := os.Stat(path); err == nil {
			if old, err := f.Stat(); err == nil && !os.SameFile(cur, old) {
				io.Copy(w, f)
				nf, err := openLog(path)
				if err == nil {
					f.Close()
					f = nf
					continue
				}
			}
		} else if errors.Is(err, fs.ErrNotExist) {
			finished = true
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// indent prefixes each line for showing an app's output inside our message.
func indent(lines []string) string {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString("  | ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
