// Package stripe carries one byte stream over several connections at once, so that a
// stream through SSH is not held to one channel's window per round trip (2 MiB in
// OpenSSH and in x/crypto: about 26 MB/s at 80 ms however fast the link). tether owns
// both ends of a browser's forwarded connection (the launcher and the remote gate), so
// it opens N channels, says hello on each (a magic no HTTP or TLS client sends, a
// random group id, the stripe's index and the count), and sends numbered frames over
// whichever channel has room; the other end puts them back in order.
//
// Dial opens the stripes; Listener wraps the gate's listener, hands out a joined group
// as one net.Conn and every other connection unchanged. The package knows nothing of
// tether's other parts.
package stripe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Limits of the protocol. MaxStripes bounds a group (what a hostile hello can ask of
// the listener); MaxFrame is the most data a frame carries: with its header, the
// largest channel packet of x/crypto and OpenSSH (32 KiB), so a frame written goes as
// one packet, not a full one and a 12-byte one.
const (
	MaxStripes = 16
	MaxFrame   = 32<<10 - headerLen
)

// frame header: seq (8 bytes), length (4 bytes). eofLen marks the end of the stream
// (no data): each stripe carries one, naming the count of frames sent. ackLen (no
// data) is what the listener sends first on stripe 0 of a joined group: the dialler
// times it (Dial's onRTT), a round trip any transport can measure.
const (
	headerLen = 12
	eofLen    = 0xFFFFFFFF
	ackLen    = 0xFFFFFFFE
)

// reorderLimit bounds the memory of frames that arrived ahead of their turn. The next
// frame in order is always admitted, so the receiver never deadlocks: each stripe
// carries increasing numbers, and the frame awaited is at the head of its stripe.
var reorderLimit = 2 << 20

// frameCost is what a frame held counts against reorderLimit: the buffer it takes
// (framePool's), whatever its length, so a peer sending one-byte frames (or a writer of
// small pieces to a reader that stopped) holds 64 buffers, not 2 MiB of them.
const frameCost = headerLen + MaxFrame

// flushWait bounds how long Close waits for written data to leave before it cuts the
// stripes (a peer that stopped reading).
var flushWait = 5 * time.Second

// sendQueue is how many frames Write may queue beyond those being sent.
const sendQueue = 8

var framePool = sync.Pool{New: func() any { b := make([]byte, headerLen+MaxFrame); return &b }}

// errBroken wraps what broke a stream: one stripe's failure ends them all.
var errBroken = errors.New("stripe: striped connection broken")

// Conn is one stream over several stripes. It is safe for one reader and one writer at
// a time (as net.Conn), with Close and the deadline setters from any goroutine.
type Conn struct {
	stripes []net.Conn
	rdl     deadline
	wdl     deadline

	// Write side: Write cuts frames and queues them; one sender per stripe takes the
	// next frame, so a stripe whose window is full holds no other back.
	wmu         sync.Mutex
	seq         uint64
	sendq       chan *[]byte
	writeClosed bool
	sendersDone chan struct{}

	// Read side, under mu: frames that arrived (by number) until their turn.
	mu        sync.Mutex
	next      uint64 // the number of the next frame to deliver
	pending   map[uint64]*[]byte
	pendBytes int     // frameCost for each frame in pending
	cur       *[]byte // the frame being delivered
	curData   []byte
	eofSeq    uint64
	eofKnown  bool
	err       error         // the first failure
	wake      chan struct{} // closed and replaced on every change of the above
	closed    bool

	ack   bool   // send an ack first on stripe 0 (the listener's side)
	onAck func() // the ack arrived (the dialler's side); nil: ignored

	closing chan struct{} // Close began
	killed  chan struct{} // the stripes are being closed
	killOne sync.Once
	closeMu sync.Once
	wg      sync.WaitGroup
}

func newConn(stripes []net.Conn) *Conn { return newConnOpts(stripes, false, nil) }

// newConnOpts is newConn that sends an ack first (ack), or calls onAck when one comes.
func newConnOpts(stripes []net.Conn, ack bool, onAck func()) *Conn {
	c := &Conn{
		ack: ack, onAck: onAck,
		stripes:     stripes,
		rdl:         makeDeadline(),
		wdl:         makeDeadline(),
		sendq:       make(chan *[]byte, sendQueue),
		sendersDone: make(chan struct{}),
		pending:     map[uint64]*[]byte{},
		wake:        make(chan struct{}),
		closing:     make(chan struct{}),
		killed:      make(chan struct{}),
	}
	var senders sync.WaitGroup
	for i, s := range stripes {
		senders.Add(1)
		c.wg.Go(func() { defer senders.Done(); c.send(i, s) })
		c.wg.Go(func() { c.receive(i, s) })
	}
	c.wg.Go(func() { senders.Wait(); close(c.sendersDone) })
	return c
}

// Stripes is how many connections carry c.
func (c *Conn) Stripes() int { return len(c.stripes) }

// changed wakes everyone waiting on the read state; mu held.
func (c *Conn) changed() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// fail records the first failure and cuts every stripe, so the peer sees it too.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil && !c.closed {
		c.err = fmt.Errorf("%w: %w", errBroken, err)
	}
	c.changed()
	c.mu.Unlock()
	c.kill()
}

