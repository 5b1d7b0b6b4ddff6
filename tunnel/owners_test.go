package tunnel

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goroutinesRunning returns the stacks of the goroutines now running code whose
// function names contain one of fns.
func goroutinesRunning(fns ...string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range fns {
			if strings.Contains(g, fn) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// A Client's connection goroutines (reader, keepalives, liveness watch, probes, the
// NoDelay nudge) have an owner: Close returns only once they have ended, through a
// reconnect too.
func TestCloseLeavesNoConnectionGoroutines(t *testing.T) {
	ts := startServer(t, nil)
	cfg := ts.config()
	cfg.ServerAliveInterval = 50 * time.Millisecond
	ev := newEvents()
	c, err := Dial(context.Background(), cfg, Options{OnEvent: ev.on, NoDelayExec: true})
	if err != nil {
		t.Fatal(err)
	}
	// Let keepalives run, then cut the connection so the client reconnects once.
	time.Sleep(120 * time.Millisecond)
	ts.CloseConnections()
	ev.waitFor(t, Back, 15*time.Second)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if left := goroutinesRunning("tunnel.(*clientConn)", "tunnel.(*dialer).handshake", "tunnel.(*Client).supervise"); len(left) > 0 {
		t.Fatalf("%d connection goroutines outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
	}
}
