package tokenserver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Issue 11 item 7(a): every junk connection to a TLS listener made net/http log "TLS
// handshake error from …", one line per connection, which anyone on the network can
// cause at will. A flood of them now adds one line, then one summary per minute.
func TestHandshakeErrorsSummedUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out syncBuffer
		l := newErrorLog(slog.New(slog.NewTextHandler(&out, nil)), "http server")
		lines := func() []string { return strings.Split(strings.TrimSpace(out.String()), "\n") }

		for i := range 1000 {
			l.Printf("http: TLS handshake error from 127.0.0.1:%d: EOF", 1000+i)
		}
		l.Printf("http: Accept error: too many open files; retrying in 5ms")
		if got := lines(); len(got) != 2 || !strings.Contains(got[0], "127.0.0.1:1000: EOF") || !strings.Contains(got[1], "Accept error") {
			t.Fatalf("after 1000 handshake failures and an accept error, the log holds %d lines:\n%.1000s\nwant the first failure and the accept error", len(got), out.String())
		}

		time.Sleep(handshakeWindow)
		synctest.Wait()
		got := lines()
		if len(got) != 3 || !strings.Contains(got[2], "999 more TLS handshakes failed in the last 1m0s; the last: http: TLS handshake error from 127.0.0.1:1999: EOF") {
			t.Fatalf("a minute later the log holds:\n%s\nwant one summary line of 999 more", out.String())
		}

		// Still under attack: one summary per minute, however many.
		for i := range 500 {
			l.Printf("http: TLS handshake error from 127.0.0.1:%d: tls: first record does not look like a TLS handshake", 3000+i)
		}
		time.Sleep(handshakeWindow)
		synctest.Wait()
		if got := lines(); len(got) != 4 || !strings.Contains(got[3], "500 more TLS handshakes failed") {
			t.Fatalf("a second minute of attack gives:\n%s\nwant one more summary line", out.String())
		}

		// A quiet minute ends the spell: the next failure is logged as it is.
		time.Sleep(2 * handshakeWindow)
		synctest.Wait()
		l.Printf("http: TLS handshake error from 127.0.0.1:4000: remote error: tls: bad certificate")
		if got := lines(); len(got) != 5 || !strings.Contains(got[4], "127.0.0.1:4000: remote error") {
			t.Fatalf("after a quiet spell:\n%s\nwant the new failure in full", out.String())
		}
	})
}

// The same through a real TLS listener: hundreds of junk connections from loopback
// (raw bytes, plain HTTP, a client that rejects the certificate, connect-and-close)
// add at most two lines to the server's log; a real TLS client still gets its answer.
func TestJunkConnectionsDoNotFloodTheLog(t *testing.T) {
	cfg, fp, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t, func(o *Options) { o.TLS = cfg })
	base := g.served()
	addr := strings.TrimPrefix(base, "https://")

	const perKind = 100
	kinds := []func() error{
		func() error { // junk bytes
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("\x00\x01junk junk junk\r\n\r\n"))
			buf := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(buf)
			return err
		},
		func() error { // plain HTTP to the TLS port
			resp, err := http.Get("http://" + addr + "/")
			if err == nil {
				resp.Body.Close()
			}
			return nil
		},
		func() error { // a TLS client that does not trust the certificate
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost"})
			if err == nil {
				c.Close()
				return fmt.Errorf("a client without the certificate completed the handshake")
			}
			return nil
		},
		func() error { // connect and close
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		},
	}
	var wg sync.WaitGroup
	errs := make(chan error, perKind*len(kinds))
	for _, k := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perKind {
				if err := k(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, _ := pinnedClient(t, fp)
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatalf("a real client after the flood: %v", err)
	}
	resp.Body.Close()
	// The server logs a handshake failure once its connection's goroutine sees it.
	time.Sleep(200 * time.Millisecond)
	logs := g.logs.String()
	if n := strings.Count(logs, "TLS handshake error"); n < 1 || n > 2 {
		t.Errorf("%d junk connections left %d handshake lines in the log; want 1 or 2:\n%.2000s", perKind*len(kinds), n, logs)
	}
	t.Logf("%d junk connections: %d log lines in all", perKind*len(kinds), strings.Count(logs, "\n"))
}
