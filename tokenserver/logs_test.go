package tokenserver

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Force 5xx answers and panics in the app while the token sits in
// the URL, the Authorization header, the cookie, the subprotocol and the Referer; the
// captured logs (at debug level, server and proxy) and the bodies hold none of them,
// nor any wrong token that was presented, nor a stack trace in a body.
func TestNoSecretsInLogsOn500AndPanic(t *testing.T) {
	var token string
	g := newGate(t, nil)
	token = g.token
	g.app.handler = func(w http.ResponseWriter, r *http.Request) {
		// A hostile app: it puts everything it can see, and the token itself (as if
		// it had found it somewhere), into its panic value and its error page.
		view := fmt.Sprintf("url=%s headers=%v", r.URL, r.Header)
		switch {
		case strings.HasPrefix(r.URL.Path, "/panic-late"):
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			panic("late panic with " + token + " " + view)
		case strings.HasPrefix(r.URL.Path, "/panic"):
			panic("app blew up: " + token + " " + view)
		case strings.HasPrefix(r.URL.Path, "/fail"):
			http.Error(w, "app failed", http.StatusInternalServerError)
		default:
			io.WriteString(w, "ok")
		}
	}
	base := g.served()
	hostport := strings.TrimPrefix(base, "http://")
	ck := g.cookie(hostport)
	wrong, _ := NewToken()
	c := client(t)

	secrets := []string{token, ck.Value, "Bearer " + token, tokenEntry(token), wrong}
	var bodies []string
	send := func(method, path string, hdr ...string) *http.Response {
		t.Helper()
		r, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(r)
		if err != nil {
			// The late panic aborts the connection: that is the expected outcome.
			if strings.HasPrefix(path, "/panic-late") {
				return nil
			}
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies = append(bodies, string(b))
		return resp
	}
	everything := []string{
		"Authorization", "Bearer " + token,
		"Cookie", "_xsrf=1; " + ck.Name + "=" + ck.Value,
		"Referer", base + "/lab?token=" + token,
		"Sec-WebSocket-Protocol", jupyterProtocol + ", " + tokenEntry(token),
		"Sec-Fetch-Mode", "cors", // so ?token= is stripped but not redirected
	}
	for _, path := range []string{"/panic", "/fail", "/panic-late"} {
		resp := send("GET", path+"?token="+token+"&x=1", everything...)
		if resp != nil && path != "/panic-late" && resp.StatusCode != 500 {
			t.Errorf("GET %s: got %d; want 500", path, resp.StatusCode)
		}
		// POST from a client without fetch metadata: ?token= honoured, served directly.
		resp = send("POST", path+"?token="+token, "Referer", base+"/?token="+token)
		if resp != nil && path != "/panic-late" && resp.StatusCode != 500 {
			t.Errorf("POST %s: got %d; want 500", path, resp.StatusCode)
		}
	}
	// A WebSocket handshake whose app panics before upgrading.
	send("GET", "/panic/ws", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(token))
	// Wrong tokens in every place: refused, and not logged either.
	send("GET", "/x?token="+wrong, "Sec-Fetch-Mode", "navigate", "Referer", base+"/?token="+wrong)
	send("GET", "/x", "Authorization", "Bearer "+wrong)
	send("GET", "/x", "Authorization", "token "+token+" "+wrong)
	send("GET", "/x", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(wrong))
	r, _ := http.NewRequest("POST", base+"/_tether/login", strings.NewReader(url.Values{"token": {wrong}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	get(t, c, r)

	// Let the server finish logging the late panic.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(g.logs.String(), "late panic") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	logs := g.logs.String()
	for _, want := range []string{"panic while serving", "app error", "late panic", redacted} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q; the test did not exercise what it meant to:\n%s", want, logs)
		}
	}
	mustNotContain(t, "the logs", logs, secrets...)
	for i, b := range bodies {
		mustNotContain(t, fmt.Sprintf("body %d", i), b, secrets...)
		for _, trace := range []string{"goroutine ", ".go:", "panic", "blew up"} {
			if strings.Contains(b, trace) {
				t.Errorf("body %d holds %q: %q", i, trace, b)
			}
		}
	}
}

// Through the proxy: the app is down, the request carries every secret; the
// 502 and the proxy's logs hold none of them, nor the upstream's own secret.
func TestNoSecretsInProxyLogs(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const appSecret = "app-secret-value-0123456789"
	dead := Upstream{Network: "unix", Address: shortTempDir(t) + "/nobody-home.sock", Header: http.Header{"Authorization": {"token " + appSecret}}}
	g := newGate(t, func(o *Options) { o.App = NewProxy(dead, logger); o.Logger = logger })
	base := g.served()
	r, _ := http.NewRequest("POST", base+"/api/x?token="+g.token, strings.NewReader("body"))
	r.Header.Set("Referer", base+"/?token="+g.token)
	resp, body := get(t, client(t), r)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %d; want 502", resp.StatusCode)
	}
	if body != text502 {
		t.Errorf("502 body %q; want the fixed text", body)
	}
	out := logs.String()
	if !strings.Contains(out, "app unreachable") {
		t.Errorf("the proxy did not log the failure:\n%s", out)
	}
	mustNotContain(t, "the logs", out, g.token, appSecret)
	mustNotContain(t, "the 502 body", body, g.token, appSecret)
}

// The redacting handler covers messages, attributes, groups, errors and WithAttrs.
func TestRedactingHandler(t *testing.T) {
	buf := &syncBuffer{}
	const secret = "s3cr3t-t0ken-value-xyz"
	l := newRedactingLogger(slog.New(slog.NewJSONHandler(buf, nil)), newRedactor(secret))
	l.Info("msg "+secret, "a", secret, "err", fmt.Errorf("wrapped %s", secret),
		slog.Group("g", "b", "x"+secret), "n", 3, "enc", url.QueryEscape(secret+"/"))
	l.With("w", secret).WithGroup("grp").Info("second", "c", []string{secret})
	out := buf.String()
	if strings.Contains(out, secret) || strings.Contains(out, "t0ken-value") {
		t.Errorf("the secret reached the log: %s", out)
	}
	if strings.Count(out, redacted) < 7 {
		t.Errorf("fewer redactions than expected: %s", out)
	}
	if !strings.Contains(out, `"n":3`) {
		t.Errorf("non-string values were altered: %s", out)
	}
}

// 4xx and 5xx bodies never echo the token, the Host, the path, or a trace.
func TestErrorBodiesEchoNothing(t *testing.T) {
	g := newGate(t, nil)
	g.app.handler = func(w http.ResponseWriter, r *http.Request) { panic("x") }
	const evilPath = "/<script>alert(1)</script>"
	const evilHost = "evil.example"
	wrong, _ := NewToken()
	hostile := func(r *http.Request) *http.Request {
		r.URL.Path = evilPath
		r.URL.RawPath = ""
		return r
	}
	cases := map[string]*http.Request{
		"403-host": func() *http.Request {
			r := hostile(req("GET", "/", "Authorization", "Bearer "+g.token))
			r.Host = evilHost
			return r
		}(),
		"401-text":            hostile(req("GET", "/", "Authorization", "Bearer "+wrong)),
		"401-page":            hostile(req("GET", "/?token="+wrong, "Sec-Fetch-Mode", "navigate")),
		"403-origin":          hostile(req("POST", "/", "Origin", "http://"+evilHost, "Cookie", "x=1")),
		"403-protocol":        hostile(wsReq("/", "Sec-WebSocket-Protocol", jupyterProtocol+", "+tokenEntry(wrong))),
		"404-reserved":        req("GET", "/_tether/<script>alert(1)</script>"),
		"405-challenge":       req("POST", "/_tether/challenge?nonce=<script>alert(1)</script>"),
		"400-nonce":           req("GET", "/_tether/challenge?nonce=<script>alert(1)</script>"),
		"400-login":           req("POST", "/_tether/login?next=<script>", "Content-Type", "text/<script>"),
		"500-panic":           hostile(req("GET", "/", "Authorization", "Bearer "+g.token)),
		"401-login-post-next": postForm("/_tether/login", url.Values{"token": {wrong}, "next": {evilPath}}),
	}
	for name, r := range cases {
		w := g.do(r)
		if w.Code < 400 {
			t.Errorf("%s: got %d; want an error", name, w.Code)
		}
		b := w.Body.String()
		mustNotContain(t, name+" body", b, g.token, wrong)
		for _, bad := range []string{"<script", "alert(1)", evilHost, "goroutine", ".go:"} {
			if strings.Contains(b, bad) {
				t.Errorf("%s: the body holds %q", name, bad)
			}
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Cache-Control") != "no-store" ||
			w.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			!noCrossOriginReferrer(w.Header().Get("Referrer-Policy")) {
			t.Errorf("%s: security headers missing: %v", name, w.Header())
		}
	}
	// The rate-limited answer too.
	g.s.limiter = newFailureLimiter(1, time.Hour)
	g.do(req("GET", "/", "Authorization", "Bearer "+wrong))
	w := g.do(hostile(req("GET", "/", "Authorization", "Bearer "+wrong)))
	if w.Code != 429 || strings.Contains(w.Body.String(), "<script") || strings.Contains(w.Body.String(), wrong) {
		t.Errorf("429: got %d %q", w.Code, w.Body.String())
	}
}

// A panic answers a bare 500: no header the app had set goes out with it.
func TestPanicDropsAppHeaders(t *testing.T) {
	g := newGate(t, nil)
	g.app.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "app=1")
		w.Header().Set("X-Debug", "internal")
		panic("boom")
	}
	w := g.do(req("GET", "/x", "Authorization", "Bearer "+g.token))
	if w.Code != 500 || w.Body.String() != textInternal {
		t.Fatalf("got %d %q", w.Code, w.Body.String())
	}
	if w.Header().Get("Set-Cookie") != "" || w.Header().Get("X-Debug") != "" {
		t.Errorf("app headers went out with the 500: %v", w.Header())
	}
}

// noCrossOriginReferrer reports whether a Referrer-Policy sends no Referer to other
// origins: no-referrer everywhere, or same-origin on the login page (whose form needs
// its real Origin on the POST).
func noCrossOriginReferrer(policy string) bool {
	return policy == "no-referrer" || policy == "same-origin"
}
