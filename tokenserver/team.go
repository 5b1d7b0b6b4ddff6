package tokenserver

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Team mode (Options.Team): one gate in front of several apps, for several people.
//
// Who a request is:
//   - the owner: the token, as in single-owner mode (header, ?token=, subprotocol,
//     login code, login form). The owner may open every app and alone reaches this
//     machine's other ports (proxy/PORT/, absproxy/PORT/, _tether/forward/PORT).
//   - an access key, by its name: Team.Key on the `Authorization: Bearer KEY` value or
//     the login form's field. A key is never taken from the URL or a subprotocol.
//   - a person signed in by OIDC, by e-mail: SignIn.Finish's verified address, if
//     Team.Member admits it.
//
// A signed-in person gets the session cookie, which says who (kind and name) under the
// MAC; on every request the name is checked against the current policy (Team.Member
// for an e-mail, Team.MayOpen for a key, or KeyStamps.MayOpenKey with the key's stamp),
// so a key or group removed on reload, or a key replaced under its name, stops working
// at once. Apps live at {BaseURL}NAME/ (each gets the whole path; its base URL
// is {BaseURL}NAME/) and see who came in X-Tether-User; {BaseURL} itself is the start
// page. A person without the right to an app gets 403 on every path and WebSocket of
// it. The gate keeps no rights of its own: it asks Team on every request.

// Team is a team server's access policy; package access implements it. Methods are
// safe for concurrent use; the policy behind them may be replaced at any time
// (SIGHUP reload), so the gate asks on every request and keeps no rights of its own.
type Team interface {
	// Key returns the name of the access key presented, or ok=false. It is slow
	// (argon2id) the first time a key is seen and fast after (the implementation
	// caches verified keys); it checks every configured hash, so its time does not
	// depend on which key matched. The gate calls it only when the rate limiter lets
	// a failure through, and never with a value shorter than 16 bytes.
	Key(key string) (name string, ok bool)
	// Member reports whether a verified e-mail belongs to at least one group.
	Member(email string) bool
	// MayOpen reports whether user (a key name or an e-mail) may open app NAME.
	// Also false for a user no longer in the policy (a removed key or group).
	MayOpen(user, app string) bool
}

// KeyStamps is implemented by a Team that can tell a key from another one under the
// same name (package access does: a digest of the stored hash). With it, a key's
// session cookie and every check of a key's rights name the key itself, not only its
// name: a key replaced under its name (rotated after a leak) or whose name moved to
// another key on reload stops working at once for those signed in with it, and a
// request a reload overtakes is judged by one policy's view of the key, not by the
// rights of whichever key holds the name a moment later.
type KeyStamps interface {
	// KeyStamp is Key, plus the stamp of the key that matched: 1 to 64 printable
	// ASCII characters that change when the key under that name does (not a secret:
	// it goes into the cookie).
	KeyStamp(key string) (name, stamp string, ok bool)
	// MayOpenKey reports whether the key named name may open app, if that name still
	// belongs to the key of this stamp.
	MayOpenKey(name, stamp, app string) bool
	// KnownKey is KeyStamp for a key already verified in this process, found without
	// hashing (microseconds); ok=false for any other. The gate asks it before the rate
	// limiter: a key proven once is let in like the owner's token, whatever a guesser
	// on the host does (its speed tells only its holder that it was seen before).
	KnownKey(key string) (name, stamp string, ok bool)
}

// SignIn is an outside sign-in (OIDC); package access implements it.
type SignIn interface {
	// CallbackPath is the path the provider sends the browser back to (the path of
	// the configured redirect_url). The gate routes it to Finish, before auth.
	CallbackPath() string
	// Start sends the browser to the provider (a redirect); after sign-in it comes
	// back to next (a path on this server, already checked by the gate).
	Start(w http.ResponseWriter, r *http.Request, next string)
	// Finish handles the callback: the verified e-mail (lower case) and next, or an
	// error whose text may be shown to the person (never a code, token or cookie).
	// Finish writes nothing to w except its own cookies (e.g. clearing its state
	// cookie); the gate writes the answer (session cookie + redirect, or the error page).
	Finish(w http.ResponseWriter, r *http.Request) (email, next string, err error)
}

// NamedApp is one app of a team server, served under {BaseURL}Name/.
type NamedApp struct {
	// Name is the app's path segment: 1 to 64 of A-Z a-z 0-9 - _ ., starting with a
	// letter or digit; not proxy or absproxy (secondary ports live there).
	Name string
	// Handler receives the requests for {BaseURL}Name and below, authenticated, with
	// our credentials stripped and X-Tether-User set, and the whole path.
	Handler http.Handler
}

