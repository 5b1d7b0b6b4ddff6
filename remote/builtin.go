package remote

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/tokenserver"
)

// The built-in app, served when serve gets no COMMAND: a page showing the session id,
// the host and the uptime, kept current over a WebSocket. It runs behind the same
// gate as any app, and checks the Origin of WebSocket handshakes itself as well.

type builtinApp struct {
	id, host, base string
	started        time.Time
	activity       func()
	upgrader       websocket.Upgrader
}

func newBuiltinApp(id, host, base string, started time.Time, activity func()) http.Handler {
	if activity == nil {
		activity = func() {}
	}
	b := &builtinApp{id: id, host: host, base: base, started: started, activity: activity}
	b.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      sameOrigin,
	}
	return b
}

// sameOrigin accepts a WebSocket handshake only from a page of this very origin:
// an Origin header must be present and equal the request's scheme, host and port.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	// The browser's scheme: http through the launcher's TLS hop (see
	// tokenserver.ForwardedServerName), https over TLS otherwise.
	return u.Scheme == tokenserver.BrowserScheme(r) && strings.EqualFold(u.Host, r.Host)
}

func (b *builtinApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case b.base:
		h.Set("Content-Type", "text/html; charset=utf-8")
		pageTemplate.Execute(w, b.status())
	case b.base + "app.js":
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		fmt.Fprint(w, pageScript)
	case b.base + "app.css":
		h.Set("Content-Type", "text/css; charset=utf-8")
		fmt.Fprint(w, pageStyle)
	case b.base + "ws":
		b.serveWebSocket(w, r)
	default:
		http.NotFound(w, r)
	}
}

type builtinStatus struct {
	Session string `json:"session"`
	Host    string `json:"host"`
	Uptime  string `json:"uptime"`
	Echo    string `json:"echo,omitempty"`
}

func (b *builtinApp) status() builtinStatus {
	return builtinStatus{Session: b.id, Host: b.host, Uptime: time.Since(b.started).Round(time.Second).String()}
}

// serveWebSocket answers each text message with the session's status and the message
// echoed.
func (b *builtinApp) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	c, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer c.Close()
	c.SetReadLimit(4096)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Minute))
		typ, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		b.activity()
		if typ != websocket.TextMessage {
			continue
		}
		st := b.status()
		st.Echo = string(msg)
		out, _ := json.Marshal(st)
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, out); err != nil {
			return
		}
	}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tether session {{.Session}}</title>
<link rel="stylesheet" href="app.css"></head>
<body><h1>tether</h1>
<p>This is tether's built-in app: the guarded server is up, and you reached it through its gate.</p>
<dl>
<dt>session</dt><dd id="session">{{.Session}}</dd>
<dt>host</dt><dd id="host">{{.Host}}</dd>
<dt>uptime</dt><dd id="uptime">{{.Uptime}}</dd>
<dt>websocket</dt><dd id="ws">connecting…</dd>
</dl>
<p>Put your own app here: <code>tether launch HOST jupyter</code> (see <code>tether apps</code>) or <code>tether launch HOST -- COMMAND</code> from your laptop, <code>tether serve -- COMMAND</code> on this machine.</p>
<script src="app.js"></script>
</body></html>
`))

const pageScript = `"use strict";
(function () {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + location.pathname.replace(/[^/]*$/, "") + "ws";
  const state = document.getElementById("ws");
  let ws;
  function connect() {
    ws = new WebSocket(url);
    ws.onopen = function () { state.textContent = "connected"; ws.send("ping"); };
    ws.onmessage = function (e) {
      const st = JSON.parse(e.data);
      document.getElementById("uptime").textContent = st.uptime;
    };
    ws.onclose = function () { state.textContent = "disconnected"; setTimeout(connect, 2000); };
  }
  connect();
  setInterval(function () { if (ws && ws.readyState === 1) ws.send("ping"); }, 1000);
})();
`

const pageStyle = `body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 40em; color: #222; }
dl { display: grid; grid-template-columns: 8em 1fr; gap: .3em 1em; }
dt { font-weight: bold; } dd { margin: 0; font-family: monospace; }
`
