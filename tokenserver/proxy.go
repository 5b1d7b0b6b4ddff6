package tokenserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// Upstream is where the app listens.
type Upstream struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is "127.0.0.1:PORT" or a socket path.
	Address string
	// Header is set on every proxied request, replacing whatever the client sent under
	// the same names: the app's own secret (Authorization: token X), so that the app
	// can refuse anyone who reaches it directly.
	Header http.Header
	// Host says which Host header the app sees: the client's (the default) or a
	// loopback one.
	Host HostPolicy
	// Secrets are values the client must never see, such as the app's own secret that
	// Header carries. The app may put them in what it sends back (Jupyter writes its
	// token into its pages): a response header holding one is dropped (in 1xx answers
	// and trailers too); they are cut
	// out of text bodies (a query pair NAME=secret as a whole; such bodies go without
	// Content-Length) and overwritten in any other body, written literally or escaped
	// (JSON, JavaScript, URL, HTML). The app is asked for identity coding (gzip and
	// deflate are decoded should it compress anyway; other codings get 502), and a
	// client's byte range is widened toward the app so that a secret at its edges is
	// seen whole. A WebSocket's messages from the app are scrubbed too (no compression
	// is offered to the app; see scrubws.go).
	Secrets []string
	// CheckConn, when set, judges every new connection to the app before a byte is sent
	// on it (the request, and Header's secret with it): an error closes the connection
	// and fails the request with 502. The remote side refuses a TCP listener that another
	// user holds this way (the port was taken before the app could bind it). Connections
	// kept alive for later requests are not judged again.
	CheckConn func(net.Conn) error
}

// HostPolicy says which Host header the proxy sends to the app.
type HostPolicy int

const (
	// HostPassThrough sends the Host the client used, which passed the gate's
	// allowlist. Apps that compare Origin with Host (code-server, Streamlit) need it.
	HostPassThrough HostPolicy = iota
	// HostLoopback sends a loopback Host: 127.0.0.1:PORT for a TCP app, localhost for
	// one on a Unix socket. Apps that accept only loopback Host names (Jupyter's
	// check_host) need it when the browser uses an --allow-host name; such an app must
	// not depend on Origin matching Host.
	HostLoopback
)

const (
	text502          = "502 Bad Gateway: the app is not answering. It may still be starting, or it has exited (see `tether logs`).\n"
	text502Unchecked = "502 Bad Gateway: the app answered in a form tether cannot check for the app's own secret (see `tether logs`), so the answer was withheld.\n"
)

// NewProxy returns the handler that forwards to the app: an httputil.ReverseProxy
// (Rewrite + SetURL) over a Transport tuned for one local backend — many idle
// connections, no compression, no proxy from the environment — with WebSocket and
// other upgrades passed through. By default the Host the client used is kept (it passed
// the gate's allowlist), so an app comparing Origin with Host, as code-server does for
// WebSockets, sees the browser's view; u.Host can ask for a loopback Host instead. The
// app's secrets (u.Secrets) never go back to the client. On backend failure it answers 502 with a fixed text and
// logs the error without the request's URL or the upstream header values.
func NewProxy(u Upstream, logger *slog.Logger) http.Handler {
	red := newRedactor()
	for _, vs := range u.Header {
		red.add(vs...)
	}
	log := newRedactingLogger(logger, red)
	switch u.Network {
	case "tcp", "unix":
	default:
		log.Error("proxy: unsupported upstream network; every request will fail", "network", u.Network)
	}
	target := &url.URL{Scheme: "http", Host: u.Address}
	if u.Network == "unix" {
		target.Host = "localhost" // replaced by the client's Host; the dialer ignores it
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			if u.Network != "tcp" && u.Network != "unix" {
				return nil, errors.New("unsupported upstream network")
			}
			c, err := dialer.DialContext(ctx, u.Network, u.Address)
			if err != nil || u.CheckConn == nil {
				return c, err
			}
			if err := u.CheckConn(c); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
	header := u.Header.Clone()
	loopbackHost := "localhost"
	if u.Network == "tcp" {
		loopbackHost = u.Address
	}
	scrub := newScrubber(u.Secrets)
	red.add(u.Secrets...)
	var modify func(*http.Response) error
	var rt http.RoundTripper = transport
	if scrub != nil {
		modify = func(resp *http.Response) error {
			if n := scrub.headers(resp.Header); n > 0 {
				log.Warn("proxy: dropped response headers that held the app's secret", "count", n, "path", truncate(resp.Request.URL.Path, 256))
			}
			if err := scrub.body(resp); err != nil {
				return err
			}
			scrub.trailers(resp, func(n int) {
				log.Warn("proxy: dropped response trailers that held the app's secret", "count", n, "path", truncate(resp.Request.URL.Path, 256))
			})
			return nil
		}
		rt = &scrubInformational{next: transport, s: scrub, warn: func(n int) {
			log.Warn("proxy: dropped informational (1xx) response headers that held the app's secret", "count", n)
		}}
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			if u.Host == HostLoopback {
				pr.Out.Host = loopbackHost
			}
			for k, vs := range header {
				pr.Out.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
			}
			if scrub != nil {
				// A compressed body cannot be scrubbed. (No Accept-Encoding at all would
				// mean any coding is fine, RFC 9110 12.5.3.)
				pr.Out.Header.Set("Accept-Encoding", "identity")
				scrub.upgradeRequest(pr.Out.Header)
				if rg := scrub.widenRange(pr.Out.Header, pr.Out.Method); rg != nil {
					pr.Out = pr.Out.WithContext(context.WithValue(pr.Out.Context(), wantedRangeKey{}, rg))
				}
			}
		},
		ModifyResponse: modify,
		Transport:      rt,
		// FlushInterval 0: ReverseProxy already flushes at once for streams (unknown
		// length, text/event-stream), and buffers the rest.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      newErrorLog(log, "proxy"),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the url.Error's text would repeat the URL
			}
			var unchecked *errUncheckable
			text := text502
			if errors.Is(err, context.Canceled) {
				log.Debug("proxy: client went away", "method", r.Method, "path", truncate(r.URL.Path, 256))
			} else if errors.As(err, &unchecked) {
				log.Warn("proxy: withheld an answer of the app", "error", unchecked.Error(), "method", r.Method, "path", truncate(r.URL.Path, 256))
				text = text502Unchecked
			} else {
				log.Warn("proxy: app unreachable", "error", truncate(err.Error(), 512), "method", r.Method, "path", truncate(r.URL.Path, 256))
			}
			h := w.Header()
			for k := range h {
				delete(h, k)
			}
			setOurHeaders(h, cspText)
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte(text))
		},
	}
}

// bufferPool recycles the proxy's copy buffers: 128 KiB, so a bulk body moves in a
// quarter of the read and write calls of 32 KiB ones. Held only while a body is being
// copied; the Transport's own per-connection buffers stay small (4 KiB), since an
// upgraded connection (a WebSocket) keeps its reader for its whole life.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBuffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
