//go:build unix

package team

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/access"
	"github.com/tether-dev/tether/e2e"
)

// signInServer is a tiny server on loopback around access.OIDC, standing in for the
// gate: /login?next=P starts a sign-in; the callback answers 200 "signed in as EMAIL,
// next P" or 403 with Finish's error.
type signInServer struct {
	URL      string
	Provider *e2e.OIDCProvider
	oidc     *access.OIDC
}

const (
	clientID = "tether-team"
	password = "correct horse battery staple"
)

func startSignIn(t *testing.T, conform bool) *signInServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &signInServer{URL: "http://" + ln.Addr().String()}
	secret := fmt.Sprintf("secret-%d", time.Now().UnixNano())
	redirect := s.URL + "/_tether/oidc/callback"
	s.Provider = e2e.StartOIDCProvider(t, e2e.OIDCProviderConfig{
		ClientID: clientID, ClientSecret: secret, RedirectURL: redirect, Conform: conform,
		Accounts: []e2e.OIDCAccount{
			{Login: "alice", Password: password, Email: "Alice@Lab.Example.org", EmailVerified: true},
			{Login: "bob", Password: password, Email: "bob@lab.example.org", EmailVerified: false},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.oidc, err = access.NewOIDC(ctx, access.OIDCConfig{Issuer: s.Provider.Issuer, ClientID: clientID, ClientSecret: secret, RedirectURL: redirect}, nil)
	if err != nil {
		t.Fatalf("NewOIDC against oidc-provider: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s.oidc.Start(w, r, r.URL.Query().Get("next"))
	})
	mux.HandleFunc("GET "+s.oidc.CallbackPath(), func(w http.ResponseWriter, r *http.Request) {
		email, next, err := s.oidc.Finish(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "signed in as %s, next %s", email, next)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// person is a browser: a cookie jar that follows redirects, filling the provider's
// forms as a person would.
type person struct {
	t      *testing.T
	client *http.Client
}

func newPerson(t *testing.T) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// page is where a request ended up after its redirects.
type page struct {
	URL    *url.URL
	Status int
	Body   string
}

func (p *person) do(method, u string, form url.Values) page {
	p.t.Helper()
	var res *http.Response
	var err error
	if method == "POST" {
		res, err = p.client.PostForm(u, form)
	} else {
		res, err = p.client.Get(u)
	}
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return page{URL: res.Request.URL, Status: res.StatusCode, Body: string(b)}
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// submit posts the page's form whose action ends with suffix.
func (p *person) submit(pg page, suffix string, form url.Values) page {
	p.t.Helper()
	for _, m := range formAction.FindAllStringSubmatch(pg.Body, -1) {
		action := html.UnescapeString(m[1])
		if strings.HasSuffix(action, suffix) {
			return p.do("POST", pg.URL.ResolveReference(&url.URL{Path: action}).String(), form)
		}
	}
	p.t.Fatalf("no form ending in %q on %s (%d):\n%s", suffix, pg.URL, pg.Status, pg.Body)
	return page{}
}

// signIn goes Start → the provider's login page → its consent page (Allow or Deny) →
// the callback, and returns the last page.
func (p *person) signIn(s *signInServer, login, pass string, allow bool) page {
	p.t.Helper()
	pg := p.do("GET", s.URL+"/login?next=/nb/tree", nil)
	if !strings.HasPrefix(pg.URL.String(), s.Provider.Issuer+"/interaction/") || !strings.Contains(pg.Body, `name="password"`) {
		p.t.Fatalf("Start did not lead to the provider's login page: %s (%d)\n%s", pg.URL, pg.Status, pg.Body)
	}
	pg = p.submit(pg, "/login", url.Values{"username": {login}, "password": {pass}})
	if pg.Status != http.StatusOK || !strings.Contains(pg.Body, "Allow access") {
		return pg // a refused login: the caller checks
	}
	button := "/confirm"
	if !allow {
		button = "/abort"
	}
	return p.submit(pg, button, nil)
}

// TestOIDCSignInWithRealProvider: tether's relying party against node-oidc-provider
// (an OpenID Certified provider) on loopback, through its own login and consent pages.
func TestOIDCSignInWithRealProvider(t *testing.T) {
	s := startSignIn(t, false)

	t.Run("verified e-mail", func(t *testing.T) {
		p := newPerson(t)
		pg := p.signIn(s, "alice", password, true)
		if pg.Status != http.StatusOK || pg.Body != "signed in as alice@lab.example.org, next /nb/tree" {
			t.Fatalf("alice's sign-in ended at %s (%d): %q; want signed in as alice@lab.example.org", pg.URL, pg.Status, pg.Body)
		}
		if pg.URL.Path != "/_tether/oidc/callback" || pg.URL.Query().Get("code") == "" {
			t.Errorf("the sign-in did not come back through the callback with a code: %s", pg.URL)
		}
		// The same callback again (state and code replayed, same browser): refused.
		again := p.do("GET", pg.URL.String(), nil)
		if again.Status != http.StatusForbidden || !strings.Contains(again.Body, "expired or was already used") {
			t.Errorf("replayed callback: %d %q; want 403 already used", again.Status, again.Body)
		}
		if strings.Contains(again.Body, pg.URL.Query().Get("code")) {
			t.Errorf("the refusal repeats the code")
		}
	})
	t.Run("unverified e-mail", func(t *testing.T) {
		pg := newPerson(t).signIn(s, "bob", password, true)
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, `has not verified the e-mail address "bob@lab.example.org"`) {
			t.Fatalf("bob's sign-in (email_verified false): %d %q; want refused", pg.Status, pg.Body)
		}
	})
	t.Run("denied at the provider", func(t *testing.T) {
		pg := newPerson(t).signIn(s, "alice", password, false)
		if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "refused the sign-in (access_denied)") {
			t.Fatalf("Deny at the consent page: %d %q; want access_denied", pg.Status, pg.Body)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		pg := newPerson(t).signIn(s, "alice", "wrong password", true)
		if pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "Wrong username or password") {
			t.Fatalf("wrong password: %s %d %q; want the provider's refusal", pg.URL, pg.Status, pg.Body)
		}
	})
	t.Run("callback in another browser", func(t *testing.T) {
		// Alice's browser signs in up to the provider's redirect back; that URL (code
		// and state) opened in another browser, without the state cookie, is refused.
		alice := newPerson(t)
		var callback string
		alice.client.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if r.URL.Path == "/_tether/oidc/callback" {
				callback = r.URL.String()
				return http.ErrUseLastResponse
			}
			return nil
		}
		alice.signIn(s, "alice", password, true)
		if callback == "" {
			t.Fatalf("the provider did not redirect alice's browser to the callback")
		}
		eve := newPerson(t).do("GET", callback, nil)
		if eve.Status != http.StatusForbidden || !strings.Contains(eve.Body, "started in another browser") {
			t.Errorf("the callback in another browser: %d %q; want refused", eve.Status, eve.Body)
		}
	})
}

// TestOIDCSignInUserInfoWithRealProvider: a provider that keeps the e-mail out of the
// code flow's ID token (oidc-provider's conformIdTokenClaims): it comes from UserInfo.
func TestOIDCSignInUserInfoWithRealProvider(t *testing.T) {
	s := startSignIn(t, true)
	pg := newPerson(t).signIn(s, "alice", password, true)
	if pg.Status != http.StatusOK || pg.Body != "signed in as alice@lab.example.org, next /nb/tree" {
		t.Fatalf("alice's sign-in ended at %s (%d): %q; want signed in", pg.URL, pg.Status, pg.Body)
	}
	pg = newPerson(t).signIn(s, "bob", password, true)
	if pg.Status != http.StatusForbidden || !strings.Contains(pg.Body, "has not verified") {
		t.Fatalf("bob's sign-in: %d %q; want refused", pg.Status, pg.Body)
	}
}