// UserHeader is the header that tells an app who came: the key's name, the e-mail, or
// "owner" (team mode). Whatever the client sent under this name, in any letter case
// or with '_' for '-', is removed from every request, team mode or not.
const UserHeader = "X-Tether-User"

const (
	textUnauthTeam  = "401 Unauthorized: sign in first, or send an access key as `Authorization: Bearer KEY`.\n"
	textNoRight     = "403 Forbidden: your access does not include this app. The start page lists the apps you may open.\n"
	textOwnerOnly   = "403 Forbidden: only the server's owner may reach this machine's other ports.\n"
	textDotSegment  = "404 Not Found: a path with dot segments that leave its app is not served.\n"
	textUserTrailer = "400 Bad Request: X-Tether-User is set by tether, never sent by a client (not even as a trailer).\n"
)

// checkTeamOptions checks the team-mode options of New and fills s.
func (s *Server) checkTeamOptions(o *Options) error {
	if o.Team == nil {
		switch {
		case o.SignIn != nil:
			return errors.New("tokenserver: Options.SignIn needs Options.Team")
		case o.Apps != nil:
			return errors.New("tokenserver: Options.Apps needs Options.Team (one app without a team: Options.App)")
		}
		return nil
	}
	switch {
	case o.NoAuth:
		return errors.New("tokenserver: a team server cannot turn authentication off")
	case o.App != nil:
		return errors.New("tokenserver: with Options.Team, give the apps in Options.Apps, not Options.App")
	case len(o.Apps) == 0:
		return errors.New("tokenserver: Options.Team needs at least one app in Options.Apps")
	}
	seen := map[string]bool{}
	for _, a := range o.Apps {
		if err := validAppName(a.Name); err != nil {
			return err
		}
		if a.Handler == nil {
			return fmt.Errorf("tokenserver: app %q has no handler", a.Name)
		}
		if seen[a.Name] {
			return fmt.Errorf("tokenserver: app %q is given twice", a.Name)
		}
		seen[a.Name] = true
	}
	s.team = o.Team
	s.title = o.TeamTitle
	if s.title == "" {
		s.title = "the apps on this server"
	}
	s.keySlots = make(chan struct{}, keySlots)
	s.apps = append([]NamedApp(nil), o.Apps...)
	if o.SignIn != nil {
		cb := o.SignIn.CallbackPath()
		if !strings.HasPrefix(cb, "/") || strings.HasPrefix(cb, "//") || strings.ContainsAny(cb, "?#") ||
			path.Clean(cb) != cb && path.Clean(cb)+"/" != cb {
			return fmt.Errorf("tokenserver: the sign-in callback path %q is not a plain absolute path", cb)
		}
		if cb == s.base || cb+"/" == s.base {
			return errors.New("tokenserver: the sign-in callback path cannot be the start page")
		}
		s.signIn = o.SignIn
		s.callback = cb
	}
	return nil
}

func validAppName(n string) error {
	bad := func(why string) error { return fmt.Errorf("tokenserver: app name %q %s", n, why) }
	switch {
	case n == "" || len(n) > 64:
		return bad("must be 1 to 64 characters long")
	case !('a' <= n[0] && n[0] <= 'z' || 'A' <= n[0] && n[0] <= 'Z' || '0' <= n[0] && n[0] <= '9'):
		return bad("must start with a letter or digit")
	case strings.EqualFold(n, "proxy") || strings.EqualFold(n, "absproxy"):
		return bad("is reserved for the owner's other ports")
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !isUnreserved(c) || c == '~' {
			return bad("may hold only A-Z a-z 0-9 - _ .")
		}
	}
	return nil
}

// validUser: a key name or e-mail the gate can carry in a cookie, a header and a log
// line: 1 to maxUserLen bytes of UTF-8 without control characters.
func validUser(n string) bool {
	return n != "" && len(n) <= maxUserLen && utf8.ValidString(n) && !strings.ContainsFunc(n, isCtl)
}

// stillIn reports whether a signed-in person is still in the current policy: the
// owner always; an e-mail while Team.Member admits it; a key while it may open an app.
func (s *Server) stillIn(u who) bool {
	switch u.kind {
	case kindOwner:
		return true
	case kindEmail:
		return s.team.Member(u.name)
	case kindKey:
		for _, a := range s.apps {
			if s.mayOpen(u, a.Name) {
				return true
			}
		}
	}
	return false
}

