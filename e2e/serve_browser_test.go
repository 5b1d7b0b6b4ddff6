//go:build unix

package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const appTitle = "Directory listing for /"

// TestServeGuardsARealApp is issue 2's end-to-end check: `tether serve -- python3 -m
// http.server {port} --bind 127.0.0.1` is guarded on its socket and TCP port; Chromium
// opening URL?token=… lands on the app with the token gone from the address bar; a
// second visit works by cookie; a fresh profile gets the login form, submits the token
// and reaches the app.
func TestServeGuardsARealApp(t *testing.T) {
	env, _ := stateEnv(t)
	s := startServe(t, env, "--listen", "127.0.0.1:0", "--", "python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1")
	rec := s.rec
	if rec.URL == "" || rec.Token == "" || len(rec.Command) != 6 || rec.Command[3] != "{port}" {
		t.Fatalf("ready record: %+v", rec)
	}

	// Guarded: the socket and the TCP port both want the token.
	sock := unixClient(rec.Socket)
	if code, _ := get(t, sock, "http://localhost/", ""); code != http.StatusUnauthorized {
		t.Errorf("socket without token: %d; want 401", code)
	}
	if code, body := get(t, sock, "http://localhost/", rec.Token); code != http.StatusOK || !strings.Contains(body, appTitle) {
		t.Errorf("socket with token: %d %.80q", code, body)
	}
	if code, _ := get(t, http.DefaultClient, rec.URL, ""); code != http.StatusUnauthorized {
		t.Errorf("TCP without token: %d; want 401", code)
	}

	ctx := Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(rec.URL+"?token="+rec.Token)); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loc, rec.Token) || strings.Contains(loc, "token") {
		t.Errorf("the address bar still holds the token: %s", loc)
	}
	if title, _ := chromedp.Run(ctx, chromedp.Title()); title != appTitle {
		t.Errorf("after ?token=: title %q; want the app's %q", title, appTitle)
	}
	// Second visit, no token: the cookie does it.
	if err := chromedp.Do(ctx, chromedp.Navigate(rec.URL)); err != nil {
		t.Fatal(err)
	}
	if title, _ := chromedp.Run(ctx, chromedp.Title()); title != appTitle {
		t.Errorf("second visit by cookie: title %q; want %q", title, appTitle)
	}

	// A fresh profile: login form, token typed in, app reached. Chromium posts this
	// form with `Origin: null` and `Sec-Fetch-Site: same-origin`, because the login
	// page asks for no-referrer; the gate has to accept that as same-origin.
	fresh := Browser(t)
	if err := chromedp.Do(fresh, chromedp.Navigate(rec.URL)); err != nil {
		t.Fatal(err)
	}
	if title, _ := chromedp.Run(fresh, chromedp.Title()); !strings.Contains(title, "sign in") {
		t.Fatalf("fresh profile: title %q; want the login page", title)
	}
	if err := chromedp.Do(WithTimeout(fresh, 20*time.Second),
		chromedp.SendKeys(`input[name="token"]`, rec.Token),
		chromedp.Submit(`input[name="token"]`),
	); err != nil {
		t.Fatal(err)
	}
	WaitFor(10*time.Second, func() bool {
		title, _ := chromedp.Run(WithTimeout(fresh, 2*time.Second), chromedp.Title())
		return title == appTitle
	})
	if title, _ := chromedp.Run(WithTimeout(fresh, 5*time.Second), chromedp.Title()); title != appTitle {
		html, _ := chromedp.Run(WithTimeout(fresh, 5*time.Second), chromedp.OuterHTML("html"))
		t.Errorf("after the login form: title %q; want %q\n%s", title, appTitle, html)
	}
	if loc, _ := chromedp.Run(fresh, chromedp.Location()); strings.Contains(loc, rec.Token) {
		t.Errorf("the token is in the address bar after login: %s", loc)
	}

	// Ctrl-C: the app and the session go away.
	apps := Descendants(s.Proc.Cmd.Process.Pid, "python3")
	if len(apps) != 1 {
		t.Fatalf("app processes: %v", apps)
	}
	s.Proc.Cmd.Process.Signal(syscall.SIGINT)
	if _, ok := s.Proc.Wait(15 * time.Second); !ok {
		t.Fatal("tether serve did not stop on SIGINT")
	}
	if Alive(apps[0]) {
		t.Error("the app outlived tether serve's SIGINT")
	}
	if ls := tether(t, env, "ls", "--json"); ls != "[]\n" {
		t.Errorf("ls after SIGINT: %s", ls)
	}
	if code, _ := get(t, http.DefaultClient, rec.URL, rec.Token); code != 0 {
		t.Errorf("the server still answers after SIGINT: %d", code)
	}
}

