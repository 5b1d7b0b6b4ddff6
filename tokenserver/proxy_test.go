package tokenserver

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// NewProxy: the upstream secret replaces what the client sent; the client's Host is
// kept; hop-by-hop and X-Forwarded-* headers the client sent are not passed on; the
// body and query arrive intact; both networks work.
func TestProxyForwarding(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			backend := &recordingApp{handler: func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("X-App", "yes")
				w.Header().Add("Set-Cookie", "appcookie=1; Path=/")
				io.WriteString(w, "echo:"+string(b))
			}}
			up := startBackend(t, network, backend)
			up.Header = http.Header{"Authorization": {"token app-secret-xyz"}, "X-App-Key": {"k1", "k2"}}
			g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
			base := g.served()
			hostport := strings.TrimPrefix(base, "http://")
			ck := g.cookie(hostport)

			r, _ := http.NewRequest("POST", base+"/api/run?a=1&b=%2F", strings.NewReader("payload"))
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			r.AddCookie(&http.Cookie{Name: "_xsrf", Value: "x"})
			r.Header.Set("X-App-Key", "client-forged")
			r.Header.Set("X-Forwarded-For", "6.6.6.6")
			r.Header.Set("Forwarded", "for=6.6.6.6")
			r.Header.Set("Origin", base)
			resp, body := get(t, client(t), r)
			if resp.StatusCode != 200 || body != "echo:payload" || resp.Header.Get("X-App") != "yes" {
				t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != "appcookie" {
				t.Errorf("the app's own cookie did not come back: %v", resp.Cookies())
			}
			seen := backend.last(t)
			if seen.RequestURI != "/api/run?a=1&b=%2F" {
				t.Errorf("the app saw %q", seen.RequestURI)
			}
			if seen.Host != hostport {
				t.Errorf("the app saw Host %q; want the client's %q", seen.Host, hostport)
			}
			if got := seen.Header.Values("X-App-Key"); strings.Join(got, ",") != "k1,k2" {
				t.Errorf("X-App-Key %q; want the upstream's [k1 k2]", got)
			}
			if got := seen.Header.Get("Authorization"); got != "token app-secret-xyz" {
				t.Errorf("Authorization %q; want the upstream secret", got)
			}
			for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := seen.Header.Get(h); v != "" {
					t.Errorf("the app saw %s: %q", h, v)
				}
			}
			if got := seen.Header.Get("Cookie"); got != "_xsrf=x" {
				t.Errorf("the app saw Cookie %q; want _xsrf=x", got)
			}
		})
	}
}

// The app down: 502 with a fixed text and our security headers.
func TestProxyBackendDown(t *testing.T) {
	for _, up := range []Upstream{
		{Network: "tcp", Address: "127.0.0.1:1"},
		{Network: "unix", Address: "/nonexistent/tether-test.sock"},
		{Network: "udp", Address: "127.0.0.1:1"},
	} {
		g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
		w := g.do(req("GET", "/x", "Authorization", "Bearer "+g.token))
		if w.Code != http.StatusBadGateway || w.Body.String() != text502 {
			t.Errorf("%s %s: got %d %q", up.Network, up.Address, w.Code, w.Body.String())
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: 502 lacks security headers", up.Network)
		}
	}
}

// A streamed response (unknown length, as Jupyter's and code-server's long polls and
// event streams are) reaches the client chunk by chunk, not at the end.
func TestProxyStreams(t *testing.T) {
	release := make(chan struct{})
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	up := startBackend(t, "tcp", backend)
	g := newGate(t, func(o *Options) { o.App = NewProxy(up, o.Logger) })
	base := g.served()
	r, _ := http.NewRequest("GET", base+"/stream", nil)
	r.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := client(t).Do(r)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	_, err = io.ReadFull(resp.Body, buf)
	close(release)
	if err != nil || string(buf) != "first\n" {
		t.Fatalf("first chunk: %q, %v", buf, err)
	}
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second\n" {
		t.Errorf("rest %q", rest)
	}
}