func (s *Server) mayOpen(u who, app string) bool {
	switch u.kind {
	case kindOwner:
		return true
	case kindKey:
		if ks, ok := s.team.(KeyStamps); ok {
			return u.stamp != "" && ks.MayOpenKey(u.name, u.stamp, app)
		}
		return s.team.MayOpen(u.name, app)
	case kindEmail:
		return s.team.MayOpen(u.name, app)
	}
	return false
}

// validStamp: a key's stamp the cookie can carry (see KeyStamps).
func validStamp(st string) bool {
	if st == "" || len(st) > maxStampLen {
		return false
	}
	for i := 0; i < len(st); i++ {
		if st[i] <= ' ' || st[i] >= 0x7f {
			return false
		}
	}
	return true
}

const maxStampLen = 64

// checkKey checks a presented access key once the rate limiter lets a failure through
// (argon2id is slow: nobody gets to make us run it faster than that): the key's name,
// or nobody (a failure is logged), or limited. A key the Team already verified
// (KeyStamps.KnownKey) needs no hashing and is let in whatever the limiter says.
func (s *Server) checkKey(r *http.Request, key string) (u who, limited bool) {
	if ks, is := s.team.(KeyStamps); is && len(key) >= minTokenLen && len(key) <= maxPresentedLen {
		if name, stamp, ok := ks.KnownKey(key); ok && validUser(name) && !strings.EqualFold(name, "owner") && validStamp(stamp) {
			return who{kind: kindKey, name: name, stamp: stamp}, false
		}
	}
	lim := s.limiterFor(r)
	ok, nowLimited := lim.take(s.now())
	if !ok {
		return who{}, true
	}
	if len(key) >= minTokenLen && len(key) <= maxPresentedLen {
		u, ok, err := s.askKey(r, key)
		switch {
		case err != nil:
			lim.refund() // the client went away before its turn: nothing was checked
			return who{}, false
		case ok && validUser(u.name) && !strings.EqualFold(u.name, "owner") && (u.stamp == "" || validStamp(u.stamp)):
			lim.refund()
			return u, false
		case ok:
			s.log.Warn("an access key's name is \"owner\", holds control characters or is too long; rename it", "from", r.RemoteAddr)
		}
	}
	if nowLimited {
		s.log.Warn("too many failed attempts: wrong credentials get 429 for a while; valid ones still get in", "from", r.RemoteAddr)
	}
	s.log.Info("authentication failed", "reason", "wrong key or token", "method", r.Method, "path", logPath(r), "from", r.RemoteAddr)
	return who{}, false
}

// askKey calls Team.Key with at most keySlots calls at a time: argon2id takes tens of
// MiB per call, and per-source buckets let many sources through at once.
// With KeyStamps, the key's stamp comes with its name.
func (s *Server) askKey(r *http.Request, key string) (who, bool, error) {
	select {
	case s.keySlots <- struct{}{}:
	case <-r.Context().Done():
		return who{}, false, r.Context().Err()
	}
	defer func() { <-s.keySlots }()
	if ks, is := s.team.(KeyStamps); is {
		name, stamp, ok := ks.KeyStamp(key)
		return who{kind: kindKey, name: name, stamp: stamp}, ok, nil
	}
	name, ok := s.team.Key(key)
	return who{kind: kindKey, name: name}, ok, nil
}

const keySlots = 4

// audit logs a sign-in, refusal or app opened: who, from where (the remote address),
// never what they presented.
func (s *Server) audit(r *http.Request, msg string, u who, args ...any) {
	a := []any{"user", truncate(u.user(), maxUserLen), "how", u.how(), "from", r.RemoteAddr}
	if u.kind == 0 {
		a = []any{"from", r.RemoteAddr}
	}
	s.log.Info(msg, append(a, args...)...)
}

// deny answers 403 to a signed-in person for something they may not reach, and logs it.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, u who, why, text string) {
	s.audit(r, "refused", u, "why", why, "method", r.Method, "path", logPath(r))
	s.writeText(w, http.StatusForbidden, text)
}

