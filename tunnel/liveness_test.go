package tunnel

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The liveness tests run the real probe timing (probeAfter 3 s, probeWait 4 s, a look
// every 500 ms) and OpenSSH's keepalive defaults on synctest's clock, over an in-memory
// network whose server side can go silent (stallConn).

// stalledClient is a client of an in-memory server whose connections stall on demand,
// with one forwarded connection to the server's echo that has had its answer.
func stalledClient(t *testing.T) (c *Client, ev *events, stalled *atomicBool, conn net.Conn) {
	t.Helper()
	stalled = &atomicBool{}
	ts := startMemServer(t, func(s *Server) {
		s.WrapConn = func(c net.Conn) net.Conn { return stallConn{Conn: c, stalled: stalled} }
	})
	ev = newEvents()
	config := ts.config()
	config.ServerAliveInterval, config.ServerAliveCountMax, config.ConnectTimeout = 0, 3, 0 // the defaults
	c = memDial(t, config, Options{OnEvent: ev.on}, ts.ln.(*memListener).dial)
	conn, err := c.DialContext(context.Background(), "unix", "/echo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.Write([]byte("hi"))
	if _, err := io.ReadFull(conn, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	return c, ev, stalled, conn
}

// probeVerdictWithin is when the probe must have declared a stall dead, counted from
// the first demand that met silence: probeAfter, then probeWait, give or take a look.
func probeVerdictWithin(t *testing.T, took time.Duration) {
	t.Helper()
	pt := probeTiming.Load()
	if lo, hi := pt.after+pt.wait, pt.after+pt.wait+pt.tick; took < lo || took > hi {
		t.Errorf("declared dead after %v; want %v to %v (probeAfter + probeWait, within a look)", took, lo, hi)
	}
}

// TestProbeOnDemand: with the idle keepalive at its 15 s default, a stall is declared
// after probeAfter+probeWait once a channel's data waits for an answer, and the client
// reconnects.
func TestProbeOnDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ev, stalled, conn := stalledClient(t)
		stalled.set(true)
		start := time.Now()
		conn.Write([]byte("anyone there?"))
		lost := ev.waitFor(t, Lost, time.Hour)
		took := time.Since(start)
		t.Logf("declared dead after %v: %v", took, lost.Err)
		if lost.Err == nil || !strings.Contains(lost.Err.Error(), "no answer for 7s while a connection waited") {
			t.Errorf("lost: %v; want the probe's verdict", lost.Err)
		}
		probeVerdictWithin(t, took)
		stalled.set(false)
		ev.waitFor(t, Back, time.Hour)
	})
}

// TestProbeOnDemandChannelOpen: a channel open that meets silence is demand too, and
// the open that waited is retried on the new connection.
func TestProbeOnDemandChannelOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ev, stalled, _ := stalledClient(t)
		stalled.set(true)
		start := time.Now()
		done := make(chan error, 1)
		go func() {
			conn, err := c.DialContext(context.Background(), "unix", "/echo")
			if err == nil {
				conn.Close()
			}
			done <- err
		}()
		lost := ev.waitFor(t, Lost, time.Hour)
		if !strings.Contains(lost.Err.Error(), "while a connection waited") {
			t.Errorf("lost: %v; want the probe's verdict", lost.Err)
		}
		probeVerdictWithin(t, time.Since(start))
		stalled.set(false)
		if err := <-done; err != nil {
			t.Errorf("the channel open after the reconnect: %v", err)
		}
	})
}

// TestNoProbeWhenIdle: an idle connection that stalls is left to the idle keepalive
// (its interval and count as configured): no probe, no early verdict.
func TestNoProbeWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ev, stalled, _ := stalledClient(t)
		// Traffic that was answered (stalledClient's echo), then silence with nobody
		// waiting.
		stalled.set(true)
		start := time.Now()
		lost := ev.waitFor(t, Lost, time.Hour)
		took := time.Since(start)
		t.Logf("idle stall declared after %v: %v", took, lost.Err)
		if !strings.Contains(lost.Err.Error(), "keepalives") {
			t.Errorf("idle stall: %v; want the idle keepalive's verdict", lost.Err)
		}
		if lo, hi := 3*DefaultServerAliveInterval, 4*DefaultServerAliveInterval; took < lo || took > hi {
			t.Errorf("idle stall declared after %v; want %v to %v (3 unanswered keepalives)", took, lo, hi)
		}
	})
}
