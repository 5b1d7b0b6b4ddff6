package tokenserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The landing: where a page load with a credential in its URL ends up. The launcher
// opens the base URL with a login code (the --json and --no-browser URL carries the
// token); the gate trades it for the cookie and sends the browser to the same URL
// without it (redirectClean). Many apps answer their root with a redirect of their
// own (Jupyter: / to /tree or /lab; RStudio, Notebook 7 alike), so the browser's first
// page cost two redirects, each a round trip of the link the user sits behind (80 ms on
// a WAN), before the first byte of the page. So for the base URL the gate first asks
// the app itself, on this machine, where its root sends the browser, and makes its own
// redirect go there at once: one round trip less, the same page, the same address bar.
//
// The app's answer counts only when it is a plain redirect to a path under the base URL
// (safeNext's rules), without a parameter of ours in its query and without cookies (the
// browser would not get them); anything else, a slow answer (landingWait) or a
// failure, and the redirect goes to the base URL as before. An app whose answer is
// final but of no use here (a page, 2xx or 4xx; a redirect refused; no answer within
// landingWait) is not asked again: each login would otherwise request its root twice
// (the question, then the browser's own request to the base URL), running whatever
// it does twice, and a slow root would cost every login landingWait on top of the
// page. Only a failure (5xx, a panic, the app not reachable yet) is asked again.
// The question is the browser's own request without our credentials (stripped), so
// the app sees what it would have seen a round trip later.

// landingWait bounds how long a page load waits for the app's answer about its root.
var landingWait = 2 * time.Second

var errLandingDone = errors.New("tokenserver: the landing question is answered")

// landing returns where a credential page load whose clean location is loc should go:
// the app's redirect target for the base URL, or loc.
func (s *Server) landing(r *http.Request, c *credentials, loc string) string {
	if loc != s.base || s.team != nil || s.app == nil || r.Method != http.MethodGet || s.noLanding.Load() {
		return loc
	}
	ctx, cancel := context.WithTimeout(r.Context(), landingWait)
	defer cancel()
	out := s.stripped(r, c).WithContext(ctx)
	u := *out.URL
	u.Path, u.RawPath, u.RawQuery, u.ForceQuery, u.Fragment = s.base, "", "", false, ""
	out.URL, out.RequestURI = &u, s.base
	out.Body, out.ContentLength = http.NoBody, 0
	lw := &landingWriter{h: http.Header{}, got: make(chan struct{})}
	// The question's goroutine is waited for: cancel ends the proxied request (the
	// reverse proxy and the static handlers follow the context).
	asked := make(chan struct{})
	defer func() { cancel(); <-asked }()
	go func() {
		defer close(asked)
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				s.log.Warn("the app failed while asked where its root leads", "path", logPath(r))
				lw.header(http.StatusInternalServerError) // a failure, not a page: ask again next time
			}
			lw.header(http.StatusOK) // a handler that wrote nothing answered 200
		}()
		s.app.ServeHTTP(lw, out)
	}()
	select {
	case <-lw.got:
	case <-ctx.Done():
		if r.Context().Err() == nil {
			s.noLanding.Store(true) // slow, not gone: the browser still waits for us
		}
		return loc
	}
	switch lw.status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		if lw.status < 500 {
			s.noLanding.Store(true)
		}
		return loc
	}
	if len(lw.hdr.Values("Set-Cookie")) == 0 {
		if next, ok := s.localRedirect(lw.hdr.Get("Location")); ok {
			return next
		}
	}
	s.noLanding.Store(true) // a redirect we cannot use, and will not next time either
	return loc
}

// localRedirect resolves an app's Location against the base URL (where the app was
// asked): a path under the base other than the base itself (the base with a query of
// the app's, as code-server's /?folder=…, counts), with no parameter of ours.
func (s *Server) localRedirect(loc string) (string, bool) {
	if loc == "" {
		return "", false
	}
	ref, err := url.Parse(loc)
	if err != nil || ref.Scheme != "" || ref.Host != "" || ref.User != nil || ref.Opaque != "" {
		return "", false
	}
	u := (&url.URL{Path: s.base}).ResolveReference(ref)
	next := u.EscapedPath()
	for _, p := range splitQuery(u.RawQuery) {
		if ourQueryParam(p) || isTokenKey(p.key) || isCodeKey(p.key) {
			return "", false
		}
	}
	if u.RawQuery != "" {
		next += "?" + u.RawQuery
	}
	if next == s.base || safeNext(next, s.base) != next {
		return "", false
	}
	return next, true
}

// landingWriter keeps the status and header of the app's answer and drops its body.
type landingWriter struct {
	h      http.Header
	once   sync.Once
	got    chan struct{} // closed once status and hdr are set
	status int
	hdr    http.Header
}

func (w *landingWriter) Header() http.Header { return w.h }

func (w *landingWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		return // informational: the answer is still to come
	}
	w.header(code)
}

func (w *landingWriter) header(code int) {
	w.once.Do(func() {
		w.status, w.hdr = code, w.h.Clone()
		close(w.got)
	})
}

// Write ends the app's answer: only its header was wanted.
func (w *landingWriter) Write(p []byte) (int, error) {
	w.header(http.StatusOK)
	return 0, errLandingDone
}
