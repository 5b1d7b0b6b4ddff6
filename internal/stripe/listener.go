package stripe

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Bounds on what connections can make a Listener hold. Variables so tests can shorten
// them.
var (
	// sniffTimeout bounds the wait for a connection's first bytes (a connection that
	// sends nothing is handed out unchanged then) and for the rest of a hello.
	sniffTimeout = 10 * time.Second
	// groupTimeout bounds the wait for a group's other stripes.
	groupTimeout = 10 * time.Second
	// recentKeep is how long a joined group's id is refused for another group.
	recentKeep = time.Minute
	// maxSniffing bounds the connections being looked at; more wait to be accepted.
	maxSniffing = 256
	// evictAfter: when all maxSniffing are taken, the one looked at longest, once it
	// has been silent this long, is handed out as it is (net/http's own timeouts then
	// apply), so a client holding many silent connections delays the others by this,
	// not sniffTimeout.
	evictAfter = time.Second
	// maxRecent bounds the ids remembered as used (the oldest is forgotten first).
	maxRecent = 4096
)

const maxGroups = 64 // groups waiting for stripes

// Listener hands out what its inner listener accepts: each group of stripes joined as
// one *Conn, and every other connection unchanged (the bytes looked at are read again).
// Each connection is looked at in its own goroutine, so one slow client holds no other
// back. Whoever may connect to the inner listener may send stripes: wrap the listener
// that already refuses strangers.
type Listener struct {
	inner  net.Listener
	logger *slog.Logger

	ready      chan net.Conn
	done       chan struct{} // Close was called
	acceptDone chan struct{} // the inner listener failed: acceptErr
	acceptErr  error
	slots      chan struct{} // one per connection being looked at
	closeOnce  sync.Once
	wg         sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sniffing map[net.Conn]*sniffed
	groups   map[[16]byte]*group
	recent   map[[16]byte]time.Time
	order    [][16]byte // recent's ids, oldest first
}

// sniffed is a connection being looked at: since when, and whether it was cut short.
type sniffed struct {
	since   time.Time
	evicted bool
}

type group struct {
	stripes []net.Conn
	have    int
	expires time.Time
}

// NewListener starts looking at inner's connections; logger (nil: none) gets a line for
// each joined group and each refused stripe.
func NewListener(inner net.Listener, logger *slog.Logger) *Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		inner: inner, logger: logger,
		ready: make(chan net.Conn), done: make(chan struct{}), acceptDone: make(chan struct{}),
		slots:    make(chan struct{}, maxSniffing),
		sniffing: map[net.Conn]*sniffed{}, groups: map[[16]byte]*group{}, recent: map[[16]byte]time.Time{},
	}
	l.wg.Go(l.acceptLoop)
	l.wg.Go(l.janitor)
	return l
}

func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Accept returns the next connection: plain, or a joined group of stripes.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.acceptDone:
		return nil, l.acceptErr
	}
}

// Close closes the inner listener, every connection not yet handed out and every
// waiting group, and waits for the Listener's goroutines.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.sniffing {
			c.Close()
		}
		for id, g := range l.groups {
			g.close()
			delete(l.groups, id)
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *Listener) acceptLoop() {
	backoff := time.Duration(0)
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() { // as net/http's Serve does
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-l.done:
				}
			}
			l.acceptErr = err
			close(l.acceptDone)
			return
		}
		backoff = 0
		if !l.takeSlot() {
			c.Close()
			return
		}
		// The deadline is set here, before the connection can be evicted (which moves it
		// to now).
		c.SetReadDeadline(time.Now().Add(sniffTimeout))
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			<-l.slots
			c.Close()
			return
		}
		l.sniffing[c] = &sniffed{since: time.Now()}
		l.mu.Unlock()
		l.wg.Go(func() {
			defer func() { <-l.slots }()
			l.sniff(c)
		})
	}
}

