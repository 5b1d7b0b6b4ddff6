package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/internal/termsafe"
)

// Options are the ends' settings; nil means the defaults.
type Options struct {
	// TLS configures wss:// (nil: the system's roots).
	TLS *tls.Config
	// Logf gets what a host's listener does (reconnects, refusals). Never a token.
	Logf func(format string, args ...any)

	// backoff is the wait before reconnect attempt n (from 0); nil: 1 s doubling to
	// 30 s, jittered. Tests set it short.
	backoff func(n int) time.Duration
}

func (o *Options) logf(format string, args ...any) {
	if o != nil && o.Logf != nil {
		o.Logf(format, args...)
	}
}

// RefusedError is the router's refusal before the upgrade: its status and its
// one-line message.
type RefusedError struct {
	Status int
	Msg    string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("relay: %s (HTTP %d)", e.Msg, e.Status)
}

// Permanent reports whether trying again cannot help: the token was refused (401)
// or is for another role or portal (403).
func (e *RefusedError) Permanent() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}

// permanent: trying again cannot help (a refused token, an untrusted certificate).
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// endpoint is relayURL's WebSocket URL for path and query. http(s) is taken for
// ws(s); ws:// only to a loopback relay, where the token cannot be overheard.
func endpoint(relayURL, path string, q url.Values) (string, error) {
	u, err := url.Parse(relayURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("relay URL %q is not valid; use wss://HOST[:PORT]", relayURL)
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	case "http":
		u.Scheme = "ws"
	}
	switch u.Scheme {
	case "wss":
	case "ws":
		if !isLoopbackHost(u.Hostname()) {
			return "", fmt.Errorf("relay URL %s would send the token in the clear; use wss:// (ws:// only to a relay on this machine's loopback)", u.Redacted())
		}
	default:
		return "", fmt.Errorf("relay URL %q is not valid; use wss://HOST[:PORT]", relayURL)
	}
	if u.User != nil {
		return "", fmt.Errorf("relay URL %s holds a user name or password; the token goes in TETHER_PORTAL_TOKEN", u.Redacted())
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String(), nil
}

// isLoopbackHost: localhost or a loopback IP.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// dialer is the ends' WebSocket dialer. The handshake may wait for the host's accept
// (up to the router's 15 s): the timeout covers that.
func dialer(o *Options) *websocket.Dialer {
	d := &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   32 << 10,
		WriteBufferSize:  MaxMessage,
		WriteBufferPool:  writeBufferPool,
	}
	if o != nil && o.TLS != nil {
		d.TLSClientConfig = o.TLS.Clone()
	}
	return d
}

// dial opens one WebSocket to the router, the token in the Authorization header.
func dial(ctx context.Context, rawURL, token string, o *Options) (*websocket.Conn, error) {
	h := http.Header{"Authorization": {"Bearer " + token}}
	d := dialer(o)
	// gorilla takes the context's deadline but not its cancellation: close the
	// connection when ctx ends during the handshake (a client giving up while the
	// router waits for the host).
	var mu sync.Mutex
	var raw net.Conn
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{KeepAlive: 15 * time.Second}).DialContext(ctx, network, addr)
		mu.Lock()
		raw = c
		mu.Unlock()
		return c, err
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			raw.Close()
		}
	})
	ws, resp, err := d.DialContext(ctx, rawURL, h)
	if !stop() {
		if ws != nil {
			ws.Close()
		}
		return nil, ctx.Err()
	}
	if err == nil {
		return ws, nil
	}
	if resp != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		msg := termsafe.Clip(termsafe.OneLine(string(body)), 300)
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, &RefusedError{Status: resp.StatusCode, Msg: msg}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	u, _ := url.Parse(rawURL)
	return nil, reachError(u.Host, err)
}

// UntrustedError: the relay's TLS certificate did not verify (an unknown authority,
// another host name, expired). Trying again cannot help: Permanent.
type UntrustedError struct {
	Host string
	Why  string // in a few words
	Err  error
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("relay: the certificate of the relay at %s is not trusted: %s", e.Host, e.Why)
}

// UntrustedCertificate marks the error for packages that do not import relay.
func (e *UntrustedError) UntrustedCertificate() {}
func (e *UntrustedError) Unwrap() error         { return e.Err }
func (e *UntrustedError) Permanent() bool       { return true }

