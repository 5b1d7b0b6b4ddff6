package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The router's paths (DESIGN.md's relay contract).
const (
	pathHost    = "/v1/host"
	pathAccept  = "/v1/accept"
	pathConnect = "/v1/connect"
)

// Close codes the router sends beyond the standard ones.
const (
	// closeReplaced: a newer host took over the portal. The old host's Listen
	// ends (it does not fight back: two hosts with one token would take turns forever).
	closeReplaced = 4001
)

// Limits bound what the router holds. Zero fields take the defaults.
type Limits struct {
	// PendingPerPortal and Pending bound the client connections waiting for their
	// host's accept, per portal and in all (defaults 64 and 4096): beyond them a
	// client gets 503.
	PendingPerPortal, Pending int
	// HostsPerAddr bounds the host control connections from one source address
	// (default 256): a client behind NAT shares its address with others.
	HostsPerAddr int
	// AcceptTimeout is how long a client waits for its host's accept (default 15 s).
	AcceptTimeout time.Duration
	// PingInterval is how often the router pings a host's control connection
	// (default 20 s); a host silent for two and a half intervals (50 s) is dropped.
	PingInterval time.Duration
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PendingPerPortal, 64)
	def(&l.Pending, 4096)
	def(&l.HostsPerAddr, 256)
	if l.AcceptTimeout <= 0 {
		l.AcceptTimeout = 15 * time.Second
	}
	if l.PingInterval <= 0 {
		l.PingInterval = 20 * time.Second
	}
	return l
}

// Server is the router, an http.Handler: hosts hold a control connection per portal
// (the newer of two wins), clients ask for a stream to their portal's host, the host
// answers with a stream of its own, and the router copies one to the other. It sees
// tokens only to verify them and never logs them.
type Server struct {
	// Key is the relay's public key: tokens must be signed by its private half.
	Key ed25519.PublicKey
	// Logf, if set, gets one line per connection: portal, the token's name, role,
	// remote address, outcome. Never a token.
	Logf func(format string, args ...any)
	// Limits bound pending connections and hosts per address.
	Limits Limits

	once     sync.Once
	lim      Limits
	mu       sync.Mutex
	closed   bool
	done     chan struct{}
	hosts    map[string]*hostConn // portal → its live host
	perAddr  map[string]int       // source address → live hosts
	pending  map[string]*pendingConn
	nPending map[string]int               // portal → pending clients
	live     map[*websocket.Conn]struct{} // every upgraded connection, for Close
	fails    failLimits                   // refused tokens per source (limit.go)
}

type hostConn struct {
	ws     *websocket.Conn
	portal string
	name   string
	addr   string
	wmu    sync.Mutex // one writer of data messages at a time
	ping   *time.Timer
}

type pendingConn struct {
	portal string
	ch     chan *websocket.Conn // the host's stream; nil if its upgrade failed; sent once when claimed
}

var (
	// controlUpgrader: small buffers (a host's control connection carries pings and
	// a few short messages) and none held while idle.
	controlUpgrader = websocket.Upgrader{
		ReadBufferSize: 256, WriteBufferSize: 256, WriteBufferPool: &sync.Pool{},
		CheckOrigin: noBrowser, HandshakeTimeout: 10 * time.Second,
	}
	// streamUpgrader: a stream carries bulk data; write buffers are lent per message.
	streamUpgrader = websocket.Upgrader{
		ReadBufferSize: 32 << 10, WriteBufferSize: MaxMessage, WriteBufferPool: writeBufferPool,
		CheckOrigin: noBrowser, HandshakeTimeout: 10 * time.Second,
	}
)

// noBrowser refuses WebSocket handshakes a web page started: the ends are not
// browsers, and a browser cannot send the Authorization header anyway.
func noBrowser(r *http.Request) bool { return r.Header.Get("Origin") == "" }

func (s *Server) init() {
	s.once.Do(func() {
		s.lim = s.Limits.withDefaults()
		s.done = make(chan struct{})
		s.hosts = map[string]*hostConn{}
		s.perAddr = map[string]int{}
		s.pending = map[string]*pendingConn{}
		s.nPending = map[string]int{}
		s.live = map[*websocket.Conn]struct{}{}
	})
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// ServeHTTP routes the three endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	if r.Method != http.MethodGet {
		refuse(w, http.StatusMethodNotAllowed, "the relay speaks WebSocket (GET) only")
		return
	}
	switch r.URL.Path {
	case pathHost:
		s.serveHost(w, r)
	case pathAccept:
		s.serveAccept(w, r)
	case pathConnect:
		s.serveConnect(w, r)
	default:
		refuse(w, http.StatusNotFound, "not a relay endpoint (the ends use /v1/host, /v1/accept and /v1/connect)")
	}
}