// serveTeam routes an authenticated, stripped request of team mode.
func (s *Server) serveTeam(w *appWriter, r *http.Request, c *credentials, u who, sess string) {
	p := r.URL.Path
	switch {
	case s.isForward(p) || s.servesProxy() && s.isPortPath(p):
		if u.kind != kindOwner {
			s.deny(w, r, u, "other ports are the owner's", textOwnerOnly)
			return
		}
		if s.isForward(p) {
			s.serveForward(w, r, c)
		} else {
			s.servePort(w, r)
		}
	case p == s.base || p+"/" == s.base:
		s.startPage(w, r, u)
	default:
		name, ok := s.appOf(p)
		if !ok {
			s.refuse(w, r, http.StatusNotFound, "no such app, or dot segments", textDotSegment)
			return
		}
		var app *NamedApp
		for i := range s.apps {
			if s.apps[i].Name == name {
				app = &s.apps[i]
			}
		}
		if app == nil {
			s.refuse(w, r, http.StatusNotFound, "no such app", textNotFound)
			return
		}
		if !s.mayOpen(u, app.Name) {
			s.deny(w, r, u, "no right to app "+app.Name, textNoRight)
			return
		}
		r.Header.Set(UserHeader, u.user())
		if s.firstOpen(sess, app.Name) {
			s.audit(r, "app opened", u, "app", app.Name)
		}
		s.serveHandler(w, r, app.Handler)
	}
}

// appOf is the app a decoded path is for: its first segment under BaseURL, the same
// raw and once cleaned (a dot segment may not leave one app for another).
func (s *Server) appOf(p string) (string, bool) {
	first := func(p string) (string, bool) {
		rest, ok := strings.CutPrefix(p, s.base)
		if !ok {
			return "", false
		}
		name, _, _ := strings.Cut(rest, "/")
		return name, name != ""
	}
	raw, ok1 := first(p)
	clean, ok2 := first(path.Clean("/"+p) + "/")
	return raw, ok1 && ok2 && raw == clean
}

// firstOpen reports whether a session (a cookie's id, or a key or person presenting
// itself in a header) opens an app for the first time, for the "app opened" line.
// The set is bounded: when full it starts afresh (a few lines logged twice).
func (s *Server) firstOpen(sess, app string) bool {
	k := sess + "\x00" + app
	s.openedMu.Lock()
	defer s.openedMu.Unlock()
	if _, ok := s.opened[k]; ok {
		return false
	}
	if len(s.opened) >= maxOpened {
		clear(s.opened)
	}
	s.opened[k] = struct{}{}
	return true
}

const maxOpened = 10000

// sessionKey names a request's session for firstOpen.
func sessionKey(u who, ss *session) string {
	if ss != nil {
		return "c" + hex.EncodeToString(ss.id[:])
	}
	return string(u.kind) + u.name
}

// stripUserHeader removes every spelling of X-Tether-User the client sent: any letter
// case, and '_' for '-' (CGI, WSGI and some proxies fold X_Tether_User into the same
// variable).
func stripUserHeader(h http.Header) {
	for k := range h {
		if len(k) == len(UserHeader) && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), UserHeader) {
			delete(h, k)
		}
	}
}

// declaresUserTrailer reports whether a request announces X-Tether-User (any spelling)
// as a trailer: its value would come after the body, into the app's Request.Trailer,
// where no stripping before the app runs can reach it. Nothing legitimate sends it.
func declaresUserTrailer(r *http.Request) bool {
	for k := range r.Trailer {
		if len(k) == len(UserHeader) && strings.EqualFold(strings.ReplaceAll(k, "_", "-"), UserHeader) {
			return true
		}
	}
	return false
}

// Our pages in team mode: the start page, the sign-out page.
var (
	startTemplate = template.Must(template.New("start").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>tether</title><style>{{.Style}}</style></head>
<body><h1>Apps on this server</h1>
<p>Signed in as <b>{{.User}}</b>{{if .How}} ({{.How}}){{end}}.</p>
{{if .Apps}}<ul>{{range .Apps}}<li><a href="{{.Href}}">{{.Name}}</a></li>
{{end}}</ul>{{else}}<p class="msg">No app here is open to you. Ask the server's owner for access.</p>{{end}}
<form method="post" action="{{.Logout}}"><button type="submit">Sign out</button></form>
</body></html>
`))
	logoutTemplate = template.Must(template.New("logout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>tether: sign out</title><style>{{.Style}}</style></head>
<body><h1>Sign out</h1>
<form method="post" action="{{.Logout}}"><button type="submit">Sign out</button></form>
</body></html>
`))
)

type startApp struct{ Name, Href string }

func (s *Server) startPage(w http.ResponseWriter, r *http.Request, u who) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		return
	}
	var apps []startApp
	for _, a := range s.apps {
		if s.mayOpen(u, a.Name) {
			apps = append(apps, startApp{a.Name, s.base + a.Name + "/"})
		}
	}
	how := map[byte]string{kindOwner: "the server's owner", kindKey: "access key", kindEmail: ""}[u.kind]
	s.page(w, r, http.StatusOK, startTemplate, struct {
		Style             template.CSS
		User, How, Logout string
		Apps              []startApp
	}{template.CSS(loginStyle), u.user(), how, s.base + ReservedPrefix + "logout", apps})
}

