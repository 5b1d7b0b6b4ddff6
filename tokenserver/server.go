package tokenserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ReservedPrefix is where our own endpoints live, under BaseURL: the login form's POST
// target ({BaseURL}_tether/login) and the launcher's challenge
// ({BaseURL}_tether/challenge). Nothing under it is ever proxied to the app.
const ReservedPrefix = "_tether/"

// Options configures a Server.
type Options struct {
	// Token is the access token; required unless NoAuth. See ValidateToken.
	Token string
	// NoAuth turns authentication off (TETHER_NO_AUTH=1). Host and Origin checks still
	// apply, our credentials are still stripped, and Serve refuses any listener that is
	// not loopback TCP or a Unix socket.
	NoAuth bool
	// SessionID scopes the cookie name, since every server on localhost shares the
	// browser's cookies: letters, digits, '-', '_' and '.', at most 64.
	SessionID string
	// BaseURL is the path prefix the app lives under: "" or "/" for the root, else
	// "/prefix/" (a missing trailing slash is added).
	BaseURL string
	// AllowHosts are extra Host names (no port; any port is accepted) that may reach
	// the server besides loopback names.
	AllowHosts []string
	// TLS, if set, makes Serve speak TLS on every listener (HTTP/1.1 only).
	TLS *tls.Config
	// App receives authenticated requests, with our credentials already stripped.
	App http.Handler
	// Logger receives what the gate refused and why; nil discards. It never receives
	// the token, a cookie value, an Authorization or Referer value.
	Logger *slog.Logger
	// OnActivity, if set, is called on authenticated requests and on traffic over
	// upgraded (WebSocket) connections, at most about once a second. It runs on the
	// request's goroutine and must return quickly.
	OnActivity func()
	// Ports, if set, serves this machine's other loopback ports behind the gate:
	// {BaseURL}proxy/PORT/…, {BaseURL}proxy/absolute/PORT/… and {BaseURL}absproxy/PORT/…
	// (HTTP and WebSockets), and raw streams at {BaseURL}_tether/forward/PORT (see
	// ports.go). Nil: neither; {BaseURL}proxy/ and absproxy/ are the App's like any
	// other path. In team mode only the owner reaches them.
	Ports *Ports

	// Team, if set, makes this a team server (team.go): besides the owner (Token),
	// access keys and people signed in by SignIn come in, each app of Apps lives under
	// {BaseURL}NAME/ and opens to those Team.MayOpen admits, and {BaseURL} is a start
	// page. Nil: one owner with one token and one App.
	Team Team
	// SignIn is an outside sign-in (OIDC) for Team; nil: keys and the owner's token only.
	SignIn SignIn
	// Apps are a team server's apps (with Team, instead of App).
	Apps []NamedApp
	// TeamTitle names a team server on its login page ("Sign in to TITLE"): whose
	// apps and where, e.g. "alice's apps on gpu1". Empty: "the apps on this server".
	TeamTitle string
}

// Server is the gate: every request goes through ServeHTTP, in this order — Host
// allowlist, cross-origin checks, authentication, stripping of our credentials — and
// only then reaches the App.
type Server struct {
	token      string
	noAuth     bool
	base       string
	sessionTag string
	allowHosts map[string]struct{}
	tlsConfig  *tls.Config
	app        http.Handler
	log        *slog.Logger
	redact     *redactor
	cookieKey  []byte
	cop        *http.CrossOriginProtection
	limiter    *failureLimiter
	guard      *connGuard // TCP connections not yet authenticated
	onActivity func()
	lastActive atomic.Int64 // UnixNano of the last OnActivity call
	ports      *Ports
	portProxy  http.Handler  // to secondary ports; nil without ports
	sources    *sourceLimits // failures per source address beyond loopback

	teamState // team mode (team.go); zero without Options.Team

	noLanding atomic.Bool // the app answered about its root with nothing to use: not asked again (landing.go)

	revokedMu sync.Mutex
	revoked   map[[cookieIDLen]byte]time.Time // signed-out sessions, until they expire

	// now is the clock; tests replace it.
	now func() time.Time

	codesMu   sync.Mutex
	usedCodes map[[codeNonceLen]byte]time.Time

	srv *http.Server

	upMu     sync.Mutex
	upgraded map[*upgradedConn]struct{}
	upClosed bool
}