// TestServeBuiltinAppWebSocket: with no COMMAND the built-in page is served; its own
// WebSocket works through the gate; page JavaScript opening a WebSocket with Jupyter's
// JEP 119 subprotocols exchanges a message; a page of another origin (another
// localhost port) can neither open the WebSocket nor read the app.
func TestServeBuiltinAppWebSocket(t *testing.T) {
	env, _ := stateEnv(t)
	s := startServe(t, env, "--listen", "127.0.0.1:0")
	rec := s.rec
	if len(rec.Command) != 0 {
		t.Fatalf("built-in app has command %q", rec.Command)
	}
	ctx := Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(rec.URL+"?token="+rec.Token), chromedp.WaitVisible("#session")); err != nil {
		t.Fatal(err)
	}
	if id, _ := chromedp.Run(ctx, chromedp.Text("#session")); id != rec.ID {
		t.Errorf("page shows session %q; want %q", id, rec.ID)
	}
	// The page's own WebSocket (cookie, same origin) connects.
	ok := WaitFor(10*time.Second, func() bool {
		st, _ := chromedp.Run(ctx, chromedp.Text("#ws"))
		return st == "connected"
	})
	if !ok {
		st, _ := chromedp.Run(ctx, chromedp.Text("#ws"))
		t.Errorf("the page's WebSocket is %q; want connected", st)
	}

	type wsResult struct {
		Protocol string `json:"protocol"`
		Data     string `json:"data"`
		Error    string `json:"error"`
	}
	js := fmt.Sprintf(`new Promise((resolve) => {
		const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws",
			["v1.token.websocket.jupyter.org", "v1.token.websocket.jupyter.org." + encodeURIComponent(%q)]);
		ws.onopen = () => ws.send("hello through the gate");
		ws.onmessage = (e) => { resolve({protocol: ws.protocol, data: e.data}); ws.close(); };
		ws.onerror = () => resolve({error: "error"});
		setTimeout(() => resolve({error: "timeout"}), 8000);
	})`, rec.Token)
	res, err := chromedp.Run(ctx, chromedp.Evaluate[wsResult](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.Protocol != "v1.token.websocket.jupyter.org" ||
		!strings.Contains(res.Data, `"echo":"hello through the gate"`) || !strings.Contains(res.Data, rec.ID) {
		t.Errorf("JEP 119 WebSocket: %+v", res)
	}

	// Another origin: a page on another localhost port, in the same (logged-in)
	// browser, so the session cookie would travel with its requests.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<title>elsewhere</title>`)
	}))
	t.Cleanup(evil.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(evil.URL)); err != nil {
		t.Fatal(err)
	}
	wsURL := strings.Replace(rec.URL, "http://", "ws://", 1) + "ws"
	verdict, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`new Promise((resolve) => {
		const ws = new WebSocket(%q);
		ws.onopen = () => resolve("open");
		ws.onmessage = (e) => resolve("message: " + e.data);
		ws.onerror = () => resolve("refused");
		setTimeout(() => resolve("timeout"), 8000);
	})`, wsURL), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if verdict != "refused" {
		t.Errorf("a page of another origin opened the WebSocket: %s", verdict)
	}
	read, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`fetch(%q, {credentials: "include"})
		.then((r) => r.text()).then((t) => "read: " + t.slice(0, 80), (e) => "blocked: " + e.name)`, rec.URL),
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(read, "blocked") {
		t.Errorf("a page of another origin read the app: %s", read)
	}
}

// TestServeAppExitEndsServer: the app exiting ends the foreground server with a
// message carrying the app's last output, and the session stays listed as app-exited
// with its log until pruned.
func TestServeAppExitEndsServer(t *testing.T) {
	env, _ := stateEnv(t)
	s := startServe(t, env, "--name", "shortlived", "--", "python3", "-c",
		`import http.server, socketserver, sys, threading, time
srv = socketserver.TCPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print("serving", flush=True); time.sleep(1.0); print("giving up now", file=sys.stderr, flush=True); sys.exit(3)`, "{port}")
	err, ok := s.Proc.Wait(20 * time.Second)
	if !ok {
		t.Fatal("tether serve did not end when its app exited")
	}
	if err == nil {
		t.Error("tether serve exited 0 after its app failed")
	}
	out := s.Stderr.String()
	if !strings.Contains(out, "exited with status 3") || !strings.Contains(out, "giving up now") {
		t.Errorf("stderr lacks the exit status and the app's last output:\n%s", out)
	}
	if code, _ := get(t, unixClient(s.rec.Socket), "http://localhost/", s.rec.Token); code != 0 {
		t.Errorf("the socket still answers: %d", code)
	}
	ls := tether(t, env, "ls", "--json")
	if !strings.Contains(ls, `"state":"app-exited"`) || !strings.Contains(ls, s.rec.ID) {
		t.Errorf("ls --json after the app exited: %s", ls)
	}
	if logs := tether(t, env, "logs", "shortlived"); !strings.Contains(logs, "serving") || !strings.Contains(logs, "giving up now") {
		t.Errorf("logs: %q", logs)
	}
	tether(t, env, "ls", "--prune")
	if ls := tether(t, env, "ls", "--json"); ls != "[]\n" {
		t.Errorf("after --prune: %s", ls)
	}
}
