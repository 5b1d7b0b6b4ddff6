//go:build unix

package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// A page in the served directory that tries to act for the user: read the cookies
// of 127.0.0.1 (shared by every port), and read another file of the session with the
// session's cookie, by inline script, a script file, an event handler and a
// javascript: URL. Its title says how far it got.
const hostilePage = `<!doctype html><html><head><title>inert</title>
<script src="/hostile.js"></script></head><body>
<script>
document.title = "inline script ran; cookies: " + document.cookie;
fetch("/private.txt", {credentials: "include"}).then(r => r.text()).then(t => { document.title = "read: " + t; });
</script>
<img src="/missing.png" onerror="document.title = 'handler ran: ' + document.cookie">
<img id="pic" src="/pixel.gif">
<iframe src="javascript:parent.document.title='javascript: URL ran'"></iframe>
<a id="next" href="/other.html">next</a>
</body></html>`

const hostileScript = `document.title = "script file ran; cookies: " + document.cookie;`

const hostileSVG = `<svg xmlns="http://www.w3.org/2000/svg"><title>inert</title>
<script>document.title = "svg script ran; cookies: " + document.cookie;</script></svg>`

// A 1×1 GIF.
const pixelGIF = "GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"

// TestStaticFilesSandboxed (issue 11, item 6): the static preset serves every file with
// `Content-Security-Policy: sandbox …` and `X-Content-Type-Options: nosniff`: in
// Chromium an HTML file (named .html, or sniffed from a name without extension) or an
// SVG runs none of its scripts, so it can neither read document.cookie nor fetch a
// same-origin URL with the session's credentials; its images and links still work
// with the session's cookie.
func TestStaticFilesSandboxed(t *testing.T) {
	env, _ := stateEnv(t)
	site := t.TempDir()
	for name, body := range map[string]string{
		"hostile.html": hostilePage,
		"sniffed":      hostilePage,
		"hostile.svg":  hostileSVG,
		"hostile.js":   hostileScript,
		"pixel.gif":    pixelGIF,
		"other.html":   "<!doctype html><title>other page</title><p>other</p>",
		"private.txt":  "private data",
	} {
		if err := os.WriteFile(filepath.Join(site, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServe(t, env, "--listen", "127.0.0.1:0", "--app", "static", "--", site)
	rec := s.rec

	for _, f := range []string{"hostile.html", "sniffed", "hostile.svg", "private.txt"} {
		req, _ := http.NewRequest("GET", rec.URL+f, nil)
		req.Header.Set("Authorization", "token "+rec.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != 200 || !strings.HasPrefix(csp, "sandbox") ||
			strings.Contains(csp, "allow-scripts") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, Content-Security-Policy %q, X-Content-Type-Options %q; want a sandbox without scripts, nosniff",
				f, resp.StatusCode, csp, resp.Header.Get("X-Content-Type-Options"))
		}
	}

	ctx := Browser(t)
	run := func(a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(WithTimeout(ctx, 20*time.Second), a...); err != nil {
			t.Fatal(err)
		}
	}
	run(chromedp.Navigate(rec.URL + "?token=" + rec.Token))
	if txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); err != nil || !strings.Contains(txt, "hostile.html") {
		t.Fatalf("the listing after signing in: %q %v", txt, err)
	}
	// A cookie scripts could read (not HttpOnly), as another app on 127.0.0.1 may set.
	run(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: "probe", Value: "visible-to-scripts", URL: rec.URL})
		return err
	}))

	for _, page := range []string{"hostile.html", "sniffed", "hostile.svg"} {
		run(chromedp.Navigate(rec.URL + page))
		// Give a script, were it to run, time to act (the fetch is a round trip).
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if title, _ := chromedp.Run(ctx, chromedp.Title()); title != "inert" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || title != "inert" {
			t.Errorf("%s: a script of the page ran: title %q (%v)", page, title, err)
		}
	}

	// What a report needs still works: its images load, its links lead on, with the
	// session's cookie.
	run(chromedp.Navigate(rec.URL + "hostile.html"))
	if w, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("pic").naturalWidth`)); err != nil || w != 1 {
		t.Errorf("an image of a sandboxed page did not load: width %d (%v)", w, err)
	}
	run(chromedp.Click(chromedp.CSS("#next")))
	if !WaitFor(10*time.Second, func() bool {
		title, _ := chromedp.Run(ctx, chromedp.Title())
		return title == "other page"
	}) {
		title, _ := chromedp.Run(ctx, chromedp.Title())
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Errorf("following a link from a sandboxed page: %q at %s; want the other page", title, loc)
	}
}