// refuse answers before the upgrade with one line the ends show.
func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// bearer is the token of the request's one Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// authorize verifies the request's token for role (and portal unless ""), refusing
// the request itself when it fails. A source whose tokens keep being refused gets 429
// for its refusals (limit.go); a good token from it still passes.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, role Role, portal string) (*Claims, bool) {
	addr := r.RemoteAddr
	tok, ok := bearer(r)
	var err error
	var c *Claims
	if ok {
		c, err = Verify(s.Key, tok, role, portal)
	}
	if ok && err == nil {
		return c, true
	}
	if ok && (errors.Is(err, ErrWrongRole) || errors.Is(err, ErrWrongPortal)) {
		// A genuine token, for something else: not a guess, not limited.
		msg := strings.TrimPrefix(err.Error(), "relay: ")
		s.logf("relay: %s role=%s from %s: refused: %s", r.URL.Path, role, addr, msg)
		refuse(w, http.StatusForbidden, "the relay refused the token: "+msg)
		return nil, false
	}
	limited, first, retry := s.fails.fail(sourceOf(addr), time.Now())
	if limited {
		secs := int((retry + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		refuse(w, http.StatusTooManyRequests, fmt.Sprintf("too many refused tokens from your address; try again in %d s with a valid token", max(secs, 1)))
		return nil, false
	}
	if first {
		s.logf("relay: %d tokens refused from %s in a short time; its next refusals get 429 and are not logged one by one", failBurst, hostOf(addr))
	}
	if !ok {
		s.logf("relay: %s from %s: refused: no bearer token", r.URL.Path, addr)
		refuse(w, http.StatusUnauthorized, "the relay needs a token (Authorization: Bearer)")
		return nil, false
	}
	msg := strings.TrimPrefix(err.Error(), "relay: ")
	s.logf("relay: %s role=%s from %s: refused: %s", r.URL.Path, role, addr, msg)
	refuse(w, http.StatusUnauthorized, "the relay refused the token: "+msg)
	return nil, false
}

func (s *Server) track(ws *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ws.Close()
		return false
	}
	s.live[ws] = struct{}{}
	return true
}

func (s *Server) untrack(ws *websocket.Conn) {
	s.mu.Lock()
	delete(s.live, ws)
	s.mu.Unlock()
}

// serveHost holds a host's control connection until it ends or a newer one replaces it.
func (s *Server) serveHost(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authorize(w, r, RoleHost, "")
	if !ok {
		return
	}
	addr := hostOf(r.RemoteAddr)
	s.mu.Lock()
	if s.perAddr[addr] >= s.lim.HostsPerAddr {
		s.mu.Unlock()
		s.logf("relay: host portal=%s name=%s from %s: refused: %d hosts from this address already", c.Portal, c.Name, r.RemoteAddr, s.lim.HostsPerAddr)
		refuse(w, http.StatusTooManyRequests, fmt.Sprintf("the relay holds %d hosts from your address already", s.lim.HostsPerAddr))
		return
	}
	s.perAddr[addr]++ // counted from here, so concurrent handshakes cannot overshoot
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
			delete(s.perAddr, addr)
		}
		s.mu.Unlock()
	}
	ws, err := controlUpgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // gorilla answered
	}
	if !s.track(ws) {
		release()
		return
	}
	h := &hostConn{ws: ws, portal: c.Portal, name: c.Name, addr: r.RemoteAddr}
	ws.SetReadLimit(512)
	s.mu.Lock()
	old := s.hosts[c.Portal]
	s.hosts[c.Portal] = h
	s.mu.Unlock()
	outcome := "connected"
	if old != nil {
		outcome = "connected, replacing the host from " + old.addr
		old.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeReplaced, "a newer host took over portal "+c.Portal), time.Now().Add(time.Second))
		old.ws.Close()
	}
	s.logf("relay: host portal=%s name=%s from %s: %s", c.Portal, c.Name, r.RemoteAddr, outcome)

	live := s.lim.PingInterval * 5 / 2
	ws.SetReadDeadline(time.Now().Add(live))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(live)) })
	h.ping = time.AfterFunc(s.lim.PingInterval, func() { s.pingHost(h) })

	// The read loop runs in a goroutine of its own and the handler returns: net/http
	// then lets go of the request, the response and their buffers, which an idle
	// host would otherwise hold for as long as it stays (measured: about a third of
	// an idle host's memory).
	portal, name, addr := c.Portal, c.Name, r.RemoteAddr
	go func() {
		// A host only answers pings (handled inside NextReader); anything else ends it.
		_, _, why := ws.NextReader()
		if why == nil {
			why = errors.New("the host sent a message (hosts only answer pings)")
		}
		h.ping.Stop()
		ws.Close()
		s.untrack(ws)
		s.mu.Lock()
		if s.hosts[portal] == h {
			delete(s.hosts, portal)
		}
		s.mu.Unlock()
		release()
		s.logf("relay: host portal=%s name=%s from %s: gone: %s", portal, name, addr, endReason(why))
	}()
}

