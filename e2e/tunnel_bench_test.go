//go:build unix

package e2e

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

// benchSink: per connection, 'u' then bytes until EOF → the count back; 'd' + 8-byte
// length → that many bytes, then close.
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
			go func() {
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
			}()
		}
	}()
	return ln.Addr().String()
}

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
	if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, buf); err != nil || n != int64(b.N)*chunk {
		b.Fatalf("got %d (%v); want %d", n, err, int64(b.N)*chunk)
	}
}

// BenchmarkTunnelForwardSSHD: tunnel.Forward through a real sshd on loopback to a sink
// (direct-tcpip).
func BenchmarkTunnelForwardSSHD(b *testing.B) {
	sink := benchSink(b)
	s := StartSSHD(b, SSHDOptions{})
	cfg, err := tunnel.Resolve(s.Alias, tunnel.ResolveOptions{ConfigFile: s.Config})
	if err != nil {
		b.Fatal(err)
	}
	c, err := tunnel.Dial(context.Background(), cfg, tunnel.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		tunnel.Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) { return c.DialContext(ctx, "tcp", sink) })
		close(done)
	}()
	defer func() { cancel(); <-done }()
	for _, up := range []bool{true, false} {
		name := "download"
		if up {
			name = "upload"
		}
		b.Run(name, func(b *testing.B) {
			benchTransfer(b, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }, up)
		})
	}
}

// BenchmarkTunnelOpenSSHDashL: the same through OpenSSH's own `ssh -L` (a local Unix
// socket, so no port is probed), as the baseline tether is compared with.
func BenchmarkTunnelOpenSSHDashL(b *testing.B) {
	Need(b, "ssh", "openssh-client")
	sink := benchSink(b)
	s := StartSSHD(b, SSHDOptions{})
	sock := filepath.Join(b.TempDir(), "l.sock")
	cmd := exec.Command("ssh", "-F", s.Config, "-N", "-o", "Ciphers=aes128-gcm@openssh.com", "-L", sock+":"+sink, s.Alias)
	Start(b, cmd)
	if !WaitFor(10*time.Second, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		b.Fatal("ssh -L did not come up")
	}
	for _, up := range []bool{true, false} {
		name := "download"
		if up {
			name = "upload"
		}
		b.Run(name, func(b *testing.B) {
			benchTransfer(b, func() (net.Conn, error) { return net.Dial("unix", sock) }, up)
		})
	}
}
