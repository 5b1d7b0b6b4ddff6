package tokenserver

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTeam is a Team of the tests' own: keys stored as hashes (a stand-in for
// argon2id's PHC strings: hex SHA-256, so sending the stored hash as the key must
// fail), members by exact e-mail, rights by user. Tests edit it while the gate runs
// (a reload).
type fakeTeam struct {
	mu       sync.Mutex
	keys     map[string]string // hash of the key -> name
	members  map[string]bool
	rights   map[string][]string // user (key name or e-mail) -> apps
	keyCalls atomic.Int64
	lastKey  atomic.Value // the last value Key was asked about
}

func fakeHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "$fake$" + hex.EncodeToString(sum[:])
}

func (f *fakeTeam) Key(key string) (string, bool) {
	f.keyCalls.Add(1)
	f.lastKey.Store(key)
	f.mu.Lock()
	defer f.mu.Unlock()
	name, ok := f.keys[fakeHash(key)]
	return name, ok
}

func (f *fakeTeam) Member(email string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[email]
}

func (f *fakeTeam) MayOpen(user, app string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.rights[user] {
		if a == app {
			return true
		}
	}
	return false
}

func (f *fakeTeam) addKey(key, name string, apps ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[fakeHash(key)] = name
	f.rights[name] = apps
}

func (f *fakeTeam) removeKey(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rights, f.keys[fakeHash(key)])
	delete(f.keys, fakeHash(key))
}

func (f *fakeTeam) addMember(email string, apps ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[email] = true
	f.rights[email] = apps
}

func (f *fakeTeam) removeMember(email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.members, email)
	delete(f.rights, email)
}

// fakeSignIn is an outside sign-in of the tests' own: Start redirects to a made-up
// provider with next; the callback carries ?code=C&next=N, and codes map to e-mails.
type fakeSignIn struct {
	mu      sync.Mutex
	codes   map[string]string // code -> verified e-mail
	started []string          // next of every Start
}

const fakeCallback = "/_tether/oidc/callback"

func (f *fakeSignIn) CallbackPath() string { return fakeCallback }

func (f *fakeSignIn) Start(w http.ResponseWriter, r *http.Request, next string) {
	f.mu.Lock()
	f.started = append(f.started, next)
	f.mu.Unlock()
	http.Redirect(w, r, "https://idp.example/auth?state=s", http.StatusFound)
}

func (f *fakeSignIn) Finish(w http.ResponseWriter, r *http.Request) (string, string, error) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	email, ok := f.codes[q.Get("code")]
	if !ok {
		return "", "", errors.New("the provider did not confirm this sign-in")
	}
	http.SetCookie(w, &http.Cookie{Name: "oidc-state", MaxAge: -1}) // its own cookie only
	return email, q.Get("next"), nil
}

const (
	aliceKey = "alice-key-0123456789abcdef"
	bobKey   = "bob's passphrase with spaces"
)

// teamGate is a gate in team mode with three apps (nb, site, admin), a fake Team in
// which key alice may open nb, key bob nb and site, e-mail carol@example.org site; and
// a fake SignIn.
type teamGate struct {
	*gate
	team   *fakeTeam
	signIn *fakeSignIn
	apps   map[string]*recordingApp
}

func newTeamGate(t *testing.T, edit func(*Options)) *teamGate {
	t.Helper()
	tg := &teamGate{
		team: &fakeTeam{keys: map[string]string{}, members: map[string]bool{}, rights: map[string][]string{}},
		signIn: &fakeSignIn{codes: map[string]string{
			"code-carol": "carol@example.org", "code-mallory": "mallory@example.org",
			"code-html": `<img src=x onerror=alert(1)>"@example.org`}},
		apps: map[string]*recordingApp{},
	}
	tg.team.addKey(aliceKey, "alice", "nb")
	tg.team.addKey(bobKey, "bob", "nb", "site")
	tg.team.addMember("carol@example.org", "site")
	var apps []NamedApp
	for _, n := range []string{"nb", "site", "admin"} {
		a := &recordingApp{}
		tg.apps[n] = a
		apps = append(apps, NamedApp{Name: n, Handler: a})
	}
	tg.gate = newGate(t, func(o *Options) {
		o.App = nil
		o.Team = tg.team
		o.SignIn = tg.signIn
		o.Apps = apps
		if edit != nil {
			edit(o)
		}
	})
	return tg
}

// bearer is a request with an Authorization: Bearer value, as a script sends it.
func bearer(method, target, cred string, hdr ...string) *http.Request {
	return req(method, target, append([]string{"Authorization", "Bearer " + cred}, hdr...)...)
}

