package access

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signIn is tokenserver.SignIn as TEAM17.md fixes it (access may not import
// tokenserver): *OIDC must keep implementing it.
var _ interface {
	CallbackPath() string
	Start(w http.ResponseWriter, r *http.Request, next string)
	Finish(w http.ResponseWriter, r *http.Request) (email, next string, err error)
} = (*OIDC)(nil)

func newTestOIDC(t testing.TB, f *fakeProvider) *OIDC {
	t.Helper()
	o, err := NewOIDC(context.Background(), f.config(), f.srv.Client())
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return o
}

// assertClean fails when err's text holds any secret of the sign-in: the code, the
// state, the state cookie, an ID token, the client secret.
func assertClean(t *testing.T, err error, f *fakeProvider, b *browser) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	secrets := []string{f.secret}
	if b != nil {
		cb, _ := url.Parse(b.callback)
		secrets = append(secrets, cb.Query().Get("code"), cb.Query().Get("state"), b.authURL.Query().Get("nonce"))
		for _, c := range b.cookies {
			secrets = append(secrets, c.Value)
		}
	}
	f.mu.Lock()
	secrets = append(secrets, f.issued...)
	f.mu.Unlock()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error text %q holds a secret of the sign-in (%.12s...)", msg, s)
		}
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error text %q is more than one line", msg)
	}
}