// Limits of the HTTP server.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// Failed attempts: a burst of 10, then one more every 2 s.
	failureBurst = 10
	failureEvery = 2 * time.Second
)

// New checks o and returns a Server.
func New(o Options) (*Server, error) {
	if o.App == nil && o.Team == nil {
		return nil, errors.New("tokenserver: Options.App is required")
	}
	if o.Token == "" && !o.NoAuth {
		return nil, errors.New("tokenserver: a token is required unless authentication is turned off")
	}
	if o.Token != "" {
		if err := ValidateToken(o.Token); err != nil {
			return nil, err
		}
	}
	base, err := NormalizeBaseURL(o.BaseURL)
	if err != nil {
		return nil, err
	}
	tag, err := sessionTag(o.SessionID)
	if err != nil {
		return nil, err
	}
	allow := map[string]struct{}{}
	for _, h := range o.AllowHosts {
		n, err := NormalizeAllowHost(h)
		if err != nil {
			return nil, err
		}
		allow[n] = struct{}{}
	}
	var tlsConfig *tls.Config
	if o.TLS != nil {
		if len(o.TLS.Certificates) == 0 && o.TLS.GetCertificate == nil && o.TLS.GetConfigForClient == nil {
			return nil, errors.New("tokenserver: the TLS configuration has no certificate")
		}
		tlsConfig = o.TLS.Clone()
		// HTTP/1.1 only: a WebSocket over HTTP/2 (RFC 8441 extended CONNECT) would not
		// look like an upgrade to the gate, and one local backend gains nothing from h2.
		tlsConfig.NextProtos = []string{"http/1.1"}
		if tlsConfig.MinVersion < tls.VersionTLS12 {
			tlsConfig.MinVersion = tls.VersionTLS12
		}
	}
	processSecret := make([]byte, 32)
	rand.Read(processSecret) // never fails (Go 1.24+)

	s := &Server{
		token:      o.Token,
		noAuth:     o.NoAuth,
		base:       base,
		sessionTag: tag,
		allowHosts: allow,
		tlsConfig:  tlsConfig,
		app:        o.App,
		redact:     newRedactor(o.Token),
		cookieKey:  deriveKey(processSecret, labelCookie+"\x00"+o.Token),
		cop:        http.NewCrossOriginProtection(),
		limiter:    newFailureLimiter(failureBurst, failureEvery),
		sources:    newSourceLimits(failureBurst, failureEvery),
		revoked:    map[[cookieIDLen]byte]time.Time{},
		onActivity: o.OnActivity,
		now:        time.Now,
		usedCodes:  map[[codeNonceLen]byte]time.Time{},
		upgraded:   map[*upgradedConn]struct{}{},
	}
	s.opened = map[string]struct{}{}
	if err := s.checkTeamOptions(&o); err != nil {
		return nil, err
	}
	s.log = newRedactingLogger(o.Logger, s.redact)
	s.guard = newConnGuard(maxPendingPerSource, maxPending, signInTimeout, s.log)
	if o.Ports != nil {
		if o.Ports.Dial == nil || o.Ports.Check == nil {
			return nil, errors.New("tokenserver: Options.Ports needs Dial and Check")
		}
		p := *o.Ports
		s.ports = &p
		s.portProxy = s.newPortProxy()
	}
	if tlsConfig != nil && o.Token != "" {
		hint := OwnerHint(o.Token)
		s.guard.hint = []byte(hint)
		tlsConfig.GetConfigForClient = ownerHello(hint, tlsConfig.GetConfigForClient)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	s.srv = &http.Server{
		Handler:                      s,
		ReadHeaderTimeout:            readHeaderTimeout,
		IdleTimeout:                  idleTimeout,
		MaxHeaderBytes:               maxHeaderBytes,
		ErrorLog:                     newErrorLog(s.log, "http server"),
		Protocols:                    &protocols,
		DisableGeneralOptionsHandler: true, // OPTIONS * goes through the gate too
		ConnContext:                  connContext,
		ConnState:                    connState,
	}
	s.srv.RegisterOnShutdown(s.closeUpgraded)
	return s, nil
}

// BaseURLError is a base URL the gate cannot serve under; Why says what is wrong with
// it ("has an empty segment").
type BaseURLError struct{ URL, Why string }

func (e *BaseURLError) Error() string {
	return fmt.Sprintf("tokenserver: base URL %q %s; use a path such as /myapp/", e.URL, e.Why)
}

// NormalizeBaseURL is the rule for a base URL, the gate's and so everyone's (serve
// judges --base-url with it before anything starts; the launcher checks a ready
// record's with it): "" and "/" are "/", and "/a/b" or "/a/b/" is "/a/b/"; anything
// but plain path segments of URL-safe characters (A-Z a-z 0-9 - . _ ~, no . or ..
// segment) within 256 characters is refused with a *BaseURLError.
func NormalizeBaseURL(b string) (string, error) {
	if b == "" || b == "/" {
		return "/", nil
	}
	bad := func(why string) error { return &BaseURLError{URL: b, Why: why} }
	if len(b) > 256 {
		return "", &BaseURLError{URL: b[:64] + "…", Why: "is longer than 256 characters"}
	}
	if !strings.HasPrefix(b, "/") {
		return "", bad("does not start with /")
	}
	if !strings.HasSuffix(b, "/") {
		b += "/"
	}
	if strings.Contains(b, "//") {
		return "", bad("has an empty segment")
	}
	for _, seg := range strings.Split(strings.Trim(b, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", bad("has an empty or dot segment")
		}
		for i := 0; i < len(seg); i++ {
			if !isUnreserved(seg[i]) {
				return "", bad("has a character other than A-Z a-z 0-9 - . _ ~")
			}
		}
	}
	return b, nil
}

func sessionTag(id string) (string, error) {
	if id == "" {
		return "local", nil
	}
	if len(id) > 64 {
		return "", errors.New("tokenserver: session id is longer than 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", errors.New("tokenserver: session id may hold only A-Z a-z 0-9 - _ .")
		}
	}
	return id, nil
}

// touch calls OnActivity, at most about once a second.
func (s *Server) touch() {
	if s.onActivity == nil {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastActive.Load()
	if now-last < int64(time.Second) || !s.lastActive.CompareAndSwap(last, now) {
		return
	}
	s.onActivity()
}

// Serve accepts connections on ln until Shutdown, speaking TLS if Options.TLS was
// set. It may be called for several listeners at once (a Unix socket and a TCP port,
// say) and returns http.ErrServerClosed after Shutdown. With NoAuth it refuses a
// listener that is not loopback TCP or a Unix socket. On a TCP listener, connections
// that have not authenticated are limited (see connguard.go).
func (s *Server) Serve(ln net.Listener) error {
	if s.noAuth && !loopbackListener(ln) {
		return errors.New("tokenserver: refusing to serve without authentication on a listener that is not loopback TCP or a Unix socket")
	}
	if _, tcp := ln.Addr().(*net.TCPAddr); tcp {
		ln = &guardListener{Listener: ln, g: s.guard}
	}
	if s.tlsConfig != nil {
		ln = tls.NewListener(ln, s.tlsConfig)
	}
	return s.srv.Serve(ln)
}

func loopbackListener(ln net.Listener) bool {
	switch a := ln.Addr().(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// Shutdown stops every Serve, closes upgraded (WebSocket) connections, and waits for
// requests in flight until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) trackUpgraded(c *upgradedConn) bool {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if s.upClosed {
		return false
	}
	s.upgraded[c] = struct{}{}
	return true
}

func (s *Server) untrackUpgraded(c *upgradedConn) {
	s.upMu.Lock()
	delete(s.upgraded, c)
	s.upMu.Unlock()
}

func (s *Server) closeUpgraded() {
	s.upMu.Lock()
	s.upClosed = true
	conns := make([]*upgradedConn, 0, len(s.upgraded))
	for c := range s.upgraded {
		conns = append(conns, c)
	}
	s.upMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ServeHTTP is the gate. Every answer, ours or the app's, goes through one
// appWriter, so that a panic anywhere becomes a bare 500 (or a dropped connection if
// the answer had begun) and is logged only after redaction of every secret the
// request held.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	aw := &appWriter{ResponseWriter: w, s: s}
	defer s.recoverPanic(aw, r)
	s.gate(aw, r)
}

func (s *Server) recoverPanic(aw *appWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v) // net/http's own signal to drop the connection quietly
	}
	red := requestRedactor(s.token, r)
	s.log.Error("panic while serving a request", "method", r.Method, "path", red.redact(logPath(r)),
		"panic", red.redact(truncate(fmt.Sprint(v), 1024)), "stack", red.redact(string(debug.Stack())))
	if aw.status != 0 || aw.hijacked {
		panic(http.ErrAbortHandler) // too late for a 500: drop the connection
	}
	h := aw.Header()
	for k := range h {
		delete(h, k) // nothing the app had set goes out with our 500
	}
	s.writeText(aw.ResponseWriter, http.StatusInternalServerError, textInternal)
}