// loginKey signs in with the login form and returns the session cookie.
func (tg *teamGate) loginKey(t *testing.T, key string) *http.Cookie {
	t.Helper()
	w := tg.do(postForm("/_tether/login", url.Values{"token": {key}, "next": {"/nb/"}},
		"Origin", "http://"+testHost, "Sec-Fetch-Site", "same-origin"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/nb/" {
		t.Fatalf("login form with a key: got %d to %q; want 303 to /nb/\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Value == "" {
		t.Fatalf("login form with a key: cookies %v; want one session cookie", cs)
	}
	return cs[0]
}

// oidcCookie signs in through the fake provider's callback.
func (tg *teamGate) oidcCookie(t *testing.T, code string) *http.Cookie {
	t.Helper()
	w := tg.do(req("GET", fakeCallback+"?code="+code+"&next=/site/", "Sec-Fetch-Mode", "navigate"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/site/" {
		t.Fatalf("callback: got %d to %q; want 303 to /site/\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if strings.HasPrefix(c.Name, cookiePrefix) {
			return c
		}
	}
	t.Fatal("callback: no session cookie")
	return nil
}

// page is a page load by a browser, same-origin.
func page(target string, c *http.Cookie) *http.Request {
	r := req("GET", target, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Site", "same-origin", "Accept", "text/html")
	if c != nil {
		withCookie(r, c)
	}
	return r
}

func TestTeamOptions(t *testing.T) {
	tok, _ := NewToken()
	h := http.NotFoundHandler()
	team := &fakeTeam{}
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"apps without team", Options{Token: tok, App: h, Apps: []NamedApp{{"nb", h}}}},
		{"sign-in without team", Options{Token: tok, App: h, SignIn: &fakeSignIn{}}},
		{"team and App", Options{Token: tok, App: h, Team: team, Apps: []NamedApp{{"nb", h}}}},
		{"team without apps", Options{Token: tok, Team: team}},
		{"team without auth", Options{NoAuth: true, Team: team, Apps: []NamedApp{{"nb", h}}}},
		{"team without token", Options{Team: team, Apps: []NamedApp{{"nb", h}}}},
		{"app name proxy", Options{Token: tok, Team: team, Apps: []NamedApp{{"Proxy", h}}}},
		{"app name absproxy", Options{Token: tok, Team: team, Apps: []NamedApp{{"absproxy", h}}}},
		{"app name _tether", Options{Token: tok, Team: team, Apps: []NamedApp{{"_tether", h}}}},
		{"app name with slash", Options{Token: tok, Team: team, Apps: []NamedApp{{"a/b", h}}}},
		{"app name dot", Options{Token: tok, Team: team, Apps: []NamedApp{{"..", h}}}},
		{"app name empty", Options{Token: tok, Team: team, Apps: []NamedApp{{"", h}}}},
		{"app twice", Options{Token: tok, Team: team, Apps: []NamedApp{{"nb", h}, {"nb", h}}}},
		{"app without handler", Options{Token: tok, Team: team, Apps: []NamedApp{{"nb", nil}}}},
	} {
		if _, err := New(tt.o); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
	if _, err := New(Options{Token: tok, Team: team, SignIn: &fakeSignIn{}, Apps: []NamedApp{{"nb", h}, {"my-site.v2", h}}}); err != nil {
		t.Errorf("a good team configuration: %v", err)
	}
}

// Who a request is: the owner's token, a key in the Authorization header (token-shaped
// or a passphrase with spaces), nobody. The app learns who in X-Tether-User.
func TestTeamKeysAndOwner(t *testing.T) {
	tg := newTeamGate(t, nil)
	for _, tt := range []struct {
		name, cred, target, user string
	}{
		{"key", aliceKey, "/nb/tree", "alice"},
		{"passphrase key", bobKey, "/site/index.html", "bob"},
		{"owner", tg.token, "/admin/x", "owner"},
	} {
		w := tg.do(bearer("GET", tt.target, tt.cred))
		if w.Code != 200 {
			t.Errorf("%s: got %d; want 200\n%s", tt.name, w.Code, w.Body)
			continue
		}
		app := tg.apps[strings.Split(tt.target, "/")[1]]
		got := app.last(t)
		if v := got.Header.Values(UserHeader); len(v) != 1 || v[0] != tt.user {
			t.Errorf("%s: X-Tether-User %q; want %q", tt.name, v, tt.user)
		}
		if got.Header.Get("Authorization") != "" || got.RequestURI != tt.target {
			t.Errorf("%s: the app saw Authorization %q, URI %q", tt.name, got.Header.Get("Authorization"), got.RequestURI)
		}
	}
	// A wrong key, a key through the URL (keys never come from a URL), nothing: 401,
	// the team's text for a script.
	for _, r := range []*http.Request{
		bearer("GET", "/nb/", "wrong-key-but-long-enough"),
		bearer("GET", "/nb/", "short"),
		req("GET", "/nb/?token="+url.QueryEscape(aliceKey)),
		req("GET", "/nb/"),
	} {
		w := tg.do(r)
		if w.Code != http.StatusUnauthorized || w.Body.String() != textUnauthTeam {
			t.Errorf("%s: got %d %q; want 401 with the team's text", r.URL, w.Code, w.Body)
		}
	}
	// The owner's token and a key in one request: refused, whichever is which.
	w := tg.do(bearer("GET", "/nb/?token="+tg.token, aliceKey))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("a key with the owner's ?token=: got %d; want 401", w.Code)
	}
	if n := tg.apps["nb"].count(); n != 1 {
		t.Errorf("the nb app got %d requests; want 1", n)
	}
}

// A browser without a session gets the login page (key form and the organisation's
// sign-in); a script gets 401.
func TestTeamLoginPage(t *testing.T) {
	tg := newTeamGate(t, nil)
	w := tg.do(page("/site/page?x=1", nil))
	body := w.Body.String()
	if w.Code != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) ||
		!strings.Contains(body, "access key") || !strings.Contains(body, "Sign in with your organisation") ||
		!strings.Contains(body, `href="/_tether/signin?next=%2Fsite%2Fpage"`) {
		t.Errorf("browser without a session: got %d\n%s", w.Code, body)
	}
	w = tg.do(req("GET", "/site/page", "Accept", "application/json"))
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("script without a session: got %d", w.Code)
	}
	// Without SignIn there is no organisation link.
	tg2 := newTeamGate(t, func(o *Options) { o.SignIn = nil })
	if body := tg2.do(page("/", nil)).Body.String(); strings.Contains(body, "organisation") {
		t.Errorf("login page without SignIn offers it:\n%s", body)
	}
}

