package tokenserver

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Login codes: one use, unexpired, made from this token, well formed.
func TestLoginCode(t *testing.T) {
	g := newGate(t, nil)
	page := func(code string) *httpResult {
		w := g.do(req("GET", "/lab/tree?x=1&code="+url.QueryEscape(code), "Sec-Fetch-Mode", "navigate"))
		return &httpResult{w.Code, w.Header(), w.Body.String()}
	}
	code, err := MintLoginCode(g.token, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(code, loginCodePrefix) || strings.Contains(code, g.token) {
		t.Fatalf("unexpected code shape")
	}
	// Works once: cookie, 303 to the same URL without the code, no-referrer.
	res := page(code)
	if res.code != http.StatusSeeOther {
		t.Fatalf("first use: got %d; want 303", res.code)
	}
	if loc := res.hdr.Get("Location"); loc != "/lab/tree?x=1" {
		t.Errorf("first use: Location %q; want /lab/tree?x=1", loc)
	}
	if res.hdr.Get("Referrer-Policy") != "no-referrer" || len(res.hdr.Values("Set-Cookie")) != 1 {
		t.Errorf("first use: headers %v", res.hdr)
	}
	// Second use fails, like a bad token.
	if res := page(code); res.code != http.StatusUnauthorized || len(res.hdr.Values("Set-Cookie")) != 0 {
		t.Errorf("second use: got %d; want 401 without a cookie", res.code)
	}
	// Expired.
	old, _ := MintLoginCode(g.token, time.Minute)
	g.clock.Advance(61 * time.Second)
	if res := page(old); res.code != http.StatusUnauthorized {
		t.Errorf("expired code: got %d; want 401", res.code)
	}
	g.clock.Advance(-61 * time.Second)
	// From another token.
	other, _ := NewToken()
	foreign, _ := MintLoginCode(other, time.Minute)
	if res := page(foreign); res.code != http.StatusUnauthorized {
		t.Errorf("another token's code: got %d; want 401", res.code)
	}
	// Forged: every byte of the body flipped in turn, and bodies cut short.
	fresh, _ := MintLoginCode(g.token, time.Minute)
	body, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(fresh, loginCodePrefix))
	for i := range body {
		b := append([]byte(nil), body...)
		b[i] ^= 0x01
		forged := loginCodePrefix + base64.RawURLEncoding.EncodeToString(b)
		if res := page(forged); res.code != http.StatusUnauthorized {
			t.Errorf("code with byte %d flipped: got %d; want 401", i, res.code)
		}
	}
	// An expiry pushed into the far future (the MAC is over it, so this is a forgery;
	// checked anyway in case a MAC were ever skipped).
	for _, bad := range []string{
		loginCodePrefix, loginCodePrefix + "x", "tc1.", loginCodePrefix + strings.Repeat("A", 75),
		loginCodePrefix + base64.RawURLEncoding.EncodeToString(body[:40]),
		loginCodePrefix + base64.StdEncoding.EncodeToString(body), fresh + "A", "TC1." + fresh[4:],
	} {
		if res := page(bad); res.code != http.StatusUnauthorized {
			t.Errorf("malformed code %q: got %d; want 401", bad, res.code)
		}
	}
	// The unused fresh code still works: the forgeries did not spend it.
	if res := page(fresh); res.code != http.StatusSeeOther {
		t.Errorf("fresh code after forgeries: got %d; want 303", res.code)
	}
	if g.app.count() != 0 {
		t.Errorf("the app saw %d requests", g.app.count())
	}
	// Not on a script's request, nor on a POST: ignored (and stripped).
	c4, _ := MintLoginCode(g.token, time.Minute)
	if w := g.do(req("GET", "/x?code="+c4, "Sec-Fetch-Mode", "cors")); w.Code != http.StatusUnauthorized {
		t.Errorf("code from a script: got %d; want 401", w.Code)
	}
	if w := g.do(req("POST", "/x?code="+c4)); w.Code != http.StatusUnauthorized {
		t.Errorf("code on a POST: got %d; want 401", w.Code)
	}
	// An app's own `code` parameter (an OAuth callback) is not ours: it passes untouched.
	ck := g.cookie(testHost)
	if w := g.do(withCookie(req("GET", "/oauth/cb?code=abc123&state=s", "Sec-Fetch-Mode", "navigate"), ck)); w.Code != 200 {
		t.Fatalf("app's code parameter: got %d; want 200", w.Code)
	}
	if uri := g.app.last(t).RequestURI; uri != "/oauth/cb?code=abc123&state=s" {
		t.Errorf("the app saw %q", uri)
	}
}