// page answers with one of our HTML pages (the login page's headers).
func (s *Server) page(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.writeText(w, http.StatusInternalServerError, textInternal)
		return
	}
	h := w.Header()
	setOurHeaders(h, loginCSP)
	// Same-origin keeps the Origin on our own form POSTs (see loginPage).
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// serveLogout answers {BaseURL}_tether/logout: GET shows a button, POST (cross-origin
// checked, so another site cannot sign anyone out) ends the session: its cookie is
// revoked on the server and cleared in the browser.
func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.page(w, r, http.StatusOK, logoutTemplate, struct {
			Style  template.CSS
			Logout string
		}{template.CSS(loginStyle), s.base + ReservedPrefix + "logout"})
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		return
	}
	if err := s.crossOriginCheck(r); err != nil {
		s.refuse(w, r, http.StatusForbidden, "logout: "+err.Error(), textOrigin)
		return
	}
	if ss, ok := s.checkCookie(r); ok {
		s.revoke(ss.id, s.now())
		s.audit(r, "signed out", ss.who)
	}
	http.SetCookie(w, s.clearCookie(r))
	s.seeOther(w, s.base)
}

// serveSignIn answers GET {BaseURL}_tether/signin?next=PATH: off to the provider.
func (s *Server) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if s.signIn == nil {
		s.refuse(w, r, http.StatusNotFound, "no outside sign-in", textNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		return
	}
	if !cookieAllowed(r) {
		s.refuse(w, r, http.StatusForbidden, "sign-in over plain HTTP on a non-loopback Host", textNoCookies)
		return
	}
	next := ""
	if vs := r.URL.Query()["next"]; len(vs) == 1 {
		next = vs[0]
	}
	s.signIn.Start(w, r, safeNext(next, s.base))
}

// serveCallback answers the provider's redirect back (SignIn.CallbackPath), before
// authentication: SignIn.Finish verifies it; the gate admits the e-mail if Team.Member
// does, sets the session cookie and sends the browser on to next. A failed callback
// counts as a failed attempt (rate limited by source like a wrong key), so the gate
// cannot be made to hammer the provider.
func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		return
	}
	if !cookieAllowed(r) {
		s.refuse(w, r, http.StatusForbidden, "sign-in over plain HTTP on a non-loopback Host", textNoCookies)
		return
	}
	lim := s.limiterFor(r)
	ok, nowLimited := lim.take(s.now())
	if !ok {
		s.tooMany(w, r)
		return
	}
	email, next, err := s.signIn.Finish(w, r)
	if err == nil && !validUser(email) {
		err = errors.New("the provider gave an unusable e-mail address")
	}
	if err != nil {
		if nowLimited {
			s.log.Warn("too many failed attempts: wrong credentials get 429 for a while; valid ones still get in", "from", r.RemoteAddr)
		}
		msg := requestRedactor(s.token, r).redact(truncate(err.Error(), 300))
		s.audit(r, "refused", who{}, "why", "sign-in failed: "+msg)
		s.loginPage(w, r, http.StatusUnauthorized, s.base, "Sign-in failed: "+msg)
		return
	}
	lim.refund() // the person proved who they are, whether or not they may come in
	u := who{kind: kindEmail, name: email}
	if !s.team.Member(email) {
		s.audit(r, "refused", u, "why", "not in any group of the access policy")
		s.loginPage(w, r, http.StatusForbidden, s.base,
			"You signed in as "+email+", but that address has no access to this server. Ask its owner.")
		return
	}
	http.SetCookie(w, s.newCookie(r, u))
	s.audit(r, "signed in", u)
	s.touch()
	loc := safeNext(next, s.base)
	// The provider's redirect is a cross-site navigation: a SameSite=Strict cookie set
	// in answer to it is not sent on a redirect that follows (see redirectClean).
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		s.continuePage(w, r, loc)
		return
	}
	s.seeOther(w, loc)
}

// signInHref is the login page's "Sign in with your organisation" link.
func (s *Server) signInHref(next string) string {
	if s.signIn == nil {
		return ""
	}
	return s.base + ReservedPrefix + "signin?next=" + url.QueryEscape(next)
}

// teamState is the Server's team-mode state.
type teamState struct {
	team     Team
	title    string // the login page's "Sign in to TITLE"
	signIn   SignIn
	callback string
	apps     []NamedApp
	keySlots chan struct{} // Team.Key calls under way

	openedMu sync.Mutex
	opened   map[string]struct{}
}
