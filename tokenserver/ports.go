package tokenserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Secondary ports: the other servers a session's user runs on this machine's loopback
// (a Dask dashboard, TensorBoard, Bokeh started from inside a notebook), reached
// through the same gate as the app, behind the same token and cookie:
//
//	{BaseURL}proxy/PORT/PATH           → PORT gets /PATH (the prefix stripped; it is in X-Forwarded-Prefix)
//	{BaseURL}proxy/absolute/PORT/PATH  → PORT gets the whole path, prefix included
//	{BaseURL}absproxy/PORT/PATH        → the same, in code-server's spelling
//	{BaseURL}_tether/forward/PORT      → a raw TCP stream to PORT (`tether forward`)
//
// These are jupyter-server-proxy's URL forms, less its proxy/HOST:PORT/, and
// code-server's (its /proxy/PORT/ is the first; its /absproxy/PORT/ is taken here too,
// or code-server would reach any user's port there, unchecked): the request
// names a port number and nothing else, never a host (jupyter-server-proxy's SSRF,
// CVE-2022-21697), and the gate dials only what Ports.Dial dials. Which ports may be
// reached is Ports' to decide (the remote side: a listener of the session's own user,
// each connection judged before a byte is sent on it). Requests reach a port after the
// same Host, cross-origin and token checks as the app's, with our credentials stripped;
// nothing of the app's own (its injected secret) goes to them.

// ForwardProtocol is the Upgrade token of a forward stream: `GET
// {BaseURL}_tether/forward/PORT` with `Connection: Upgrade`, `Upgrade: tether-forward`
// and the token in `Authorization` is answered 101 and becomes a raw byte stream to
// PORT. The same GET without Upgrade only checks: 200 when PORT may be reached now.
const ForwardProtocol = "tether-forward"

// forwardPrefix is where forward streams live, under BaseURL.
const forwardPrefix = ReservedPrefix + "forward/"

// Ports reaches this machine's other loopback ports for the gate (Options.Ports).
type Ports struct {
	// Dial connects to port on a loopback address of its choosing and judges the
	// socket at the other end before returning: nothing has been sent on a connection
	// it refuses. An error that is a *PortError is shown to the client as it is; any
	// other is a 502.
	Dial func(ctx context.Context, port int) (net.Conn, error)
	// Check tells, without connecting, whether port may be reached now: nil, or
	// (usually) a *PortError. `tether forward` asks before it listens locally.
	Check func(port int) error
	// LeaveProxyToApp hands {BaseURL}proxy/ and {BaseURL}absproxy/ to the App like any
	// other path (the app's own, e.g. jupyter-server-proxy's) instead of serving secondary ports
	// there; forward streams are served either way.
	LeaveProxyToApp bool
}

// PortError is a refusal of a secondary port, shown to the client as
// "STATUS TEXT: Msg" (Msg must hold nothing the request chose beyond the port number),
// or, to a client that accepts application/json (the launcher), as Detail when set: a
// JSON document the refusal's author gives for a program to decide by, with the same
// restriction.
type PortError struct {
	Status int
	Msg    string
	Detail []byte
}

func (e *PortError) Error() string { return e.Msg }

// text is the one-line body of the answer.
func (e *PortError) text() string {
	return strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Msg + "\n"
}

const (
	textPortPath = "400 Bad Request: proxy/ takes a port number of this machine's loopback, as proxy/PORT/, proxy/absolute/PORT/ or absproxy/PORT/ (1-65535; no host, no dot segments).\n"
	textFwdPath  = "400 Bad Request: a forward stream is " + forwardPrefix + "PORT (1-65535).\n"
	textFwdAuth  = "403 Forbidden: forward streams take the token in an Authorization header only (tether forward sends it).\n"
	textFwdProto = "400 Bad Request: a forward stream needs Connection: Upgrade and Upgrade: " + ForwardProtocol + ".\n"
	textPort502  = "502 Bad Gateway: the program on that port is not answering, or it closed the connection.\n"
	textFwdOK    = "200 OK: the port may be forwarded.\n"
)

// portRoute is a request's secondary port, parsed from its escaped path.
type portRoute struct {
	port     int
	absolute bool   // proxy/absolute/PORT or absproxy/PORT: the whole path goes to the port
	prefix   string // the escaped path up to and including PORT
	rest     string // the escaped path after PORT: "" or "/…"
}

type portRouteKey struct{}

// under reports whether the decoded path p, raw or once cleaned, is {base}name or
// below, so that no spelling of such a path goes elsewhere.
func (s *Server) under(p, name string) bool {
	in := func(p string) bool {
		rest, ok := strings.CutPrefix(p, s.base)
		return ok && (rest == name || strings.HasPrefix(rest, name+"/"))
	}
	return in(p) || in(path.Clean("/"+p))
}