// The login page says whose server this is on a team server ("Sign in to alice's apps
// on gpu1", escaped; a default without a title); the single-owner page keeps its words.
func TestLoginPageHeading(t *testing.T) {
	tests := []struct {
		name   string
		gate   *gate
		want   string
		absent string
	}{
		{"team with a title", newTeamGate(t, func(o *Options) { o.TeamTitle = "alice's apps on <gpu1>" }).gate,
			"<h1>Sign in to alice&#39;s apps on &lt;gpu1&gt;</h1>", "guarded by tether"},
		{"team without one", newTeamGate(t, nil).gate, "<h1>Sign in to the apps on this server</h1>", "guarded by tether"},
		{"one owner", newGate(t, nil), "<h1>This app is guarded by tether</h1>", "Sign in to"},
	}
	for _, tt := range tests {
		w := tt.gate.do(page("/", nil))
		body := w.Body.String()
		if w.Code != http.StatusUnauthorized || !strings.Contains(body, tt.want) || strings.Contains(body, tt.absent) {
			t.Errorf("for %s, got %d\n%s\nwant %q and no %q", tt.name, w.Code, body, tt.want, tt.absent)
		}
	}
}

// A person may open only the apps the policy gives them: every path of another app,
// and its WebSocket, gets 403 and never reaches it; a dot segment cannot leave an
// allowed app for another; the owner opens everything.
func TestTeamAppRights(t *testing.T) {
	tg := newTeamGate(t, nil)
	alice := tg.loginKey(t, aliceKey)
	origin := "http://" + testHost
	for _, tt := range []struct {
		name string
		r    *http.Request
		code int
	}{
		{"site root", page("/site/", alice), 403},
		{"site without slash", page("/site", alice), 403},
		{"site deep", page("/site/a/b/c.txt?q=1", alice), 403},
		{"site POST", withCookie(req("POST", "/site/api", "Origin", origin, "Sec-Fetch-Site", "same-origin"), alice), 403},
		{"site WebSocket", withCookie(req("GET", "/site/ws", "Upgrade", "websocket", "Connection", "Upgrade",
			"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", "Origin", origin), alice), 403},
		{"site by header key", bearer("GET", "/site/", aliceKey), 403},
		{"site WebSocket by header key", bearer("GET", "/site/ws", aliceKey, "Upgrade", "websocket", "Connection", "Upgrade",
			"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"), 403},
		{"admin", page("/admin/", alice), 403},
		{"dot segment out of nb", page("/nb/../site/x", alice), 404},
		{"encoded dot segment out of nb", page("/nb/%2e%2e/site/x", alice), 404},
		{"encoded slash and dots", page("/nb%2f..%2fsite/x", alice), 404},
		{"no such app", page("/nope/", alice), 404},
		{"nb", page("/nb/tree", alice), 200},
	} {
		for _, a := range tg.apps {
			a.mu.Lock()
			a.reqs = nil
			a.mu.Unlock()
		}
		w := tg.do(tt.r)
		if w.Code != tt.code {
			t.Errorf("%s: got %d; want %d\n%s", tt.name, w.Code, tt.code, w.Body)
		}
		reached := tg.apps["site"].count() + tg.apps["admin"].count()
		if reached != 0 {
			t.Errorf("%s: an app alice may not open was reached", tt.name)
		}
	}
	for _, n := range []string{"nb", "site", "admin"} {
		if w := tg.do(bearer("GET", "/"+n+"/x", tg.token)); w.Code != 200 {
			t.Errorf("owner opening %s: got %d", n, w.Code)
		}
	}
}

