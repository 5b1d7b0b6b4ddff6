// Package access decides who may use a team server (tether serve --access): access
// keys, groups of e-mails and their rights, and sign-in with an OpenID provider.
package access

import (
	"container/list"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// How many sign-ins may be under way at once, and for how long each. A sign-in that
// took longer than pendingTTL (the person left the provider's page open) starts again;
// past maxPending the oldest unfinished one is forgotten, so anyone who can reach the
// sign-in page can make the server hold at most maxPending small records.
const (
	pendingTTL      = 10 * time.Minute
	maxPending      = 10000
	maxNext         = 2048 // longer "next" paths are replaced by "/"
	exchangeTimeout = 30 * time.Second
	stateCookie     = "tether_oidc_" // + a digest of the state: one cookie per sign-in
)

// OIDC is the relying party of an OpenID provider: the authorization code flow with
// PKCE (S256), state and nonce. It implements tokenserver.SignIn. Safe for concurrent use.
type OIDC struct {
	oauth    oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	client   *http.Client
	issuer   string
	callback string // the path of RedirectURL
	secure   bool   // RedirectURL is https: the state cookie is Secure

	mu      sync.Mutex
	pending map[string]*list.Element // by state; values are *pending
	order   *list.List               // oldest first
	max     int
	ttl     time.Duration
	now     func() time.Time
}

// pending is a sign-in under way: what Finish needs and the browser must not hold.
type pending struct {
	state    string
	browser  string // the value of the state cookie set in the browser that started it
	verifier string // PKCE code_verifier
	nonce    string
	next     string
	expires  time.Time
}

// NewOIDC fetches the provider's discovery document (and later its keys) with client
// (nil: http.DefaultClient) and returns the relying party for c.
func NewOIDC(ctx context.Context, c OIDCConfig, client *http.Client) (*OIDC, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if err := checkProviderURL("issuer", c.Issuer); err != nil {
		return nil, err
	}
	if err := checkProviderURL("redirect_url", c.RedirectURL); err != nil {
		return nil, err
	}
	redirect, _ := url.Parse(c.RedirectURL)
	if redirect.Path == "" || redirect.Path == "/" {
		return nil, fmt.Errorf("oidc: redirect_url %q needs a path of its own for the sign-in callback (e.g. %s/_tether/oidc/callback)", c.RedirectURL, strings.TrimSuffix(c.RedirectURL, "/"))
	}
	if redirect.RawQuery != "" || redirect.Fragment != "" {
		return nil, fmt.Errorf("oidc: redirect_url %q may not have a query or fragment", c.RedirectURL)
	}
	if c.ClientID == "" {
		return nil, errors.New("oidc: client_id is empty; set it to the client ID the provider gave this server")
	}
	if c.ClientSecret == "" {
		return nil, errors.New("oidc: the client secret is empty; put the secret the provider gave this server in client_secret_file")
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, client), c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s failed: %w", c.Issuer, err)
	}
	return &OIDC{
		oauth: oauth2.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  c.RedirectURL,
			Scopes:       []string{oidc.ScopeOpenID, "email"},
		},
		// go-oidc checks the issuer, the audience (our client_id), the expiry and the
		// signature against the provider's JWKS, with asymmetric algorithms only: a
		// token with alg "none" or HS256 (keyed with a public key) does not parse.
		verifier: provider.Verifier(&oidc.Config{ClientID: c.ClientID}),
		provider: provider,
		client:   client,
		issuer:   c.Issuer,
		callback: redirect.Path,
		secure:   redirect.Scheme == "https",
		pending:  make(map[string]*list.Element),
		order:    list.New(),
		max:      maxPending,
		ttl:      pendingTTL,
		now:      time.Now,
	}, nil
}

// checkProviderURL requires an absolute https URL, or http on a loopback host (a
// provider on this machine, as in tests).
func checkProviderURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return fmt.Errorf("oidc: %s %q is not an https URL (e.g. https://login.example.org)", field, raw)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("oidc: %s %q must use https (plain http only to a provider on this machine)", field, raw)
	}
	return nil
}

// CallbackPath is the path of the configured redirect_url.
func (o *OIDC) CallbackPath() string { return o.callback }

