package tunnel

import (
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// Liveness on demand. Idle keepalives (ServerAliveInterval × ServerAliveCountMax, 45-60
// s by default, as OpenSSH) are slow to notice a peer that went silent without a FIN or
// RST: a suspended laptop, Wi-Fi gone, a NAT that forgot the flow. OpenSSH has nothing
// else; mosh and Eternal Terminal send frequent heartbeats and treat a few seconds of
// silence as a lost link. tether does the latter only when someone waits: when a
// channel is being opened, or data was written into a channel, and nothing at all has
// come back from the server for probeAfter, it sends one keepalive; if nothing comes
// back within probeWait either, the connection is declared dead at once and the client
// reconnects. An idle connection sends nothing more than the idle keepalives, which
// keep their interval and count.
//
// A slow uplink can hold a keepalive behind megabytes of queued upload; the verdict
// then waits while the kernel's send queue drains (the peer acknowledges data), so a
// link that is slow but alive is never cut. A peer whose kernel acknowledges everything
// but whose sshd answers nothing (a stopped process) is dead all the same.

// probeTimes is the probe's timing.
type probeTimes struct {
	after time.Duration // silence while someone waits, before a probe
	wait  time.Duration // silence after the probe, before the verdict
	tick  time.Duration // how often a waiting connection is looked at
}

// probeTiming is the probe's timing, read by each connection's watcher; tests shorten
// it (atomically: a connection of an earlier test may still be watching).
var probeTiming atomic.Pointer[probeTimes]

func init() {
	probeTiming.Store(&probeTimes{after: 3 * time.Second, wait: 4 * time.Second, tick: 500 * time.Millisecond})
}

// liveness watches one connection's traffic for the on-demand probe.
type liveness struct {
	rx     atomic.Uint64 // bytes read from the transport
	tx     atomic.Uint64 // bytes written to the transport
	demand atomic.Uint64 // channel opens and channel writes
	// demandRx is rx as of the latest demand: while rx has not moved past it, the
	// latest demand has had no answer (nor anything else).
	demandRx atomic.Uint64
	armed    atomic.Bool   // the watcher is running (a poke would be redundant)
	poke     chan struct{} // wakes the watcher
}

func newLiveness() *liveness { return &liveness{poke: make(chan struct{}, 1)} }

// wait notes that someone now waits for the server (a channel open, or data written
// into a channel): cheap enough for every write.
func (l *liveness) wait() {
	l.demand.Add(1)
	l.demandRx.Store(l.rx.Load())
	if !l.armed.Load() && l.armed.CompareAndSwap(false, true) {
		select {
		case l.poke <- struct{}{}:
		default:
		}
	}
}

// countingConn counts the transport's bytes both ways for liveness.
type countingConn struct {
	net.Conn
	l *liveness
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.rx.Add(uint64(n))
	}
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.l.tx.Add(uint64(n))
	}
	return n, err
}

// waitingConn is a channel whose writes tell liveness that someone waits for an answer.
type waitingConn struct {
	net.Conn
	l *liveness
}

func (c waitingConn) Write(p []byte) (int, error) {
	c.l.wait()
	return c.Conn.Write(p)
}

// CloseWrite half-closes the channel (tunnel.Splice relies on it).
func (c waitingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// watchLiveness runs the on-demand probe until the connection dies; it declares the
// connection dead (markDead and close) when a waiting connection meets silence.
func (cc *clientConn) watchLiveness() {
	l := cc.lv
	tick := time.NewTicker(probeTiming.Load().tick)
	tick.Stop()
	defer tick.Stop()
	for {
		// Asleep until someone waits.
		select {
		case <-cc.dead:
			return
		case <-l.poke:
		}
		tick.Reset(probeTiming.Load().tick)
		if !cc.watchWaiting(tick.C) {
			return
		}
		tick.Stop()
	}
}

// watchWaiting follows one spell of demand; it returns false once the connection is
// dead, true when nobody waits any more.
func (cc *clientConn) watchWaiting(tick <-chan time.Time) bool {
	l := cc.lv
	lastDemand := uint64(0)
	waiting, since := false, time.Time{}
	quiet := 0
	for {
		// Look now (the poke that woke us is demand), then at each tick.
		d := l.demand.Load()
		unanswered := l.rx.Load() == l.demandRx.Load()
		now := time.Now()
		switch {
		case unanswered && !waiting:
			waiting, since = true, now
		case !unanswered:
			waiting = false
		}
		if d != lastDemand || waiting {
			quiet = 0
		} else {
			quiet++
		}
		lastDemand = d
		if waiting && now.Sub(since) >= probeTiming.Load().after {
			if !cc.probe() {
				return false
			}
			waiting, quiet = false, 0
		}
		if !waiting && quiet >= 2 {
			// Nobody waits: sleep until the next poke, unless demand slipped in
			// while disarming.
			l.armed.Store(false)
			if l.demand.Load() == lastDemand {
				return true
			}
			l.armed.Store(true)
		}
		select {
		case <-cc.dead:
			return false
		case <-tick:
		}
	}
}

// probe sends one keepalive after a silence and waits for any sign of life: its answer,
// any other bytes from the server, or (while data is queued for the server) the send
// queue draining. It returns false after declaring the connection dead.
func (cc *clientConn) probe() bool {
	l := cc.lv
	rx0 := l.rx.Load()
	q0, tx0 := sendQueued(cc.tr.conn), l.tx.Load()
	reply := make(chan error, 1)
	cc.wg.Go(func() {
		_, _, err := cc.client.SendRequest("keepalive@openssh.com", true, nil)
		reply <- err
	})
	pt := probeTiming.Load()
	silent := pt.after
	deadline := time.NewTimer(pt.wait)
	defer deadline.Stop()
	for {
		select {
		case <-cc.dead:
			return false
		case err := <-reply:
			if err != nil {
				cc.kill(fmt.Errorf("keepalive: %w", err))
				return false
			}
			return true
		case <-deadline.C:
		}
		silent += pt.wait
		if l.rx.Load() != rx0 {
			return true
		}
		// Still sending a backlog the peer keeps acknowledging: slow, not dead.
		q1, tx1 := sendQueued(cc.tr.conn), l.tx.Load()
		if q0 > 0 && q1 >= 0 && int64(q0)+int64(tx1-tx0)-int64(q1) > 0 {
			q0, tx0 = q1, tx1
			deadline.Reset(pt.wait)
			continue
		}
		cc.kill(fmt.Errorf("no answer for %v while a connection waited", silent.Round(time.Second)))
		return false
	}
}

// kill declares the connection dead and closes it (the supervisor reconnects).
func (cc *clientConn) kill(err error) {
	cc.markDead(err)
	cc.client.Close()
	cc.tr.Close()
}
