package tokenserver

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Benchmarks of small requests: the gate alone in process, and the whole path over
// loopback (client → gate → proxy → app), against the app reached directly.
//
//	go test -run='^$' -bench=. -benchmem ./tokenserver/

var smallApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
})

func benchServer(b *testing.B, app http.Handler) (*Server, string) {
	b.Helper()
	tok, _ := NewToken()
	s, err := New(Options{Token: tok, SessionID: "bench", App: app})
	if err != nil {
		b.Fatal(err)
	}
	return s, tok
}

func BenchmarkGateServeHTTP(b *testing.B) {
	s, tok := benchServer(b, smallApp)
	r := req("GET", "/x")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req("GET", "/?token="+tok))
	ck := w.Result().Cookies()[0]
	cases := map[string]func(*http.Request){
		"bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) },
		"cookie": func(r *http.Request) {
			r.Header.Set("Cookie", "_xsrf=abc; "+ck.Name+"="+ck.Value+"; other=1")
		},
		"none-401": func(*http.Request) {},
	}
	for name, set := range cases {
		b.Run(name, func(b *testing.B) {
			rr := r.Clone(r.Context())
			set(rr)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, rr)
			}
		})
	}
}

// loopbackClient keeps many connections alive, as a browser through the tunnel would.
func loopbackClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func runParallel(b *testing.B, c *http.Client, url string, set func(*http.Request)) {
	b.Helper()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, _ := http.NewRequest("GET", url, nil)
			set(r)
			resp, err := c.Do(r)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkGateProxy(b *testing.B) {
	for _, network := range []string{"tcp", "unix"} {
		up := startBackend(b, network, smallApp)
		s, tok := benchServer(b, NewProxy(up, nil))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		serve(b, s, ln)
		base := "http://" + ln.Addr().String()
		w := httptest.NewRecorder()
		lr := req("GET", "/?token="+tok)
		lr.Host = ln.Addr().String()
		s.ServeHTTP(w, lr)
		ck := w.Result().Cookies()[0]
		c := loopbackClient(b)
		if network == "tcp" {
			b.Run("direct-app-no-gate", func(b *testing.B) {
				direct := "http://" + up.Address
				runParallel(b, c, direct+"/x", func(*http.Request) {})
			})
		}
		b.Run(network+"-upstream/bearer", func(b *testing.B) {
			runParallel(b, c, base+"/x", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
		})
		b.Run(network+"-upstream/cookie", func(b *testing.B) {
			runParallel(b, c, base+"/x", func(r *http.Request) {
				r.Header.Set("Cookie", "_xsrf=abc; "+ck.Name+"="+ck.Value)
			})
		})
	}
}

// The cost of keeping the app's secret out of bodies: one download at a time through
// the gate and proxy (Unix-socket app), with and without Upstream.Secrets, for a large
// binary file, an HTML page and a JSON document full of escapes. Each body holds the
// secret once per 64 KiB.
func BenchmarkProxyBody(b *testing.B) {
	const secret = "AppSecret_0123456789abcdefghijklmnopqrstuvw"
	bodies := map[string]struct {
		ctype string
		body  []byte
	}{
		"binary-8MiB": {"application/octet-stream", benchBody(8<<20, func(i int) byte { return byte(i*7919 + i>>8) }, secret)},
		"html-1MiB":   {"text/html; charset=utf-8", benchBody(1<<20, func(i int) byte { return "<a href=\"/x?a=1&amp;b=2\">link</a> text\n"[i%38] }, secret)},
		"json-1MiB":   {"application/json", benchBody(1<<20, func(i int) byte { return `{"text": "line\nwith \"quotes\" \u00e9"}, `[i%40] }, secret)},
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := bodies[r.URL.Path[1:]]
		w.Header().Set("Content-Type", c.ctype)
		w.Write(c.body)
	})
	for _, withSecret := range []bool{false, true} {
		up := startBackend(b, "unix", app)
		if withSecret {
			up.Secrets = []string{secret}
		}
		s, tok := benchServer(b, NewProxy(up, nil))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		serve(b, s, ln)
		c := loopbackClient(b)
		for _, name := range []string{"binary-8MiB", "html-1MiB", "json-1MiB"} {
			label := "no-secret"
			if withSecret {
				label = "secret"
			}
			b.Run(name+"/"+label, func(b *testing.B) {
				b.SetBytes(int64(len(bodies[name].body)))
				for b.Loop() {
					r, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/"+name, nil)
					r.Header.Set("Authorization", "Bearer "+tok)
					resp, err := c.Do(r)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}

// benchBody is n bytes from fill with secret written every 64 KiB.
func benchBody(n int, fill func(int) byte, secret string) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = fill(i)
	}
	for at := 1000; at+len(secret) < n; at += 64 << 10 {
		copy(p[at:], secret)
	}
	return p
}

// The scrubbing reader alone, in memory: what it costs per byte.
func BenchmarkScrubReader(b *testing.B) {
	const secret = "AppSecret_0123456789abcdefghijklmnopqrstuvw"
	s := newScrubber([]string{secret})
	cases := []struct {
		name string
		fill bool
		body []byte
	}{
		{"binary", true, benchBody(8<<20, func(i int) byte { return byte(i*7919 + i>>8) }, secret)},
		{"html", false, benchBody(1<<20, func(i int) byte { return "<a href=\"/x?a=1&amp;b=2\">link</a> text\n"[i%38] }, secret)},
		{"json", false, benchBody(1<<20, func(i int) byte { return `{"text": "line\nwith \"quotes\" \u00e9"}, `[i%40] }, secret)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				z := newScrubReader(s, io.NopCloser(bytes.NewReader(c.body)), c.fill)
				io.CopyBuffer(io.Discard, struct{ io.Reader }{z}, make([]byte, 128<<10))
			}
		})
	}
}

// WebSocket round trips through the gate and proxy (1 KiB text messages echoed by the
// app), with and without Upstream.Secrets: the cost of reading the app's frames.
func BenchmarkProxyWebSocket(b *testing.B) {
	const secret = "AppSecret_0123456789abcdefghijklmnopqrstuvw"
	msg := bytes.Repeat([]byte(`{"line": "output\n", "n": 1}, `), 1024/30)
	for _, withSecret := range []bool{false, true} {
		up := startBackend(b, "unix", echoWebSocket(b, nil))
		label := "no-secret"
		if withSecret {
			up.Secrets = []string{secret}
			label = "secret"
		}
		s, tok := benchServer(b, NewProxy(up, nil))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		serve(b, s, ln)
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial("ws://"+ln.Addr().String()+"/ws", http.Header{"Authorization": {"token " + tok}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(label, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					b.Fatal(err)
				}
				if _, got, err := c.ReadMessage(); err != nil || len(got) != len(msg) {
					b.Fatalf("echo: %d bytes, %v", len(got), err)
				}
			}
		})
		c.Close()
	}
}