func (s *Server) gate(w *appWriter, r *http.Request) {
	// A connection that has not authenticated gets one answer (see connguard.go).
	gc := guardedConnOf(r.Context())
	if gc != nil && gc.isPending() {
		w.Header().Set("Connection", "close")
	} else {
		gc = nil
	}
	// 1. Host allowlist, before anything else (DNS rebinding), token or not.
	if !s.hostAllowed(r) {
		s.refuse(w, r, http.StatusForbidden, "host not allowed", textHost)
		return
	}
	if r.Method == http.MethodConnect {
		s.refuse(w, r, http.StatusMethodNotAllowed, "CONNECT", textMethod)
		return
	}
	// X-Tether-User as a trailer would reach the app after the body, past stripping.
	if declaresUserTrailer(r) {
		s.refuse(w, r, http.StatusBadRequest, "X-Tether-User declared as a trailer", textUserTrailer)
		return
	}
	// The outside sign-in's callback comes back without a session of ours.
	if s.signIn != nil && r.URL.Path == s.callback {
		s.serveCallback(w, r)
		return
	}
	// Our own endpoints: never proxied. Forward streams pass the checks below first.
	if s.isReserved(r.URL.Path) && !s.isForward(r.URL.Path) {
		s.serveReserved(w, r)
		return
	}
	c := s.readCredentials(r)
	// 2. Cross-origin checks, for requests the cookie alone would authenticate.
	if !c.carriesToken() {
		if err := s.crossOriginCheck(r); err != nil {
			s.refuse(w, r, http.StatusForbidden, err.Error(), textOrigin)
			return
		}
	}
	// 3. Authentication.
	var res authResult
	if !s.noAuth {
		res = s.authenticate(r, &c)
		switch res.outcome {
		case authOK:
		case authNone:
			if res.gone && cookieAllowed(r) {
				http.SetCookie(w, s.clearCookie(r))
			}
			s.unauthorized(w, r, "", false)
			return
		case authBad:
			s.unauthorized(w, r, s.notAccepted(), true)
			return
		case authBadProtocol:
			s.refuse(w, r, http.StatusForbidden, "bad token subprotocol", textProtocol)
			return
		case authLimited:
			s.tooMany(w, r)
			return
		}
	}
	if gc != nil {
		gc.authenticated()
		w.Header().Del("Connection")
	}
	s.touch()
	// A credential in the URL of a page load: trade it for a cookie and send the
	// browser to the same URL without it, so it leaves the address bar and history.
	if c.fromURL && !s.noAuth && cookieAllowed(r) && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !isUpgrade(r) {
		s.redirectClean(w, r, &c)
		return
	}
	if ss := res.sess; ss != nil && s.now().Sub(ss.issued) > cookieRefreshAfter && !isUpgrade(r) {
		http.SetCookie(w, s.sessionCookie(r, ss.id, ss.who)) // sliding expiry
	}
	// 4. Strip our credentials, 5. hand over to the app, or to a secondary port.
	w.nameJupyter = c.proto.present
	out := s.stripped(r, &c)
	if s.team != nil {
		s.serveTeam(w, out, &c, res.who, sessionKey(res.who, res.sess))
		return
	}
	switch {
	case s.isForward(r.URL.Path):
		s.serveForward(w, out, &c)
	case s.servesProxy() && s.isPortPath(r.URL.Path):
		s.servePort(w, out)
	default:
		s.serveApp(w, out)
	}
}