func TestOIDCSignIn(t *testing.T) {
	f := newFakeProvider(t)
	o := newTestOIDC(t, f)
	if got := o.CallbackPath(); got != "/_tether/oidc/callback" {
		t.Errorf("CallbackPath() = %q; want /_tether/oidc/callback", got)
	}
	b := f.start(t, o, "/nb/tree?dir=a%20b")

	// The request to the provider: code flow, PKCE S256, state, nonce, our scopes; the
	// verifier itself never leaves the server.
	q := b.authURL.Query()
	for k, want := range map[string]string{"response_type": "code", "client_id": f.clientID, "redirect_uri": f.cbURL,
		"code_challenge_method": "S256", "scope": "openid email"} {
		if q.Get(k) != want {
			t.Errorf("authorization request %s = %q; want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 43 || len(q.Get("nonce")) < 43 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("state %q, nonce %q, code_challenge %q: want 256-bit random values", q.Get("state"), q.Get("nonce"), q.Get("code_challenge"))
	}
	if q.Has("code_verifier") || q.Has("client_secret") {
		t.Errorf("the authorization URL carries a secret: %s", b.authURL)
	}
	// The state cookie: one, opaque (not the state), HttpOnly, Lax, only on the callback
	// path, Secure because the redirect URL is https.
	if len(b.cookies) != 1 {
		t.Fatalf("Start set %d cookies; want 1", len(b.cookies))
	}
	c := b.cookies[0]
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/_tether/oidc/callback" ||
		c.MaxAge <= 0 || c.MaxAge > 900 || c.Value == q.Get("state") || len(c.Value) < 43 {
		t.Errorf("state cookie %v: want HttpOnly, Secure, SameSite=Lax, Path=/_tether/oidc/callback, short-lived, opaque", c)
	}

	email, next, err, set := finish(o, b.callback, b.cookies)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if email != "alice@example.org" || next != "/nb/tree?dir=a%20b" {
		t.Errorf("Finish = %q, %q; want alice@example.org, /nb/tree?dir=a%%20b", email, next)
	}
	if len(set) != 1 || set[0].Name != c.Name || set[0].MaxAge >= 0 {
		t.Errorf("Finish set cookies %v; want the state cookie cleared", set)
	}
	if len(f.errorsSeen) > 0 {
		t.Errorf("the provider refused requests: %v", f.errorsSeen)
	}
}

// TestOIDCSecureCookieWhenTLS: a redirect URL on plain http (a provider and server on
// loopback) still gets a Secure state cookie when the request came over TLS.
func TestOIDCSecureCookieWhenTLS(t *testing.T) {
	f := newFakeProvider(t)
	f.cbURL = "http://127.0.0.1:8443/cb"
	o := newTestOIDC(t, f)
	for _, tls := range []bool{false, true} {
		req := httptest.NewRequest("GET", "http://127.0.0.1:8443/", nil)
		if tls {
			req = httptest.NewRequest("GET", "https://127.0.0.1:8443/", nil)
		}
		rec := httptest.NewRecorder()
		o.Start(rec, req, "/")
		if c := rec.Result().Cookies(); len(c) != 1 || c[0].Secure != tls || c[0].Path != "/cb" {
			t.Errorf("TLS %v: cookie %v; want Secure=%v Path=/cb", tls, c, tls)
		}
	}
}

// TestOIDCRefusesBadIDTokens: each ID token go-oidc must refuse, with a reason that
// names the problem and no secret of the sign-in.
func TestOIDCRefusesBadIDTokens(t *testing.T) {
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		algs   []string       // advertised by discovery; nil: RS256
		info   map[string]any // the UserInfo answer; nil: no UserInfo endpoint
		claims func(c map[string]any)
		sign   func(f *fakeProvider, c map[string]any) string
		want   string
	}{
		{name: "wrong audience", claims: func(c map[string]any) { c["aud"] = "another-client" }, want: "issued for another client"},
		{name: "audience list without us", claims: func(c map[string]any) { c["aud"] = []string{"a", "b"} }, want: "issued for another client"},
		{name: "wrong issuer", claims: func(c map[string]any) { c["iss"] = "https://evil.example.org" }, want: "issued by another provider"},
		{name: "expired", claims: func(c map[string]any) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}, want: "expired"},
		{name: "alg none", sign: func(f *fakeProvider, c map[string]any) string { return unsigned(c) }, want: "not signed with an algorithm tether accepts"},
		{name: "alg none advertised", algs: []string{"none", "RS256"}, sign: func(f *fakeProvider, c map[string]any) string { return unsigned(c) }, want: "not signed with an algorithm tether accepts"},
		{name: "HS256 keyed with the public key", algs: []string{"RS256", "HS256"}, sign: func(f *fakeProvider, c map[string]any) string {
			der, err := x509.MarshalPKIXPublicKey(&f.key.PublicKey)
			if err != nil {
				panic(err)
			}
			return signWith(jose.HS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "k1", c)
		}, want: "not signed with an algorithm tether accepts"},
		{name: "another key, same kid", sign: func(f *fakeProvider, c map[string]any) string { return signWith(jose.RS256, otherKey, "k1", c) }, want: "signature does not match"},
		{name: "another key, unknown kid", sign: func(f *fakeProvider, c map[string]any) string { return signWith(jose.RS256, otherKey, "k2", c) }, want: "signature does not match"},
		{name: "nonce mismatch", claims: func(c map[string]any) { c["nonce"] = "not-the-nonce" }, want: "nonce is not the one this sign-in sent"},
		{name: "no nonce", claims: func(c map[string]any) { delete(c, "nonce") }, want: "nonce is not the one this sign-in sent"},
		{name: "e-mail not verified", claims: func(c map[string]any) { c["email_verified"] = false }, want: `has not verified the e-mail address "Alice@Example.ORG"`},
		{name: "email_verified missing", claims: func(c map[string]any) { delete(c, "email_verified") }, want: "has not verified the e-mail address"},
		{name: "email_verified as a string not true", claims: func(c map[string]any) { c["email_verified"] = "yes" }, want: "has not verified the e-mail address"},
		{name: "email_verified as a number", claims: func(c map[string]any) { c["email_verified"] = 1 }, want: "has not verified the e-mail address"},
		{name: "e-mail not a string", claims: func(c map[string]any) { c["email"] = []string{"a@b"} }, want: "e-mail claim is malformed"},
		{name: "no e-mail", claims: func(c map[string]any) { delete(c, "email") }, want: "gave no e-mail address"},
		{name: "no e-mail anywhere", claims: noEmail, info: map[string]any{"sub": "u-1"}, want: "gave no e-mail address"},
		{name: "UserInfo about another person", claims: noEmail, info: map[string]any{"sub": "u-2", "email": "bob@example.org", "email_verified": true}, want: "about another person"},
		{name: "UserInfo e-mail not verified", claims: noEmail, info: map[string]any{"sub": "u-1", "email": "bob@example.org", "email_verified": false}, want: `has not verified the e-mail address "bob@example.org"`},
		{name: "UserInfo refuses", claims: noEmail, info: map[string]any{"broken": true}, want: "UserInfo endpoint failed (no valid answer)"},
		{name: "empty e-mail", claims: func(c map[string]any) { c["email"] = "" }, want: "gave no e-mail address"},
		{name: "e-mail with a line break", claims: func(c map[string]any) { c["email"] = "eve@example.org\r\nX-Tether-User: owner" }, want: "is not one tether can match"},
		{name: "e-mail without @", claims: func(c map[string]any) { c["email"] = "eve" }, want: "is not one tether can match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeProvider(t)
			if tt.algs != nil {
				f.algs = tt.algs
			}
			f.claims = tt.claims
			f.userInfo = tt.info
			if tt.sign != nil {
				f.sign = func(c map[string]any) string { return tt.sign(f, c) }
			}
			o := newTestOIDC(t, f)
			b := f.start(t, o, "/")
			email, _, err, _ := finish(o, b.callback, b.cookies)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Finish = %q, %v; want an error saying %q", email, err, tt.want)
			}
			var se *SignInError
			if !errors.As(err, &se) {
				t.Errorf("error %v is not a *SignInError", err)
			}
			assertClean(t, err, f, b)
			if f.tokenCalls != 1 {
				t.Errorf("token endpoint called %d times; want 1", f.tokenCalls)
			}
		})
	}
}

