package tokenserver

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Upstream.CheckConn judges each new backend connection before anything is sent on
// it: a refused connection carries no request (and so no injected secret) to the
// listener, the client gets the fixed 502, and the log names why without the secret.
func TestProxyCheckConnRefuses(t *testing.T) {
	backend := &recordingApp{}
	up := startBackend(t, "tcp", backend)
	up.Header = http.Header{"Authorization": {"Bearer app-secret-never-sent"}}
	var calls atomic.Int32
	up.CheckConn = func(c net.Conn) error {
		calls.Add(1)
		if c.RemoteAddr().String() != up.Address {
			t.Errorf("CheckConn got a connection to %s; want %s", c.RemoteAddr(), up.Address)
		}
		return errors.New("127.0.0.1 port is held by another user (uid 65534)")
	}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	w := g.do(req("GET", "/x", "Authorization", "token "+g.token))
	if w.Code != http.StatusBadGateway || w.Body.String() != text502 {
		t.Fatalf("got %d %q; want 502 with the fixed text", w.Code, w.Body.String())
	}
	if calls.Load() != 1 || backend.count() != 0 {
		t.Fatalf("CheckConn called %d times, the backend saw %d requests; want 1 and 0", calls.Load(), backend.count())
	}
	logs := g.logs.String()
	if !strings.Contains(logs, "uid 65534") {
		t.Errorf("the log does not say why:\n%s", logs)
	}
	mustNotContain(t, "logs", logs, "app-secret-never-sent")
}

// An accepted connection is judged once, not per request: keep-alive reuses it.
func TestProxyCheckConnOncePerConnection(t *testing.T) {
	backend := &recordingApp{}
	up := startBackend(t, "tcp", backend)
	var mu sync.Mutex
	seen := map[string]int{}
	up.CheckConn = func(c net.Conn) error {
		mu.Lock()
		defer mu.Unlock()
		seen[c.LocalAddr().String()]++
		return nil
	}
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	for range 5 {
		if w := g.do(req("GET", "/x", "Authorization", "token "+g.token)); w.Code != http.StatusOK {
			t.Fatalf("got %d %q", w.Code, w.Body.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if backend.count() != 5 || len(seen) != 1 {
		t.Fatalf("backend saw %d requests over connections %v; want 5 over one, judged once", backend.count(), seen)
	}
	for _, n := range seen {
		if n != 1 {
			t.Errorf("a connection was judged %d times", n)
		}
	}
}