// The 403 on a WebSocket of an app one may not open, over a real connection: the
// answer is a plain 403, and no upgrade happens.
func TestTeamWebSocketRefusedOnTheWire(t *testing.T) {
	tg := newTeamGate(t, nil)
	upgraded := atomic.Bool{}
	tg.apps["site"].handler = func(w http.ResponseWriter, r *http.Request) {
		upgraded.Store(true)
		w.WriteHeader(http.StatusSwitchingProtocols)
	}
	base := tg.served()
	alice := tg.loginKey(t, aliceKey)
	host := hostOf(base)
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The cookie is named for testHost's port; send that Host.
	_, err = c.Write([]byte("GET /site/ws HTTP/1.1\r\nHost: " + testHost + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: http://" + testHost + "\r\n" +
		"Cookie: " + alice.Name + "=" + alice.Value + "\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || upgraded.Load() {
		t.Errorf("WebSocket to a forbidden app: got %d, app reached %v; want 403, not reached", resp.StatusCode, upgraded.Load())
	}
}

// The per-person cookie: it says who, the app learns it, and an edited name or kind
// fails the MAC.
func TestTeamCookieEditedFails(t *testing.T) {
	tg := newTeamGate(t, nil)
	alice := tg.loginKey(t, aliceKey)
	if w := tg.do(page("/nb/", alice)); w.Code != 200 || tg.apps["nb"].last(t).Header.Get(UserHeader) != "alice" {
		t.Fatalf("alice's cookie: got %d, X-Tether-User %q", w.Code, tg.apps["nb"].last(t).Header.Get(UserHeader))
	}
	body, err := base64.RawURLEncoding.DecodeString(alice.Value)
	if err != nil {
		t.Fatal(err)
	}
	head, mac := body[:cookieHeadLen], body[len(body)-sha256.Size:]
	if string(body[cookieHeadLen:len(body)-sha256.Size]) != "alice" || head[cookieHeadLen-1] != kindKey {
		t.Fatalf("alice's cookie holds %q", body)
	}
	forge := func(kind byte, name string) *http.Cookie {
		b := append(append(append([]byte{}, head[:cookieHeadLen-1]...), kind), name...)
		b = append(b, mac...)
		return &http.Cookie{Name: alice.Name, Value: base64.RawURLEncoding.EncodeToString(b)}
	}
	for _, tt := range []struct {
		name string
		c    *http.Cookie
	}{
		{"name alice → bob", forge(kindKey, "bob")},
		{"name alice → alicf", forge(kindKey, "alicf")},
		{"kind key → owner", forge(kindOwner, "")},
		{"kind key → e-mail", forge(kindEmail, "alice")},
	} {
		before := tg.apps["site"].count() + tg.apps["nb"].count()
		w := tg.do(page("/site/", tt.c))
		if w.Code != http.StatusUnauthorized || tg.apps["site"].count()+tg.apps["nb"].count() != before {
			t.Errorf("%s: got %d; want 401 (login page) and no app reached", tt.name, w.Code)
		}
	}
}

// A key removed from the policy (a reload) stops working at once, cookie or header;
// so does an e-mail removed from its group.
func TestTeamRemovedKeyStopsAtOnce(t *testing.T) {
	tg := newTeamGate(t, nil)
	alice := tg.loginKey(t, aliceKey)
	carol := tg.oidcCookie(t, "code-carol")
	if tg.do(page("/nb/", alice)).Code != 200 || tg.do(page("/site/", carol)).Code != 200 {
		t.Fatal("alice or carol not in before the reload")
	}
	tg.team.removeKey(aliceKey)
	tg.team.removeMember("carol@example.org")
	for name, r := range map[string]*http.Request{
		"alice's cookie":  page("/nb/", alice),
		"alice's header":  bearer("GET", "/nb/", aliceKey),
		"carol's cookie":  page("/site/", carol),
		"alice, start":    page("/", alice),
		"carol, a script": withCookie(req("GET", "/site/api"), carol),
	} {
		w := tg.do(r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s after the reload: got %d; want 401", name, w.Code)
		}
	}
	// The browser is told to drop the dead cookie.
	w := tg.do(page("/nb/", alice))
	cleared := false
	for _, c := range w.Result().Cookies() {
		cleared = cleared || c.Name == alice.Name && c.MaxAge < 0
	}
	if !cleared {
		t.Error("a removed key's cookie was not cleared")
	}
}

// A key's stored hash sent as the key is just a wrong key: the gate hands it to Team
// like any other value (no special case) and Team refuses it.
func TestTeamKeyHashAsKey(t *testing.T) {
	tg := newTeamGate(t, nil)
	h := fakeHash(aliceKey)
	for name, r := range map[string]*http.Request{
		"header":     bearer("GET", "/nb/", h),
		"login form": postForm("/_tether/login", url.Values{"token": {h}}, "Origin", "http://"+testHost),
	} {
		w := tg.do(r)
		if w.Code != http.StatusUnauthorized || tg.apps["nb"].count() != 0 || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s: the hash as the key got %d", name, w.Code)
		}
		if got, _ := tg.team.lastKey.Load().(string); got != h {
			t.Errorf("%s: Team.Key was asked about %q; want the value presented", name, got)
		}
	}
}

// The start page lists the apps the person may open and who they are, escaped; the
// owner sees every app.
func TestTeamStartPage(t *testing.T) {
	tg := newTeamGate(t, nil)
	const evilKey = "evil-key-0123456789abcdef"
	tg.team.addKey(evilKey, `<script>alert("x")</script>`, "site")
	links := regexp.MustCompile(`<a href="([^"]*)">`)
	for _, tt := range []struct {
		name  string
		c     *http.Cookie
		apps  []string
		shows string
	}{
		{"alice", tg.loginKey(t, aliceKey), []string{"/nb/"}, "<b>alice</b>"},
		{"bob", tg.loginKey(t, bobKey), []string{"/nb/", "/site/"}, "<b>bob</b>"},
		{"carol", tg.oidcCookie(t, "code-carol"), []string{"/site/"}, "<b>carol@example.org</b>"},
		{"owner", tg.cookie(testHost), []string{"/nb/", "/site/", "/admin/"}, "<b>owner</b>"},
		{"html in a key name", tg.loginKey(t, evilKey), []string{"/site/"},
			"<b>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</b>"},
	} {
		w := tg.do(page("/", tt.c))
		body := w.Body.String()
		var got []string
		for _, m := range links.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if w.Code != 200 || strings.Join(got, " ") != strings.Join(tt.apps, " ") || !strings.Contains(body, tt.shows) ||
			!strings.Contains(body, `<form method="post" action="/_tether/logout">`) || strings.Contains(body, "<script>") {
			t.Errorf("%s: start page %d, links %v; want %v and %q\n%s", tt.name, w.Code, got, tt.apps, tt.shows, body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: start page CSP %q", tt.name, csp)
		}
	}
	// An e-mail with markup, from the provider: escaped too.
	c := tg.do(req("GET", fakeCallback+"?code=code-html", "Sec-Fetch-Mode", "navigate"))
	tg.team.addMember(`<img src=x onerror=alert(1)>"@example.org`, "site")
	w := tg.do(req("GET", fakeCallback+"?code=code-html", "Sec-Fetch-Mode", "navigate"))
	if c.Code != http.StatusForbidden || strings.Contains(c.Body.String(), "<img") {
		t.Errorf("a non-member with markup in the address: got %d\n%s", c.Code, c.Body)
	}
	ck := w.Result().Cookies()
	if len(ck) < 2 {
		t.Fatalf("callback for the member with markup: got %d", w.Code)
	}
	body := tg.do(page("/", ck[len(ck)-1])).Body.String()
	if strings.Contains(body, "<img") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;&#34;@example.org") {
		t.Errorf("markup in an e-mail on the start page:\n%s", body)
	}
	// A key name with a line break cannot become a header or a log line of its own.
	tg.team.addKey("crlf-key-0123456789abcdef", "x\r\nSet-Cookie: a=b", "nb")
	if w := tg.do(bearer("GET", "/nb/", "crlf-key-0123456789abcdef")); w.Code != http.StatusUnauthorized {
		t.Errorf("a key whose name holds CR LF: got %d; want 401", w.Code)
	}
	// Nor can a key pass for the owner by its name.
	tg.team.addKey("owner-key-0123456789abcdef", "Owner", "nb")
	if w := tg.do(bearer("GET", "/nb/", "owner-key-0123456789abcdef")); w.Code != http.StatusUnauthorized {
		t.Errorf("a key named Owner: got %d; want 401", w.Code)
	}
	if w := tg.do(req("POST", "/", "Authorization", "Bearer "+aliceKey)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST to the start page: got %d", w.Code)
	}
}