type httpResult struct {
	code int
	hdr  http.Header
	body string
}

func TestMintLoginCodeArguments(t *testing.T) {
	tok, _ := NewToken()
	for _, ttl := range []time.Duration{0, -time.Second, MaxLoginCodeTTL + time.Second} {
		if _, err := MintLoginCode(tok, ttl); err == nil {
			t.Errorf("MintLoginCode accepted ttl %v", ttl)
		}
	}
	if _, err := MintLoginCode("short", time.Minute); err == nil {
		t.Error("MintLoginCode accepted a bad token")
	}
	a, _ := MintLoginCode(tok, time.Minute)
	b, _ := MintLoginCode(tok, time.Minute)
	if TokensEqual(a, b) {
		t.Error("two codes are the same")
	}
}

// The challenge: the right answer for the right token, a different one for another
// token, unauthenticated, never proxied, and not an oracle for login codes.
func TestChallenge(t *testing.T) {
	g := newGate(t, func(o *Options) { o.BaseURL = "/p/" })
	nonce := "n0nce-abcdefghij_0123"
	w := g.do(req("GET", "/p/_tether/challenge?nonce="+nonce))
	if w.Code != 200 {
		t.Fatalf("challenge: got %d; want 200", w.Code)
	}
	got := w.Body.String()
	want := ChallengeResponse(g.token, nonce)
	if !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("challenge answer differs from ChallengeResponse")
	}
	if raw, err := hex.DecodeString(got); err != nil || len(raw) != 32 {
		t.Errorf("challenge answer is not 64 hex digits")
	}
	mustNotContain(t, "challenge answer", got, g.token)
	other, _ := NewToken()
	if hmac.Equal([]byte(ChallengeResponse(other, nonce)), []byte(got)) {
		t.Error("another token gives the same answer")
	}
	if hmac.Equal([]byte(ChallengeResponse(g.token, nonce+"x")), []byte(got)) {
		t.Error("another nonce gives the same answer")
	}
	// Not an oracle for login codes: a code's MAC over the same bytes differs.
	if hmac.Equal(loginCodeMAC(g.token, []byte(nonce)), mustHex(t, got)) {
		t.Error("the challenge key is the login-code key")
	}
	// Nonce rules.
	for _, q := range []string{"", "nonce=", "nonce=short", "nonce=" + strings.Repeat("a", 129), "nonce=abcdefghijklmnop%20", "nonce=abcdefghijklmnop&nonce=abcdefghijklmnop", "nonce=abcdefghijklmnop<"} {
		if w := g.do(req("GET", "/p/_tether/challenge?"+q)); w.Code != http.StatusBadRequest {
			t.Errorf("challenge ?%s: got %d; want 400", q, w.Code)
		}
	}
	if w := g.do(req("GET", "/p/_tether/challenge?nonce="+strings.Repeat("a", 128))); w.Code != 200 {
		t.Errorf("128-character nonce: got %d; want 200", w.Code)
	}
	if w := g.do(req("POST", "/p/_tether/challenge?nonce="+nonce)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST challenge: got %d; want 405", w.Code)
	}
	// The Host check applies to it too (a rebinding page must not read it).
	r := req("GET", "/p/_tether/challenge?nonce="+nonce)
	r.Host = "evil.example"
	if w := g.do(r); w.Code != 403 {
		t.Errorf("challenge with a bad Host: got %d; want 403", w.Code)
	}
	// Reserved paths, authenticated or not, in any spelling, are never proxied.
	for _, p := range []string{"/p/_tether/challenge", "/p/_tether/", "/p/_tether", "/p/_tether/app", "/p/%5Ftether/x", "/p/x/../_tether/x", "/p//_tether/x", "/p/./_tether/x"} {
		r := req("GET", "/", "Authorization", "Bearer "+g.token)
		r.URL, _ = url.ParseRequestURI(p)
		w := g.do(r)
		if w.Code == 200 && !strings.HasSuffix(p, "/challenge") {
			t.Errorf("reserved %s: got 200", p)
		}
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the app saw %d requests under the reserved prefix", n)
	}
	// The app does get its own paths that merely look similar.
	if w := g.do(req("GET", "/p/_tetherx", "Authorization", "Bearer "+g.token)); w.Code != 200 || g.app.count() != 1 {
		t.Errorf("/p/_tetherx: got %d; want the app", w.Code)
	}
	// Without a token (NoAuth), there is nothing to answer with.
	na := newGate(t, func(o *Options) { o.Token = ""; o.NoAuth = true })
	if w := na.do(req("GET", "/_tether/challenge?nonce="+nonce)); w.Code != http.StatusNotFound {
		t.Errorf("NoAuth challenge: got %d; want 404", w.Code)
	}
}

