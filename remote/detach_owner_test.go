//go:build unix

package remote

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// cancelOnFirstWrite cancels once the sixth progress line is written (the reader of the
// ready pipe has more waiting by then).
type cancelOnFirstWrite struct {
	mu     sync.Mutex
	b      strings.Builder
	cancel context.CancelFunc
}

func (c *cancelOnFirstWrite) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.b.Write(p)
	if strings.Contains(c.b.String(), "step 5\n") {
		c.cancel()
	}
	return n, err
}

// detach's goroutines have an owner: interrupted while the background server still
// has progress to report, it returns only once its reader of the ready pipe has ended
// (that reader was left blocked for good, sending a message nobody would receive).
func TestDetachLeavesNoReader(t *testing.T) {
	t.Setenv("TETHER_REMOTE_TEST_HELPER", "detach-chatter")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOnFirstWrite{cancel: cancel}
	err := detach(ctx, ServeOptions{Command: []string{"app"}, ReadyTimeout: time.Minute, Stderr: w, Stdout: w})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("detach: %v; want interrupted", err)
	}
	t.Logf("err %v; stderr %.200q", err, w.b.String())
	noGoroutineOf(t, "remote/detach.go")
}

// noGoroutineOf fails if a goroutine is running code of file.
func noGoroutineOf(t *testing.T, file string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		// Running frames only: a goroutine that has returned may still be in
		// runtime.goexit, its "created by" line naming file, when the stacks are taken.
		running, _, _ := strings.Cut(g, "\ncreated by ")
		if strings.Contains(running, file) {
			t.Fatalf("a goroutine of %s outlived it:\n%s", file, g)
		}
	}
}

// Once the background server is ready, detach returns with nothing of it left
// running: no goroutine waiting on the server (it lives on for hours; it is released,
// not waited for) and none still writing a setup frame the server never read (the
// pipe is closed under the writer, which is waited for).
func TestDetachReadyLeavesNoGoroutine(t *testing.T) {
	t.Setenv("TETHER_REMOTE_TEST_HELPER", "detach-ready")
	var out syncBuffer
	setup := strings.Repeat("#", wire.MaxSetup) // more than a pipe holds: the write waits for a reader
	err := detach(context.Background(), ServeOptions{Command: []string{"app"}, Setup: setup, ReadyTimeout: time.Minute,
		JSON: true, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("detach: %v\n%s", err, out.String())
	}
	var rec wire.Record
	if err := json.Unmarshal([]byte(out.String()), &rec); err != nil || rec.PID <= 0 {
		t.Fatalf("ready line %q: %v", out.String(), err)
	}
	t.Cleanup(func() {
		syscall.Kill(rec.PID, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(rec.PID, &ws, 0, nil) // our child, released: reap it
	})
	noGoroutineOf(t, "remote/detach.go")
}

// Each way detach ends before ready returns its own error, once the background
// server has exited (stopped where it would not end by itself), with none of
// detach's goroutines left.
func TestDetachEndings(t *testing.T) {
	tests := []struct {
		helper string
		o      ServeOptions
		want   string // in the error
		stderr string // in stderr
	}{
		{helper: "detach-fail", want: "the app exited with status 2", stderr: "tether: the app's last output:\n  | one\n  | two\n"},
		{helper: "detach-exit", want: "the background server exited before it was ready"},
		{helper: "detach-silent", o: ServeOptions{CancelOnEOF: true},
			want: "the caller went away (stdin closed) before the server was ready; it was stopped"},
		{helper: "detach-silent", o: ServeOptions{ReadyTimeout: -29 * time.Second},
			want: "the background server did not report within 1s; it was stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Setenv("TETHER_REMOTE_TEST_HELPER", tt.helper)
			pidFile := filepath.Join(t.TempDir(), "pid")
			t.Setenv("TETHER_REMOTE_TEST_MARKER", pidFile)
			var out syncBuffer
			o := tt.o
			o.Command, o.Stdout, o.Stderr = []string{"app"}, &out, &out
			if o.CancelOnEOF {
				o.Stdin = eofOnce{pidFile} // the caller goes once the server runs
			}
			if o.ReadyTimeout == 0 {
				o.ReadyTimeout = time.Minute
			}
			start := time.Now()
			err := detach(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("detach: %v; want %q", err, tt.want)
			}
			if !strings.Contains(out.String(), tt.stderr) {
				t.Errorf("stderr %q; want %q in it", out.String(), tt.stderr)
			}
			t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
			b, _ := os.ReadFile(pidFile)
			pid, perr := strconv.Atoi(string(b))
			if perr != nil {
				t.Fatalf("the server's pid file: %q", b)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the background server (pid %d) outlived detach: kill 0: %v", pid, err)
				syscall.Kill(pid, syscall.SIGKILL)
			}
			if !tt.o.CancelOnEOF { // watchEOF's reader may still be returning
				noGoroutineOf(t, "remote/detach.go")
			}
		})
	}
}

// eofOnce is a stdin that ends once the file at its path has something in it.
type eofOnce struct{ path string }

func (e eofOnce) Read([]byte) (int, error) {
	for i := 0; i < 1000; i++ {
		if b, _ := os.ReadFile(e.path); len(b) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, io.EOF
}

// The background server's watcher of its parent has an owner: close waits for it (it
// used to run on until its next beat).
func TestPipeReporterCloseWaitsForWatcher(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd, err := syscall.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	pr, err := newPipeReporter(fd)
	if err != nil {
		t.Fatal(err)
	}
	pr.watchParent(func() {})
	pr.ready(wire.Record{ID: "abcd2345"})
	pr.close()
	noGoroutineOf(t, "remote/detach.go")
}