// servesProxy reports whether {base}proxy/ and {base}absproxy/ are ours (secondary
// ports) rather than the app's.
func (s *Server) servesProxy() bool { return s.ports != nil && !s.ports.LeaveProxyToApp }

// isPortPath reports whether p (decoded, in any spelling) is under {base}proxy/ or
// {base}absproxy/.
func (s *Server) isPortPath(p string) bool { return s.under(p, "proxy") || s.under(p, "absproxy") }

// isForward reports whether p is a forward stream's path (in any spelling).
func (s *Server) isForward(p string) bool {
	return s.ports != nil && s.under(p, strings.TrimSuffix(forwardPrefix, "/"))
}

// parsePort reads a port number written plainly: 1 to 5 ASCII digits, no sign, no
// leading zero, 1-65535.
func parsePort(t string) (int, bool) {
	if len(t) == 0 || len(t) > 5 || t[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// hasDotSegment reports whether an escaped path has a "." or ".." segment, written
// plainly or percent-encoded, or cannot be decoded.
func hasDotSegment(escaped string) bool {
	for _, seg := range strings.Split(escaped, "/") {
		d, err := url.PathUnescape(seg)
		if err != nil || d == "." || d == ".." {
			return true
		}
	}
	return false
}

// parsePortRoute parses {base}proxy/PORT[/…], {base}proxy/absolute/PORT[/…] or
// {base}absproxy/PORT[/…] from an escaped path, strictly: the prefix written plainly,
// the port as parsePort reads it, no dot segment anywhere.
func (s *Server) parsePortRoute(escaped string) (portRoute, bool) {
	if hasDotSegment(escaped) {
		return portRoute{}, false
	}
	var rt portRoute
	rest, ok := strings.CutPrefix(escaped, s.base+"proxy/")
	if ok {
		if r, abs := strings.CutPrefix(rest, "absolute/"); abs {
			rt.absolute, rest = true, r
		}
	} else if rest, ok = strings.CutPrefix(escaped, s.base+"absproxy/"); ok {
		rt.absolute = true
	} else {
		return portRoute{}, false
	}
	num, after := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		num, after = rest[:i], rest[i:]
	}
	port, ok := parsePort(num)
	if !ok {
		return portRoute{}, false
	}
	rt.port, rt.rest = port, after
	rt.prefix = escaped[:len(escaped)-len(after)]
	return rt, true
}

// servePort answers an authenticated, stripped request under {base}proxy/ or
// {base}absproxy/.
func (s *Server) servePort(w *appWriter, r *http.Request) {
	rt, ok := s.parsePortRoute(r.URL.EscapedPath())
	if !ok {
		s.refuse(w, r, http.StatusBadRequest, "malformed secondary port path", textPortPath)
		return
	}
	// proxy/PORT without its slash: relative links in the page would miss the prefix.
	if rt.rest == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isUpgrade(r) {
		loc := rt.prefix + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		s.writeText(w, http.StatusFound, "302 Found\n")
		return
	}
	ctx := context.WithValue(r.Context(), portRouteKey{}, rt)
	w.toApp()
	s.portProxy.ServeHTTP(w, r.WithContext(ctx))
	if w.status >= 500 {
		s.log.Warn("secondary port error", "status", w.status, "port", rt.port, "method", r.Method)
	}
}

// newPortProxy is the reverse proxy to secondary ports: one Transport whose
// connections are keyed by port (the URL's host names the port; Ports.Dial picks the
// address), no compression, no proxy from the environment, upgrades passed through.
func (s *Server) newPortProxy() *httputil.ReverseProxy {
	p := s.ports
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			_, ps, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			port, ok := parsePort(ps)
			if !ok {
				return nil, errors.New("bad port")
			}
			return p.Dial(ctx, port)
		},
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			rt := pr.In.Context().Value(portRouteKey{}).(portRoute)
			out := pr.Out.URL
			out.Scheme, out.Host = "http", net.JoinHostPort("127.0.0.1", strconv.Itoa(rt.port))
			if !rt.absolute {
				esc := rt.rest
				if esc == "" {
					esc = "/"
				}
				out.Path, _ = url.PathUnescape(esc) // parsePortRoute decoded it already
				out.RawPath = esc
			}
			// The browser's Host, which passed the allowlist: an app comparing a
			// WebSocket's Origin with Host (Bokeh, code-server) sees the browser's view.
			pr.Out.Host = pr.In.Host
			// jupyter-server-proxy's headers saying where the port is mounted, set by
			// us only (never taken from the client).
			for _, h := range []string{"X-Forwarded-Prefix", "X-Forwarded-Context", "X-Proxycontextpath"} {
				pr.Out.Header.Del(h)
				if !rt.absolute {
					pr.Out.Header.Set(h, rt.prefix)
				}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			rt, _ := resp.Request.Context().Value(portRouteKey{}).(portRoute)
			if !rt.absolute && rt.prefix != "" {
				rewriteLocation(resp, rt.prefix)
			}
			return nil
		},
		Transport:     transport,
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      newErrorLog(s.log, "secondary port proxy"),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			rt, _ := r.Context().Value(portRouteKey{}).(portRoute)
			s.portFailed(w, r, rt.port, err)
		},
	}
}