// credentials is what a request presents, parsed but not yet checked.
type credentials struct {
	authz     string // token from Authorization (ours)
	authzErr  error  // two headers, or a malformed token/Bearer header
	authzOurs bool   // the Authorization header is ours: strip it

	queryTokens []string // honoured ?token= values (more than one: ambiguous)
	codes       []string // honoured ?code= login codes
	fromURL     bool     // a credential honoured from the URL
	ourQuery    bool     // the URL holds parameters of ours (honoured or not): strip them
	query       []queryParam

	proto subprotocols
}

// carriesToken: the request presents the token itself (header, subprotocol, URL),
// which a cross-site page cannot forge without knowing it.
func (c *credentials) carriesToken() bool {
	return c.authz != "" || c.proto.tok != "" || len(c.queryTokens) > 0
}

func (s *Server) readCredentials(r *http.Request) credentials {
	var c credentials
	c.authz, c.authzOurs, c.authzErr = parseAuthorization(r.Header.Values("Authorization"), s.team != nil)
	if errors.Is(c.authzErr, errNotOurScheme) {
		c.authzErr = nil
	}
	if c.authzErr != nil {
		c.authz = ""
	}
	c.proto = parseSubprotocols(r.Header.Values("Sec-WebSocket-Protocol"))
	if hasOurQuery(r.URL.RawQuery) {
		c.query = splitQuery(r.URL.RawQuery)
		mode := r.Header.Get("Sec-Fetch-Mode")
		// ?token= from a navigation, a WebSocket handshake or a client that sends no
		// fetch metadata (curl, scripts); never from a page script's fetch.
		tokenOK := mode == "" || mode == "navigate" || mode == "websocket"
		// ?code= only on a page load.
		codeOK := (mode == "" || mode == "navigate") && (r.Method == http.MethodGet || r.Method == http.MethodHead)
		for _, p := range c.query {
			if !ourQueryParam(p) {
				continue
			}
			c.ourQuery = true
			switch {
			case isTokenKey(p.key) && tokenOK:
				c.queryTokens = append(c.queryTokens, p.value)
			case isCodeKey(p.key) && codeOK:
				c.codes = append(c.codes, p.value)
			}
		}
		c.fromURL = len(c.queryTokens) > 0 || len(c.codes) > 0
	}
	return c
}