// Only the owner reaches this machine's other ports: a key or a person gets 403 at
// proxy/PORT/, absproxy/PORT/ and _tether/forward/PORT, and nothing is dialled.
func TestTeamSecondaryPortsOwnerOnly(t *testing.T) {
	team := &fakeTeam{keys: map[string]string{}, members: map[string]bool{}, rights: map[string][]string{}}
	team.addKey(aliceKey, "alice", "nb")
	nb := &recordingApp{}
	g, fp, backend, base := portGate(t, nil, func(o *Options) {
		o.App, o.Team, o.Apps = nil, team, []NamedApp{{"nb", nb}}
	})
	for _, path := range []string{"/proxy/8050/", "/proxy/absolute/8050/x", "/absproxy/8050/x", "/_tether/forward/8050"} {
		resp, body := doReq(t, "GET", base+path, "Authorization", "Bearer "+aliceKey)
		if resp.StatusCode != http.StatusForbidden || body != textOwnerOnly {
			t.Errorf("key at %s: got %d %q; want 403", path, resp.StatusCode, body)
		}
	}
	// The forward stream's upgrade, too (on a raw connection with a deadline: were it
	// let through, it would become a stream).
	c, err := net.Dial("tcp", hostOf(base))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET /_tether/forward/8050 HTTP/1.1\r\nHost: " + hostOf(base) + "\r\nAuthorization: Bearer " + aliceKey +
		"\r\nConnection: Upgrade\r\nUpgrade: " + ForwardProtocol + "\r\n\r\n"))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("key opening a forward stream: got %v %v; want 403", resp, err)
	}
	if d, c := fp.calls(); len(d)+len(c) != 0 || backend.count() != 0 {
		t.Errorf("a key reached the ports: dialled %v, checked %v, backend %d", d, c, backend.count())
	}
	if resp, _ := doReq(t, "GET", base+"/proxy/8050/x", "Authorization", "Bearer "+g.token); resp.StatusCode != 200 {
		t.Errorf("owner at proxy/8050/: got %d", resp.StatusCode)
	}
	if resp, body := doReq(t, "GET", base+"/_tether/forward/8050", "Authorization", "Bearer "+g.token); resp.StatusCode != 200 {
		t.Errorf("owner's forward check: got %d %q", resp.StatusCode, body)
	}
}

// X-Tether-User is the gate's alone: whatever the client sent under that name, in any
// letter case, with underscores, or several times, is removed, team mode or not.
func TestUserHeaderSpoofStripped(t *testing.T) {
	spoof := func(r *http.Request) *http.Request {
		r.Header["X-Tether-User"] = []string{"owner", "admin"}
		r.Header["x-tether-user"] = []string{"root"}
		r.Header["X-TETHER-USER"] = []string{"root"}
		r.Header["X_Tether_User"] = []string{"root"}
		r.Header["x_tether-user"] = []string{"root"}
		r.Header["X-Tether-Users"] = []string{"kept"}
		return r
	}
	check := func(t *testing.T, got recorded, want string) {
		t.Helper()
		var vals []string
		for k, v := range got.Header {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), UserHeader) {
				vals = append(vals, v...)
			}
		}
		if want == "" && len(vals) != 0 || want != "" && (len(vals) != 1 || vals[0] != want) {
			t.Errorf("the app saw X-Tether-User %q; want %q", vals, want)
		}
		if got.Header.Get("X-Tether-Users") != "kept" {
			t.Error("a header that is not ours was removed")
		}
	}
	t.Run("owner mode", func(t *testing.T) {
		g := newGate(t, nil)
		if w := g.do(spoof(bearer("GET", "/x", g.token))); w.Code != 200 {
			t.Fatalf("got %d", w.Code)
		}
		check(t, g.app.last(t), "")
	})
	t.Run("team mode", func(t *testing.T) {
		tg := newTeamGate(t, nil)
		if w := tg.do(spoof(bearer("GET", "/nb/", aliceKey))); w.Code != 200 {
			t.Fatalf("got %d", w.Code)
		}
		check(t, tg.apps["nb"].last(t), "alice")
		if w := tg.do(spoof(bearer("GET", "/nb/", tg.token))); w.Code != 200 {
			t.Fatalf("got %d", w.Code)
		}
		check(t, tg.apps["nb"].last(t), "owner")
	})
	// On the wire, where the server itself canonicalises names.
	for _, team := range []bool{false, true} {
		var app *recordingApp
		var g *gate
		var cred, path, want string
		if team {
			tg := newTeamGate(t, nil)
			g, app, cred, path, want = tg.gate, tg.apps["nb"], aliceKey, "/nb/", "alice"
		} else {
			g = newGate(t, nil)
			app, cred, path = g.app, g.token, "/x"
		}
		c, err := net.Dial("tcp", hostOf(g.served()))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + cred + "\r\n" +
			"x-tether-user: owner\r\nX-Tether-User: root\r\nX_TETHER_USER: root\r\nConnection: close\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("team=%v on the wire: %v %v", team, resp, err)
		}
		got := app.last(t)
		got.Header.Set("X-Tether-Users", "kept")
		check(t, got, want)
	}
}

