package tokenserver

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"
)

// Fuzzers for the credential parsers and the redirect check. Each has seeds from the
// attack tables; run one with
//
//	go test -run='^$' -fuzz=FuzzParseAuthorization -fuzztime=30s ./tokenserver/

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "token abc", "BEARER abc", "Basic dXNlcjpwYXNz", "", "Bearer", "Bearer ",
		"Bearer  x", "Bearer\tx", "Bearer x y", "bearer x\x00", "Token x,Basic y", "bearerx", " Bearer x"} {
		f.Add(s, "", false, false)
		f.Add(s, "Bearer x", true, false)
		f.Add(s, "", false, true)
	}
	f.Add("Bearer correct horse battery staple", "", false, true)
	f.Add("Bearer café-clé-secrète-très-longue", "", false, true)
	f.Fuzz(func(t *testing.T, a, b string, two, keys bool) {
		values := []string{a}
		if two {
			values = append(values, b)
		}
		tok, present, err := parseAuthorization(values, keys)
		if two {
			if err != errTwoAuthorization || !present {
				t.Fatalf("two headers: present=%v err=%v", present, err)
			}
			return
		}
		if err != nil {
			if len(tok) > 0 {
				t.Fatal("a token came back with an error")
			}
			return
		}
		if !present {
			t.Fatal("no error and not present")
		}
		bad := isSpaceOrCtl
		if keys {
			bad = isCtl // an access key may be a passphrase with spaces
		}
		if len(tok) == 0 || len(tok) > maxPresentedLen || strings.ContainsFunc(tok, bad) {
			t.Fatalf("accepted a token with whitespace or bad length: %q", tok)
		}
		scheme, rest, ok := strings.Cut(a, " ")
		if !ok || !(strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer")) || len(rest) != len(tok) {
			t.Fatalf("accepted %q as %q", a, tok)
		}
	})
}

func FuzzParseSubprotocols(f *testing.F) {
	tok := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	seeds := [][2]string{
		{jupyterProtocol + ", " + jupyterProtocolEntry + tok, ""},
		{jupyterProtocol, jupyterProtocolEntry + tok},
		{jupyterProtocol, ""},
		{jupyterProtocolEntry + tok, ""},
		{jupyterProtocol + "," + jupyterProtocolEntry + tok + "," + jupyterProtocolEntry + tok, ""},
		{kernelProtocol + ", " + jupyterProtocol + ", " + jupyterProtocolEntry + "%41%zz", ""},
		{"V1.TOKEN.WEBSOCKET.JUPYTER.ORG, v1.token.websocket.jupyter.org.x", "a,,b"},
		{" \t, ,", "\t" + jupyterProtocol + "\t"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a}
		if b != "" {
			lines = append(lines, b)
		}
		sp := parseSubprotocols(lines)
		for _, o := range sp.others {
			if o == "" || strings.ContainsAny(o, ",") || strings.Trim(o, " \t") != o {
				t.Fatalf("bad entry passed on: %q", o)
			}
			if strings.EqualFold(o, jupyterProtocol) || hasPrefixFold(o, jupyterProtocolEntry) {
				t.Fatalf("our entry passed on to the app: %q", o)
			}
		}
		if !sp.present && (sp.err != nil || len(sp.tok) > 0) {
			t.Fatalf("not present but err=%v tok=%q", sp.err, sp.tok)
		}
		if sp.err != nil && len(sp.tok) > 0 {
			t.Fatal("a token came back with an error")
		}
		if sp.present && sp.err == nil {
			if len(sp.tok) == 0 {
				t.Fatal("present, no error, no token")
			}
			bare, entries := 0, 0
			for _, line := range lines {
				for _, e := range strings.Split(line, ",") {
					e = strings.Trim(e, " \t")
					switch {
					case strings.EqualFold(e, jupyterProtocol):
						bare++
					case hasPrefixFold(e, jupyterProtocolEntry):
						entries++
					}
				}
			}
			if bare != 1 || entries != 1 {
				t.Fatalf("accepted %d bare and %d token entries", bare, entries)
			}
		}
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range offSiteNexts {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
	}
	for _, s := range []string{"/", "/lab", "/p/lab?x=1#y", "/p/a%20b", "/p", "/p/%2e%2e/x"} {
		f.Add(s, uint8(1))
	}
	bases := []string{"/", "/p/"}
	self, _ := url.Parse("http://localhost:8888/p/here")
	f.Fuzz(func(t *testing.T, next string, which uint8) {
		base := bases[int(which)%len(bases)]
		got := safeNext(next, base)
		if got == base {
			return
		}
		if got != next {
			t.Fatalf("safeNext(%q) = %q: neither next nor base", next, got)
		}
		// What a browser would do with it: WHATWG parsers drop tabs and newlines and
		// read a backslash as a slash. It must stay a path on our origin, under base.
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		if !strings.HasPrefix(browser, "/") || strings.HasPrefix(browser, "//") {
			t.Fatalf("safeNext kept %q, which a browser may read as another host", next)
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("kept an unparsable %q", next)
		}
		u := self.ResolveReference(ref)
		if u.Scheme != "http" || u.Host != self.Host || u.User != nil {
			t.Fatalf("kept %q, which resolves to %s", next, u)
		}
		clean := path.Clean(u.Path)
		if !strings.HasPrefix(clean+"/", base) {
			t.Fatalf("kept %q, which leaves the base %s (%s)", next, base, clean)
		}
		// The path (the query and fragment may hold anything, encoded).
		p := got
		if i := strings.IndexAny(p, "?#"); i >= 0 {
			p = p[:i]
		}
		for _, layer := range []string{p, mustUnescape(p), mustUnescape(mustUnescape(p))} {
			if strings.ContainsAny(layer, "\\\x00\t\n\r") {
				t.Fatalf("kept %q, whose path holds a backslash or control once decoded", next)
			}
		}
	})
}

func mustUnescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func FuzzStripOurCookies(f *testing.F) {
	for _, s := range []string{
		"a=1; tether-x-1=2; b=3", "tether-a-1=1", "__Host-tether-a-1=1;x=y;", "username-localhost-8888=\"2|1\"; _xsrf=x",
		";;;", " tether-z=1 ; TETHER-Q=2; q=tether-x", "=; =x; tether-=", "a=b\x00c; tether-x=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		h := http.Header{"Cookie": {line}}
		stripOurCookies(h)
		var kept []string
		for _, l := range h.Values("Cookie") {
			for _, part := range strings.Split(l, ";") {
				name, _, _ := strings.Cut(part, "=")
				if isOurCookie(strings.TrimSpace(name)) {
					t.Fatalf("our cookie %q survived in %q", name, l)
				}
				if strings.TrimSpace(part) != "" {
					kept = append(kept, strings.TrimSpace(part))
				}
			}
		}
		var want []string
		for _, part := range strings.Split(line, ";") {
			name, _, _ := strings.Cut(part, "=")
			if !isOurCookie(strings.TrimSpace(name)) && strings.TrimSpace(part) != "" {
				want = append(want, strings.TrimSpace(part))
			}
		}
		if strings.Join(kept, ";") != strings.Join(want, ";") {
			t.Fatalf("foreign cookies changed: %q -> %q; want %q", line, kept, want)
		}
	})
}

