//go:build unix

package remote

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "remote/detach.go") {
			t.Fatalf("a goroutine of detach outlived it:\n%s", g)
		}
	}
}