// Start sends the browser to the provider's sign-in page. The state, the nonce and
// the PKCE verifier stay on this server; the browser gets the state in the URL and an
// unrelated random value in a cookie that only the callback path sees, so a callback
// is accepted only in the browser that started the sign-in.
func (o *OIDC) Start(w http.ResponseWriter, r *http.Request, next string) {
	if len(next) > maxNext {
		next = "/"
	}
	p := &pending{
		state:    randomString(),
		browser:  randomString(),
		verifier: oauth2.GenerateVerifier(),
		nonce:    randomString(),
		next:     next,
	}
	o.put(p)
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(p.state),
		Value:    p.browser,
		Path:     o.callback,
		MaxAge:   int(o.ttl / time.Second),
		HttpOnly: true,
		Secure:   o.secure || r.TLS != nil,
		SameSite: http.SameSiteLaxMode, // sent on the provider's top-level redirect back
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, o.oauth.AuthCodeURL(p.state, oidc.Nonce(p.nonce), oauth2.S256ChallengeOption(p.verifier)), http.StatusFound)
}

// SignInError is why a sign-in failed, in words that may be shown to the person
// signing in: it never holds a code, token, cookie or secret.
type SignInError struct{ Reason string }

func (e *SignInError) Error() string { return "sign-in failed: " + e.Reason }

func refuse(format string, args ...any) error {
	return &SignInError{Reason: fmt.Sprintf(format, args...)}
}

// Finish handles the provider's redirect back: it checks the state against the one
// this browser started, exchanges the code (with the PKCE verifier), verifies the ID
// token and its nonce, and returns the verified e-mail in lower case.
func (o *OIDC) Finish(w http.ResponseWriter, r *http.Request) (email, next string, err error) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(q["state"]) != 1 {
		return "", "", refuse("the provider's answer has no state; sign in again from the start page")
	}
	p := o.take(state) // single use: gone whatever happens next
	http.SetCookie(w, &http.Cookie{Name: cookieName(state), Value: "", Path: o.callback, MaxAge: -1,
		HttpOnly: true, Secure: o.secure || r.TLS != nil, SameSite: http.SameSiteLaxMode})
	if p == nil {
		return "", "", refuse("this sign-in expired or was already used; sign in again")
	}
	c, cerr := r.Cookie(cookieName(state))
	if cerr != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(p.browser)) != 1 {
		return "", "", refuse("this sign-in was started in another browser (or its cookie was blocked); sign in again in this one")
	}
	// RFC 9207: a provider that names itself in its answer must be ours (a mix-up
	// attack sends the browser back with another provider's code).
	if q.Has("iss") && q.Get("iss") != o.issuer {
		return "", "", refuse("the answer came from another provider than %s; sign in again", o.issuer)
	}
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return "", "", refuse("the provider refused the sign-in (access_denied): the person declined, or is not allowed to use this server at the provider")
		}
		return "", "", refuse("the provider answered with an error (%s)", safeWord(e))
	}
	code := q.Get("code")
	if code == "" || len(q["code"]) != 1 {
		return "", "", refuse("the provider's answer has no code; sign in again")
	}

	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), o.client), exchangeTimeout)
	defer cancel()
	tok, err := o.oauth.Exchange(ctx, code, oauth2.VerifierOption(p.verifier))
	if err != nil {
		return "", "", refuse("the provider did not accept the sign-in code (%s)", exchangeReason(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", "", refuse("the provider's token answer has no ID token (is the client set up for OpenID Connect?)")
	}
	id, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return "", "", refuse("the provider's ID token did not verify (%s)", verifyReason(err))
	}
	if subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(p.nonce)) != 1 {
		return "", "", refuse("the ID token's nonce is not the one this sign-in sent (a replayed token?); sign in again")
	}
	claims, err := o.emailClaims(ctx, id, tok)
	if err != nil {
		return "", "", err
	}
	if claims.Email == nil || *claims.Email == "" {
		return "", "", refuse("the provider gave no e-mail address; its admin must release the email claim to this client")
	}
	if !claims.EmailVerified {
		return "", "", refuse("the provider has not verified the e-mail address %s; verify it there, then sign in again", safeEmail(*claims.Email))
	}
	email = asciiLower(*claims.Email)
	if !plausibleEmail(email) {
		return "", "", refuse("the provider's e-mail address %s is not one tether can match", safeEmail(email))
	}
	return email, p.next, nil
}

// emailClaims are the claims Finish decides on.
type emailClaims struct {
	Email         *string      `json:"email"`
	EmailVerified verifiedFlag `json:"email_verified"`
}

// verifiedFlag is email_verified: true is JSON true or the string "true" (as Amazon
// Cognito sends it, and as go-oidc reads UserInfo); anything else, or none, is false.
type verifiedFlag bool

func (v *verifiedFlag) UnmarshalJSON(b []byte) error {
	*v = string(b) == "true" || string(b) == `"true"`
	return nil
}