func (c *Conn) kill() {
	c.killOne.Do(func() {
		close(c.killed)
		for _, s := range c.stripes {
			s.Close()
		}
	})
}

// send writes queued frames to stripe i until the queue closes (then the end marker).
func (c *Conn) send(i int, s net.Conn) {
	if i == 0 && c.ack {
		var m [headerLen]byte
		binary.BigEndian.PutUint32(m[8:], ackLen)
		if _, err := s.Write(m[:]); err != nil {
			c.fail(fmt.Errorf("stripe %d: %w", i, err))
			return
		}
	}
	for {
		var b *[]byte
		var ok bool
		select {
		case b, ok = <-c.sendq:
		case <-c.killed:
			return
		}
		if !ok {
			var m [headerLen]byte
			c.wmu.Lock()
			binary.BigEndian.PutUint64(m[:8], c.seq)
			c.wmu.Unlock()
			binary.BigEndian.PutUint32(m[8:], eofLen)
			if _, err := s.Write(m[:]); err != nil {
				c.fail(fmt.Errorf("stripe %d: %w", i, err))
			}
			return
		}
		_, err := s.Write(*b)
		framePool.Put(b)
		if err != nil {
			c.fail(fmt.Errorf("stripe %d: %w", i, err))
			return
		}
	}
}

// receive reads stripe i's frames into the reorder buffer until its end marker.
func (c *Conn) receive(i int, s net.Conn) {
	var h [headerLen]byte
	for {
		if _, err := io.ReadFull(s, h[:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // a stripe ended without its end marker
			}
			c.fail(fmt.Errorf("stripe %d: %w", i, err))
			return
		}
		seq, n := binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint32(h[8:])
		if n == ackLen {
			if c.onAck != nil {
				c.onAck()
			}
			continue
		}
		if n == eofLen {
			c.mu.Lock()
			bad := c.eofKnown && c.eofSeq != seq || seq < c.next
			c.eofSeq, c.eofKnown = seq, true
			c.changed()
			c.mu.Unlock()
			if bad {
				c.fail(fmt.Errorf("stripe %d: end markers disagree", i))
			}
			return
		}
		if n == 0 || n > MaxFrame {
			c.fail(fmt.Errorf("stripe %d: bad frame length %d", i, n))
			return
		}
		if !c.admit(i, seq) {
			return
		}
		b := framePool.Get().(*[]byte)
		*b = (*b)[:n]
		if _, err := io.ReadFull(s, *b); err != nil {
			framePool.Put(b)
			c.fail(fmt.Errorf("stripe %d: %w", i, io.ErrUnexpectedEOF))
			return
		}
		c.mu.Lock()
		c.pending[seq] = b
		c.changed()
		c.mu.Unlock()
	}
}

// admit waits until frame seq may enter the reorder buffer and reserves its room (a
// whole buffer: frameCost); false when the stream is broken or closed.
func (c *Conn) admit(i int, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch _, dup := c.pending[seq]; {
		case c.err != nil || c.closed:
			return false
		case seq < c.next || dup || c.eofKnown && seq >= c.eofSeq:
			c.mu.Unlock()
			c.fail(fmt.Errorf("stripe %d: frame %d out of place", i, seq))
			c.mu.Lock()
			return false
		case seq == c.next || c.pendBytes+frameCost <= reorderLimit:
			c.pendBytes += frameCost
			return true
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-c.killed:
		}
		c.mu.Lock()
	}
}

