package tokenserver

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The Host allowlist, checked before authentication: loopback names with any port and
// the allowed hosts pass; look-alikes, other hosts, an empty Host fail. Every
// request carries a valid Authorization header, so only the Host can fail.
func TestHostAllowlist(t *testing.T) {
	g := newGate(t, func(o *Options) { o.AllowHosts = []string{"myhost.example", "10.1.2.3"} })
	tests := []struct {
		host string
		want int
	}{
		// Loopback names pass with any port, since the forwarded port differs.
		{"localhost:8888", 200},
		{"localhost:1", 200},
		{"localhost:65535", 200},
		{"localhost", 200},
		{"LocalHost:8888", 200},
		{"127.0.0.1:54321", 200},
		{"127.0.0.1", 200},
		{"127.5.6.7:80", 200},
		{"[::1]:9", 200},
		{"[::1]", 200},
		{"myhost.example:8443", 200}, // --allow-host, any port
		{"MYHOST.example", 200},
		{"10.1.2.3:80", 200},
		// Other hosts, and look-alikes of loopback names.
		{"evil.example.com", 403},
		{"localhost.evil.com", 403},
		{"localhost.evil.com:8888", 403},
		{"127.0.0.1.nip.io", 403},
		{"127.0.0.1.nip.io:8888", 403},
		{"evil.com:8888", 403},
		{"", 403},
		{"localhost:", 403},
		{"localhost:0", 403},
		{"localhost:08888", 403},
		{"localhost:65536", 403},
		{"localhost:88x", 403},
		{"localhost.", 403},
		{"localhost.:8888", 403},
		{"user@localhost:8888", 403},
		{"localhost:8888@evil.com", 403},
		{"localhost:8888:8888", 403},
		{"::1", 403},
		{"[::1", 403},
		{"[::1]x", 403},
		{"[::ffff:127.0.0.1]:80", 403},
		{"[fe80::1%25lo]:80", 403},
		{"0x7f.0.0.1", 403},
		{"2130706433", 403},
		{"127.1", 403},
		{"0.0.0.0:8888", 403},
		{"sub.myhost.example", 403},
		{"myhost.example.evil.com", 403},
		{"10.1.2.4", 403},
		{"localhost/evil", 403},
		{"localhost evil", 403},
	}
	for _, tt := range tests {
		r := req("GET", "/lab", "Authorization", "Bearer "+g.token)
		r.Host = tt.host
		before := g.app.count()
		w := g.do(r)
		if w.Code != tt.want {
			t.Errorf("for Host %q, got %d; want %d", tt.host, w.Code, tt.want)
		}
		if tt.want == 403 {
			if g.app.count() != before {
				t.Errorf("for Host %q, the app was reached", tt.host)
			}
			if sc := w.Header().Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("for Host %q, a 403 set a cookie", tt.host)
			}
			// A fixed text: nothing of the request (no Host, path or token echoed).
			if body := w.Body.String(); body != textHost {
				t.Errorf("for Host %q, the body is %q; want the fixed text", tt.host, body)
			}
		}
	}
}

// With the token in the URL: a bad Host never trades a token for a cookie.
func TestBadHostNoCookieEvenWithQueryToken(t *testing.T) {
	g := newGate(t, nil)
	r := req("GET", "/?token="+g.token, "Sec-Fetch-Mode", "navigate")
	r.Host = "evil.example.com"
	w := g.do(r)
	if w.Code != 403 || len(w.Header().Values("Set-Cookie")) > 0 || w.Header().Get("Location") != "" {
		t.Fatalf("got %d, cookies %q, Location %q; want a bare 403", w.Code, w.Header().Values("Set-Cookie"), w.Header().Get("Location"))
	}
}

// rawRequest writes a raw HTTP/1.1 request to a served gate and returns the status.
func rawRequest(t *testing.T, base, raw string) int {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Duplicate Host headers are refused (net/http answers 400 before the gate).
// An absolute-form target is judged by its own host, not the Host header.
func TestRawHostTricks(t *testing.T) {
	g := newGate(t, nil)
	base := g.served()
	auth := "Authorization: Bearer " + g.token + "\r\n"
	tests := []struct {
		name, raw string
		want      int
	}{
		{"control", "GET /x HTTP/1.1\r\nHost: localhost\r\n" + auth + "\r\n", 200},
		{"item2-duplicate-host", "GET /x HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n" + auth + "\r\n", 400},
		{"item2-duplicate-host-both-good", "GET /x HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n" + auth + "\r\n", 400},
		{"item2-no-host-http10", "GET /x HTTP/1.0\r\n" + auth + "\r\n", 403},
		{"item3-absolute-form", "GET http://evil.example/ HTTP/1.1\r\nHost: localhost\r\n" + auth + "\r\n", 403},
		{"item3-absolute-form-port", "GET http://evil.example:8888/ HTTP/1.1\r\nHost: localhost:8888\r\n" + auth + "\r\n", 403},
		{"absolute-form-loopback", "GET http://localhost:8888/x HTTP/1.1\r\nHost: evil.example\r\n" + auth + "\r\n", 200},
		{"connect", "CONNECT localhost:22 HTTP/1.1\r\nHost: localhost:22\r\n" + auth + "\r\n", 405},
	}
	for _, tt := range tests {
		before := g.app.count()
		if got := rawRequest(t, base, tt.raw); got != tt.want {
			t.Errorf("for %s, got %d; want %d", tt.name, got, tt.want)
		}
		if tt.want != 200 && g.app.count() != before {
			t.Errorf("for %s, the app was reached", tt.name)
		}
	}
}

// A WebSocket handshake with a bad Host gets 403 and never a 101, even with a
// valid token and a matching Origin.
func TestWebSocketBadHost(t *testing.T) {
	g := newGate(t, nil)
	g.app.handler = echoWebSocket(t, nil)
	base := g.served()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	for _, host := range []string{"evil.example", "evil.example:" + strings.Split(base, ":")[2], "localhost.evil.com"} {
		h := http.Header{"Host": {host}, "Origin": {"http://" + host}, "Authorization": {"Bearer " + g.token}}
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
		if err == nil {
			conn.Close()
			t.Errorf("for Host %q, the WebSocket opened", host)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("for Host %q, got %v (%v); want 403", host, resp, err)
		}
	}
	if g.app.count() != 0 {
		t.Errorf("the app saw %d requests; want 0", g.app.count())
	}
}
