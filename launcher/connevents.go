package launcher

import (
	"context"
	"net"
	"sync"

	"github.com/tether-dev/tether/tunnel"
)

// connEvents is a session's queue of connection changes (lost, reconnecting, back,
// failed). The transport's goroutine adds to it and never blocks; nothing is dropped:
// the queue grows, except that a run of Reconnecting events is coalesced into its latest
// (whose Attempt counts the run). One goroutine at a time consumes it, in order: the
// session's pump from connect until serving starts, then the serving loop (handOff).
type connEvents struct {
	mu     sync.Mutex
	q      []tunnel.Event
	signal chan struct{} // cap 1: something was added since the last receive
}

func newConnEvents() *connEvents { return &connEvents{signal: make(chan struct{}, 1)} }

// add queues e. It never blocks.
func (c *connEvents) add(e tunnel.Event) {
	c.mu.Lock()
	if n := len(c.q); n > 0 && e.State == tunnel.Reconnecting && c.q[n-1].State == tunnel.Reconnecting {
		c.q[n-1] = e
	} else {
		c.q = append(c.q, e)
	}
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// ready is readable once events may be waiting (take them with next).
func (c *connEvents) ready() <-chan struct{} { return c.signal }

// next takes the oldest event.
func (c *connEvents) next() (tunnel.Event, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.q) == 0 {
		return tunnel.Event{}, false
	}
	e := c.q[0]
	c.q[0] = tunnel.Event{}
	c.q = c.q[1:]
	return e, true
}

// localForward is tunnel.Forward running on a listener, owned by the command that
// started it: stop ends it and waits for it (any number of times); done is closed
// when it has returned by itself or been stopped, and err then says why.
type localForward struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
}

func startForward(ln net.Listener, say func(string, ...any), e Endpoint) *localForward {
	ctx, cancel := context.WithCancel(context.Background())
	f := &localForward{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		f.err = tunnel.Forward(ctx, ownerOnly(ln, say), e)
	}()
	return f
}

// stop ends the forwarding and waits for it to return.
func (f *localForward) stop() {
	f.cancel()
	<-f.done
}

// pump is the owner of a forwarding session's connection events from connect until
// serving starts: it tells each change as it happens (during the app's start, the
// upload, or hours of a batch job in the queue). A Failed event ends it; handOff
// returns that failure to the serving loop, which then owns the events.
type pump struct {
	stop   chan struct{}
	done   chan struct{}
	gaveUp chan struct{} // closed when the pump met a Failed event
	once   sync.Once
	failed error // set by the pump goroutine before done closes
}

func (s *session) startPump() {
	p := &pump{stop: make(chan struct{}), done: make(chan struct{}), gaveUp: make(chan struct{})}
	s.pump = p
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-s.events.ready():
			}
			for {
				e, ok := s.events.next()
				if !ok {
					break
				}
				if err := s.tellBeforeServing(e); err != nil {
					p.failed = err
					close(p.gaveUp)
					return
				}
			}
		}
	}()
}

// handOff stops the pump and waits for it; the caller owns the session's connection
// events from now on. The events the pump had not taken yet are told here, in order.
// It returns the connection's failure if the transport gave up for good (the launcher
// must not say ready over a dead connection). Safe to call more than once and without
// a pump (a one-command session).
func (s *session) handOff() error {
	if err := s.stopPump(); err != nil {
		return err
	}
	if s.pump == nil {
		return nil
	}
	for {
		e, ok := s.events.next()
		if !ok {
			return nil
		}
		if err := s.tellBeforeServing(e); err != nil {
			s.pump.failed = err
			return err
		}
	}
}

// connGaveUp is closed when the transport gave up for good before serving (stopPump
// then returns why); nil without a pump. A batch job's wait ends on it.
func (s *session) connGaveUp() <-chan struct{} {
	if s.pump == nil {
		return nil
	}
	return s.pump.gaveUp
}

// stopPump stops the pump and waits for it, leaving what it had not taken in the queue;
// it returns the failure the pump met, if any. Safe to call more than once.
func (s *session) stopPump() error {
	p := s.pump
	if p == nil {
		return nil
	}
	p.once.Do(func() { close(p.stop) })
	<-p.done
	return p.failed
}

// tellBeforeServing tells a connection change that happened before the session is
// served; a Failed event returns the error to end the command with.
func (s *session) tellBeforeServing(e tunnel.Event) error {
	switch e.State {
	case tunnel.Lost:
		s.tellLost(e)
	case tunnel.Reconnecting:
		if e.Attempt > 1 {
			s.status.update("connection to %s lost; reconnecting (attempt %d)", s.host, e.Attempt)
		}
	case tunnel.Back:
		s.status.done()
		s.status.line("tether: back: reconnected to %s", s.host)
	case tunnel.Failed:
		s.status.done()
		return s.connectError(e.Err)
	}
	return nil
}
