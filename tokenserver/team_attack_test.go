package tokenserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Attacks on a team server by a member with a right to one app (alice: nb) and by a
// malicious app's page in a visitor's browser. Each goes over a real connection where
// the server's own parsing matters.

// rawDo sends raw request bytes to the served gate and reads one response.
func rawDo(t *testing.T, host, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A member with a right to nb alone tries to reach site through the ways a request
// target can name it: encodings of slashes and dots, letter case, trailing dots,
// empty segments, absolute-form targets with any Host, HTTP/1.0. None reaches site.
func TestTeamAttackPathTricksOnTheWire(t *testing.T) {
	tg := newTeamGate(t, nil)
	host := hostOf(tg.served())
	for _, target := range []string{
		"//site/", "///site/x", "/SITE/", "/Site/", "/site./", "/site%2e/", "/%73ite/",
		"/./site/", "/nb/../site/", "/nb/..%2fsite/", "/nb%2f..%2fsite/", "/nb/%2e%2e/site/",
		"/nb/%2E%2E%2Fsite/", "/nb/.%2e/site/", "/nb/./../site/", "/nb\\..\\site/", "/nb/..\\site/",
		"/nb/%252e%252e/site/", "/nb/..;/site/", "/nb/%00/../site/",
		"http://" + testHost + "/site/", "http://" + host + "/site/", "http://evil.example/site/",
		"http://" + testHost + "//site/", "http://" + testHost + "/nb/../site/",
	} {
		for _, hostHdr := range []string{testHost, "evil.example"} {
			resp, body := rawDo(t, host, "GET "+target+" HTTP/1.1\r\nHost: "+hostHdr+"\r\nAuthorization: Bearer "+aliceKey+"\r\nConnection: close\r\n\r\n")
			if n := tg.apps["site"].count() + tg.apps["admin"].count(); n != 0 {
				t.Fatalf("GET %s (Host %s): an app alice may not open was reached (%d %q)", target, hostHdr, resp.StatusCode, body)
			}
			if resp.StatusCode == 200 && tg.apps["nb"].count() == 0 {
				t.Errorf("GET %s (Host %s): 200 without any app", target, hostHdr)
			}
		}
	}
	// HTTP/1.0 without Host, and with.
	for _, raw := range []string{
		"GET /site/ HTTP/1.0\r\nAuthorization: Bearer " + aliceKey + "\r\n\r\n",
		"GET /site/ HTTP/1.0\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + aliceKey + "\r\n\r\n",
	} {
		resp, _ := rawDo(t, host, raw)
		if resp.StatusCode == 200 || tg.apps["site"].count() != 0 {
			t.Errorf("%q: %d, site reached %d times", raw, resp.StatusCode, tg.apps["site"].count())
		}
	}
}

// The apps of a team server share one origin. An app's answer must not set the gate's
// session cookie (any session's, at any path: that would log the visitor in as the
// app's author on another app, or out) nor the OIDC sign-in's state cookie (login
// CSRF): the gate drops those Set-Cookie lines, on plain answers and on a 101.
func TestTeamAttackAppSetsOurCookie(t *testing.T) {
	tg := newTeamGate(t, nil)
	base := tg.served()
	bob := tg.loginKey(t, bobKey)
	planted := []string{
		bob.Name + "=" + bob.Value + "; Path=/site/",
		"__Host-" + bob.Name + "=x; Path=/; Secure",
		"__Secure-tether-other-1=x; Path=/",
		"TETHER-" + testSess + "-" + testPort + "=x; Path=/",
		"tether_oidc_0123456789abcdef=x; Path=/_tether/oidc/callback",
	}
	setting := func(w http.ResponseWriter) {
		for _, c := range planted {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Add("Set-Cookie", "app=1; Path=/nb/")
	}
	check := func(t *testing.T, what string, lines []string) {
		t.Helper()
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "app=1") {
			t.Errorf("%s: the browser got Set-Cookie %q; want only the app's own app=1", what, lines)
		}
	}
	tg.apps["nb"].handler = func(w http.ResponseWriter, r *http.Request) {
		setting(w)
		io.WriteString(w, "hello")
	}
	w := tg.do(bearer("GET", "/nb/", aliceKey))
	check(t, "plain answer", w.Result().Header.Values("Set-Cookie"))

	// Written with no explicit WriteHeader, and through a reverse proxy's 101.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setting(w)
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	tg.apps["nb"].handler = httputil.NewSingleHostReverseProxy(u).ServeHTTP
	resp, _ := rawDo(t, hostOf(base), "GET /nb/ws HTTP/1.1\r\nHost: "+testHost+"\r\nAuthorization: Bearer "+aliceKey+
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade through the proxy: %d", resp.StatusCode)
	}
	check(t, "101 through a reverse proxy", resp.Header.Values("Set-Cookie"))
}

// Cookie tossing: a script of one app (same origin) cannot overwrite the HttpOnly
// session cookie, but on plain HTTP it can add one of the same name at a longer path
// (document.cookie = "tether-…=AUTHORS_COOKIE; path=/nb/"), which the browser then sends
// first. The gate must not take the planted session over the visitor's own: two valid
// cookies of different sessions authenticate nobody.
func TestTeamAttackTossedCookie(t *testing.T) {
	tg := newTeamGate(t, nil)
	alice := tg.loginKey(t, aliceKey) // the app's author
	bob := tg.loginKey(t, bobKey)     // the visitor
	r := page("/nb/upload", nil)
	r.Header.Set("Cookie", alice.Name+"="+alice.Value+"; "+bob.Name+"="+bob.Value)
	w := tg.do(r)
	if w.Code == 200 {
		t.Fatalf("two sessions' cookies: got 200 as %q; want the visitor signed in as nobody",
			tg.apps["nb"].last(t).Header.Get(UserHeader))
	}
	// Junk in front, so that the visitor's own would be past the few cookies checked.
	r = page("/nb/upload", nil)
	junk := bob.Name + "=" + strings.Repeat("A", len(bob.Value)) + "; "
	r.Header.Set("Cookie", alice.Name+"="+alice.Value+"; "+strings.Repeat(junk, maxCookiesTried)+bob.Name+"="+bob.Value)
	if w := tg.do(r); w.Code == 200 {
		t.Fatalf("a planted cookie, junk, then the visitor's: got 200 as %q; want nobody",
			tg.apps["nb"].last(t).Header.Get(UserHeader))
	}
	// The same session's cookie twice is no conflict.
	r = page("/nb/", nil)
	r.Header.Set("Cookie", bob.Name+"="+bob.Value+"; "+bob.Name+"="+bob.Value)
	if w := tg.do(r); w.Code != 200 {
		t.Errorf("one session's cookie twice: %d; want 200", w.Code)
	}
	if w := tg.do(page("/nb/", bob)); w.Code != 200 {
		t.Errorf("the visitor's own cookie: %d; want 200", w.Code)
	}
}

// X-Tether-User declared as a trailer of a chunked request reaches the app after the
// body (r.Trailer): the gate refuses such a request, as it removes the header.
func TestTeamAttackUserHeaderInTrailer(t *testing.T) {
	tg := newTeamGate(t, nil)
	var mu sync.Mutex
	var seen []string
	tg.apps["nb"].handler = func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		for k, v := range r.Trailer {
			if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), UserHeader) {
				seen = append(seen, v...)
			}
		}
		mu.Unlock()
	}
	host := hostOf(tg.served())
	for _, name := range []string{"X-Tether-User", "x-tether-user", "X_Tether_User"} {
		raw := "POST /nb/api HTTP/1.1\r\nHost: " + testHost + "\r\nAuthorization: Bearer " + aliceKey +
			"\r\nTransfer-Encoding: chunked\r\nTrailer: " + name + "\r\nConnection: close\r\n\r\n" +
			"2\r\nhi\r\n0\r\n" + name + ": owner\r\n\r\n"
		resp, _ := rawDo(t, host, raw)
		mu.Lock()
		got := append([]string(nil), seen...)
		mu.Unlock()
		if len(got) != 0 {
			t.Errorf("trailer %s: the app saw X-Tether-User %q in the trailer (status %d)", name, got, resp.StatusCode)
		}
	}
}