// pingHost pings a host and schedules the next ping; pongs move its read deadline.
func (s *Server) pingHost(h *hostConn) {
	if err := h.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
		h.ws.Close()
		return
	}
	h.ping.Reset(s.lim.PingInterval)
}

// send writes one control message to the host.
func (h *hostConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	h.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return h.ws.WriteMessage(websocket.TextMessage, b)
}

// connectMsg is what the router tells a host: a client waits under this id.
type connectMsg struct {
	Connect string `json:"connect"`
}

// serveConnect pairs a client with its portal's live host.
func (s *Server) serveConnect(w http.ResponseWriter, r *http.Request) {
	portal := r.URL.Query().Get("portal")
	if err := CheckPortal(portal); err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	c, ok := s.authorize(w, r, RoleClient, portal)
	if !ok {
		return
	}
	who := fmt.Sprintf("client portal=%s name=%s from %s", portal, c.Name, r.RemoteAddr)
	id := newID()
	p := &pendingConn{portal: portal, ch: make(chan *websocket.Conn, 1)}
	s.mu.Lock()
	h := s.hosts[portal]
	var full string
	switch {
	case h == nil:
	case s.nPending[portal] >= s.lim.PendingPerPortal:
		full = fmt.Sprintf("%d connections to portal %s are waiting for its host already; try again shortly", s.lim.PendingPerPortal, portal)
	case len(s.pending) >= s.lim.Pending:
		full = "the relay has too many connections waiting for their hosts; try again shortly"
	default:
		s.pending[id] = p
		s.nPending[portal]++
	}
	s.mu.Unlock()
	if h == nil {
		s.logf("relay: %s: refused: no host", who)
		refuse(w, http.StatusServiceUnavailable, "no host is connected for portal "+portal)
		return
	}
	if full != "" {
		s.logf("relay: %s: refused: too many pending connections", who)
		refuse(w, http.StatusServiceUnavailable, full)
		return
	}
	// unclaim takes p back from the pending set; false: a host claimed it first, and
	// will send on p.ch.
	unclaim := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pending[id] != p {
			return false
		}
		s.dropPending(id, portal)
		return true
	}
	if err := h.send(connectMsg{Connect: id}); err != nil {
		h.ws.Close()
		if unclaim() {
			s.logf("relay: %s: refused: the host did not take the request", who)
			refuse(w, http.StatusServiceUnavailable, "no host is connected for portal "+portal)
			return
		}
	}
	timer := time.NewTimer(s.lim.AcceptTimeout)
	defer timer.Stop()
	var hostWS *websocket.Conn
	select {
	case hostWS = <-p.ch:
	case <-timer.C:
		if unclaim() {
			s.logf("relay: %s: refused: the host did not answer in time", who)
			refuse(w, http.StatusGatewayTimeout, fmt.Sprintf("the host for portal %s did not answer within %v", portal, s.lim.AcceptTimeout))
			return
		}
		hostWS = <-p.ch
	case <-r.Context().Done():
		if unclaim() {
			s.logf("relay: %s: gone before the host answered", who)
			return
		}
		hostWS = <-p.ch
	case <-s.done:
		if unclaim() {
			refuse(w, http.StatusServiceUnavailable, "the relay is shutting down")
			return
		}
		hostWS = <-p.ch
	}
	if hostWS == nil {
		s.logf("relay: %s: refused: the host's answer failed", who)
		refuse(w, http.StatusBadGateway, "the host for portal "+portal+" failed to answer")
		return
	}
	clientWS, err := streamUpgrader.Upgrade(w, r, nil)
	if err != nil {
		hostWS.Close()
		s.untrack(hostWS)
		return
	}
	if !s.track(clientWS) {
		hostWS.Close()
		s.untrack(hostWS)
		return
	}
	s.logf("relay: %s: paired with host %s", who, h.name)
	start := time.Now()
	why := s.splice(clientWS, hostWS)
	s.logf("relay: %s: stream ended after %v: %s", who, time.Since(start).Round(time.Millisecond), why)
}

