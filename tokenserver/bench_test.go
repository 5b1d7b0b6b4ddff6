package tokenserver

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
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