// rewriteLocation keeps a redirect of a port's program under its prefix: a
// path-absolute Location (/status, which the program means under where it thinks it
// lives, /) becomes prefix/status. Absolute URLs and relative references are left alone.
func rewriteLocation(resp *http.Response, prefix string) {
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
		return
	}
	resp.Header.Set("Location", prefix+loc)
}

// portFailed answers a request whose port could not be reached: a *PortError as it
// says, anything else 502; logged with the port and the reason.
func (s *Server) portFailed(w http.ResponseWriter, r *http.Request, port int, err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	var pe *PortError
	switch {
	case errors.As(err, &pe):
		s.log.Warn("secondary port refused", "port", port, "status", pe.Status, "reason", truncate(pe.Msg, 300), "method", r.Method)
		if pe.Detail != nil && strings.Contains(r.Header.Get("Accept"), "application/json") {
			h.Set("Content-Type", "application/json")
			setOurHeaders(h, cspText)
			h.Set("Content-Length", strconv.Itoa(len(pe.Detail)))
			w.WriteHeader(pe.Status)
			w.Write(pe.Detail)
			return
		}
		s.writeText(w, pe.Status, pe.text())
	case errors.Is(err, context.Canceled):
		s.log.Debug("secondary port: client went away", "port", port)
		s.writeText(w, http.StatusBadGateway, textPort502)
	default:
		s.log.Warn("secondary port unreachable", "port", port, "error", truncate(err.Error(), 300), "method", r.Method)
		s.writeText(w, http.StatusBadGateway, textPort502)
	}
}

// serveForward answers {base}_tether/forward/PORT, authenticated and stripped: a check
// (GET), or a raw stream (GET with Upgrade: tether-forward). Only a token in the
// Authorization header opens one: no browser needs it, and a browser cannot send the
// Upgrade header anyway.
func (s *Server) serveForward(w *appWriter, r *http.Request, c *credentials) {
	if !s.noAuth && c.authz == "" {
		s.refuse(w, r, http.StatusForbidden, "forward stream without a header token", textFwdAuth)
		return
	}
	num, ok := strings.CutPrefix(r.URL.EscapedPath(), s.base+forwardPrefix)
	port, ok2 := parsePort(num)
	if !ok || !ok2 {
		s.refuse(w, r, http.StatusBadRequest, "malformed forward path", textFwdPath)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		return
	}
	up := r.Header.Get("Upgrade")
	if up == "" && r.Header.Get("Sec-WebSocket-Key") == "" {
		if err := s.ports.Check(port); err != nil {
			s.portFailed(w, r, port, err)
			return
		}
		s.writeText(w, http.StatusOK, textFwdOK)
		return
	}
	if !strings.EqualFold(strings.TrimSpace(up), ForwardProtocol) || !headerHasWord(r.Header, "Connection", "upgrade") {
		s.refuse(w, r, http.StatusBadRequest, "bad forward upgrade", textFwdProto)
		return
	}
	dctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	backend, err := s.ports.Dial(dctx, port)
	cancel()
	if err != nil {
		s.portFailed(w, r, port, err)
		return
	}
	client, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		backend.Close()
		s.log.Warn("forward stream: cannot take over the connection", "port", port, "error", err.Error())
		return
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + ForwardProtocol + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		backend.Close()
		client.Close()
		return
	}
	s.log.Info("forward stream opened", "port", port)
	// Bytes the client sent after its request are in the server's reader.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := backend.Write(b); err != nil {
			backend.Close()
			client.Close()
			return
		}
		brw.Reader.Discard(n)
	}
	splice(client, backend)
	client.Close()
	backend.Close()
}

// headerHasWord reports whether a comma-separated header holds word (any case).
func headerHasWord(h http.Header, name, word string) bool {
	for _, v := range h.Values(name) {
		for _, w := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(w), word) {
				return true
			}
		}
	}
	return false
}

// splice copies a→b and b→a until both directions end: a clean EOF half-closes the
// other side's write end (where it can), an error closes both.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := copyBuffers.Get().(*[]byte)
		_, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, *buf)
		copyBuffers.Put(buf)
		if err != nil {
			dst.Close()
			src.Close()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			return
		}
		dst.Close()
	}
	go pipe(b, a)
	go pipe(a, b)
	wg.Wait()
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo, so that CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// ForwardPath is the path of a forward stream to port under base (a normalized
// BaseURL: "/" or "/p/").
func ForwardPath(base string, port int) string {
	return fmt.Sprintf("%s%s%d", base, forwardPrefix, port)
}
