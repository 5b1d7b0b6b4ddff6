package tokenserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Texts of our own responses. They never echo anything from the request: not the
// Host, not the path, not a header, not the token.
const (
	textHost      = "403 Forbidden: this server answers only to localhost names (DNS rebinding protection). Open it as http://localhost:PORT/ or start it with --allow-host.\n"
	textOrigin    = "403 Forbidden: cross-origin request refused.\n"
	textProtocol  = "403 Forbidden: invalid token subprotocol.\n"
	textMethod    = "405 Method Not Allowed\n"
	textNotFound  = "404 Not Found\n"
	textUnauth    = "401 Unauthorized: this server needs its access token. Send it as `Authorization: Bearer TOKEN`.\n"
	textTooMany   = "429 Too Many Requests: too many failed attempts; wait a little and try again.\n"
	textInternal  = "500 Internal Server Error\n"
	textBadLogin  = "400 Bad Request: send the login form as application/x-www-form-urlencoded.\n"
	textNoCookies = "403 Forbidden: signing in needs TLS or a localhost address, so the session cookie never crosses a network in clear text.\n"
	textBadNonce  = "400 Bad Request: nonce must be 16 to 128 URL-safe characters.\n"
	textNoToken   = "404 Not Found: this server has no token to answer challenges with.\n"
)

// cspText is the policy of our text answers: nothing may load, nothing may frame.
const cspText = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// setOurHeaders puts the security headers on a response of our own (never on the app's).
func setOurHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (s *Server) writeText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	setOurHeaders(h, cspText)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(status)
	w.Write([]byte(text))
}

// refuse answers with a fixed text and logs why, without the request's secrets.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, why, text string) {
	s.log.Info("request refused", "status", status, "reason", why, "method", r.Method, "path", logPath(r))
	s.writeText(w, status, text)
}

// wantsPage reports whether r is a browser loading a page (rather than a script, an
// asset, a WebSocket or a command-line client): it gets HTML answers.
func wantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || isUpgrade(r) {
		return false
	}
	switch r.Header.Get("Sec-Fetch-Mode") {
	case "navigate":
		return true
	case "":
		return strings.Contains(r.Header.Get("Accept"), "text/html")
	}
	return false
}

// unauthorized answers a request without a valid credential: a login page for a page
// load (its `next` is the path only: never the query, which may hold the token), a
// short text for everything else.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, message string, logged bool) {
	if !logged {
		s.log.Debug("no credentials", "method", r.Method, "path", logPath(r))
	}
	if wantsPage(r) {
		s.loginPage(w, r, http.StatusUnauthorized, safeNext(r.URL.EscapedPath(), s.base), message)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tether"`)
	if s.team != nil {
		s.writeText(w, http.StatusUnauthorized, textUnauthTeam)
		return
	}
	s.writeText(w, http.StatusUnauthorized, textUnauth)
}

// notAccepted is the login page's message for a wrong credential.
func (s *Server) notAccepted() string {
	if s.team != nil {
		return "That key was not accepted."
	}
	return "That token was not accepted."
}

func (s *Server) tooMany(w http.ResponseWriter, r *http.Request) {
	s.log.Info("request refused", "status", http.StatusTooManyRequests, "reason", "rate limited", "method", r.Method, "path", logPath(r))
	w.Header().Set("Retry-After", strconv.Itoa(s.limiterFor(r).retryAfter(s.now())))
	if wantsPage(r) || r.Method == http.MethodPost && s.isReserved(r.URL.Path) {
		s.loginPage(w, r, http.StatusTooManyRequests, s.base, "Too many failed attempts. Wait a little and try again.")
		return
	}
	s.writeText(w, http.StatusTooManyRequests, textTooMany)
}

// The login page: self-contained, no script, one inline style allowed by its hash.
const loginStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:26em;margin:12vh auto;padding:0 1em;color:#222}` +
	`h1{font-size:1.3em}input{font:inherit;width:100%;box-sizing:border-box;padding:.4em;margin:.3em 0 .8em}` +
	`button{font:inherit;padding:.4em 1.2em}.msg{color:#a00}code{background:#eee;padding:0 .2em}`