// reachError words a failure to reach the relay at host in a few words (Go's own
// dial and TLS errors repeat the address and the layers).
func reachError(host string, err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		name     x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		dns      *net.DNSError
		netErr   net.Error
		recordHd tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return &UntrustedError{Host: host, Why: "it is not signed by an authority this machine trusts (for a relay with a private CA, give the CA's certificate with --relay-ca FILE)", Err: err}
	case errors.As(err, &name):
		return &UntrustedError{Host: host, Why: fmt.Sprintf("it is for %s, not %s", certNames(name.Certificate), name.Host), Err: err}
	case errors.As(err, &invalid):
		why := "it is not valid"
		if invalid.Reason == x509.Expired {
			why = "it has expired or is not valid yet (is this machine's clock right?)"
		}
		return &UntrustedError{Host: host, Why: why, Err: err}
	case errors.As(err, &verify):
		return &UntrustedError{Host: host, Why: "it does not verify", Err: err}
	case errors.As(err, &recordHd):
		return &reachErr{fmt.Sprintf("relay: the relay at %s does not answer in TLS (ws:// for a relay on loopback, wss:// elsewhere)", host), err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &reachErr{fmt.Sprintf("relay: cannot reach the relay at %s: connection refused (is tether relay running there?)", host), err}
	case errors.As(err, &dns):
		return &reachErr{fmt.Sprintf("relay: cannot resolve the relay's host name %q", dns.Name), err}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &reachErr{fmt.Sprintf("relay: cannot reach the relay at %s: no answer in time", host), err}
	}
	return fmt.Errorf("relay: cannot reach the relay at %s: %w", host, err)
}

// reachErr is a failure to reach the relay in its own words; Go's error stays
// underneath for errors.Is and As.
type reachErr struct {
	msg string
	err error
}

func (e *reachErr) Error() string { return e.msg }
func (e *reachErr) Unwrap() error { return e.err }

