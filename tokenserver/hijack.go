package tokenserver

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// appWriter is the ResponseWriter behind every answer. It records the status (for
// logging, and to know whether a panic can still become a 500),
// and when the app takes over the connection (a WebSocket, through our proxy or its
// own upgrader) it wraps the connection so that traffic counts as activity, Shutdown
// can close it, and — when the client used the JEP 119 token subprotocol and the app
// chose no protocol — the 101 response names the bare protocol, as browsers require
// an answer to a protocol offer.
type appWriter struct {
	http.ResponseWriter
	s           *Server
	nameJupyter bool // the request offered the JEP 119 protocols
	status      int
	hijacked    bool

	// Once the answer is the app's (toApp), the Set-Cookie lines it adds that name a
	// cookie of ours (reservedCookie) are dropped: ours holds the gate's own lines.
	app  bool
	ours []string
}

// toApp marks the moment the app (or another port through the gate) takes over the
// answer. The apps of a team server share one origin, and one app's answer setting
// our session cookie (at a path of another app, say) would sign a visitor in as the
// app's author there, or out; setting the sign-in's state cookie would plant a login.
func (w *appWriter) toApp() {
	w.app = true
	w.ours = w.Header().Values("Set-Cookie")
}

// dropAppCookies removes the app's Set-Cookie lines that name a cookie of ours,
// keeping the gate's own (a refreshed session cookie). Idempotent.
func (w *appWriter) dropAppCookies() {
	if !w.app {
		return
	}
	h := w.Header()
	lines := h.Values("Set-Cookie")
	kept := make([]string, 0, len(lines))
	for _, l := range lines {
		name, _, _ := strings.Cut(l, "=")
		if reservedCookie(strings.TrimSpace(name)) && !slices.Contains(w.ours, l) {
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == len(lines) {
		return
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

func (w *appWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *appWriter) WriteHeader(code int) {
	w.dropAppCookies()
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
		if code == http.StatusSwitchingProtocols && w.nameJupyter && w.Header().Get("Sec-WebSocket-Protocol") == "" {
			w.Header().Set("Sec-WebSocket-Protocol", jupyterProtocol)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *appWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.dropAppCookies()
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush is here (not only through Unwrap) so that old code asserting http.Flusher works.
func (w *appWriter) Flush() {
	if w.status == 0 {
		w.dropAppCookies()
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *appWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	// httputil.ReverseProxy writes a 101's head itself, from this Header, after Hijack.
	w.dropAppCookies()
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	uc := &upgradedConn{Conn: conn, s: w.s}
	if w.nameJupyter || w.app {
		uc.head = &headFilter{jupyter: w.nameJupyter, dropCookies: w.app}
	}
	if !w.s.trackUpgraded(uc) {
		conn.Close()
		return nil, nil, http.ErrServerClosed
	}
	// Keep the server's reader: it may already hold bytes the client sent.
	return uc, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(uc)), nil
}

// upgradedConn is a hijacked client connection.
type upgradedConn struct {
	net.Conn
	s         *Server
	head      *headFilter // nil once the response head has gone out (or if not needed)
	closeOnce sync.Once
	closeErr  error
}

func (c *upgradedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.touch()
	}
	return n, err
}

func (c *upgradedConn) Write(p []byte) (int, error) {
	if c.head != nil {
		out, done := c.head.feed(p)
		if done {
			c.head = nil
		}
		if out == nil && done {
			// A head too long to filter, from an app that must not set our cookies.
			c.Close()
			return 0, net.ErrClosed
		}
		if len(out) > 0 {
			if _, err := c.Conn.Write(out); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.s.touch()
	}
	return n, err
}

// CloseWrite lets the proxy half-close, as it would on the bare connection.
func (c *upgradedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *upgradedConn) Close() error {
	c.closeOnce.Do(func() {
		if c.head != nil && len(c.head.buf) > 0 {
			c.Conn.Write(c.head.buf) // an unfinished head: pass it on as it is
		}
		c.closeErr = c.Conn.Close()
		c.s.untrackUpgraded(c)
	})
	return c.closeErr
}

// headFilter holds back the response head written to a hijacked connection until it
// is complete, then (jupyter) adds `Sec-WebSocket-Protocol:
// v1.token.websocket.jupyter.org` to a 101 response that names no protocol and
// (dropCookies) drops the Set-Cookie lines naming a cookie of ours (see toApp:
// httputil.ReverseProxy writes a 101's head itself, after Hijack). Whatever follows
// the head passes unchanged.
type headFilter struct {
	buf         []byte
	jupyter     bool
	dropCookies bool
}

const maxHeadLen = 64 << 10

var (
	crlfcrlf       = []byte("\r\n\r\n")
	protocolHeader = []byte("\r\nsec-websocket-protocol:")
)

// feed takes the next bytes written; it returns what to send now and whether the head
// is finished (the filter is then no longer needed).
func (f *headFilter) feed(p []byte) (out []byte, done bool) {
	f.buf = append(f.buf, p...)
	end := bytes.Index(f.buf, crlfcrlf)
	if end < 0 {
		if len(f.buf) > maxHeadLen {
			if f.dropCookies {
				return nil, true // unfiltered it would pass any Set-Cookie: nothing goes
			}
			return f.buf, true
		}
		return nil, false
	}
	head, rest := f.buf[:end+2], f.buf[end+2:] // head ends with one CRLF; rest starts with the blank line
	if f.dropCookies {
		head = dropReservedSetCookie(head)
	}
	if f.jupyter && bytes.HasPrefix(head, []byte("HTTP/1.1 101")) && !bytes.Contains(bytes.ToLower(head), protocolHeader) {
		out = make([]byte, 0, len(f.buf)+64)
		out = append(out, head...)
		out = append(out, "Sec-WebSocket-Protocol: "+jupyterProtocol+"\r\n"...)
		out = append(out, rest...)
		return out, true
	}
	return append(head, rest...), true
}

// dropReservedSetCookie removes from a response head (status line and header lines,
// each ending in CRLF) the Set-Cookie lines that name a cookie of ours.
func dropReservedSetCookie(head []byte) []byte {
	out := make([]byte, 0, len(head))
	for len(head) > 0 {
		i := bytes.Index(head, []byte("\r\n"))
		if i < 0 {
			i = len(head) - 2
		}
		line := head[:i+2]
		head = head[i+2:]
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(strings.TrimSpace(string(name)), "Set-Cookie") {
			cname, _, _ := strings.Cut(strings.TrimSpace(string(value)), "=")
			if reservedCookie(strings.TrimSpace(cname)) {
				continue
			}
		}
		out = append(out, line...)
	}
	return out
}