// Read delivers the stream in order.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if isClosed(c.closing) {
			return 0, net.ErrClosed
		}
		if len(c.curData) == 0 && c.cur != nil {
			framePool.Put(c.cur)
			c.cur = nil
		}
		if c.cur == nil {
			if b, ok := c.pending[c.next]; ok {
				delete(c.pending, c.next)
				c.next++
				c.pendBytes -= frameCost
				c.cur, c.curData = b, *b
				c.changed() // room in the reorder buffer
			}
		}
		if len(c.curData) > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			n := copy(p, c.curData)
			c.curData = c.curData[n:]
			return n, nil
		}
		switch {
		case c.eofKnown && c.next == c.eofSeq:
			return 0, io.EOF
		case c.err != nil:
			return 0, c.err
		}
		if c.rdl.expired() {
			return 0, os.ErrDeadlineExceeded
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-c.rdl.wait():
		case <-c.closing:
		}
		c.mu.Lock()
	}
}

// Write queues p as frames; it returns once they are queued (as a kernel's send buffer
// does), and blocks while the queue is full.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		if err := c.writeErr(); err != nil {
			return written, err
		}
		if c.wdl.expired() {
			return written, os.ErrDeadlineExceeded
		}
		n := min(len(p), MaxFrame)
		b := framePool.Get().(*[]byte)
		*b = (*b)[:headerLen+n]
		binary.BigEndian.PutUint64((*b)[:8], c.seq)
		binary.BigEndian.PutUint32((*b)[8:headerLen], uint32(n))
		copy((*b)[headerLen:], p[:n])
		select {
		case c.sendq <- b:
		case <-c.wdl.wait():
			framePool.Put(b)
			return written, os.ErrDeadlineExceeded
		case <-c.closing:
			framePool.Put(b)
			return written, net.ErrClosed
		case <-c.killed:
			framePool.Put(b)
			return written, c.writeErr()
		}
		c.seq++
		written += n
		p = p[n:]
	}
	return written, nil
}

// writeErr is why writing cannot go on (nil: it can); wmu held.
func (c *Conn) writeErr() error {
	select {
	case <-c.closing:
		return net.ErrClosed
	default:
	}
	if c.writeClosed {
		return errors.New("stripe: write after CloseWrite")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	select {
	case <-c.killed:
		return net.ErrClosed
	default:
	}
	return nil
}

// CloseWrite ends the stream this way: the peer reads io.EOF after what was written.
// It does not wait for the data to leave.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.writeClosed {
		c.writeClosed = true
		close(c.sendq)
	}
	return nil
}

// Close ends the stream both ways: what was written leaves first (for at most
// flushWait, less if the write deadline is sooner), then every stripe is closed and
// every goroutine of c has returned.
func (c *Conn) Close() error {
	first := false
	c.closeMu.Do(func() { first = true; close(c.closing) })
	if first {
		c.CloseWrite()
		wait := flushWait
		if dl, ok := c.wdl.get(); ok {
			wait = min(wait, max(time.Until(dl), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-c.sendersDone:
		case <-c.killed:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
		c.closed = true
		c.changed()
		c.mu.Unlock()
		c.kill()
	}
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		framePool.Put(c.cur)
		c.cur, c.curData = nil, nil
	}
	for k, b := range c.pending {
		framePool.Put(b)
		delete(c.pending, k)
	}
	if !first {
		return net.ErrClosed
	}
	return nil
}

func (c *Conn) LocalAddr() net.Addr  { return c.stripes[0].LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.stripes[0].RemoteAddr() }

func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *Conn) SetReadDeadline(t time.Time) error  { c.rdl.set(t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// deadline is a settable point in time with a channel that is closed once it passes
// (the shape of net.Pipe's).
type deadline struct {
	mu     *sync.Mutex
	at     time.Time
	timer  *time.Timer
	cancel chan struct{}
}

func makeDeadline() deadline { return deadline{mu: new(sync.Mutex), cancel: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired and closed it: wait no more
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	d.at = t
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func (d *deadline) expired() bool { return isClosed(d.wait()) }

func (d *deadline) get() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at, !d.at.IsZero()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