// Logout: GET shows a button; POST from our own page revokes the session and clears
// the cookie; a cross-site POST (CSRF) is refused and the session stays.
func TestTeamLogout(t *testing.T) {
	tg := newTeamGate(t, nil)
	alice := tg.loginKey(t, aliceKey)
	w := tg.do(page("/_tether/logout", alice))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `<form method="post" action="/_tether/logout">`) {
		t.Errorf("GET logout: got %d\n%s", w.Code, w.Body)
	}
	if tg.do(page("/nb/", alice)).Code != 200 {
		t.Fatal("a GET of the logout page signed out")
	}
	for name, r := range map[string]*http.Request{
		"cross-site":       postForm("/_tether/logout", nil, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"),
		"foreign origin":   postForm("/_tether/logout", nil, "Origin", "https://evil.example"),
		"same-site, other": postForm("/_tether/logout", nil, "Sec-Fetch-Site", "same-site", "Origin", "http://localhost:9999"),
	} {
		w := tg.do(withCookie(r, alice))
		if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s logout: got %d, cookies %v; want 403", name, w.Code, w.Result().Cookies())
		}
	}
	if tg.do(page("/nb/", alice)).Code != 200 {
		t.Fatal("a cross-site logout ended the session")
	}
	w = tg.do(withCookie(postForm("/_tether/logout", nil, "Origin", "http://"+testHost, "Sec-Fetch-Site", "same-origin"), alice))
	cs := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" || len(cs) != 1 || cs[0].Name != alice.Name || cs[0].MaxAge >= 0 {
		t.Errorf("logout: got %d to %q, cookies %v", w.Code, w.Header().Get("Location"), cs)
	}
	// The old cookie, kept by someone, no longer works.
	if w := tg.do(page("/nb/", alice)); w.Code != http.StatusUnauthorized {
		t.Errorf("the signed-out cookie: got %d; want 401", w.Code)
	}
	if !strings.Contains(tg.logs.String(), `msg="signed out" user=alice how=key`) {
		t.Errorf("no audit line for the sign-out:\n%s", tg.logs)
	}
}

