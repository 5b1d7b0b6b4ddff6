//go:build linux || darwin

package tunnel

import (
	"net"
	"testing"
	"time"
)

// TestSendQueued: bytes the peer has not read (nor, past its buffer, acknowledged) show
// in the send queue; a drained connection shows 0; a pipe is unknown (-1).
func TestSendQueued(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if q := sendQueued(c); q != 0 {
		t.Errorf("nothing written: queue %d; want 0", q)
	}
	// More than the peer's receive buffer takes: the rest stays queued here.
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	written, _ := c.Write(make([]byte, 64<<20))
	if q := sendQueued(c); q <= 0 {
		t.Errorf("%d bytes written, the peer reads nothing: queue %d; want > 0", written, q)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if q := sendQueued(a); q != -1 {
		t.Errorf("a pipe: %d; want -1", q)
	}
}
