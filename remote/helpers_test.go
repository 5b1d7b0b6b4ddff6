//go:build unix

package remote

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// tempRoot makes a private state root and points TETHER_STATE_DIR at it.
func tempRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TETHER_STATE_DIR", root)
	return root
}

// fakeSession writes a session directory with a record as a server would.
func fakeSession(t *testing.T, root string, edit func(*sessionFile)) (*session, *sessionFile) {
	t.Helper()
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	sf := &sessionFile{
		Record: wire.Record{ID: s.ID, PID: os.Getpid(), Host: hostname(), Socket: s.socketPath(),
			Token: strings.Repeat("t", 43), BaseURL: "/", Command: []string{"app"},
			Started: time.Now().UTC(), Version: "test"},
		Phase: phaseRunning,
	}
	sf.ServerStart, _ = processIdentity(os.Getpid())
	if edit != nil {
		edit(sf)
	}
	if err := writeRecord(s, sf); err != nil {
		t.Fatal(err)
	}
	return s, sf
}

// startProc starts a process in its own process group and kills that group when the
// test ends.
func startProc(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isRoot() bool { return os.Geteuid() == 0 }