var (
	loginCSP = "default-src 'none'; style-src '" + styleHash(loginStyle) + "'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'"
	loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>tether: sign in</title><style>{{.Style}}</style></head>
<body>{{if .Team}}<h1>Sign in to {{.Title}}</h1>{{else}}<h1>This app is guarded by tether</h1>{{end}}
{{if .Message}}<p class="msg">{{.Message}}</p>{{end}}
{{if .Team}}<p>Enter the access key you were given{{if .SignIn}}, or sign in with your organisation below{{end}}.</p>{{else}}<p>Paste the access token. <code>tether launch</code> and <code>tether attach</code> open the browser with it; <code>tether serve</code> prints it.</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="password" name="token" autocomplete="off" autofocus required aria-label="{{if .Team}}access key{{else}}access token{{end}}">
<input type="hidden" name="next" value="{{.Next}}">
<button type="submit">Sign in</button>
</form>
{{if .SignIn}}<p><a href="{{.SignIn}}">Sign in with your organisation</a></p>{{end}}
</body></html>
`))
)

func styleHash(css string) string {
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, next, message string) {
	// Under no-referrer, Chromium posts the form with "Origin: null", which the
	// cross-origin check must refuse; page's same-origin keeps the real Origin on our
	// own POST and still sends no Referer anywhere else.
	s.page(w, r, status, loginTemplate, struct {
		Style        template.CSS
		Action, Next string
		Message      string
		Team         bool
		Title        string
		SignIn       string
	}{template.CSS(loginStyle), s.base + ReservedPrefix + "login", next, message, s.team != nil, s.title, s.signInHref(next)})
}

// isReserved reports whether a path is ours ({BaseURL}_tether or below), raw or once
// cleaned, so that no spelling of it is proxied to the app.
func (s *Server) isReserved(p string) bool {
	reserved := func(p string) bool {
		rest, ok := strings.CutPrefix(p, s.base)
		return ok && (rest == "_tether" || strings.HasPrefix(rest, ReservedPrefix))
	}
	return reserved(p) || reserved(path.Clean("/"+p)) || reserved(path.Clean("/"+p)+"/")
}

// serveReserved answers our own endpoints. The Host check has passed; each endpoint
// does its own checks.
func (s *Server) serveReserved(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case s.base + ReservedPrefix + "challenge":
		s.serveChallenge(w, r)
	case s.base + ReservedPrefix + "logout":
		s.serveLogout(w, r)
	case s.base + ReservedPrefix + "signin":
		s.serveSignIn(w, r)
	case s.base + ReservedPrefix + "login":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			next := ""
			if vs := r.URL.Query()["next"]; len(vs) == 1 {
				next = vs[0]
			}
			s.loginPage(w, r, http.StatusOK, safeNext(next, s.base), "")
		case http.MethodPost:
			s.serveLogin(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		}
	default:
		s.refuse(w, r, http.StatusNotFound, "unknown reserved path", textNotFound)
	}
}

// serveChallenge answers GET {BaseURL}_tether/challenge?nonce=N, without
// authentication, with ChallengeResponse(token, N), and with OwnerProofHeader, says in
// OwnerAcceptedHeader whether that proof matches the token. The key is derived for this use
// only, so answers help with nothing else (not cookies, not login codes, not the
// token), and a cross-site page cannot read them (no CORS headers).
func (s *Server) serveChallenge(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.refuse(w, r, http.StatusMethodNotAllowed, "method", textMethod)
		return
	}
	if s.token == "" {
		s.writeText(w, http.StatusNotFound, textNoToken)
		return
	}
	nonces := r.URL.Query()["nonce"]
	if len(nonces) != 1 || !validNonce(nonces[0]) {
		s.refuse(w, r, http.StatusBadRequest, "bad challenge nonce", textBadNonce)
		return
	}
	// The launcher's proof that it holds the token, if it sent one: the answer says
	// whether this server takes it, so one exchange does what a challenge and then a
	// request with the token did. A wrong proof counts as a failed attempt.
	if proofs := r.Header.Values(OwnerProofHeader); len(proofs) > 0 {
		verdict := OwnerRefused
		if len(proofs) == 1 && hmac.Equal([]byte(proofs[0]), []byte(OwnerProof(s.token, nonces[0]))) {
			verdict = OwnerAccepted
		} else {
			s.failed(r, "wrong owner proof")
		}
		w.Header().Set(OwnerAcceptedHeader, verdict)
	}
	s.writeText(w, http.StatusOK, ChallengeResponse(s.token, nonces[0]))
}

const maxLoginBody = 8 << 10

// serveLogin handles the login form's POST: origin-checked (login CSRF), rate-limited,
// and on success a fresh cookie (a planted one is replaced: no fixation) and a 303 to
// `next` if it is a local path under BaseURL.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.crossOriginCheck(r); err != nil {
		s.refuse(w, r, http.StatusForbidden, "login: "+err.Error(), textOrigin)
		return
	}
	if !s.noAuth && !cookieAllowed(r) {
		s.refuse(w, r, http.StatusForbidden, "login over plain HTTP on a non-loopback Host", textNoCookies)
		return
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		s.refuse(w, r, http.StatusBadRequest, "login: content type", textBadLogin)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		s.refuse(w, r, http.StatusBadRequest, "login: form", textBadLogin)
		return
	}
	next := safeNext(r.PostForm.Get("next"), s.base)
	if s.noAuth {
		s.seeOther(w, next)
		return
	}
	// The token is always compared (in constant time), even while failures are rate
	// limited: the owner signs in whatever someone else on the host is guessing.
	// A team's access key is checked (argon2id, slow) only when the limiter lets a
	// failure through.
	presented := r.PostForm["token"]
	u := owner
	switch {
	case len(presented) == 1 && len(presented[0]) <= maxPresentedLen && TokensEqual(presented[0], s.token):
	case s.team != nil && len(presented) == 1 && presented[0] != "":
		var limited bool
		u, limited = s.checkKey(r, presented[0])
		if limited {
			s.tooMany(w, r)
			return
		}
		if u.kind == 0 {
			s.loginPage(w, r, http.StatusUnauthorized, next, s.notAccepted())
			return
		}
	default:
		if s.failed(r, "login: wrong token") {
			s.tooMany(w, r)
			return
		}
		s.loginPage(w, r, http.StatusUnauthorized, next, s.notAccepted())
		return
	}
	http.SetCookie(w, s.newCookie(r, u))
	s.audit(r, "signed in", u, "with", "login form")
	s.touch()
	s.seeOther(w, next)
}

var continueTemplate = template.Must(template.New("continue").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0; url={{.}}"><title>tether</title></head>
<body><p><a href="{{.}}">Continue</a></p></body></html>
`))

// continuePage answers 200 with a page that navigates to loc (a path safeNext kept)
// by itself, without script.
func (s *Server) continuePage(w http.ResponseWriter, r *http.Request, loc string) {
	var buf bytes.Buffer
	if err := continueTemplate.Execute(&buf, loc); err != nil {
		s.writeText(w, http.StatusInternalServerError, textInternal)
		return
	}
	h := w.Header()
	setOurHeaders(h, cspText)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

func (s *Server) seeOther(w http.ResponseWriter, loc string) {
	setOurHeaders(w.Header(), cspText)
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}
