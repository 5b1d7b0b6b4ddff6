package tokenserver

import (
	"container/list"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Connections on a TCP listener that have not yet presented a valid credential are
// limited, so that whoever can reach the port (on a cluster: every user of the
// cluster network) cannot hold the server's memory and descriptors with idle or
// failing connections.
//
//   - A connection has signInTimeout from its accept to present a valid credential
//     (TLS handshake and first request included); then it is closed.
//   - Every answer on such a connection says Connection: close (a 401, a 429, the
//     login page): it gets one request.
//   - At most maxPendingPerSource of them per source address (an IPv6 /64 counts as
//     one), and maxPending in all. At a cap one is closed, never the new one: the
//     owner's new connection sends its request at once and is let in, while an
//     attacker's held connections are the old ones. (In Slurm mode the owner comes
//     from the login node, the same source as any attacker there: refusing new
//     connections at the cap would lock the owner out.) The one closed is, in order:
//     the oldest of those that have sent nothing for silentGrace; else the oldest of
//     all, whatever they sent; and only when every one has offered the owner's hint,
//     the oldest of those. Over TLS, tether's launcher offers OwnerHint among its ALPN
//     protocols, which the server sees in the ClientHello: that connection is then
//     kept through any flood. Before its first byte arrives, an owner's connection
//     cannot be told from an attacker's; through a login node (Slurm mode's direct-
//     tcpip) it is silent for a whole round trip to the laptop, since the login node
//     connects before the launcher may send. So how far a connection got counts for
//     nothing while it is young: a byte, a TLS handshake or a stalled request cost an
//     attacker no more than silence, and ranking them above silence let a stream of
//     one-byte connections close every new connection of the owner's (10 of 10 at 500
//     a second, with a 40 ms round trip). By age, the owner's is closed only when
//     maxPendingPerSource newer ones arrive before its ClientHello does.
//   - A connection whose request authenticated is no longer counted or timed: it is
//     the owner's, with the ordinary idle timeout.
//
// The Unix socket is not guarded: only this user can connect to it.
const (
	signInTimeout       = 10 * time.Second
	maxPendingPerSource = 128
	maxPending          = 256
	silentGrace         = 2 * time.Second
)

// connGuard tracks the connections that have not authenticated yet.
type connGuard struct {
	perSource, total int
	timeout          time.Duration
	silentGrace      time.Duration // silent longer than this: closed first at a cap
	hint             []byte        // OwnerHint, as it appears in a ClientHello (nil: none)
	log              *slog.Logger

	mu        sync.Mutex
	all       stageLists // oldest first in each stage
	bySource  map[netip.Prefix]*stageLists
	count     int
	evicted   int       // since the last warning
	lastWarn  time.Time // zero: no warning yet
	warnEvery time.Duration
}

// How far a pending connection got.
const (
	stageConnected = iota // nothing received
	stageBytes            // bytes received: a TLS handshake or a request under way
	stageRequest          // a request begun (past the TLS handshake)
	stageOwner            // offered the owner's hint in its TLS ClientHello
	numStages
)

// stageLists holds pending connections, one list per stage, in the order they reached
// it (for stageConnected: accepted).
type stageLists struct {
	l [numStages]list.List
	n int
}

// victimLocked returns the connection of s to close (see the policy above). What is
// already waiting in the kernel for a connection whose goroutine has not read it yet
// counts as read: a silent one with bytes waiting has spoken, and one whose waiting
// ClientHello offers the owner's hint is the owner's (a busy server must not close
// the owner's connection for being slow to read it).
func (g *connGuard) victimLocked(s *stageLists) *guardedConn {
	now := time.Now()
	for {
		if f := s.l[stageConnected].Front(); f != nil {
			gc := f.Value.(*guardedConn)
			switch {
			case bytesWaiting(gc.Conn):
				g.advanceLocked(gc, stageBytes)
				continue
			case now.Sub(gc.at) >= g.silentGrace:
				return gc
			}
		}
		var victim *guardedConn
		for st := stageConnected; st < stageOwner; st++ {
			if f := s.l[st].Front(); f != nil {
				if gc := f.Value.(*guardedConn); victim == nil || gc.at.Before(victim.at) {
					victim = gc
				}
			}
		}
		if victim == nil {
			if f := s.l[stageOwner].Front(); f != nil {
				return f.Value.(*guardedConn)
			}
			return nil
		}
		if victim.stage == stageBytes && waitingHolds(victim.Conn, g.hint) {
			g.advanceLocked(victim, stageOwner)
			continue
		}
		return victim
	}
}

func newConnGuard(perSource, total int, timeout time.Duration, log *slog.Logger) *connGuard {
	return &connGuard{perSource: perSource, total: total, timeout: timeout, silentGrace: silentGrace, log: log,
		bySource: map[netip.Prefix]*stageLists{}, warnEvery: time.Minute}
}

// guardListener wraps the accepted connections of a TCP listener.
type guardListener struct {
	net.Listener
	g *connGuard
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.g.admit(c), nil
}

// sourceOf is the address a connection counts against: the IP, an IPv6 /64.
func sourceOf(a net.Addr) netip.Prefix { return sourceOfHostPort(a.String()) }

// sourceOfHostPort is sourceOf for an address written host:port (a RemoteAddr).
func sourceOfHostPort(hostport string) netip.Prefix {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, 32)
}