// dropPending removes a pending entry; s.mu held.
func (s *Server) dropPending(id, portal string) {
	delete(s.pending, id)
	if s.nPending[portal]--; s.nPending[portal] <= 0 {
		delete(s.nPending, portal)
	}
}

// serveAccept is a host's answer to one connect: its stream, handed to the waiting
// client's handler.
func (s *Server) serveAccept(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authorize(w, r, RoleHost, "")
	if !ok {
		return
	}
	id := r.URL.Query().Get("id")
	s.mu.Lock()
	p := s.pending[id]
	switch {
	case p == nil:
		s.mu.Unlock()
		s.logf("relay: accept portal=%s name=%s from %s: refused: no such connection", c.Portal, c.Name, r.RemoteAddr)
		refuse(w, http.StatusNotFound, "no client is waiting under that id (it gave up or timed out)")
		return
	case p.portal != c.Portal:
		s.mu.Unlock()
		s.logf("relay: accept portal=%s name=%s from %s: refused: the connection is for another portal", c.Portal, c.Name, r.RemoteAddr)
		refuse(w, http.StatusForbidden, "that connection is for another portal")
		return
	}
	s.dropPending(id, p.portal) // claimed: p.ch gets exactly one send
	s.mu.Unlock()
	ws, err := streamUpgrader.Upgrade(w, r, nil)
	if err != nil || !s.track(ws) {
		p.ch <- nil
		return
	}
	p.ch <- ws
}

// splice copies messages both ways until one side ends, then closes the other with
// the same code, waits a little for it to answer, and closes both.
func (s *Server) splice(a, b *websocket.Conn) string {
	a.SetReadLimit(MaxMessage)
	b.SetReadLimit(MaxMessage)
	errc := make(chan error, 2)
	go func() { errc <- pump(b, a) }()
	go func() { errc <- pump(a, b) }()
	first := <-errc
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
	}
	a.Close()
	b.Close()
	s.untrack(a)
	s.untrack(b)
	return endReason(first)
}

// pump copies src's messages to dst until src ends, then sends dst a close frame
// saying why. A message dst is slow to take stops pump reading src: TCP's flow
// control, per stream.
func pump(dst, src *websocket.Conn) error {
	for {
		mt, r, err := src.NextReader()
		if err == nil && mt != websocket.BinaryMessage {
			err = errors.New("a text message on a stream")
		}
		if err == nil {
			var wr io.WriteCloser
			if wr, err = dst.NextWriter(websocket.BinaryMessage); err == nil {
				if _, err = io.Copy(wr, r); err == nil {
					err = wr.Close()
				}
			}
		}
		if err != nil {
			dst.WriteControl(websocket.CloseMessage, closeFor(err), time.Now().Add(5*time.Second))
			return err
		}
	}
}

// closeFor is the close frame passed on for an error ending one side of a stream.
func closeFor(err error) []byte {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code != websocket.CloseNoStatusReceived && ce.Code != websocket.CloseAbnormalClosure:
		return websocket.FormatCloseMessage(ce.Code, ce.Text)
	case errors.Is(err, websocket.ErrReadLimit):
		return websocket.FormatCloseMessage(websocket.CloseMessageTooBig, "a message larger than 64 KiB")
	}
	return websocket.FormatCloseMessage(websocket.CloseGoingAway, "")
}

// endReason says in a few words how a connection ended.
func endReason(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &ce):
		if ce.Text != "" {
			return fmt.Sprintf("closed (%d %s)", ce.Code, ce.Text)
		}
		return fmt.Sprintf("closed (%d)", ce.Code)
	case errors.Is(err, websocket.ErrReadLimit):
		return "a message larger than 64 KiB"
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer (timed out)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	return err.Error()
}

// Close drops every connection the router holds and refuses new ones; an
// http.Server's Close does not reach hijacked (WebSocket) connections.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	for ws := range s.live {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "the relay is shutting down"), time.Now().Add(100*time.Millisecond))
		ws.Close()
	}
	return nil
}

// HostCount is the number of live hosts (for tests and status lines).
func (s *Server) HostCount() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hosts)
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
