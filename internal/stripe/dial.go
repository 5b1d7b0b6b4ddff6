package stripe

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Magic begins every stripe's hello. Its first byte, NUL, begins no HTTP request and
// no TLS record (a ClientHello begins 0x16), so a listener tells stripes from anything
// else by one byte.
const Magic = "\x00tether-stripe/1"

// helloLen is the hello's length: magic, a 128-bit group id, the stripe's index and
// the count of stripes in the group.
const helloLen = len(Magic) + 16 + 2

type hello struct {
	id           [16]byte
	index, count int
}

func (h hello) marshal() []byte {
	b := make([]byte, 0, helloLen)
	b = append(b, Magic...)
	b = append(b, h.id[:]...)
	return append(b, byte(h.index), byte(h.count))
}

// parseHello reads a whole hello (magic included); the error names what is wrong.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloLen || !bytes.HasPrefix(b, []byte(Magic)) {
		return h, errors.New("not a stripe hello")
	}
	copy(h.id[:], b[len(Magic):])
	h.index, h.count = int(b[helloLen-2]), int(b[helloLen-1])
	if h.count < 1 || h.count > MaxStripes || h.index >= h.count {
		return h, fmt.Errorf("stripe %d of %d is out of bounds (at most %d)", h.index, h.count, MaxStripes)
	}
	return h, nil
}

// Dial opens n stripes at once with dial (one round trip, not n), says hello on each
// and returns them as one stream. n is clipped to 1..MaxStripes; the peer must be a
// Listener (see its record's advertisement), since the hello means nothing to others.
// onRTT, if not nil, is called (from another goroutine) with the time from the start of
// the dial until the listener's ack: two round trips on SSH (the channel's open, then
// the hello and its ack), whatever the transport.
func Dial(ctx context.Context, n int, dial func(context.Context) (net.Conn, error), onRTT func(time.Duration)) (*Conn, error) {
	start := time.Now()
	n = max(1, min(n, MaxStripes))
	h := hello{count: n}
	if _, err := rand.Read(h.id[:]); err != nil {
		return nil, err
	}
	stripes := make([]net.Conn, n)
	errs := make([]error, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			c, err := dial(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			hi := h
			hi.index = i
			if _, err := c.Write(hi.marshal()); err != nil {
				c.Close()
				errs[i] = err
				return
			}
			stripes[i] = c
		}()
	}
	for range n {
		<-done
	}
	if err := firstErr(errs); err != nil {
		for _, c := range stripes {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	var onAck func()
	if onRTT != nil {
		var once sync.Once
		onAck = func() { once.Do(func() { onRTT(time.Since(start)) }) }
	}
	return newConnOpts(stripes, false, onAck), nil
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
