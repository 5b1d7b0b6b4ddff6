package tunnel

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
)

// benchSink serves, per connection: 'u' then bytes until EOF → replies the count;
// 'd' + 8-byte length → writes that many bytes and closes.
func benchSink(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveBenchConn(c)
		}
	}()
	return ln.Addr().String()
}

func serveBenchConn(c net.Conn) {
	defer c.Close()
	var op [1]byte
	if _, err := io.ReadFull(c, op[:]); err != nil {
		return
	}
	buf := make([]byte, 256<<10)
	switch op[0] {
	case 'u':
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
		binary.Write(c, binary.BigEndian, n)
	case 'd':
		var n int64
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	}
}

// BenchTransfer moves b.N MiB through addr (a forwarder in front of a benchSink), in the
// given direction, and reports MB/s. Exported to the test binary only.
func benchTransfer(b *testing.B, dial func() (net.Conn, error), upload bool) {
	const chunk = 1 << 20
	b.SetBytes(chunk)
	c, err := dial()
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, chunk)
	b.ResetTimer()
	if upload {
		c.Write([]byte{'u'})
		for range b.N {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		var n int64
		if err := binary.Read(c, binary.BigEndian, &n); err != nil || n != int64(b.N)*chunk {
			b.Fatalf("sink got %d (%v); want %d", n, err, int64(b.N)*chunk)
		}
		return
	}
	c.Write([]byte{'d'})
	binary.Write(c, binary.BigEndian, int64(b.N)*chunk)
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf)
	if err != nil || n != int64(b.N)*chunk {
		b.Fatalf("got %d (%v); want %d", n, err, int64(b.N)*chunk)
	}
}

// BenchmarkForward: a local TCP connection through Forward, one SSH connection to the
// in-process Server, direct-tcpip to a loopback sink. The in-process server costs CPU
// too (both ends of the SSH encryption run in this process).
func BenchmarkForward(b *testing.B) {
	sink := benchSink(b)
	ts := startServer(b, nil)
	c := ts.dial(b, ts.config(), Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) { return c.DialContext(ctx, "tcp", sink) })
		close(done)
	}()
	b.Cleanup(func() { cancel(); <-done })
	for _, up := range []bool{true, false} {
		b.Run(fmt.Sprintf("upload=%v", up), func(b *testing.B) {
			benchTransfer(b, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }, up)
		})
	}
}