// takeSlot waits for a slot to look at a new connection (false: the listener closed).
// While all are taken, the connection looked at longest is evicted once it has been
// silent for evictAfter.
func (l *Listener) takeSlot() bool {
	for {
		select {
		case l.slots <- struct{}{}:
			return true
		case <-l.done:
			return false
		default:
		}
		t := time.NewTimer(l.evictOldest())
		select {
		case l.slots <- struct{}{}:
			t.Stop()
			return true
		case <-l.done:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// evictOldest ends the look at the connection looked at longest if it has been silent
// for evictAfter (its read times out: it is handed out as it is), and returns how long
// to wait before trying again.
func (l *Listener) evictOldest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest net.Conn
	var since time.Time
	for c, s := range l.sniffing {
		if !s.evicted && (oldest == nil || s.since.Before(since)) {
			oldest, since = c, s.since
		}
	}
	if oldest == nil {
		return evictAfter // all being evicted already: their slots come free
	}
	if age := time.Since(since); age < evictAfter {
		return evictAfter - age
	}
	l.sniffing[oldest].evicted = true
	oldest.SetReadDeadline(time.Now())
	return 10 * time.Millisecond
}

// sniff looks at c's first bytes (its read deadline set): a stripe's hello joins its
// group, anything else is handed out with those bytes put back.
func (l *Listener) sniff(c net.Conn) {
	buf := make([]byte, helloLen)
	n, err := io.ReadAtLeast(c, buf, 1)
	for err == nil && n < helloLen && bytes.HasPrefix([]byte(Magic), buf[:min(n, len(Magic))]) {
		var m int
		m, err = c.Read(buf[n:])
		n += m
	}
	l.mu.Lock()
	delete(l.sniffing, c)
	closed := l.closed
	l.mu.Unlock()
	var ne net.Error
	switch {
	case closed:
		c.Close()
		return
	case err != nil && !(errors.As(err, &ne) && ne.Timeout()):
		c.Close() // gone before it said anything we use
		return
	case n < helloLen || !bytes.HasPrefix(buf[:n], []byte(Magic)):
		c.SetReadDeadline(time.Time{})
		l.handOut(&peekedConn{Conn: c, first: buf[:n]})
		return
	}
	h, err := parseHello(buf)
	if err != nil {
		l.logger.Warn("refused a stripe", "reason", err.Error())
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	l.join(h, c)
}

// join adds stripe c to its group; a complete group is handed out.
func (l *Listener) join(h hello, c net.Conn) {
	l.mu.Lock()
	refuse := func(reason string) {
		l.mu.Unlock()
		l.logger.Warn("refused a stripe", "reason", reason)
		c.Close()
	}
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	if _, used := l.recent[h.id]; used {
		refuse("its group id was used already")
		return
	}
	g := l.groups[h.id]
	switch {
	case g == nil && len(l.groups) >= maxGroups:
		refuse("too many groups waiting for stripes")
		return
	case g == nil:
		g = &group{stripes: make([]net.Conn, h.count), expires: time.Now().Add(groupTimeout)}
		l.groups[h.id] = g
	case len(g.stripes) != h.count || g.stripes[h.index] != nil:
		// Two hellos disagree: nothing of this group is trusted.
		delete(l.groups, h.id)
		l.remember(h.id)
		g.close()
		refuse("a stripe disagrees with its group (count or index)")
		return
	}
	g.stripes[h.index] = c
	g.have++
	if g.have < len(g.stripes) {
		l.mu.Unlock()
		return
	}
	delete(l.groups, h.id)
	l.remember(h.id)
	l.mu.Unlock()
	l.logger.Info("striped connection", "stripes", len(g.stripes))
	l.handOut(newConnOpts(g.stripes, true, nil))
}

// remember notes id as used; mu held.
func (l *Listener) remember(id [16]byte) {
	l.recent[id] = time.Now()
	l.order = append(l.order, id)
	if len(l.order) > maxRecent {
		delete(l.recent, l.order[0])
		l.order = l.order[1:]
	}
}

func (l *Listener) handOut(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// janitor drops groups whose stripes did not all come in time, and old ids.
func (l *Listener) janitor() {
	t := time.NewTicker(min(groupTimeout, recentKeep) / 10)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		now := time.Now()
		l.mu.Lock()
		for id, g := range l.groups {
			if now.After(g.expires) {
				delete(l.groups, id)
				l.remember(id)
				g.close()
				l.logger.Warn("refused a stripe", "reason", "its group did not complete in time")
			}
		}
		for len(l.order) > 0 && now.Sub(l.recent[l.order[0]]) > recentKeep {
			delete(l.recent, l.order[0])
			l.order = l.order[1:]
		}
		l.mu.Unlock()
	}
}

func (g *group) close() {
	for _, c := range g.stripes {
		if c != nil {
			c.Close()
		}
	}
}

// peekedConn gives back the bytes the listener read to look at it.
type peekedConn struct {
	net.Conn
	first []byte
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite half-closes, as the connection underneath would.
func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("stripe: connection cannot half-close")
}

// ReadFrom keeps what the connection underneath offers net/http (sendfile for files).
func (p *peekedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := p.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{p.Conn}, r)
}