type authOutcome int

const (
	authNone        authOutcome = iota // no credential at all
	authOK                             // authenticated
	authBad                            // a bad or ambiguous credential: 401
	authBadProtocol                    // a bad JEP 119 subprotocol: 403
	authLimited                        // too many failures: 429
)

type authResult struct {
	outcome authOutcome
	who     who      // with authOK: who came (the owner, a key, a person)
	sess    *session // with authOK: the cookie's, when only the cookie authenticated
	gone    bool     // with authNone: a valid cookie of someone no longer in the policy
}

// authenticate checks every credential presented. A request is in when at least one
// credential is valid and none is invalid: a bad explicit credential is never ignored
// because a cookie happens to be good.
//
// Every presented credential is checked against the token, in constant time, even
// while failures are rate limited: a valid one passes, so guesses by someone else on
// the host (all tunnel traffic comes from 127.0.0.1, so the limit is global there)
// never lock the owner out. Only an invalid credential gets the 429 while limited.
//
// In team mode the Authorization value may instead be an access key: it is checked
// (argon2id, slow) only when the limiter lets a failure through, and never together
// with the owner's token or code in the same request (which of the two would it be?).
func (s *Server) authenticate(r *http.Request, c *credentials) authResult {
	now := s.now()
	structural := c.authzErr != nil || len(c.queryTokens) > 1 || len(c.codes) > 1 || c.proto.err != nil
	if structural {
		limited := s.failed(r, "malformed or ambiguous credential")
		switch {
		case limited:
			return authResult{outcome: authLimited}
		case c.proto.err != nil:
			return authResult{outcome: authBadProtocol}
		}
		return authResult{outcome: authBad}
	}
	var raw []string
	if c.authz != "" {
		raw = append(raw, c.authz)
	}
	if len(c.queryTokens) == 1 {
		raw = append(raw, c.queryTokens[0])
	}
	if c.proto.tok != "" {
		raw = append(raw, c.proto.tok)
	}
	good := true
	for _, t := range raw {
		if !TokensEqual(t, s.token) {
			good = false
		}
	}
	// A team's key: an Authorization value that is not the token, alone.
	maybeKey := s.team != nil && c.authz != "" && !TokensEqual(c.authz, s.token) &&
		len(raw) == 1 && len(c.codes) == 0
	if maybeKey {
		u, limited := s.checkKey(r, c.authz)
		switch {
		case limited:
			return authResult{outcome: authLimited}
		case u.kind == 0:
			return authResult{outcome: authBad}
		}
		return authResult{outcome: authOK, who: u}
	}
	badProto := c.proto.tok != "" && !TokensEqual(c.proto.tok, s.token)
	codeBad := good && len(c.codes) == 1 && !s.useLoginCode(c.codes[0], now)
	if !good || codeBad {
		why := "wrong token"
		if codeBad {
			why = "bad login code"
		}
		limited := s.failed(r, why)
		switch {
		case limited:
			return authResult{outcome: authLimited}
		case badProto:
			return authResult{outcome: authBadProtocol}
		}
		return authResult{outcome: authBad}
	}
	if len(raw) > 0 || len(c.codes) == 1 {
		return authResult{outcome: authOK, who: owner}
	}
	if ss, ok := s.checkCookie(r); ok {
		if s.team != nil && !s.stillIn(ss.who) {
			s.audit(r, "refused", ss.who, "why", "no longer in the access policy")
			return authResult{outcome: authNone, gone: true}
		}
		return authResult{outcome: authOK, who: ss.who, sess: &ss}
	}
	return authResult{outcome: authNone}
}

