package tunnel

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// shortProbes shortens the on-demand probe for a test.
func shortProbes(t *testing.T) {
	old := probeTiming.Swap(&probeTimes{after: 300 * time.Millisecond, wait: 400 * time.Millisecond, tick: 50 * time.Millisecond})
	t.Cleanup(func() { probeTiming.Store(old) })
}

// TestProbeOnDemand: with the idle keepalive at its 15 s default, a stall is declared
// within about probeAfter+probeWait once a channel's data waits for an answer, and the
// client reconnects.
func TestProbeOnDemand(t *testing.T) {
	shortProbes(t)
	stalled := &atomicBool{}
	ts := startServer(t, func(s *Server) {
		s.WrapConn = func(c net.Conn) net.Conn { return stallConn{Conn: c, stalled: stalled} }
	})
	sock := echoUnix(t)
	ev := newEvents()
	cfg := ts.config()
	cfg.ConnectTimeout = time.Second
	c := ts.dial(t, cfg, Options{OnEvent: ev.on})
	conn, err := c.DialContext(context.Background(), "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stalled.set(true)
	start := time.Now()
	conn.Write([]byte("anyone there?"))
	lost := ev.waitFor(t, Lost, 5*time.Second)
	took := time.Since(start)
	t.Logf("declared dead after %v: %v", took, lost.Err)
	if lost.Err == nil || !strings.Contains(lost.Err.Error(), "while a connection waited") {
		t.Errorf("lost: %v; want the probe's verdict", lost.Err)
	}
	if after := probeTiming.Load().after; took < after {
		t.Errorf("declared dead after %v, before probeAfter (%v)", took, after)
	}
	stalled.set(false)
	ev.waitFor(t, Back, 10*time.Second)
}

// TestProbeOnDemandChannelOpen: a channel open that meets silence is demand too.
func TestProbeOnDemandChannelOpen(t *testing.T) {
	shortProbes(t)
	stalled := &atomicBool{}
	ts := startServer(t, func(s *Server) {
		s.WrapConn = func(c net.Conn) net.Conn { return stallConn{Conn: c, stalled: stalled} }
	})
	sock := echoUnix(t)
	ev := newEvents()
	cfg := ts.config()
	cfg.ConnectTimeout = time.Second
	c := ts.dial(t, cfg, Options{OnEvent: ev.on})
	stalled.set(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		conn, err := c.DialContext(ctx, "unix", sock)
		if err == nil {
			conn.Close()
		}
		done <- err
	}()
	lost := ev.waitFor(t, Lost, 5*time.Second)
	if !strings.Contains(lost.Err.Error(), "while a connection waited") {
		t.Errorf("lost: %v; want the probe's verdict", lost.Err)
	}
	stalled.set(false)
	// The open that waited is retried on the new connection.
	if err := <-done; err != nil {
		t.Errorf("the channel open after the reconnect: %v", err)
	}
}

// TestNoProbeWhenIdle: an idle connection that stalls is left to the idle keepalive
// (its interval and count as configured): no probe, no early verdict.
func TestNoProbeWhenIdle(t *testing.T) {
	shortProbes(t)
	stalled := &atomicBool{}
	ts := startServer(t, func(s *Server) {
		s.WrapConn = func(c net.Conn) net.Conn { return stallConn{Conn: c, stalled: stalled} }
	})
	sock := echoUnix(t)
	ev := newEvents()
	cfg := ts.config()
	cfg.ServerAliveInterval, cfg.ServerAliveCountMax = 700*time.Millisecond, 3
	c := ts.dial(t, cfg, Options{OnEvent: ev.on})
	conn, err := c.DialContext(context.Background(), "unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Traffic that was answered, then silence with nobody waiting.
	conn.Write([]byte("hi"))
	b := make([]byte, 2)
	conn.Read(b)
	stalled.set(true)
	start := time.Now()
	lost := ev.waitFor(t, Lost, 5*time.Second)
	took := time.Since(start)
	t.Logf("idle stall declared after %v: %v", took, lost.Err)
	if !strings.Contains(lost.Err.Error(), "keepalives") || took < 3*700*time.Millisecond-200*time.Millisecond {
		t.Errorf("idle stall: %v after %v; want the idle keepalive's verdict after 3 × 700ms", lost.Err, took)
	}
}