// OIDC: the login page's link starts the provider's sign-in with a checked next (no
// open redirect); the callback sets the person's cookie; a non-member or a failed
// sign-in gets a page and no cookie.
func TestTeamOIDC(t *testing.T) {
	tg := newTeamGate(t, nil)
	for next, want := range map[string]string{
		"/site/page":             "/site/page",
		"https://evil.example/":  "/",
		"//evil.example/":        "/",
		"/\\evil.example":        "/",
		"/%2f%2fevil.example":    "/",
		"javascript:alert(1)":    "/",
		"/nb/../../etc/passwd":   "/",
		"/nb/%0d%0aSet-Cookie:x": "/",
	} {
		tg.signIn.started = nil
		w := tg.do(page("/_tether/signin?next="+url.QueryEscape(next), nil))
		if w.Code != http.StatusFound || len(tg.signIn.started) != 1 || tg.signIn.started[0] != want {
			t.Errorf("sign-in with next %q: got %d, Start(next=%q); want %q", next, w.Code, tg.signIn.started, want)
		}
	}
	// Back from the provider: a cross-site navigation gets the continue page (a
	// Strict cookie would not go with a 303), a next that leaves is replaced.
	w := tg.do(req("GET", fakeCallback+"?code=code-carol&next=//evil.example/", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Site", "cross-site"))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `url=/"`) || strings.Contains(w.Body.String(), "evil") {
		t.Errorf("callback, cross-site, next elsewhere: got %d\n%s", w.Code, w.Body)
	}
	carol := tg.oidcCookie(t, "code-carol")
	if w := tg.do(page("/site/x", carol)); w.Code != 200 || tg.apps["site"].last(t).Header.Get(UserHeader) != "carol@example.org" {
		t.Errorf("carol at site: got %d", w.Code)
	}
	if w := tg.do(page("/nb/x", carol)); w.Code != http.StatusForbidden {
		t.Errorf("carol at nb: got %d; want 403", w.Code)
	}
	for name, target := range map[string]string{
		"not a member":   fakeCallback + "?code=code-mallory",
		"failed":         fakeCallback + "?code=forged",
		"no code at all": fakeCallback,
	} {
		w := tg.do(req("GET", target, "Sec-Fetch-Mode", "navigate"))
		for _, c := range w.Result().Cookies() {
			if strings.HasPrefix(c.Name, cookiePrefix) {
				t.Errorf("%s: a session cookie was set", name)
			}
		}
		if w.Code != http.StatusForbidden && w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `name="token"`) {
			t.Errorf("%s: got %d\n%s", name, w.Code, w.Body)
		}
	}
	// Over plain HTTP to a name that is not loopback, no sign-in starts or ends.
	tg2 := newTeamGate(t, func(o *Options) { o.AllowHosts = []string{"lab.example"} })
	for _, target := range []string{"/_tether/signin", fakeCallback + "?code=code-carol"} {
		r := page(target, nil)
		r.Host = "lab.example:8080"
		if w := tg2.do(r); w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s over plain HTTP beyond loopback: got %d", target, w.Code)
		}
	}
}

// fromSource is an in-process request as it arrives on a listener at local from
// remote: the gate chooses its failure bucket by these.
func fromSource(r *http.Request, local, remote string) *http.Request {
	la, err := net.ResolveTCPAddr("tcp", local)
	if err != nil {
		panic(err)
	}
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
	r.RemoteAddr = remote
	return r
}

// Beyond loopback, failures count per source address: a flood of wrong keys from one
// address gets 429 (and no more argon2 work) without slowing another address's key or
// anyone's token; on loopback the limit stays global, but the owner is never locked out.
func TestTeamRateLimitPerSource(t *testing.T) {
	tg := newTeamGate(t, nil)
	tg.s.limiter = newFailureLimiter(failureBurst, failureEvery)
	tg.s.sources = newSourceLimits(failureBurst, failureEvery)
	const public = "192.0.2.10:8443"
	flood := func(local, remote string) map[int]int {
		codes := map[int]int{}
		for i := range 3 * failureBurst {
			w := tg.do(fromSource(bearer("GET", "/nb/", "wrong-key-number-"+string(rune('a'+i))), local, remote))
			codes[w.Code]++
		}
		return codes
	}
	before := tg.team.keyCalls.Load()
	codes := flood(public, "198.51.100.7:40000")
	if codes[401] != failureBurst || codes[429] != 2*failureBurst {
		t.Errorf("flood from one address: %v; want %d×401 then 429s", codes, failureBurst)
	}
	if n := tg.team.keyCalls.Load() - before; n != failureBurst {
		t.Errorf("the flood ran Team.Key %d times; want %d (none while limited)", n, failureBurst)
	}
	// The same /64 of IPv6 is one source.
	for i := range failureBurst + 1 {
		w := tg.do(fromSource(bearer("GET", "/nb/", "wrong-key-v6-0123456789"), "[2001:db8::1]:8443", "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:5000"))
		if i == failureBurst && w.Code != http.StatusTooManyRequests {
			t.Errorf("a flood spread over one IPv6 /64: got %d; want 429", w.Code)
		}
	}
	for name, r := range map[string]*http.Request{
		"another address's key":      fromSource(bearer("GET", "/nb/", aliceKey), public, "198.51.100.8:40000"),
		"another address's form key": fromSource(postForm("/_tether/login", url.Values{"token": {aliceKey}}, "Origin", "http://"+testHost), public, "198.51.100.8:40001"),
		"owner from the flooder's":   fromSource(bearer("GET", "/nb/", tg.token), public, "198.51.100.7:40001"),
		"owner's form, flooder's":    fromSource(postForm("/_tether/login", url.Values{"token": {tg.token}}, "Origin", "http://"+testHost), public, "198.51.100.7:40002"),
	} {
		if w := tg.do(r); w.Code != 200 && w.Code != http.StatusSeeOther {
			t.Errorf("%s during the flood: got %d", name, w.Code)
		}
	}
	if w := tg.do(fromSource(bearer("GET", "/nb/", aliceKey), public, "198.51.100.7:40003")); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("a key from the flooding address: got %d; want 429 with Retry-After", w.Code)
	}
	// On loopback (behind SSH) one global bucket: another 127.x address does not
	// escape it, but the owner still gets in.
	codes = flood("127.0.0.1:8888", "127.0.0.2:40000")
	if codes[429] != 2*failureBurst {
		t.Errorf("loopback flood: %v", codes)
	}
	if w := tg.do(fromSource(bearer("GET", "/nb/", aliceKey), "127.0.0.1:8888", "127.0.0.3:40000")); w.Code != http.StatusTooManyRequests {
		t.Errorf("a key from another loopback address during a loopback flood: got %d; want 429", w.Code)
	}
	if w := tg.do(fromSource(bearer("GET", "/nb/", tg.token), "127.0.0.1:8888", "127.0.0.2:40001")); w.Code != 200 {
		t.Errorf("the owner during a loopback flood: got %d", w.Code)
	}
	// A session cookie is never limited.
	tg.s.limiter = newFailureLimiter(1<<20, time.Millisecond)
	alice := tg.loginKey(t, aliceKey)
	tg.s.limiter = newFailureLimiter(1, time.Hour)
	tg.s.limiter.fail(tg.clock.Now())
	if w := tg.do(page("/nb/", alice)); w.Code != 200 {
		t.Errorf("alice's cookie while limited: got %d", w.Code)
	}
}

// Single-owner mode beyond loopback counts per source too: one address's flood leaves
// another's attempts at 401 (not 429), and the owner's token gets in from both.
func TestOwnerRateLimitPerSource(t *testing.T) {
	g := newGate(t, nil)
	g.s.sources = newSourceLimits(failureBurst, failureEvery)
	const public = "192.0.2.10:8443"
	codes := map[int]int{}
	for range 2 * failureBurst {
		codes[g.do(fromSource(bearer("GET", "/x", "wrong-token-0123456789"), public, "198.51.100.7:1")).Code]++
	}
	if codes[401] != failureBurst || codes[429] != failureBurst {
		t.Errorf("flood: %v", codes)
	}
	if w := g.do(fromSource(bearer("GET", "/x", "wrong-token-0123456789"), public, "198.51.100.8:1")); w.Code != 401 {
		t.Errorf("another address's first wrong token: got %d; want 401", w.Code)
	}
	for _, from := range []string{"198.51.100.7:2", "198.51.100.8:2"} {
		if w := g.do(fromSource(bearer("GET", "/x", g.token), public, from)); w.Code != 200 {
			t.Errorf("the owner from %s: got %d", from, w.Code)
		}
	}
}

// At most keySlots Team.Key calls run at once, however many sources ask.
func TestTeamKeyChecksBounded(t *testing.T) {
	tg := newTeamGate(t, nil)
	tg.s.sources = newSourceLimits(failureBurst, failureEvery)
	slow := &slowTeam{fakeTeam: tg.team, release: make(chan struct{})}
	tg.s.team = slow
	var wg sync.WaitGroup
	for i := range 3 * keySlots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg.do(fromSource(bearer("GET", "/nb/", "wrong-key-but-long-enough"), "192.0.2.10:8443", "198.51.100."+strconv.Itoa(i+1)+":1"))
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for slow.running.Load() < keySlots && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // would more start?
	if n := slow.running.Load(); n != keySlots {
		t.Errorf("%d Team.Key calls ran at once; want %d", n, keySlots)
	}
	close(slow.release)
	wg.Wait()
	if n := slow.max.Load(); n != keySlots {
		t.Errorf("at most %d Team.Key calls ran at once; want %d", n, keySlots)
	}
}

// slowTeam's Key blocks until release, counting calls under way.
type slowTeam struct {
	*fakeTeam
	release      chan struct{}
	running, max atomic.Int64
}

func (s *slowTeam) Key(key string) (string, bool) {
	n := s.running.Add(1)
	for m := s.max.Load(); n > m && !s.max.CompareAndSwap(m, n); m = s.max.Load() {
	}
	<-s.release
	s.running.Add(-1)
	return s.fakeTeam.Key(key)
}

// Audit: one line per sign-in (who, how, from where), per refusal, and per app opened
// (once per session and app); never a key, the token, a code or a cookie.
func TestTeamAudit(t *testing.T) {
	tg := newTeamGate(t, nil)
	alice := tg.loginKey(t, aliceKey)
	carol := tg.oidcCookie(t, "code-carol")
	owner := tg.cookie(testHost)
	for range 3 {
		tg.do(page("/nb/a", alice))
		tg.do(page("/site/a", carol))
		tg.do(bearer("GET", "/nb/api", bobKey))
	}
	tg.do(page("/site/", alice))
	tg.do(page("/admin/", owner))
	tg.do(bearer("GET", "/nb/", "wrong-key-but-long-enough"))
	tg.do(req("GET", fakeCallback+"?code=code-mallory"))
	logs := tg.logs.String()
	for _, want := range []string{
		`msg="signed in" user=alice how=key from=192.0.2.1:1234 with="login form"`,
		`msg="signed in" user=carol@example.org how=oidc from=192.0.2.1:1234`,
		`msg="signed in" user=owner how=token from=192.0.2.1:1234`,
		`msg="app opened" user=alice how=key from=192.0.2.1:1234 app=nb`,
		`msg="app opened" user=carol@example.org how=oidc from=192.0.2.1:1234 app=site`,
		`msg="app opened" user=bob how=key from=192.0.2.1:1234 app=nb`,
		`msg="app opened" user=owner how=token from=192.0.2.1:1234 app=admin`,
		`msg=refused user=alice how=key from=192.0.2.1:1234 why="no right to app site"`,
		`msg="authentication failed" reason="wrong key or token" method=GET path=/nb/ from=192.0.2.1:1234`,
		`msg=refused user=mallory@example.org how=oidc from=192.0.2.1:1234 why="not in any group of the access policy"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no audit line %s", want)
		}
	}
	if n := strings.Count(logs, `msg="app opened" user=alice how=key from=192.0.2.1:1234 app=nb`); n != 1 {
		t.Errorf("alice's session opened nb %d times in the log; want 1", n)
	}
	if n := strings.Count(logs, `msg="app opened" user=bob how=key from=192.0.2.1:1234 app=nb`); n != 1 {
		t.Errorf("bob's header key opened nb %d times in the log; want 1", n)
	}
	mustNotContain(t, "the audit log", logs, aliceKey, bobKey, tg.token, "code-carol", "code-mallory",
		alice.Value, carol.Value, owner.Value)
}

// Panics while a key or an OIDC code is in the request: the log holds neither.
func TestTeamPanicLogsNoSecrets(t *testing.T) {
	tg := newTeamGate(t, nil)
	tg.apps["nb"].handler = func(w http.ResponseWriter, r *http.Request) {
		panic("app failed with " + bobKey) // an error text that happens to hold the key
	}
	w := httptest.NewRecorder()
	r := bearer("GET", "/nb/", bobKey)
	tg.s.ServeHTTP(w, r)
	if w.Code != 500 {
		t.Fatalf("got %d", w.Code)
	}
	mustNotContain(t, "the log", tg.logs.String(), bobKey)
	// The redactor knows the login form's value once parsed.
	pr := postForm("/_tether/login", url.Values{"token": {aliceKey}})
	pr.ParseForm()
	if got := requestRedactor(tg.token, pr).redact("form held " + aliceKey); strings.Contains(got, aliceKey) {
		t.Errorf("requestRedactor left the login form's key: %q", got)
	}
}