func certNames(c *x509.Certificate) string {
	names := append(append([]string(nil), c.DNSNames...), ipStrings(c.IPAddresses)...)
	if len(names) == 0 {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

// Dial opens a stream to portal's host through the relay at relayURL with a client
// token: the returned net.Conn carries the stream's bytes (for SSH). A refusal is a
// *RefusedError with the router's one-line reason (503 "no host is connected for
// portal ID", 401/403 for the token).
func Dial(ctx context.Context, relayURL, token, portal string, o *Options) (net.Conn, error) {
	if err := CheckPortal(portal); err != nil {
		return nil, err
	}
	u, err := endpoint(relayURL, pathConnect, url.Values{"portal": {portal}})
	if err != nil {
		return nil, err
	}
	ws, err := dial(ctx, u, token, o)
	if err != nil {
		return nil, err
	}
	return newStreamConn(ws), nil
}

// Listen offers this machine as a portal's host at the relay at relayURL with a host
// token: it holds a control connection and returns each client's stream from
// Accept. When the relay or the network drops, it reconnects (1 s doubling to 30 s,
// jittered) and Accept keeps blocking; a refusal that will not heal (the token
// refused, another host taking the portal over) ends Accept with that error. The
// first connection is tried before Listen returns: a refused token is Listen's error.
func Listen(ctx context.Context, relayURL, token string, o *Options) (net.Listener, error) {
	if o == nil {
		o = &Options{}
	}
	u, err := endpoint(relayURL, pathHost, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &listener{
		relayURL: relayURL, controlURL: u, token: token, o: o,
		ctx: ctx, cancel: cancel,
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
		slots:   make(chan struct{}, maxAccepting),
	}
	ws, err := dial(ctx, u, token, o)
	if permanent(err) {
		cancel()
		return nil, err
	}
	if err != nil {
		l.said = l.tellFailure("", err)
	}
	l.wg.Add(1)
	go l.run(ws)
	return l, nil
}

// maxAccepting bounds the streams a host opens at once in answer to connects.
const maxAccepting = 32

type listener struct {
	relayURL, controlURL, token string
	o                           *Options
	ctx                         context.Context
	cancel                      context.CancelFunc
	streams                     chan net.Conn
	slots                       chan struct{}
	wg                          sync.WaitGroup

	done     chan struct{} // closed when Accept ends
	doneOnce sync.Once
	err      error  // why Accept ended
	said     string // the reconnect failure told last (run's; Listen's before run starts)
}

// tellFailure logs a failed attempt to reach the relay unless it failed as the one
// told last (said): a relay down for an hour is one line, not one per attempt. It
// returns what is now said.
func (l *listener) tellFailure(said string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "relay: ")
	if msg != said {
		l.o.logf("relay: %s; trying again", msg)
	}
	return msg
}

// hostIdle: a control connection that hears nothing (not even the router's pings,
// every 20 s) for this long is taken for dead and replaced.
const hostIdle = 65 * time.Second

// run keeps a control connection up until the listener ends.
func (l *listener) run(ws *websocket.Conn) {
	defer l.wg.Done()
	attempt := 0
	for {
		if ws != nil {
			attempt, l.said = 0, ""
			err := l.serve(ws)
			if l.ctx.Err() != nil {
				l.end(net.ErrClosed)
				return
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == closeReplaced {
				l.end(fmt.Errorf("relay: %s; this host stops offering it", ce.Text))
				return
			}
			l.o.logf("relay: control connection lost (%s); reconnecting", endReason(err))
		}
		wait := l.backoff(attempt)
		attempt++
		select {
		case <-time.After(wait):
		case <-l.ctx.Done():
			l.end(net.ErrClosed)
			return
		}
		var err error
		ws, err = dial(l.ctx, l.controlURL, l.token, l.o)
		if err != nil {
			if permanent(err) {
				l.end(err)
				return
			}
			if l.ctx.Err() == nil {
				l.said = l.tellFailure(l.said, err)
			}
			ws = nil
			continue
		}
		l.o.logf("relay: reconnected to %s", hostOfURL(l.relayURL))
	}
}

func (l *listener) backoff(n int) time.Duration {
	if l.o.backoff != nil {
		return l.o.backoff(n)
	}
	d := 30 * time.Second
	if n < 5 {
		d = time.Second << n
	}
	// Jitter in [d/2, d): hosts a relay restart dropped do not come back at once.
	return d/2 + rand.N(d/2)
}

// serve reads the control connection's connects until it ends.
func (l *listener) serve(ws *websocket.Conn) error {
	stop := context.AfterFunc(l.ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()
	ws.SetReadLimit(4 << 10)
	ws.SetReadDeadline(time.Now().Add(hostIdle))
	ping := ws.PingHandler()
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(hostIdle))
		return ping(data)
	})
	for {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		ws.SetReadDeadline(time.Now().Add(hostIdle))
		var m connectMsg
		if mt != websocket.TextMessage || json.Unmarshal(b, &m) != nil || m.Connect == "" {
			l.o.logf("relay: ignoring a control message this version does not know")
			continue
		}
		select {
		case l.slots <- struct{}{}:
		default:
			l.o.logf("relay: %d streams are opening already; a client will time out", maxAccepting)
			continue
		}
		l.wg.Add(1)
		go l.accept(m.Connect)
	}
}

// accept opens the stream answering one connect and hands it to Accept.
func (l *listener) accept(id string) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	u, err := endpoint(l.relayURL, pathAccept, url.Values{"id": {id}})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	ws, err := dial(ctx, u, l.token, l.o)
	cancel()
	if err != nil {
		if l.ctx.Err() == nil {
			l.o.logf("relay: answering a client: %s", strings.TrimPrefix(err.Error(), "relay: "))
		}
		return
	}
	c := newStreamConn(ws)
	select {
	case l.streams <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept waits for the next client's stream.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.streams:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

func (l *listener) end(err error) {
	l.doneOnce.Do(func() {
		l.err = err
		close(l.done)
	})
}

// Close ends Accept (net.ErrClosed) and the control connection, and waits for the
// listener's goroutines. Streams already accepted live on.
func (l *listener) Close() error {
	l.end(net.ErrClosed)
	l.cancel()
	l.wg.Wait()
	return nil
}

// Addr is the relay's address (the listener has no local one of its own).
func (l *listener) Addr() net.Addr { return relayAddr(hostOfURL(l.relayURL)) }

type relayAddr string

func (a relayAddr) Network() string { return "relay" }
func (a relayAddr) String() string  { return string(a) }

func hostOfURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Host
	}
	return s
}
