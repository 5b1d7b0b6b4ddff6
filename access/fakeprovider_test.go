package access

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fakeProvider is an OpenID provider in the test process, on 127.0.0.1: discovery,
// JWKS, an authorization endpoint that signs everyone in at once, and a token endpoint
// that checks the client's secret, the redirect_uri and the PKCE verifier, and hands
// out an ID token built by sign from claims (a good RS256 one unless a test changes
// them); with userInfo set, a UserInfo endpoint for the access tokens it issued.
type fakeProvider struct {
	srv                     *httptest.Server
	issuer                  string
	clientID, secret, cbURL string
	key                     *rsa.PrivateKey
	algs                    []string // advertised in discovery
	mu                      sync.Mutex
	grants                  map[string]grant // by code
	tokenCalls              int
	issued                  []string                           // every ID token handed out
	claims                  func(c map[string]any)             // changes the claims before signing
	sign                    func(claims map[string]any) string // nil: RS256 with key
	email                   string
	emailVerified           any // true unless set
	errorsSeen              []string
	userInfo                map[string]any // nil: no UserInfo endpoint
	accessTokens            map[string]bool
}

type grant struct{ nonce, challenge, redirect string }

func newFakeProvider(t testing.TB) *fakeProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProvider{
		clientID: "tether-team", secret: "s3cret-" + randomString(), key: key,
		algs: []string{"RS256"}, grants: map[string]grant{}, accessTokens: map[string]bool{},
		email: "Alice@Example.ORG", emailVerified: true,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", f.jwks)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /userinfo", f.userinfo)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	f.cbURL = "https://team.example.org/_tether/oidc/callback"
	return f
}

func (f *fakeProvider) config() OIDCConfig {
	return OIDCConfig{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: f.secret, RedirectURL: f.cbURL}
}

func (f *fakeProvider) fail(format string) {
	f.mu.Lock()
	f.errorsSeen = append(f.errorsSeen, format)
	f.mu.Unlock()
}

func (f *fakeProvider) discovery(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"issuer":                                f.issuer,
		"authorization_endpoint":                f.issuer + "/authorize",
		"token_endpoint":                        f.issuer + "/token",
		"jwks_uri":                              f.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"id_token_signing_alg_values_supported": f.algs,
		"code_challenge_methods_supported":      []string{"S256"},
	}
	if f.userInfo != nil {
		doc["userinfo_endpoint"] = f.issuer + "/userinfo"
	}
	json.NewEncoder(w).Encode(doc)
}

func (f *fakeProvider) jwks(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"},
	}})
}

func (f *fakeProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != f.clientID || q.Get("redirect_uri") != f.cbURL || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
		!strings.Contains(" "+q.Get("scope")+" ", " openid ") || !strings.Contains(" "+q.Get("scope")+" ", " email ") {
		f.fail("authorize: bad request " + r.URL.RawQuery)
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	f.mu.Lock()
	f.grants[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	f.mu.Unlock()
	http.Redirect(w, r, f.cbURL+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (f *fakeProvider) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.tokenCalls++
	f.mu.Unlock()
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != f.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(f.secret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	f.mu.Lock()
	g, found := f.grants[r.PostFormValue("code")]
	delete(f.grants, r.PostFormValue("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if r.PostFormValue("grant_type") != "authorization_code" || !found || r.PostFormValue("redirect_uri") != g.redirect ||
		base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		f.fail("token: invalid grant")
		tokenError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": f.issuer, "sub": "u-1", "aud": f.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": g.nonce, "email": f.email, "email_verified": f.emailVerified,
	}
	if f.claims != nil {
		f.claims(claims)
	}
	sign := f.sign
	if sign == nil {
		sign = f.signRS256
	}
	idToken := sign(claims)
	f.mu.Lock()
	f.issued = append(f.issued, idToken)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	at := randomString()
	f.mu.Lock()
	f.accessTokens[at] = true
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func (f *fakeProvider) userinfo(w http.ResponseWriter, r *http.Request) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok = ok && f.accessTokens[at]
	f.mu.Unlock()
	if _, broken := f.userInfo["broken"]; !ok || f.userInfo == nil || broken {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(f.userInfo)
}

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "details the person need not see"})
}

// signWith signs claims as a JWS with alg and key (a private key, or bytes for HS256).
func signWith(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return s
}

func (f *fakeProvider) signRS256(claims map[string]any) string {
	return signWith(jose.RS256, f.key, "k1", claims)
}

// unsigned is a JWT with alg "none" and an empty signature.
func unsigned(claims map[string]any) string {
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": "k1"})
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// browser is one browser's side of a sign-in: the cookies Start set and the
// provider's redirect back (with code and state).
type browser struct {
	cookies  []*http.Cookie
	authURL  *url.URL
	callback string // the redirect back from the provider, as the browser follows it
}

// start runs Start as a browser that asked for next, and follows the redirect to the
// fake provider, which signs in at once and redirects back.
func (f *fakeProvider) start(t testing.TB, o *OIDC, next string) *browser {
	t.Helper()
	rec := httptest.NewRecorder()
	o.Start(rec, httptest.NewRequest("GET", "https://team.example.org/nb/", nil), next)
	res := rec.Result()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("Start answered %d, want 302", res.StatusCode)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{cookies: res.Cookies(), authURL: loc}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	pres, err := client.Get(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	pres.Body.Close()
	if pres.StatusCode != http.StatusFound {
		t.Fatalf("the provider answered %d to %s, want 302", pres.StatusCode, loc)
	}
	b.callback = pres.Header.Get("Location")
	return b
}

// finish sends the callback to Finish with the given cookies.
func finish(o *OIDC, callback string, cookies []*http.Cookie) (email, next string, err error, set []*http.Cookie) {
	req := httptest.NewRequest("GET", callback, nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	email, next, err = o.Finish(rec, req)
	return email, next, err, rec.Result().Cookies()
}