// admit starts tracking c, closing pending connections beyond the caps.
func (g *connGuard) admit(c net.Conn) *guardedConn {
	gc := &guardedConn{Conn: c, g: g, src: sourceOf(c.RemoteAddr()), at: time.Now()}
	var drop []*guardedConn
	g.mu.Lock()
	src := g.bySource[gc.src]
	if src == nil {
		src = &stageLists{}
		g.bySource[gc.src] = src
	}
	for src.n >= g.perSource {
		drop = append(drop, g.untrackLocked(g.victimLocked(src)))
	}
	for g.count >= g.total {
		drop = append(drop, g.untrackLocked(g.victimLocked(&g.all)))
	}
	gc.pending = true
	gc.live.Store(true)
	gc.watch.Store(true)
	g.count++
	src.n++
	g.all.n++
	gc.inAll = g.all.l[stageConnected].PushBack(gc)
	gc.inSrc = src.l[stageConnected].PushBack(gc)
	gc.timer = time.AfterFunc(g.timeout, gc.expire)
	warn, n := g.countEvictedLocked(len(drop))
	g.mu.Unlock()
	for _, d := range drop {
		d.Conn.Close()
	}
	if warn {
		g.log.Warn("too many connections without a valid credential: closing the ones that got least far (owners' connections authenticate at once and are not affected)",
			"closed", n, "source", gc.src.String())
	}
	return gc
}

// advance moves a pending connection on to stage st (never back).
func (g *connGuard) advance(gc *guardedConn, st int) {
	if !gc.live.Load() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.advanceLocked(gc, st)
}

func (g *connGuard) advanceLocked(gc *guardedConn, st int) {
	if !gc.pending || gc.stage >= st {
		return
	}
	src := g.bySource[gc.src]
	g.all.l[gc.stage].Remove(gc.inAll)
	src.l[gc.stage].Remove(gc.inSrc)
	gc.stage = st
	gc.inAll = g.all.l[st].PushBack(gc)
	gc.inSrc = src.l[st].PushBack(gc)
	if st >= stageBytes {
		gc.watch.Store(false)
	}
}

// countEvictedLocked counts closed connections and says whether to log now (once a
// minute at most) and how many were closed since the last line.
func (g *connGuard) countEvictedLocked(n int) (bool, int) {
	if n == 0 {
		return false, 0
	}
	g.evicted += n
	now := time.Now()
	if !g.lastWarn.IsZero() && now.Sub(g.lastWarn) < g.warnEvery {
		return false, 0
	}
	g.lastWarn = now
	n, g.evicted = g.evicted, 0
	return true, n
}

// untrackLocked stops tracking gc (if it still is) and returns it.
func (g *connGuard) untrackLocked(gc *guardedConn) *guardedConn {
	if !gc.pending {
		return gc
	}
	gc.pending = false
	gc.live.Store(false)
	gc.watch.Store(false)
	g.count--
	g.all.n--
	g.all.l[gc.stage].Remove(gc.inAll)
	if src := g.bySource[gc.src]; src != nil {
		src.n--
		src.l[gc.stage].Remove(gc.inSrc)
		if src.n == 0 {
			delete(g.bySource, gc.src)
		}
	}
	gc.timer.Stop()
	return gc
}

// pendingCount is how many connections are waiting to authenticate (for tests).
func (g *connGuard) pendingCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.count
}

// guardedConn is an accepted TCP connection, counted until it authenticates.
type guardedConn struct {
	net.Conn
	g     *connGuard
	src   netip.Prefix
	at    time.Time // accepted
	timer *time.Timer

	watch atomic.Bool // pending and nothing received yet: Read reports progress
	live  atomic.Bool // pending (read without the lock)

	// Under g.mu:
	pending      bool
	stage        int
	inAll, inSrc *list.Element
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.watch.Load() {
		c.g.advance(c, stageBytes)
	}
	return n, err
}

// authenticated takes the connection off the count: a request on it presented a
// valid credential.
func (c *guardedConn) authenticated() {
	if !c.live.Load() {
		return
	}
	c.g.mu.Lock()
	c.g.untrackLocked(c)
	c.g.mu.Unlock()
}

func (c *guardedConn) isPending() bool { return c.live.Load() }

func (c *guardedConn) expire() {
	c.g.mu.Lock()
	was := c.pending
	c.g.untrackLocked(c)
	c.g.mu.Unlock()
	if was {
		c.Conn.Close()
	}
}

func (c *guardedConn) Close() error {
	c.g.mu.Lock()
	c.g.untrackLocked(c)
	c.g.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite and ReadFrom keep what the bare TCP connection offers net/http (a clean
// close; sendfile for files).
func (c *guardedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *guardedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

type guardedConnKey struct{}

// connContext puts the guarded connection (under its TLS layer, if any) into every
// request's context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if gc, ok := c.(*guardedConn); ok {
		return context.WithValue(ctx, guardedConnKey{}, gc)
	}
	return ctx
}

// connState moves a pending connection to stageRequest once a request begins on it.
func connState(c net.Conn, st http.ConnState) {
	if st != http.StateActive {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if gc, ok := c.(*guardedConn); ok {
		gc.g.advance(gc, stageRequest)
	}
}

// ownerHello is the server's GetConfigForClient: a ClientHello that offers the owner's
// hint (OwnerHint) moves its connection to stageOwner. next is the configuration's own
// GetConfigForClient, if any.
func ownerHello(hint string, next func(*tls.ClientHelloInfo) (*tls.Config, error)) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if gc, ok := hello.Conn.(*guardedConn); ok && gc.live.Load() {
			for _, p := range hello.SupportedProtos {
				if len(p) == len(hint) && TokensEqual(p, hint) {
					gc.g.advance(gc, stageOwner)
					break
				}
			}
		}
		if next != nil {
			return next(hello)
		}
		return nil, nil
	}
}

func guardedConnOf(ctx context.Context) *guardedConn {
	gc, _ := ctx.Value(guardedConnKey{}).(*guardedConn)
	return gc
}