func FuzzCheckLoginCode(f *testing.F) {
	tok := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	// A deterministic valid code (fuzz workers are separate processes: a random one
	// would differ between them).
	now := time.Unix(1_700_000_000, 0)
	var body [codeBodyLen]byte
	copy(body[:codeNonceLen], "fixed-nonce-0123")
	binary.BigEndian.PutUint64(body[codeNonceLen:], uint64(now.Add(time.Minute).Unix()))
	copy(body[codeNonceLen+8:], loginCodeMAC(tok, body[:codeNonceLen+8]))
	good := loginCodePrefix + base64.RawURLEncoding.EncodeToString(body[:])
	if _, err := checkLoginCode(tok, good, now); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, loginCodePrefix, loginCodePrefix + strings.Repeat("A", 75), "tc1.x", good + "A", good[:len(good)-1]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		_, err := checkLoginCode(tok, code, now)
		if err == nil && !TokensEqual(code, good) {
			t.Fatalf("a code that MintLoginCode did not make was accepted: %q", code)
		}
	})
}

// FuzzGate throws arbitrary credentials at the whole gate: the app is reached only
// when the request held the token or the valid cookie, and what reaches it never
// holds anything of ours; no answer echoes the input.
func FuzzGate(f *testing.F) {
	// Deterministic token, cookie key, clock and cookie: fuzz workers are separate
	// processes and must agree on what the seeds mean.
	const tok = "fuzz-token-abcdefghijklmnopqrstuvwxyz-0123"
	g := newGate(f, func(o *Options) { o.Token = tok })
	g.s.cookieKey = deriveKey([]byte("fuzz"), labelCookie)
	g.clock.t = time.Unix(1_700_000_000, 0)
	ck := &http.Cookie{Name: "tether-" + testSess + "-" + testPort}
	{
		var id [cookieIDLen]byte
		copy(id[:], "fixed-cookie-id!")
		ck.Value = g.s.cookieValue(ck.Name, g.clock.t, id, owner)
		if _, ok := g.s.verifyCookieValue(ck.Name, ck.Value, g.clock.t); !ok {
			f.Fatal("the fuzz cookie does not verify")
		}
	}
	f.Add("Bearer "+tok, "", "", "", "")
	f.Add("", jupyterProtocol+", "+tokenEntry(tok), "", "", "websocket")
	f.Add("", "", "token="+tok+"&a=1", "", "navigate")
	f.Add("", "", "token="+tok+"&token=x", ck.Name+"="+ck.Value, "navigate")
	f.Add("", "", "", ck.Name+"="+ck.Value+"; a=1; tether-x-1=2", "cors")
	f.Add("token "+tok+" x", kernelProtocol, "code=tc1.x", "", "")
	f.Add("Basic x", jupyterProtocol, "tok%65n="+tok, ck.Name+"="+ck.Value, "no-cors")
	f.Fuzz(func(t *testing.T, authz, proto, rawQuery, cookie, mode string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Host = testHost
		r.URL.RawQuery = rawQuery
		r.RequestURI = r.URL.RequestURI()
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if proto != "" {
			r.Header.Set("Sec-WebSocket-Protocol", proto)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		if mode != "" {
			r.Header.Set("Sec-Fetch-Mode", mode)
			r.Header.Set("Origin", "http://"+testHost)
		}
		before := g.app.count()
		w := httptest.NewRecorder()
		g.s.ServeHTTP(w, r)
		input := authz + "\n" + proto + "\n" + rawQuery + "\n" + cookie
		if g.app.count() > before {
			if !strings.Contains(input, tok) && !strings.Contains(input, ck.Value) && !strings.Contains(input, "%") {
				t.Fatalf("the app was reached without a credential: %q", input)
			}
			assertNothingOfOurs(t, g.app.last(t), tok)
		}
		body := w.Body.String()
		for _, v := range []string{authz, proto, rawQuery, cookie} {
			if len(v) >= 12 && strings.Contains(body, v) {
				t.Fatalf("the answer echoes input %q", v)
			}
		}
		mustNotContain(t, "the answer", body, tok)
		mustNotContain(t, "the Location", w.Header().Get("Location"), tok)
	})
}
