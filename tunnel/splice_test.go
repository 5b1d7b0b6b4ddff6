package tunnel

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// brokenConn delivers data, then fails: a remote stream cut in the middle (a striped
// connection that lost a stripe), not one that ended.
type brokenConn struct {
	net.Conn
	data []byte
}

func (b *brokenConn) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, errors.New("stream broken")
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// TestSpliceBrokenStreamResets: when the remote side of a forward breaks (an error,
// not EOF), the local TCP client sees the connection reset, not a clean end: a
// response cut short (a close-delimited one) must not look complete to the browser.
func TestSpliceBrokenStreamResets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	local, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Splice(local, &brokenConn{Conn: a, data: []byte("HTTP/1.0 200 OK\r\n\r\npart of the bo")})
		local.Close()
		a.Close()
	}()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err == nil {
		t.Errorf("the local client read %q and a clean end; want the connection reset", got)
	}
	client.Close()
	<-done
}