// useLoginCode checks a login code and spends it: each works once.
func (s *Server) useLoginCode(code string, now time.Time) bool {
	if s.token == "" {
		return false
	}
	pc, err := checkLoginCode(s.token, code, now)
	if err != nil {
		return false
	}
	s.codesMu.Lock()
	defer s.codesMu.Unlock()
	for n, exp := range s.usedCodes {
		if !now.Before(exp) {
			delete(s.usedCodes, n)
		}
	}
	if _, used := s.usedCodes[pc.nonce]; used {
		return false
	}
	s.usedCodes[pc.nonce] = pc.expiry
	return true
}

// failed records a failed attempt, logging the start of a flood once, and reports
// whether failures were already being limited when it came (the caller answers 429).
func (s *Server) failed(r *http.Request, why string) (limited bool) {
	now := s.now()
	lim := s.limiterFor(r)
	limited = !lim.allow(now)
	if lim.fail(now) {
		s.log.Warn("too many failed attempts: wrong credentials get 429 for a while; valid ones still get in", "from", r.RemoteAddr)
	}
	s.log.Info("authentication failed", "reason", why, "method", r.Method, "path", logPath(r), "from", r.RemoteAddr)
	return limited
}

// logPath is the request path as we log it: no query (it may hold the token),
// capped in length; the redacting handler takes out the token should the path hold it.
func logPath(r *http.Request) string {
	return truncate(r.URL.Path, 256)
}