// The owner proof on a challenge: the answer says whether the proof matches this
// server's token (accepted) or not (refused: another token's, another nonce's, two of
// them, garbage, each logged as a failed attempt), says nothing without one, and the
// challenge's own answer is the same either way. The proof is no credential: it lets
// nothing through the gate, and it is neither the challenge's answer nor the token.
func TestChallengeOwnerProof(t *testing.T) {
	g := newGate(t, func(o *Options) { o.BaseURL = "/p/" })
	nonce := "n0nce-abcdefghij_0123"
	other, _ := NewToken()
	challenge := func(proofs ...string) *httptest.ResponseRecorder {
		r := req("GET", "/p/_tether/challenge?nonce="+nonce)
		for _, p := range proofs {
			r.Header.Add(OwnerProofHeader, p)
		}
		w := g.do(r)
		if w.Code != 200 || !hmac.Equal(w.Body.Bytes(), []byte(ChallengeResponse(g.token, nonce))) {
			t.Fatalf("challenge with proofs %q: got %d %q; want 200 and the answer", proofs, w.Code, w.Body.String())
		}
		return w
	}
	if v := challenge().Header().Values(OwnerAcceptedHeader); len(v) != 0 {
		t.Errorf("no proof: %s %q; want none", OwnerAcceptedHeader, v)
	}
	good := OwnerProof(g.token, nonce)
	if v := challenge(good).Header().Values(OwnerAcceptedHeader); len(v) != 1 || v[0] != OwnerAccepted {
		t.Errorf("the right proof: %s %q; want %q", OwnerAcceptedHeader, v, OwnerAccepted)
	}
	before := strings.Count(g.logs.String(), "wrong owner proof")
	for name, proofs := range map[string][]string{
		"another token's": {OwnerProof(other, nonce)},
		"another nonce's": {OwnerProof(g.token, nonce+"x")},
		"two":             {good, good},
		"garbage":         {"not hex"},
		"the answer":      {ChallengeResponse(g.token, nonce)},
	} {
		if v := challenge(proofs...).Header().Values(OwnerAcceptedHeader); len(v) != 1 || v[0] != OwnerRefused {
			t.Errorf("%s proof: %s %q; want %q", name, OwnerAcceptedHeader, v, OwnerRefused)
		}
	}
	if n := strings.Count(g.logs.String(), "wrong owner proof") - before; n != 5 {
		t.Errorf("%d wrong proofs logged as failed attempts; want 5", n)
	}
	// Domain-separated: not the challenge's answer, not the token, not a credential.
	if hmac.Equal([]byte(good), []byte(ChallengeResponse(g.token, nonce))) {
		t.Error("the owner proof is the challenge's answer")
	}
	mustNotContain(t, "owner proof", good, g.token)
	for _, r := range []*http.Request{
		req("GET", "/p/", OwnerProofHeader, good),
		req("GET", "/p/", "Authorization", "token "+good),
		req("GET", "/p/?token="+good),
	} {
		if w := g.do(r); w.Code == 200 {
			t.Errorf("the owner proof let %s %v through the gate", r.URL, r.Header)
		}
	}
	if n := g.app.count(); n != 0 {
		t.Errorf("the app saw %d requests", n)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The login page: 401 for page loads, self-contained, strict CSP, posting to our
// reserved path; the form signs in and redirects to next.
func TestLoginPage(t *testing.T) {
	g := newGate(t, func(o *Options) { o.BaseURL = "/u/a" })
	w := g.do(req("GET", "/u/a/lab", "Sec-Fetch-Mode", "navigate"))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("got %d; want 401", w.Code)
	}
	body := w.Body.String()
	h := w.Header()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "style-src 'sha256-", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if !strings.Contains(csp, styleHash(loginStyle)) {
		t.Error("the CSP does not allow the page's own style")
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("security headers: %v", h)
	}
	// same-origin, not no-referrer: under no-referrer Chromium posts the form with
	// "Origin: null", which the cross-origin check refuses.
	if got := h.Get("Referrer-Policy"); got != "same-origin" || !strings.Contains(body, `<meta name="referrer" content="same-origin">`) {
		t.Errorf("login page Referrer-Policy %q and meta; want same-origin in both", got)
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	for _, bad := range []string{"<script", "src=", "href=", "http://", "https://", "@import", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("the login page is not self-contained: holds %q", bad)
		}
	}
	for _, want := range []string{`action="/u/a/_tether/login"`, `method="post"`, `name="token"`, `name="next" value="/u/a/lab"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the login page lacks %s", want)
		}
	}
	// HEAD gets the headers only.
	if w := g.do(req("HEAD", "/u/a/lab", "Sec-Fetch-Mode", "navigate")); w.Code != 401 || w.Body.Len() != 0 {
		t.Errorf("HEAD: got %d with %d bytes", w.Code, w.Body.Len())
	}
	// Sign in with the form; then the cookie works.
	w = g.do(postForm("/u/a/_tether/login", url.Values{"token": {g.token}, "next": {"/u/a/lab?x=1"}}, "Origin", "http://localhost:8888", "Sec-Fetch-Site", "same-origin"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/u/a/lab?x=1" {
		t.Fatalf("login: got %d to %q", w.Code, w.Header().Get("Location"))
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatal("login set no cookie")
	}
	if w := g.do(withCookie(req("GET", "/u/a/lab"), cs[0])); w.Code != 200 {
		t.Errorf("after login: got %d; want 200", w.Code)
	}
	// A wrong token: 401 with the form again and a message, next kept.
	w = g.do(postForm("/u/a/_tether/login", url.Values{"token": {"wrong-token-0123456789"}, "next": {"/u/a/lab"}}))
	if w.Code != 401 || !strings.Contains(w.Body.String(), "not accepted") || !strings.Contains(w.Body.String(), `value="/u/a/lab"`) {
		t.Errorf("wrong token: got %d", w.Code)
	}
	// Two token fields, a query-string token, other content types: refused.
	if w := g.do(postForm("/u/a/_tether/login", url.Values{"token": {g.token, g.token}})); w.Code != 401 {
		t.Errorf("two token fields: got %d; want 401", w.Code)
	}
	r := postForm("/u/a/_tether/login?token="+g.token, url.Values{"next": {"/u/a/"}})
	if w := g.do(r); w.Code != 401 {
		t.Errorf("token in the login URL instead of the body: got %d; want 401", w.Code)
	}
	r = postForm("/u/a/_tether/login", url.Values{"token": {g.token}})
	r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	if w := g.do(r); w.Code != http.StatusBadRequest {
		t.Errorf("multipart login: got %d; want 400", w.Code)
	}
	big := postForm("/u/a/_tether/login", url.Values{"token": {strings.Repeat("a", maxLoginBody)}})
	if w := g.do(big); w.Code != http.StatusBadRequest {
		t.Errorf("oversized login body: got %d; want 400", w.Code)
	}
	if w := g.do(req("PUT", "/u/a/_tether/login")); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT login: got %d; want 405", w.Code)
	}
	// GET of the login page itself: 200, next from the query but validated.
	w = g.do(req("GET", "/u/a/_tether/login?next=//evil.example"))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `value="/u/a/"`) {
		t.Errorf("GET login page with a bad next: got %d", w.Code)
	}
	if g.app.count() != 1 {
		t.Errorf("the app saw %d requests; want 1", g.app.count())
	}
}

// Non-browser clients get a short text and WWW-Authenticate.
func TestUnauthorizedText(t *testing.T) {
	g := newGate(t, nil)
	w := g.do(req("GET", "/api/kernels", "Accept", "application/json"))
	if w.Code != 401 || w.Body.String() != textUnauth || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("got %d %q %v", w.Code, w.Body.String(), w.Header())
	}
}

// NoAuth: no credential needed; Host and Origin checks and stripping still apply; Serve
// refuses a listener beyond loopback.
func TestNoAuth(t *testing.T) {
	g := newGate(t, func(o *Options) { o.Token = ""; o.NoAuth = true })
	if w := g.do(req("GET", "/lab")); w.Code != 200 {
		t.Errorf("NoAuth GET: got %d; want 200", w.Code)
	}
	r := req("GET", "/lab")
	r.Host = "evil.example"
	if w := g.do(r); w.Code != 403 {
		t.Errorf("NoAuth bad Host: got %d; want 403", w.Code)
	}
	if w := g.do(req("POST", "/api", "Origin", "https://evil.example")); w.Code != 403 {
		t.Errorf("NoAuth cross-origin POST: got %d; want 403", w.Code)
	}
	if w := g.do(wsReq("/ws")); w.Code != 403 {
		t.Errorf("NoAuth WebSocket without Origin: got %d; want 403", w.Code)
	}
	if w := g.do(req("GET", "/lab?token=x&y=1", "Cookie", "tether-a-1=v; k=v")); w.Code != 200 {
		t.Errorf("NoAuth with our credentials: got %d", w.Code)
	} else if seen := g.app.last(t); seen.RequestURI != "/lab?y=1" || seen.Header.Get("Cookie") != "k=v" {
		t.Errorf("NoAuth: the app saw %q with Cookie %q", seen.RequestURI, seen.Header.Get("Cookie"))
	}
	// Listeners.
	wide, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0:", err)
	}
	defer wide.Close()
	if err := g.s.Serve(wide); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("NoAuth Serve on 0.0.0.0: %v; want a refusal", err)
	}
	// A Unix socket and loopback TCP are fine, both at once.
	sock, err := net.Listen("unix", shortTempDir(t)+"/s.sock")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, g.s, sock)
	base := g.served()
	if resp, _ := get(t, client(t), mustRequest(t, "GET", base+"/x")); resp.StatusCode != 200 {
		t.Errorf("NoAuth over TCP: got %d", resp.StatusCode)
	}
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock.Addr().String())
	}}}
	t.Cleanup(uc.CloseIdleConnections)
	if resp, _ := get(t, uc, mustRequest(t, "GET", "http://localhost/x")); resp.StatusCode != 200 {
		t.Errorf("NoAuth over the Unix socket: got %d", resp.StatusCode)
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// New checks its options.
func TestNewOptions(t *testing.T) {
	tok, _ := NewToken()
	app := http.NotFoundHandler()
	bad := map[string]Options{
		"no app":          {Token: tok},
		"no token":        {App: app},
		"short token":     {Token: "abc", App: app},
		"session id":      {Token: tok, App: app, SessionID: "a b"},
		"session id semi": {Token: tok, App: app, SessionID: "a;b"},
		"long session":    {Token: tok, App: app, SessionID: strings.Repeat("a", 65)},
		"allow scheme":    {Token: tok, App: app, AllowHosts: []string{"https://x"}},
		"allow port":      {Token: tok, App: app, AllowHosts: []string{"x:80"}},
		"allow wildcard":  {Token: tok, App: app, AllowHosts: []string{"*.example"}},
		"allow empty":     {Token: tok, App: app, AllowHosts: []string{""}},
		"allow dots":      {Token: tok, App: app, AllowHosts: []string{"a..b"}},
		"base relative":   {Token: tok, App: app, BaseURL: "p/"},
		"base dotdot":     {Token: tok, App: app, BaseURL: "/a/../b/"},
		"base double":     {Token: tok, App: app, BaseURL: "//evil/"},
		"base query":      {Token: tok, App: app, BaseURL: "/a?x"},
		"base encoded":    {Token: tok, App: app, BaseURL: "/a%2F/"},
		"base space":      {Token: tok, App: app, BaseURL: "/a b/"},
		"tls no cert":     {Token: tok, App: app, TLS: &tlsConfigEmpty},
	}
	for name, o := range bad {
		if _, err := New(o); err == nil {
			t.Errorf("New accepted %s", name)
		}
	}
	bases := map[string]string{"": "/", "/": "/", "/p": "/p/", "/p/": "/p/", "/user/alice": "/user/alice/", "/a.b~c/d_e-f/": "/a.b~c/d_e-f/"}
	for in, want := range bases {
		s, err := New(Options{Token: tok, App: app, BaseURL: in, AllowHosts: []string{"[::2]", "Box.Example"}})
		if err != nil {
			t.Errorf("BaseURL %q: %v", in, err)
			continue
		}
		if s.base != want {
			t.Errorf("BaseURL %q became %q; want %q", in, s.base, want)
		}
	}
}

// OnActivity: called for authenticated requests, not for refused ones, at most ~1/s.
func TestOnActivity(t *testing.T) {
	var calls atomic.Int32
	g := newGate(t, func(o *Options) { o.OnActivity = func() { calls.Add(1) } })
	g.do(req("GET", "/x"))
	r := req("GET", "/x")
	r.Host = "evil.example"
	g.do(r)
	if calls.Load() != 0 {
		t.Fatalf("OnActivity called for refused requests")
	}
	g.do(req("GET", "/x", "Authorization", "Bearer "+g.token))
	g.do(req("GET", "/x", "Authorization", "Bearer "+g.token))
	if calls.Load() != 1 {
		t.Errorf("OnActivity called %d times for two quick requests; want 1", calls.Load())
	}
	g.s.lastActive.Store(time.Now().Add(-2 * time.Second).UnixNano())
	g.do(req("GET", "/x", "Authorization", "Bearer "+g.token))
	if calls.Load() != 2 {
		t.Errorf("OnActivity not called again after a second")
	}
}
