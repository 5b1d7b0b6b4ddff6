package relay

import (
	"context"
	"crypto/ed25519"
	"io"
	"net"
	"net/http/httptest"
	"testing"
	"time"
)

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

const copySize = 256 << 20

// copyThrough copies copySize bytes from client to server, in 32 KiB writes, and
// waits until the server has read them all.
func copyThrough(b *testing.B, client, server net.Conn) {
	done := make(chan error, 1)
	go func() {
		n, err := io.CopyBuffer(io.Discard, io.LimitReader(server, copySize), make([]byte, 32<<10))
		if err == nil && n != copySize {
			err = io.ErrUnexpectedEOF
		}
		done <- err
	}()
	if _, err := io.CopyBuffer(client, io.LimitReader(zeros{}, copySize), make([]byte, 32<<10)); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCopy256MiB: 256 MiB through Dial → router → Listen on loopback, and over a
// plain loopback TCP connection for comparison (MB/s is the figure).
func BenchmarkCopy256MiB(b *testing.B) {
	b.Run("relay", func(b *testing.B) {
		key := testKey(b, "r")
		srv := &Server{Key: key.Public().(ed25519.PublicKey)}
		hs := httptest.NewServer(srv)
		defer func() { srv.Close(); hs.Close() }()
		url := "ws://" + hs.Listener.Addr().String()
		hostTok, _ := Mint(key, RoleHost, "lab", "box", time.Hour)
		clientTok, _ := Mint(key, RoleClient, "lab", "alice", time.Hour)
		l, err := Listen(context.Background(), url, hostTok, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		for srv.HostCount() == 0 {
			time.Sleep(time.Millisecond)
		}
		b.SetBytes(copySize)
		b.ResetTimer()
		for range b.N {
			ch := acceptAsync(l)
			c, err := Dial(context.Background(), url, clientTok, "lab", nil)
			if err != nil {
				b.Fatal(err)
			}
			a := <-ch
			if a.err != nil {
				b.Fatal(a.err)
			}
			copyThrough(b, c, a.c)
			c.Close()
			a.c.Close()
		}
	})
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		b.SetBytes(copySize)
		b.ResetTimer()
		for range b.N {
			ch := acceptAsync(ln)
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			a := <-ch
			copyThrough(b, c, a.c)
			c.Close()
			a.c.Close()
		}
	})
}