// redirectClean answers a page load that carried ?token= or ?code=: a fresh cookie
// and a 303 to the same URL without our parameters, so the credential leaves the
// address bar and the history (for the base URL: to where the app's root redirects,
// see landing.go).
//
// A navigation that came from another site (Sec-Fetch-Site cross-site or same-site:
// a link, or the launcher's file:// redirect page) gets a tiny page that moves on by
// itself instead: a SameSite=Strict cookie set in answer to a cross-site navigation is
// not sent on the redirect that follows it, so a 303 would land on the login page. The
// page's own navigation is same-origin, and the cookie goes with it.
func (s *Server) redirectClean(w http.ResponseWriter, r *http.Request, c *credentials) {
	loc := r.URL.EscapedPath()
	if q := joinQuery(splitQuery(r.URL.RawQuery), ourQueryParam); q != "" {
		loc += "?" + q
	}
	loc = safeNext(loc, "/")
	if loc == "/" {
		loc = s.base
	}
	loc = s.landing(r, c, loc) // the base URL: straight where the app sends it (landing.go)
	http.SetCookie(w, s.newCookie(r, owner))
	s.audit(r, "signed in", owner, "path", logPath(r))
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		s.continuePage(w, r, loc)
		return
	}
	s.seeOther(w, loc)
}

// stripped returns the request the app gets: no Authorization of ours, no cookie of
// any tether session, no ?token= or login code, no JEP 119 entries, and no Referer
// carrying our parameters. Everything else is left exactly as the client sent it.
func (s *Server) stripped(r *http.Request, c *credentials) *http.Request {
	out := new(http.Request)
	*out = *r
	out.Header = r.Header.Clone()
	if c.authzOurs {
		out.Header.Del("Authorization")
	}
	stripOurCookies(out.Header)
	stripUserHeader(out.Header)
	stripReferer(out.Header)
	if c.proto.present {
		if len(c.proto.others) > 0 {
			out.Header.Set("Sec-WebSocket-Protocol", strings.Join(c.proto.others, ", "))
		} else {
			out.Header.Del("Sec-WebSocket-Protocol")
		}
	}
	if c.ourQuery {
		u := *r.URL
		u.RawQuery = joinQuery(c.query, ourQueryParam)
		u.ForceQuery = false
		out.URL = &u
		out.RequestURI = u.RequestURI()
		out.Form, out.PostForm = nil, nil
	}
	return out
}

// serveApp runs the app and logs its 5xx answers (method and path only).
func (s *Server) serveApp(w *appWriter, r *http.Request) { s.serveHandler(w, r, s.app) }

// serveHandler runs an app's handler and logs its 5xx answers (method and path only).
func (s *Server) serveHandler(w *appWriter, r *http.Request, h http.Handler) {
	w.toApp()
	h.ServeHTTP(w, r)
	if w.status >= 500 {
		s.log.Warn("app error", "status", w.status, "method", r.Method, "path", logPath(r))
	}
}

// requestRedactor knows every secret a request may hold besides the token.
func requestRedactor(token string, r *http.Request) *redactor {
	red := newRedactor(token)
	for _, v := range r.Header.Values("Authorization") {
		red.add(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			red.add(cred) // a token or an access key, alone
		}
	}
	red.add(r.Header.Values("Referer")...)
	red.add(r.URL.RawQuery)
	for _, c := range r.Cookies() {
		red.add(c.Value)
	}
	red.add(r.PostForm["token"]...) // the login form's token or key, once parsed
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, e := range strings.Split(line, ",") {
			red.add(strings.TrimSpace(e))
		}
	}
	return red
}