func noEmail(c map[string]any) { delete(c, "email"); delete(c, "email_verified") }

// TestOIDCEmailSources: the e-mail from the ID token, or from UserInfo when the ID
// token has none (a provider that keeps the code flow's ID token minimal).
func TestOIDCEmailSources(t *testing.T) {
	tests := []struct {
		name   string
		claims func(c map[string]any)
		info   map[string]any
		want   string
	}{
		{"ID token", nil, nil, "alice@example.org"},
		{"ID token before UserInfo", nil, map[string]any{"sub": "u-1", "email": "bob@example.org", "email_verified": true}, "alice@example.org"},
		{"email_verified as the string true", func(c map[string]any) { c["email_verified"] = "true" }, nil, "alice@example.org"},
		{"UserInfo", noEmail, map[string]any{"sub": "u-1", "email": "Bob@Example.org", "email_verified": true}, "bob@example.org"},
		// Only ASCII letters are lowered: the Kelvin sign (U+212A) stays what it is, so
		// the address can never turn into one of *@kth.se (strings.ToLower makes it "k").
		{"Kelvin sign stays", func(c map[string]any) { c["email"] = "Eve@\u212Ath.se" }, nil, "eve@\u212Ath.se"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeProvider(t)
			f.claims, f.userInfo = tt.claims, tt.info
			o := newTestOIDC(t, f)
			b := f.start(t, o, "/")
			email, _, err, _ := finish(o, b.callback, b.cookies)
			if err != nil || email != tt.want {
				t.Fatalf("Finish = %q, %v; want %q", email, err, tt.want)
			}
		})
	}
}

