package tunnel

import (
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
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
// reconnect too. On synctest's clock, over the in-memory network: the keepalives have
// run (three intervals, each answered) before the cut, and the bubble itself fails if
// any of its goroutines is left blocked.
func TestCloseLeavesNoConnectionGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts := startMemServer(t, nil)
		cfg := ts.config()
		cfg.ServerAliveInterval = 50 * time.Millisecond
		ev := newEvents()
		c := memDial(t, cfg, Options{OnEvent: ev.on, NoDelayExec: true}, ts.ln.(*memListener).dial)
		// Let keepalives run, then cut the connection so the client reconnects once.
		time.Sleep(3 * cfg.ServerAliveInterval)
		synctest.Wait()
		if got := ev.states(); strings.Contains(got, Lost.String()) {
			t.Fatalf("events before the cut: %s; want no loss (keepalives answered)", got)
		}
		if ts.CloseConnections() == 0 {
			t.Fatal("no connection to cut")
		}
		ev.waitFor(t, Back, time.Minute)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if left := goroutinesRunning("tunnel.(*clientConn)", "tunnel.(*dialer).handshake", "tunnel.(*Client).supervise"); len(left) > 0 {
			t.Fatalf("%d connection goroutines outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})
}
