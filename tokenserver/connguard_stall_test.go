package tokenserver

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// farConn is the server's view of a launcher far away that reaches a Slurm node's
// server through the login node (SSH direct-tcpip): the login node's sshd connects
// when the channel opens, and the launcher's first bytes (its TLS ClientHello) arrive
// a round trip later; every later flight of the handshake, and the request, one more.
type farConn struct {
	net.Conn
	rtt time.Duration
}

func (c *farConn) Write(p []byte) (int, error) {
	time.Sleep(c.rtt)
	return c.Conn.Write(p)
}

// The owner's new connections are not closed by a flood of connections from the
// owner's own source address (as on a login node) that got further than the owner's
// while its bytes cross a slow path: connections that sent one byte and wait, and
// connections that finished a TLS handshake and stall. The owner's launcher offers
// OwnerHint in its ClientHello; before its ClientHello arrives, its connection ranks
// with the others by age, not below those that sent a byte.
func TestOwnerNotLockedOutBySpeakingFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of connections")
	}
	if n := fdLimit(); n < 2000 {
		t.Skipf("the flood needs about 1,000 descriptors; this process may open %d (raise ulimit -n)", n)
	}
	cfg, _, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, attack := range []struct {
		name  string
		every time.Duration // per attacker goroutine (4 of them)
		open  func(addr string) net.Conn
	}{
		{"one byte and wait", 8 * time.Millisecond, func(addr string) net.Conn {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return nil
			}
			c.Write([]byte{0x16})
			return c
		}},
		{"TLS handshake and a stalled request", 2 * time.Millisecond, func(addr string) net.Conn {
			raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return nil
			}
			c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if c.Handshake() != nil {
				c.Close()
				return nil
			}
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n")
			return c
		}},
	} {
		t.Run(attack.name, func(t *testing.T) {
			g := newGate(t, func(o *Options) { o.TLS = cfg })
			addr := hostOf(g.served())
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var held []net.Conn
			var opened atomic.Int64
			defer func() {
				close(stop)
				wg.Wait()
				for _, c := range held {
					c.Close()
				}
			}()
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						case <-time.After(attack.every):
						}
						if c := attack.open(addr); c != nil {
							opened.Add(1)
							mu.Lock()
							held = append(held, c)
							mu.Unlock()
						}
					}
				}()
			}
			for deadline := time.Now().Add(10 * time.Second); opened.Load() < 2*maxPendingPerSource && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}

			const rounds = 10
			var fails []string
			for i := range rounds {
				raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					fails = append(fails, fmt.Sprintf("round %d: dial: %v", i, err))
					continue
				}
				c := tls.Client(&farConn{Conn: raw, rtt: 40 * time.Millisecond}, &tls.Config{InsecureSkipVerify: true,
					NextProtos: []string{"http/1.1", OwnerHint(g.token)}})
				c.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = io.WriteString(c, "GET /owner HTTP/1.1\r\nHost: localhost\r\nAuthorization: token "+g.token+"\r\n\r\n")
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(bufio.NewReader(c), nil)
				}
				switch {
				case err != nil:
					fails = append(fails, fmt.Sprintf("round %d: %v", i, err))
				case resp.StatusCode != 200:
					fails = append(fails, fmt.Sprintf("round %d: %d", i, resp.StatusCode))
				}
				c.Close()
			}
			t.Logf("%d attackers' connections; the owner's: %d of %d closed", opened.Load(), len(fails), rounds)
			if len(fails) > 0 {
				t.Errorf("the owner was locked out %d times of %d: %v", len(fails), rounds, fails[:min(len(fails), 3)])
			}
		})
	}
}