// TestOIDCStateChecks: a callback is accepted once, only in the browser that started
// the sign-in, and only while it is fresh; the provider's errors are clear.
func TestOIDCStateChecks(t *testing.T) {
	f := newFakeProvider(t)
	o := newTestOIDC(t, f)

	t.Run("replay", func(t *testing.T) {
		b := f.start(t, o, "/")
		if _, _, err, _ := finish(o, b.callback, b.cookies); err != nil {
			t.Fatalf("first callback: %v", err)
		}
		calls := f.tokenCalls
		_, _, err, _ := finish(o, b.callback, b.cookies)
		if err == nil || !strings.Contains(err.Error(), "expired or was already used") {
			t.Fatalf("second callback with the same state: %v; want refused as already used", err)
		}
		if f.tokenCalls != calls {
			t.Errorf("the replayed code went to the token endpoint")
		}
		assertClean(t, err, f, b)
	})
	t.Run("no cookie", func(t *testing.T) {
		b := f.start(t, o, "/")
		_, _, err, _ := finish(o, b.callback, nil)
		if err == nil || !strings.Contains(err.Error(), "started in another browser") {
			t.Fatalf("callback without the state cookie: %v; want refused", err)
		}
		assertClean(t, err, f, b)
		// The state is used up: the right browser cannot finish it after an attempt.
		if _, _, err, _ := finish(o, b.callback, b.cookies); err == nil {
			t.Errorf("the state was accepted after a failed attempt")
		}
	})
	t.Run("another browser", func(t *testing.T) {
		victim := f.start(t, o, "/")
		attacker := f.start(t, o, "/")
		// The attacker's cookie renamed to the victim's state: the values differ.
		forged := []*http.Cookie{{Name: victim.cookies[0].Name, Value: attacker.cookies[0].Value}}
		_, _, err, _ := finish(o, victim.callback, forged)
		if err == nil || !strings.Contains(err.Error(), "started in another browser") {
			t.Fatalf("callback with another browser's cookie: %v; want refused", err)
		}
		// The attacker's own cookie, unrenamed, does not fit the victim's state either.
		_, _, err, _ = finish(o, victim.callback, attacker.cookies)
		if err == nil {
			t.Fatalf("callback with another sign-in's cookie accepted")
		}
		assertClean(t, err, f, victim)
	})
	t.Run("unknown state", func(t *testing.T) {
		b := f.start(t, o, "/")
		cb, _ := url.Parse(b.callback)
		q := cb.Query()
		q.Set("state", randomString())
		cb.RawQuery = q.Encode()
		if _, _, err, _ := finish(o, cb.String(), b.cookies); err == nil || !strings.Contains(err.Error(), "expired or was already used") {
			t.Fatalf("made-up state: %v; want refused", err)
		}
	})
	t.Run("no state", func(t *testing.T) {
		if _, _, err, _ := finish(o, f.cbURL+"?code=abc", nil); err == nil || !strings.Contains(err.Error(), "no state") {
			t.Fatalf("callback without state: %v; want refused", err)
		}
	})
	t.Run("nonce replay", func(t *testing.T) {
		// A good ID token from one sign-in, handed back in another (same browser,
		// same provider, valid signature): its nonce is the first sign-in's.
		first := f.start(t, o, "/")
		if _, _, err, _ := finish(o, first.callback, first.cookies); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		old := f.issued[len(f.issued)-1]
		f.mu.Unlock()
		f.sign = func(map[string]any) string { return old }
		defer func() { f.sign = nil }()
		second := f.start(t, o, "/")
		_, _, err, _ := finish(o, second.callback, second.cookies)
		if err == nil || !strings.Contains(err.Error(), "nonce") {
			t.Fatalf("a replayed ID token: %v; want refused for its nonce", err)
		}
		assertClean(t, err, f, second)
	})
	t.Run("provider error", func(t *testing.T) {
		b := f.start(t, o, "/")
		state := b.authURL.Query().Get("state")
		cb := f.cbURL + "?" + url.Values{"error": {"access_denied"}, "error_description": {"<script>go to evil.example</script>"}, "state": {state}}.Encode()
		_, _, err, set := finish(o, cb, b.cookies)
		if err == nil || !strings.Contains(err.Error(), "refused the sign-in (access_denied)") || strings.Contains(err.Error(), "evil") {
			t.Fatalf("?error=access_denied: %v; want a clear refusal without the provider's description", err)
		}
		if len(set) != 1 || set[0].MaxAge >= 0 {
			t.Errorf("state cookie not cleared after a provider error: %v", set)
		}
		assertClean(t, err, f, b)
		b2 := f.start(t, o, "/")
		cb = f.cbURL + "?" + url.Values{"error": {"temporarily_unavailable"}, "state": {b2.authURL.Query().Get("state")}}.Encode()
		if _, _, err, _ := finish(o, cb, b2.cookies); err == nil || !strings.Contains(err.Error(), "(temporarily_unavailable)") {
			t.Fatalf("?error=temporarily_unavailable: %v", err)
		}
		b3 := f.start(t, o, "/")
		cb = f.cbURL + "?" + url.Values{"error": {"bad\nthing <b>"}, "state": {b3.authURL.Query().Get("state")}}.Encode()
		if _, _, err, _ := finish(o, cb, b3.cookies); err == nil || !strings.Contains(err.Error(), "(unknown)") {
			t.Fatalf("?error with odd characters: %v; want it not repeated", err)
		}
	})
	t.Run("another provider's answer", func(t *testing.T) {
		b := f.start(t, o, "/")
		cb, _ := url.Parse(b.callback)
		q := cb.Query()
		q.Set("iss", "https://evil.example.org")
		cb.RawQuery = q.Encode()
		calls := f.tokenCalls
		if _, _, err, _ := finish(o, cb.String(), b.cookies); err == nil || !strings.Contains(err.Error(), "another provider than "+f.issuer) {
			t.Fatalf("iss=https://evil.example.org in the callback: %v; want refused (RFC 9207)", err)
		}
		if f.tokenCalls != calls {
			t.Errorf("the code of a mixed-up answer went to the token endpoint")
		}
		// Our own issuer named in the answer is fine.
		b = f.start(t, o, "/")
		if _, _, err, _ := finish(o, b.callback+"&iss="+url.QueryEscape(f.issuer), b.cookies); err != nil {
			t.Fatalf("iss naming our provider: %v", err)
		}
	})
	t.Run("code refused", func(t *testing.T) {
		b := f.start(t, o, "/")
		cb, _ := url.Parse(b.callback)
		q := cb.Query()
		q.Set("code", "made-up-code")
		cb.RawQuery = q.Encode()
		_, _, err, _ := finish(o, cb.String(), b.cookies)
		if err == nil || !strings.Contains(err.Error(), "did not accept the sign-in code (invalid_grant)") || strings.Contains(err.Error(), "made-up-code") || strings.Contains(err.Error(), "details") {
			t.Fatalf("a code the provider refuses: %v; want its error code only", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		b := f.start(t, o, "/")
		o.mu.Lock()
		o.now = func() time.Time { return time.Now().Add(pendingTTL + time.Second) }
		o.mu.Unlock()
		defer func() { o.mu.Lock(); o.now = time.Now; o.mu.Unlock() }()
		if _, _, err, _ := finish(o, b.callback, b.cookies); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("a callback after %v: %v; want refused as expired", pendingTTL, err)
		}
	})
	t.Run("two tabs", func(t *testing.T) {
		// Two sign-ins under way in one browser: both finish.
		a, b := f.start(t, o, "/a/"), f.start(t, o, "/b/")
		jar := append(append([]*http.Cookie{}, a.cookies...), b.cookies...)
		for _, tab := range []*browser{b, a} {
			if _, _, err, _ := finish(o, tab.callback, jar); err != nil {
				t.Errorf("tab %s: %v", tab.authURL.Query().Get("state")[:6], err)
			}
		}
	})
}

// TestOIDCPendingBounded: a flood of sign-ins that never come back keeps at most
// maxPending records (the oldest are forgotten), and the heap stays small.
func TestOIDCPendingBounded(t *testing.T) {
	f := newFakeProvider(t)
	o := newTestOIDC(t, f)
	first := f.start(t, o, "/")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 3 * maxPending
	req := httptest.NewRequest("GET", "https://team.example.org/", nil)
	for i := range n {
		rec := httptest.NewRecorder()
		o.Start(rec, req, fmt.Sprintf("/nb/%d/%s", i, strings.Repeat("x", 100)))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	o.mu.Lock()
	held, listed := len(o.pending), o.order.Len()
	o.mu.Unlock()
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d Start calls: %d sign-ins held, heap grew %d KiB (%d B per held sign-in)", n, held, grown/1024, grown/int64(max(held, 1)))
	if held != maxPending || listed != maxPending {
		t.Errorf("after %d Start calls %d sign-ins held (%d listed); want %d", n, held, listed, maxPending)
	}
	if grown > 32<<20 {
		t.Errorf("heap grew %d MiB for %d held sign-ins; want < 32 MiB", grown>>20, held)
	}
	// The oldest was forgotten.
	if _, _, err, _ := finish(o, first.callback, first.cookies); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("the first sign-in after the flood: %v; want forgotten", err)
	}
	// After the TTL every record goes at the next Start.
	o.mu.Lock()
	o.now = func() time.Time { return time.Now().Add(pendingTTL) }
	o.mu.Unlock()
	o.Start(httptest.NewRecorder(), req, "/")
	o.mu.Lock()
	held = len(o.pending)
	o.mu.Unlock()
	if held != 1 {
		t.Errorf("after the TTL %d sign-ins held; want 1", held)
	}
	// A long next is not kept.
	o.Start(httptest.NewRecorder(), req, "/"+strings.Repeat("a", maxNext))
	o.mu.Lock()
	last := o.order.Back().Value.(*pending).next
	o.mu.Unlock()
	if last != "/" {
		t.Errorf("a next of %d bytes kept as %.20q...; want /", maxNext+1, last)
	}
}

func TestNewOIDCConfigErrors(t *testing.T) {
	f := newFakeProvider(t)
	good := f.config()
	tests := []struct {
		name string
		edit func(c *OIDCConfig)
		want string
	}{
		{"issuer not a URL", func(c *OIDCConfig) { c.Issuer = "login.example.org" }, `issuer "login.example.org" is not an https URL`},
		{"issuer plain http", func(c *OIDCConfig) { c.Issuer = "http://login.example.org" }, "must use https"},
		{"redirect plain http", func(c *OIDCConfig) { c.RedirectURL = "http://team.example.org/cb" }, "redirect_url \"http://team.example.org/cb\" must use https"},
		{"redirect without path", func(c *OIDCConfig) { c.RedirectURL = "https://team.example.org" }, "needs a path of its own"},
		{"redirect with query", func(c *OIDCConfig) { c.RedirectURL = "https://team.example.org/cb?x=1" }, "may not have a query"},
		{"no client id", func(c *OIDCConfig) { c.ClientID = "" }, "client_id is empty"},
		{"no secret", func(c *OIDCConfig) { c.ClientSecret = "" }, "client secret is empty"},
		{"issuer differs from discovery", func(c *OIDCConfig) { c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1) }, "did not match the issuer URL returned by provider"},
		{"no provider there", func(c *OIDCConfig) { c.Issuer = "http://127.0.0.1:1" }, "discovery at http://127.0.0.1:1 failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			_, err := NewOIDC(context.Background(), c, f.srv.Client())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewOIDC = %v; want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), f.secret) {
				t.Errorf("error %q holds the client secret", err)
			}
		})
	}
}