// logfmt splits one line of slog's text handler into its keys and values (quoted
// values unquoted), or fails.
func logfmt(line string) ([][2]string, error) {
	var out [][2]string
	for line != "" {
		k, rest, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \"") {
			return nil, fmt.Errorf("no key=value at %q", line)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, err
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		out = append(out, [2]string{k, v})
		if rest = strings.TrimPrefix(rest, " "); rest != "" && rest[0] == ' ' {
			return nil, fmt.Errorf("two spaces at %q", rest)
		}
		line = rest
	}
	return out, nil
}

// An e-mail from the provider, or a path, made to forge audit lines: quotes and
// "msg=" and "user=owner" in it, a newline, ANSI escapes, a bidi override. Each audit
// record stays one line whose fields parse back to what happened: the e-mails with
// control characters are refused before they reach a log line, a cookie or a header.
func TestTeamAttackAuditInjection(t *testing.T) {
	quoted := `"eve\" msg=\"signed in\" user=owner how=token"@example.org`
	bidi := "eve\u202e@example.org"
	tg := newTeamGate(t, nil)
	tg.signIn.codes["c1"] = quoted
	tg.signIn.codes["c2"] = bidi
	tg.signIn.codes["c3"] = "eve@example.org\ntime=2025-01-01T00:00:00Z level=INFO msg=\"signed in\" user=owner how=token"
	tg.signIn.codes["c4"] = "eve\x1b[2K\x1b[1A@example.org"
	tg.team.addMember(quoted, "nb")
	tg.team.addMember(bidi, "nb")
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
		tg.do(req("GET", fakeCallback+"?code="+c+"&next=/nb/", "Sec-Fetch-Mode", "navigate"))
	}
	tg.do(bearer("GET", "/nb/%0Atime=x%20level=INFO%20msg=%22app%20opened%22%20user=owner", aliceKey))
	tg.do(bearer("GET", "/site/%1B[2J%1B[1A%E2%80%AE", aliceKey))
	logs := tg.logs.String()
	signedIn := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(logs, "\n"), "\n") {
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\u202e' }) {
			t.Errorf("a log line holds a control character: %q", line)
		}
		f, err := logfmt(line)
		if err != nil || len(f) < 3 || f[0][0] != "time" || f[1][0] != "level" || f[2][0] != "msg" {
			t.Errorf("a log line does not parse as time, level, msg, ...: %q (%v)", line, err)
			continue
		}
		seen := map[string]bool{}
		for _, kv := range f {
			if seen[kv[0]] {
				t.Errorf("field %s twice in %q", kv[0], line)
			}
			seen[kv[0]] = true
			if kv[0] == "user" {
				if kv[1] == "owner" {
					t.Errorf("a forged owner: %q", line)
				}
				if f[2][1] == "signed in" {
					signedIn[kv[1]] = true
				}
			}
		}
	}
	if !signedIn[quoted] || !signedIn[bidi] || len(signedIn) != 2 {
		t.Errorf("signed in: %v; want exactly the two members, spelled as the provider gave them", signedIn)
	}
}
