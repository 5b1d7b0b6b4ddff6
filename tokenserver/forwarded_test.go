package tokenserver

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// The launcher's TLS hop (Slurm: the server on a compute node speaks TLS, the launcher
// terminates it and gives the browser http://127.0.0.1:PORT): the browser's Origin is
// http although the server sees TLS. With the launcher's server name the gate compares
// Origin with http; without it (a browser speaking TLS to us itself) with https, as
// before. A page of another port stays refused either way.
func TestForwardedTLSOrigin(t *testing.T) {
	cfg, fp, err := SelfSignedTLS()
	if err != nil {
		t.Fatal(err)
	}
	g := newGate(t, func(o *Options) {
		o.TLS = cfg
		o.App = echoWebSocket(t, nil)
	})
	base := g.served()
	port := base[strings.LastIndexByte(base, ':')+1:]
	c, clientCfg := pinnedClient(t, fp)
	clientCfg.ServerName = ForwardedServerName

	// Logging in through the hop: the cookie is the TLS one (Secure, __Host-); Chromium
	// keeps such cookies on http://127.0.0.1 (checked in e2e).
	r, _ := http.NewRequest("GET", base+"/?token="+g.token, nil)
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, _ := get(t, c, r)
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !strings.HasPrefix(cs[0].Name, "__Host-tether-") || !cs[0].Secure {
		t.Fatalf("login through the hop: %d %v", resp.StatusCode, cs)
	}
	cookie := cs[0].Name + "=" + cs[0].Value

	dial := func(serverName, origin string) (int, error) {
		cc := clientCfg.Clone()
		cc.ServerName = serverName
		d := websocket.Dialer{TLSClientConfig: cc}
		h := http.Header{"Cookie": {cookie}, "Origin": {origin}}
		conn, resp, err := d.Dial("wss://127.0.0.1:"+port+"/ws", h)
		if conn != nil {
			echoOnce(t, conn)
			conn.Close()
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	tests := []struct {
		name, serverName, origin string
		want                     int
	}{
		{"hop, the browser's http origin", ForwardedServerName, "http://127.0.0.1:" + port, http.StatusSwitchingProtocols},
		{"hop, an https origin", ForwardedServerName, "https://127.0.0.1:" + port, http.StatusForbidden},
		{"hop, another port's page", ForwardedServerName, "http://127.0.0.1:1", http.StatusForbidden},
		{"direct TLS, https origin", "localhost", "https://127.0.0.1:" + port, http.StatusSwitchingProtocols},
		{"direct TLS, http origin", "localhost", "http://127.0.0.1:" + port, http.StatusForbidden},
	}
	for _, tt := range tests {
		if got, err := dial(tt.serverName, tt.origin); got != tt.want {
			t.Errorf("for %s (SNI %s, Origin %s), got %d (%v); want %d", tt.name, tt.serverName, tt.origin, got, err, tt.want)
		}
	}

	// Unsafe methods with the cookie follow the same scheme.
	post := func(serverName, origin string) int {
		tr := &http.Transport{TLSClientConfig: clientCfg.Clone()}
		tr.TLSClientConfig.ServerName = serverName
		defer tr.CloseIdleConnections()
		r, _ := http.NewRequest("POST", base+"/api", strings.NewReader("x"))
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Origin", origin)
		resp, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(ForwardedServerName, "http://127.0.0.1:"+port); got != http.StatusOK {
		t.Errorf("POST through the hop with the browser's origin: %d; want 200", got)
	}
	if got := post("localhost", "http://127.0.0.1:"+port); got != http.StatusForbidden {
		t.Errorf("POST over direct TLS with an http origin: %d; want 403", got)
	}
}

// The scheme is https for the launcher's server name with a Host that is not loopback
// (an --allow-host name), and the name itself cannot be allowed.
func TestForwardedServerNameNeedsLoopbackHost(t *testing.T) {
	r := req("GET", "/")
	r.TLS = &tls.ConnectionState{ServerName: ForwardedServerName}
	if got := BrowserScheme(r); got != "http" {
		t.Errorf("loopback Host through the hop: %q; want http", got)
	}
	r.Host = "box.example:8888"
	if got := BrowserScheme(r); got != "https" {
		t.Errorf("non-loopback Host with the hop's name: %q; want https", got)
	}
	r.TLS = nil
	if got := BrowserScheme(r); got != "http" {
		t.Errorf("plain HTTP: %q", got)
	}
	if _, err := New(Options{Token: strings.Repeat("a", 43), App: http.NotFoundHandler(), AllowHosts: []string{ForwardedServerName}}); err == nil {
		t.Error("the launcher's server name was accepted as an allowed host")
	}
}