// emailClaims reads the e-mail from the verified ID token or, when the token has no
// email claim at all (providers that follow OpenID Connect's rule that the code flow's
// ID token need not carry the scope's claims), from the UserInfo endpoint with the
// access token just issued, whose sub must be the ID token's (OpenID Connect Core 5.3.2).
func (o *OIDC) emailClaims(ctx context.Context, id *oidc.IDToken, tok *oauth2.Token) (emailClaims, error) {
	var c emailClaims
	if err := id.Claims(&c); err != nil {
		return c, refuse("the ID token's e-mail claim is malformed (email must be a string)")
	}
	if c.Email != nil || o.provider.UserInfoEndpoint() == "" {
		return c, nil
	}
	info, err := o.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return c, refuse("the ID token has no e-mail and the provider's UserInfo endpoint failed (%s)", userInfoReason(err))
	}
	if subtle.ConstantTimeCompare([]byte(info.Subject), []byte(id.Subject)) != 1 {
		return c, refuse("the provider's UserInfo answer is about another person than the ID token")
	}
	if err := info.Claims(&c); err != nil {
		return c, refuse("the provider's UserInfo e-mail claim is malformed (email must be a string)")
	}
	return c, nil
}

// userInfoReason: go-oidc's UserInfo errors may repeat the response body.
func userInfoReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "unreachable: " + ue.Err.Error()
	}
	return "no valid answer"
}

// put records p, forgetting expired sign-ins and, past o.max, the oldest ones.
func (o *OIDC) put(p *pending) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	p.expires = now.Add(o.ttl)
	o.pruneLocked(now)
	for o.order.Len() >= o.max {
		o.removeLocked(o.order.Front())
	}
	o.pending[p.state] = o.order.PushBack(p)
}

// take removes and returns the unexpired sign-in with this state, or nil.
func (o *OIDC) take(state string) *pending {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.pruneLocked(now)
	e, ok := o.pending[state]
	if !ok {
		return nil
	}
	o.removeLocked(e)
	return e.Value.(*pending)
}

func (o *OIDC) pruneLocked(now time.Time) {
	for e := o.order.Front(); e != nil && !now.Before(e.Value.(*pending).expires); e = o.order.Front() {
		o.removeLocked(e)
	}
}

func (o *OIDC) removeLocked(e *list.Element) {
	delete(o.pending, e.Value.(*pending).state)
	o.order.Remove(e)
}

// randomString is 32 bytes from crypto/rand, base64url without padding.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookieName is the state cookie's name for a sign-in: one per sign-in, so two tabs
// that sign in at once do not overwrite each other's.
func cookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return stateCookie + hex.EncodeToString(sum[:8])
}

// safeWord is an OAuth error code as sent (letters, digits, '_', '-', '.'), or
// "unknown": the provider's own text is not repeated to the person.
func safeWord(s string) string {
	if len(s) == 0 || len(s) > 64 {
		return "unknown"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return "unknown"
		}
	}
	return s
}

// exchangeReason says why the token endpoint failed without its response body.
func exchangeReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return safeWord(re.ErrorCode)
		}
		if re.Response != nil {
			return fmt.Sprintf("HTTP %d from its token endpoint", re.Response.StatusCode)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "its token endpoint did not answer in time"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return "its token endpoint could not be reached: " + ue.Err.Error()
	}
	return "no valid token answer"
}

// verifyReason names what go-oidc found wrong with an ID token, in a fixed word.
func verifyReason(err error) string {
	var expired *oidc.TokenExpiredError
	switch msg := err.Error(); {
	case errors.As(err, &expired):
		return "it has expired; is this server's clock right?"
	case strings.Contains(msg, "audience"):
		return "it was issued for another client"
	case strings.Contains(msg, "issued by a different provider"):
		return "it was issued by another provider"
	case strings.Contains(msg, "malformed jwt"), strings.Contains(msg, "not signed"), strings.Contains(msg, "unsupported algorithm"):
		return "it is not signed with an algorithm tether accepts"
	case strings.Contains(msg, "signature"):
		return "its signature does not match the provider's keys"
	case strings.Contains(msg, "before the nbf"), strings.Contains(msg, "issued in the future"):
		return "it is not valid yet; is this server's clock right?"
	}
	return "it is malformed"
}

// plausibleEmail: one '@' with text on both sides, no spaces or control characters
// (the e-mail goes into a header and the audit log), valid UTF-8.
func plausibleEmail(s string) bool {
	if len(s) > 254 || !utf8.ValidString(s) {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// safeEmail quotes an e-mail from the provider for an error message: %q escapes any
// control character, and a long one is cut.
func safeEmail(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return fmt.Sprintf("%q", s)
}
