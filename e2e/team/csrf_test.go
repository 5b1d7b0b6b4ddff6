//go:build unix

package team

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/wire"
)

// evilSite serves a blank page on addr (another origin on loopback), from which the
// test runs an attacker's scripts in Chromium; it returns the page's URL.
func evilSite(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>evil</title><p>nothing to see")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// TestTeamServerCrossSite: a member signed in (key in the login form) visits a page
// of another origin on this machine (127.0.0.2: cross-site; 127.0.0.1 on another port:
// same-site, so the SameSite=Strict cookie goes along). That page's scripts and forms
// try to write and delete in the static app with the member's session (fetch PUT,
// DELETE, a no-cors POST, a form POST), and to sign a visitor without a session in
// as the attacker (login CSRF: a form POST of the attacker's key to the login form).
// The gate refuses all of it (Chromium's preflight already stops PUT and DELETE).
func TestTeamServerCrossSite(t *testing.T) {
	began := time.Now()
	e2e.Need(t, "chromium", "chromium")
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	e2e.WriteFile(t, filepath.Join(www, "keep.txt"), "keep me", 0o644)
	writer := fmt.Sprintf("writer-key-%d-long-enough", time.Now().UnixNano())
	mallory := fmt.Sprintf("mallory-key-%d-long-enough", time.Now().UnixNano())
	yml := filepath.Join(dir, "team.yml")
	e2e.WriteFile(t, yml, fmt.Sprintf("access_control: keys\nkeys:\n  writer:\n    hash: %s\n    apps: [site]\n    paths: {write: [%s]}\n"+
		"  mallory:\n    hash: %s\n    apps: [site]\n    paths: {read: [%s]}\n", hashKey(t, writer), www, hashKey(t, mallory), www), 0o600)

	state := filepath.Join(dir, "state")
	cmd := exec.Command(e2e.Binary(t), "serve", "--json", "--listen", "127.0.0.1:0", "--access", yml, "--app", "site=static:"+www)
	cmd.Env = append(cleanEnv(), "TETHER_STATE_DIR="+state)
	stderr := &e2e.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	e2e.Start(t, cmd)
	line := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(stdout).ReadString('\n'); line <- l }()
	var rec wire.Record
	select {
	case l := <-line:
		if rec, err = wire.DecodeRecord([]byte(l)); err != nil {
			t.Fatalf("ready record %q: %v\nstderr:\n%s", l, err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no ready record\nstderr:\n%s", stderr)
	}
	target := strings.TrimSuffix(rec.URL, "/") + "/"
	if !strings.HasPrefix(target, "http://127.0.0.1:") {
		t.Fatalf("the server's URL is %q; want http://127.0.0.1:PORT/", rec.URL)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether serve stderr:\n%s", e2e.LastLines(stderr.String(), 40))
		}
	})

	ctx, cancel := context.WithTimeout(e2e.Browser(t), 60*time.Second)
	defer cancel()
	err = chromedp.Do(ctx, chromedp.Navigate(target), chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), writer), chromedp.Submit(chromedp.CSS(`input[name=token]`)))
	if err == nil {
		err = waitJS(ctx, `document.readyState == "complete" && document.body.innerText.includes("Signed in as writer")`, 10*time.Second)
	}
	if err != nil {
		t.Fatalf("the writer's key in the login form: %v", err)
	}
	js := func(ctx context.Context, expr string) string {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return out
	}
	// The writer may write (here with the key itself): the refusals below are the
	// gate's cross-origin checks, not a member without the right. (The gate's pages
	// allow no script to connect, and static files are sandboxed: no same-origin page
	// here to fetch from.)
	put, _ := http.NewRequest("PUT", target+"site/own.txt", strings.NewReader("mine"))
	put.Header.Set("Authorization", "Bearer "+writer)
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("the writer's PUT by key: %v %v; want it written", resp, err)
	} else {
		resp.Body.Close()
	}
	for _, evil := range []struct{ what, url string }{
		{"cross-site (127.0.0.2)", evilSite(t, "127.0.0.2:0")},
		{"same-site (127.0.0.1, another port)", evilSite(t, "127.0.0.1:0")},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(evil.url)); err != nil {
			t.Fatal(err)
		}
		res := js(ctx, fmt.Sprintf(`(async () => {
  const T = %q, out = [];
  const f = (path, init) => fetch(T + path, Object.assign({credentials: "include"}, init)).then(r => r.type + ":" + r.status, e => "blocked");
  out.push(await f("site/put.txt", {method: "PUT", body: "pwned"}));
  out.push(await f("site/keep.txt", {method: "DELETE"}));
  out.push(await f("site/post.txt", {method: "POST", body: "pwned", mode: "no-cors"}));
  return out.join(" ");
})()`, target))
		t.Logf("%s: fetch PUT, DELETE, no-cors POST: %s", evil.what, res)
		// A form POST navigates to the gate's answer, which the test reads.
		err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const f = document.createElement("form");
  f.method = "POST"; f.action = %q; document.body.appendChild(f); f.submit(); })()`, target+"site/form.txt")))
		if err == nil {
			err = waitJS(ctx, fmt.Sprintf(`location.href == %q && document.readyState == "complete"`, target+"site/form.txt"), 10*time.Second)
		}
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil || !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("%s: a form POST to the static app: %q, %v; want the gate's cross-origin refusal", evil.what, body, err)
		}
		for _, name := range []string{"put.txt", "post.txt", "form.txt"} {
			if _, err := os.Stat(filepath.Join(www, name)); err == nil {
				t.Errorf("%s: %s was written", evil.what, name)
			}
		}
		if _, err := os.Stat(filepath.Join(www, "keep.txt")); err != nil {
			t.Errorf("%s: keep.txt was deleted", evil.what)
		}
	}
	// The session survived all that: still the writer's.
	if err := chromedp.Do(ctx, chromedp.Navigate(target), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
		t.Fatal(err)
	}
	if body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`))); !strings.Contains(body, "Signed in as writer") {
		t.Errorf("after the attacks the writer's start page says %q", body)
	}

	// Login CSRF: a visitor without a session, on the attacker's page, which posts the
	// attacker's key to the login form (to make the visitor work as mallory).
	for _, host := range []string{"127.0.0.2:0", "127.0.0.1:0"} {
		vctx, vcancel := context.WithTimeout(e2e.Browser(t), 40*time.Second)
		evil := evilSite(t, host)
		err := chromedp.Do(vctx, chromedp.Navigate(evil), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const f = document.createElement("form");
  f.method = "POST"; f.action = %q;
  for (const [k, v] of [["token", %q], ["next", "/"]]) { const i = document.createElement("input"); i.name = k; i.value = v; f.appendChild(i); }
  document.body.appendChild(f); f.submit(); })()`, target+"_tether/login", mallory)))
		if err == nil {
			err = waitJS(vctx, fmt.Sprintf(`location.href.startsWith(%q) && document.readyState == "complete"`, target), 10*time.Second)
		}
		body, _ := chromedp.Run(vctx, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil || !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("login CSRF from %s: %q, %v; want the gate's cross-origin refusal", evil, body, err)
		}
		err = chromedp.Do(vctx, chromedp.Navigate(target), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		if body, _ := chromedp.Run(vctx, chromedp.Text(chromedp.CSS(`body`))); err != nil || strings.Contains(body, "mallory") || !strings.Contains(body, "Sign in to") {
			t.Errorf("after login CSRF from %s the visitor sees %q (%v); want the sign-in page", evil, body, err)
		}
		vcancel()
	}
	// The no-cors POSTs did reach the gate (the browser hides the answer: opaque, and
	// our Cross-Origin-Resource-Policy makes it a network error to the script).
	if n := strings.Count(stderr.String(), "cross-site request"); n != 6 {
		t.Errorf("the gate logged %d cross-site refusals; want 6 (two no-cors POSTs, two form POSTs, two logins)", n)
	}
	t.Logf("done in %s", e2e.FmtDur(time.Since(began)))
}
