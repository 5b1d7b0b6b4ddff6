//go:build unix

package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/e2e"
)

// The presets against the real apps, through a real sshd, with the built binary:
// `tether launch HOST APP --no-browser --json`, then Chromium on the URL it prints.
// .ci/install-apps installs the apps (Jupyter and Shiny from Debian, code-server from
// npm).

// codeServerPath is where .ci/install-apps puts code-server, unless
// TETHER_E2E_CODE_SERVER names the executable.
func codeServerPath(t *testing.T) string {
	p := os.Getenv("TETHER_E2E_CODE_SERVER")
	if p == "" {
		dir := os.Getenv("TETHER_E2E_APPS_DIR")
		if dir == "" {
			dir = "/opt/tether-e2e"
		}
		p = filepath.Join(dir, "code-server-4.100.3", "node_modules", ".bin", "code-server")
	}
	if !e2e.IsExecutable(p) {
		msg := "code-server not found at " + p + ": run `bash .ci/install-apps` (or `just e2e-apps`)"
		if e2e.Required() || os.Getenv("TETHER_E2E_APPS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// launchPreset runs `tether launch HOST APP --no-browser --json [-- extra...]` and
// returns the launcher once its URL works.
func launchPreset(t *testing.T, s *e2e.SSHD, app string, extra ...string) *e2e.Launched {
	t.Helper()
	args := []string{"launch", "-F", s.Config, s.Alias, app, "--no-browser", "--json"}
	if len(extra) > 0 {
		args = append(append(args, "--"), extra...)
	}
	start := time.Now()
	l := e2e.StartLauncher(t, args, true)
	if l.Line.Session.ID == "" {
		t.Fatalf("launch %s: no session in %+v; stderr:\n%s", app, l.Line, l.Stderr.String())
	}
	t.Logf("launch %s: URL ready after %s", app, e2e.FmtDur(time.Since(start)))
	return l
}

// appSocket is the app's own socket beside the session's server socket.
func appSocket(l *e2e.Launched) string {
	return filepath.Join(filepath.Dir(l.Line.Session.Socket), "app.sock")
}

// direct sends a request straight to the app's socket, as another process of the
// machine could (our uid: the socket's mode would stop any other), without the secret.
func direct(t *testing.T, socket, method, path string, header ...string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(method, "http://localhost"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

// wsWatch records the handshake status of every WebSocket a page opens, and the
// redirects the tab's page loads (documents) went through.
type wsWatch struct {
	mu        sync.Mutex
	urls      map[network.RequestID]string
	status    map[string]int64
	redirects []string // "303 /path", in order
}

func watchWebSockets(t *testing.T, ctx context.Context) *wsWatch {
	w := &wsWatch{urls: map[network.RequestID]string{}, status: map[string]int64{}}
	err := chromedp.Listen(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventWebSocketCreated:
			w.urls[e.RequestID] = e.URL
		case *network.EventWebSocketHandshakeResponseReceived:
			w.status[w.urls[e.RequestID]] = e.Response.Status
		case *network.EventRequestWillBeSent:
			if rr := e.RedirectResponse; rr != nil && e.Type == network.ResourceTypeDocument {
				path := rr.URL
				if u, err := url.Parse(rr.URL); err == nil {
					path = u.Path // not the query: it may hold the token
				}
				w.redirects = append(w.redirects, fmt.Sprintf("%d %s", rr.Status, path))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// upgraded reports whether a WebSocket whose URL holds sub got 101.
func (w *wsWatch) upgraded(sub string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for u, st := range w.status {
		if strings.Contains(u, sub) && st == http.StatusSwitchingProtocols {
			return true
		}
	}
	return false
}

// pageRedirects is the redirects the tab's page loads went through so far.
func (w *wsWatch) pageRedirects() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.redirects...)
}

func (w *wsWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprint(w.status)
}

// browse opens the launcher's URL in a fresh Chromium with WebSocket watching on.
func browse(t *testing.T, l *e2e.Launched) (context.Context, *wsWatch) {
	t.Helper()
	ctx := e2e.Browser(t)
	return ctx, watchWebSockets(t, ctx) // chromedp enables the network domain
}

// shot saves a screenshot next to the test's failure output, to see what the page showed.
func shot(t *testing.T, ctx context.Context, name string) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot()); err == nil {
		p := filepath.Join(os.TempDir(), "tether-e2e-"+name+".png")
		os.WriteFile(p, png, 0o644)
		t.Logf("screenshot: %s", p)
	}
}

// TestPresetJupyterE2E: `tether launch HOST jupyter` runs Debian's Jupyter Notebook on
// the session's private socket; in Chromium the notebook UI loads through our URL, a
// Python kernel starts over a WebSocket through the gate, and print(6*7) shows 42.
// The app refuses a request that reaches its socket without the injected secret; the
// secret is in no command line and never reaches the browser.
func TestPresetJupyterE2E(t *testing.T) {
	needClassicNotebook(t)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	began := time.Now()
	l := launchPreset(t, s, "jupyter")
	rec := l.Line.Session
	if len(rec.Command) == 0 || !strings.HasSuffix(rec.Command[0], "jupyter-notebook") {
		t.Fatalf("the jupyter preset should pick Debian's jupyter-notebook: %q", rec.Command)
	}
	tok := rec.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)

	// The app's door: its socket answers only with the secret.
	sock := appSocket(l)
	if code, _ := direct(t, sock, "GET", "/api/kernels"); code != http.StatusForbidden {
		t.Errorf("direct GET /api/kernels without the secret: %d; want 403", code)
	}
	if code, _ := direct(t, sock, "GET", "/tree"); code != http.StatusFound {
		t.Errorf("direct GET /tree without the secret: %d; want a 302 to Jupyter's login", code)
	}
	if code, _ := direct(t, sock, "GET", "/api/kernels", "Authorization", "token "+tok); code != http.StatusForbidden {
		t.Errorf("direct GET with tether's own token: %d; want 403 (the app must not know it)", code)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the app socket %s: %v, mode %v", sock, err, fi)
	}
	secretFile := filepath.Join(filepath.Dir(rec.Socket), "app-secret")
	secret, err := os.ReadFile(secretFile)
	if err != nil || len(secret) != 43 || strings.ContainsAny(string(secret), "\r\n") {
		t.Fatalf("the app secret file: %q, %v", secret, err)
	}
	if fi, _ := os.Stat(secretFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("the app secret file is %04o", fi.Mode().Perm())
	}
	if code, _ := direct(t, sock, "GET", "/api/kernels", "Authorization", "token "+string(secret)); code != http.StatusOK {
		t.Errorf("direct GET with the app's secret: %d; want 200 (the secret is what the proxy injects)", code)
	}
	if p := e2e.ProcessesWith(string(secret)); len(p) > 0 {
		t.Errorf("the app's secret is on a command line: %q", p)
	}
	if p := e2e.ProcessesWith(tok); len(p) > 0 {
		t.Errorf("the token is on a command line: %q", p)
	}
	// Through the gate: Jupyter writes its token into its pages; the browser gets none.
	code, body, _ := e2e.Fetch(t, base+"tree", "Authorization", "token "+tok)
	if code != 200 || !strings.Contains(body, "notebook_list") || strings.Contains(body, string(secret)) {
		t.Errorf("GET /tree through the gate: %d, secret present: %v", code, strings.Contains(body, string(secret)))
	}

	// Chromium: the UI, a kernel, 42.
	_, tctx := notebookRuns42(t, l)
	if html, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err != nil || strings.Contains(html, string(secret)) {
		t.Errorf("the page holds the app's secret (err %v)", err)
	}
	if strings.Contains(s.Log(), string(secret)) || strings.Contains(s.Log(), tok) {
		t.Errorf("a secret is in sshd's log")
	}
	t.Logf("jupyter preset test: %s in all", e2e.FmtDur(time.Since(began)))

	// Stopping the session takes the app (and its kernel) with it, and its secret file.
	procs := e2e.Descendants(rec.PID, "")
	if len(procs) < 2 {
		t.Errorf("processes under the server %d: %v; want Jupyter and its kernel", rec.PID, procs)
	}
	if _, errOut, code := e2e.RunTether(t, "stop", "-F", s.Config, s.Alias, rec.ID); code != 0 {
		t.Errorf("stop: exit %d: %s", code, errOut)
	}
	if !e2e.WaitFor(15*time.Second, func() bool { _, err := os.Stat(secretFile); return os.IsNotExist(err) }) {
		t.Errorf("the app's secret file outlived the session")
	}
	for _, pid := range procs {
		if !e2e.WaitFor(10*time.Second, func() bool { return !e2e.Alive(pid) }) {
			t.Errorf("process %d (under Jupyter) outlived the session", pid)
		}
	}
	l.Interrupt(t)
}

// notebookRuns42 drives the classic notebook UI in Chromium through the launcher's
// URL: the tree loads (no token left in the address bar), a new notebook opens, its
// Python kernel connects over a WebSocket through the gate, and print(6*7) shows 42.
func notebookRuns42(t *testing.T, l *e2e.Launched) (context.Context, context.Context) {
	t.Helper()
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	ctx, ws := browse(t, l)
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	start := time.Now()
	fail := func(step string, err error) {
		shot(t, ctx, "jupyter")
		t.Fatalf("Chromium, %s after %s: %v (websockets %s)", step, e2e.FmtDur(time.Since(start)), err, ws)
	}
	firstPageOK(t, tctx, l.Line.URL, fail)
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`#notebook_list`))); err != nil {
		fail("the notebook list", err)
	}
	loc, _ := chromedp.Run(tctx, chromedp.Location())
	if strings.TrimSuffix(loc, "?") != base+"tree" { // Jupyter redirects / to tree?
		t.Errorf("landed on %q; want %q (no token in the address bar)", loc, base+"tree")
	}
	// One redirect from the launcher's URL to the tree, the gate's (trading the token
	// for the cookie, straight to where Jupyter's root leads): each is a round trip of
	// the user's link. Through ssh -L, Jupyter's printed URL takes one too.
	if r := ws.pageRedirects(); len(r) != 1 || r[0] != "303 /" {
		t.Errorf("the first page load went through the redirects %q; want one, the gate's [\"303 /\"]", r)
	}
	t.Logf("tree visible after %s", e2e.FmtDur(time.Since(start)))
	path, err := chromedp.Run(tctx, chromedp.Evaluate[string](`(async () => {
		const x = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
		const r = await fetch("api/contents", {method: "POST", headers: {"Content-Type": "application/json", "X-XSRFToken": x}, body: JSON.stringify({type: "notebook"})});
		const j = await r.json(); return j.path || ("error " + r.status + " " + JSON.stringify(j)); })()`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasSuffix(path, ".ipynb") {
		fail("creating a notebook", fmt.Errorf("%q, %v", path, err))
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"notebooks/"+path)); err != nil {
		fail("opening the notebook", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`typeof Jupyter !== "undefined" && !!Jupyter.notebook && !!Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()`, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		fail("the kernel connecting", err)
	}
	t.Logf("kernel connected after %s", e2e.FmtDur(time.Since(start)))
	// A click lands in the cell's editor only once CodeMirror is wired up; typed
	// before that, "p" opens the command palette instead. Click until the notebook
	// says it is in edit mode, then type, and run the cell once it holds the text.
	editing := false
	for i := 0; i < 20 && !editing; i++ {
		if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`.CodeMirror`))); err != nil {
			fail("clicking the cell", err)
		}
		editing, _ = chromedp.Run(tctx, chromedp.Evaluate[bool](`Jupyter.notebook.mode === "edit"`))
		if !editing {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if !editing {
		fail("the cell's editor", fmt.Errorf("the notebook never entered edit mode"))
	}
	if err := chromedp.Do(tctx, chromedp.KeyEvent("print(6*7)")); err != nil {
		fail("typing the cell", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`Jupyter.notebook.get_cell(0).get_text() === "print(6*7)"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		fail("the typed cell", err)
	}
	if err := chromedp.Do(tctx, chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift))); err != nil {
		fail("running the cell", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`!!document.querySelector(".output_subarea pre") && document.querySelector(".output_subarea pre").innerText.trim() === "42"`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		fail("the output 42", err)
	}
	t.Logf("print(6*7) showed 42 after %s", e2e.FmtDur(time.Since(start)))
	if !ws.upgraded("/api/kernels/") {
		t.Errorf("no kernel WebSocket got 101: %s", ws)
	}
	return ctx, tctx
}

// setLoginPATH makes path the PATH of the login shell of s's user (root's bash, HOME
// s.Home): ~/.profile sets it after /etc/profile, as a user's own would. Apps start
// in the login shell's environment (serve --login-shell), so a test that gives the
// remote a PATH of its own sets it there, beside SSHDOptions.Env's plain-exec PATH.
func setLoginPATH(t *testing.T, s *e2e.SSHD, path string) {
	t.Helper()
	e2e.WriteFile(t, filepath.Join(s.Home, ".profile"), "PATH='"+path+"'\nexport PATH\n", 0o600)
}

// TestPresetJupyterFlavoursE2E: where jupyter-notebook is not installed, the jupyter
// preset runs Jupyter Server (nbclassic's UI at /tree) and the notebook preset runs
// NbClassic; both through the same gate, to the same 42. The remote PATH (the plain
// one and the login shell's) holds only what the flavour needs.
func TestPresetJupyterFlavoursE2E(t *testing.T) {
	for _, tt := range []struct{ preset, exe string }{{"jupyter", "jupyter-server"}, {"notebook", "jupyter-nbclassic"}} {
		t.Run(tt.exe, func(t *testing.T) {
			real := e2e.Need(t, tt.exe, "jupyter-server")
			if tt.exe == "jupyter-server" {
				needPythonModule(t, real, "nbclassic", "python3-nbclassic") // its UI at /tree
			}
			// Everything of /usr/bin but the other Jupyter entry points.
			bin := t.TempDir()
			ents, err := os.ReadDir("/usr/bin")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				switch n := e.Name(); n {
				case "jupyter-lab", "jupyter-notebook", "jupyter-server", "jupyter-nbclassic":
				default:
					os.Symlink(filepath.Join("/usr/bin", n), filepath.Join(bin, n))
				}
			}
			os.Symlink(real, filepath.Join(bin, tt.exe))
			s := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"PATH": bin}})
			setLoginPATH(t, s, bin)
			e2e.StopAllOnCleanup(t, s)
			began := time.Now()
			l := launchPreset(t, s, tt.preset)
			if c := l.Line.Session.Command; len(c) == 0 || c[0] != filepath.Join(bin, tt.exe) {
				t.Fatalf("the %s preset ran %q; want %s", tt.preset, c, tt.exe)
			}
			if code, _ := direct(t, appSocket(l), "GET", "/api/kernels"); code != http.StatusForbidden {
				t.Errorf("direct GET /api/kernels without the secret: %d; want 403", code)
			}
			notebookRuns42(t, l)
			if tt.exe == "jupyter-server" {
				kernelProtocolThroughGate(t, l)
			}
			t.Logf("%s preset on %s: %s in all", tt.preset, tt.exe, e2e.FmtDur(time.Since(began)))
			l.Interrupt(t)
		})
	}
}

// kernelProtocolThroughGate: a client that authenticates with the JEP 119 token
// subprotocol and offers Jupyter's kernel protocol gets the app's choice
// (v1.kernel.websocket.jupyter.org, which Jupyter Server 1.23 selects) back through the
// gate, with tether's entries taken out on the way in.
func kernelProtocolThroughGate(t *testing.T, l *e2e.Launched) {
	t.Helper()
	tok, base, kernel := e2e.StartKernel(t, l)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second,
		Subprotocols: []string{"v1.kernel.websocket.jupyter.org", "v1.token.websocket.jupyter.org", "v1.token.websocket.jupyter.org." + tok}}
	c, wsResp, err := d.Dial("ws://"+base+"/api/kernels/"+kernel+"/channels", nil)
	if err != nil {
		t.Fatalf("kernel WebSocket: %v (%v)", err, wsResp)
	}
	defer c.Close()
	if got := c.Subprotocol(); got != "v1.kernel.websocket.jupyter.org" {
		t.Errorf("negotiated subprotocol %q; want Jupyter's v1.kernel.websocket.jupyter.org", got)
	}
	if strings.Contains(fmt.Sprint(wsResp.Header), tok) {
		t.Errorf("the handshake response holds the token")
	}
}

// TestPresetShinyE2E: `tether launch HOST shiny -- DIR` runs a tiny Shiny app on the
// session's socket; in Chromium it renders and reacts to an input change (its
// WebSocket through the gate); a request to the app's socket without Shiny's shared
// secret is refused.
func TestPresetShinyE2E(t *testing.T) {
	needRPackage(t, "shiny", "r-cran-shiny")
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	app := filepath.Join(s.Home, "my app") // a space: paths go by environment, not into R code
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	e2e.WriteFile(t, filepath.Join(app, "app.R"), `library(shiny)
ui <- fluidPage(textInput("name", "Name", value = "world"), textOutput("out"))
server <- function(input, output, session) { output$out <- renderText(paste0("hello, ", input$name)) }
shinyApp(ui, server)
`, 0o644)
	began := time.Now()
	l := launchPreset(t, s, "shiny", app)
	if code, body := direct(t, appSocket(l), "GET", "/"); code != http.StatusForbidden {
		t.Errorf("direct GET / without the shared secret: %d %.80q; want 403", code, body)
	}
	ctx, ws := browse(t, l)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	fail := func(step string, err error) {
		shot(t, ctx, "shiny")
		t.Fatalf("Chromium, %s after %s: %v (websockets %s)", step, e2e.FmtDur(time.Since(start)), err, ws)
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(l.Line.URL)); err != nil {
		fail("loading", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`!!document.querySelector("#out") && document.querySelector("#out").innerText.includes("hello, world")`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		fail("the first render", err)
	}
	t.Logf("rendered after %s", e2e.FmtDur(time.Since(start)))
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(`#name`), chromedp.NodeVisible), chromedp.KeyEvent(kb.End),
		chromedp.KeyEvent(strings.Repeat(kb.Backspace, 5)), chromedp.KeyEvent("tether")); err != nil {
		fail("typing", err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.querySelector("#out").innerText.includes("hello, tether")`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		fail("the reaction", err)
	}
	t.Logf("reacted to the input after %s", e2e.FmtDur(time.Since(start)))
	if !ws.upgraded("/websocket/") {
		t.Errorf("Shiny's WebSocket did not get 101: %s", ws)
	}
	if r := ws.pageRedirects(); len(r) != 1 || r[0] != "303 /" {
		t.Errorf("the first page load went through the redirects %q; want one, the gate's [\"303 /\"]", r)
	}
	t.Logf("shiny preset test: %s in all", e2e.FmtDur(time.Since(began)))
	l.Interrupt(t)
}

// TestPresetCodeServerE2E: `tether launch HOST code-server` runs code-server from npm
// on the session's socket; in Chromium the editor loads through our URL and its
// WebSockets connect (code-server compares Origin with Host: the proxy passes the
// browser's Host through).
func TestPresetCodeServerE2E(t *testing.T) {
	cs := codeServerPath(t)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"PATH": filepath.Dir(cs) + ":/usr/local/bin:/usr/bin:/bin"}})
	setLoginPATH(t, s, filepath.Dir(cs)+":/usr/local/bin:/usr/bin:/bin")
	e2e.StopAllOnCleanup(t, s)
	work := filepath.Join(s.Home, "project")
	os.MkdirAll(work, 0o755)
	e2e.WriteFile(t, filepath.Join(work, "hello.txt"), "hello from tether\n", 0o644)
	began := time.Now()
	l := launchPreset(t, s, "code-server", work)
	sock := appSocket(l)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("code-server's socket %s: %v %v; want mode 0600 in the 0700 session directory", sock, err, fi)
	}
	dir, _ := os.Stat(filepath.Dir(sock))
	if dir == nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("the session directory: %v", dir)
	}
	if b, err := os.ReadFile(filepath.Join(s.Home, ".config", "code-server", "config.yaml")); err == nil {
		t.Errorf("code-server wrote a config with a password of its own in HOME: %q", b)
	}
	ctx, ws := browse(t, l)
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	start := time.Now()
	fail := func(step string, err error) {
		shot(t, ctx, "code-server")
		t.Fatalf("Chromium, %s after %s: %v (websockets %s)", step, e2e.FmtDur(time.Since(start)), err, ws)
	}
	if err := chromedp.Do(tctx, chromedp.Navigate(l.Line.URL), chromedp.WaitVisible(chromedp.CSS(`.monaco-workbench`))); err != nil {
		fail("the workbench", err)
	}
	t.Logf("workbench visible after %s", e2e.FmtDur(time.Since(start)))
	if !e2e.WaitFor(45*time.Second, func() bool { return ws.upgraded("reconnectionToken=") }) {
		fail("the WebSocket", fmt.Errorf("no code-server WebSocket got 101"))
	}
	t.Logf("WebSocket connected after %s", e2e.FmtDur(time.Since(start)))
	// The remote side works: the explorer lists the folder's file.
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.body.innerText.includes("hello.txt")`, chromedp.WithPollingTimeout(45*time.Second))); err != nil {
		fail("the file explorer", err)
	}
	t.Logf("explorer shows the folder after %s", e2e.FmtDur(time.Since(start)))
	if msg, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('.monaco-dialog-box, .notification-toast')).map(e => e.innerText).join(" // ")`)); strings.Contains(msg, "failed to connect") || strings.Contains(msg, "1006") {
		t.Errorf("code-server reports a connection failure: %q", msg)
	}
	if r := ws.pageRedirects(); len(r) != 1 || r[0] != "303 /" {
		t.Errorf("the first page load went through the redirects %q; want one, the gate's [\"303 /\"]", r)
	}
	t.Logf("code-server preset test: %s in all", e2e.FmtDur(time.Since(began)))
	// code-server forks an extension host that outlives a TERM to its parent; stopping
	// the session ends the app's whole process group.
	procs := e2e.Descendants(l.Line.Session.PID, "")
	if len(procs) < 2 {
		t.Errorf("processes under the server: %v; want code-server and its helpers", procs)
	}
	if _, errOut, code := e2e.RunTether(t, "stop", "-F", s.Config, s.Alias, l.Line.Session.ID); code != 0 {
		t.Errorf("stop: exit %d: %s", code, errOut)
	}
	for _, pid := range procs {
		if !e2e.WaitFor(10*time.Second, func() bool { return !e2e.Alive(pid) }) {
			t.Errorf("process %d (under code-server) outlived the session", pid)
		}
	}
	l.Interrupt(t)
}

// TestPresetStaticE2E: `tether launch HOST static -- DIR` serves the directory
// read-only: a file comes back, writes are refused, traversal and hidden files too.
func TestPresetStaticE2E(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	site := filepath.Join(s.Home, "site")
	os.MkdirAll(site, 0o755)
	e2e.WriteFile(t, filepath.Join(site, "index.txt"), "static hello\n", 0o644)
	e2e.WriteFile(t, filepath.Join(site, ".secret"), "hidden\n", 0o644)
	e2e.WriteFile(t, filepath.Join(s.Home, "outside.txt"), "outside\n", 0o644)
	began := time.Now()
	l := launchPreset(t, s, "static", site)
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	if code, body, _ := e2e.Fetch(t, base+"index.txt", "Authorization", "token "+tok); code != 200 || body != "static hello\n" {
		t.Errorf("GET index.txt: %d %q", code, body)
	}
	if code, body, _ := e2e.Fetch(t, base, "Authorization", "token "+tok); code != 200 || !strings.Contains(body, "index.txt") || strings.Contains(body, ".secret") {
		t.Errorf("GET /: %d %.200q", code, body)
	}
	for _, m := range []string{"PUT", "POST", "DELETE"} {
		req, _ := http.NewRequest(m, base+"index.txt", strings.NewReader("overwritten"))
		req.Header.Set("Authorization", "token "+tok)
		resp, err := e2e.NoRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d; want 405", m, resp.StatusCode)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(site, "index.txt")); string(b) != "static hello\n" {
		t.Errorf("the file changed: %q", b)
	}
	for _, p := range []string{"../outside.txt", "%2e%2e/outside.txt", "..%2foutside.txt", ".secret", "%2esecret"} {
		if code, body, _ := e2e.Fetch(t, base+p, "Authorization", "token "+tok); code == 200 || strings.Contains(body, "outside") || strings.Contains(body, "hidden") {
			t.Errorf("GET %s: %d %.80q", p, code, body)
		}
	}
	if code, _, _ := e2e.Fetch(t, base+"index.txt"); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", code)
	}
	ctx := e2e.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(l.Line.URL+"")); err != nil {
		t.Fatal(err)
	}
	if txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`)); err != nil || !strings.Contains(txt, "index.txt") {
		t.Errorf("Chromium: %q %v", txt, err)
	}
	t.Logf("static preset test: %s in all", e2e.FmtDur(time.Since(began)))
	l.Interrupt(t)
}

// TestAppsHostE2E: `tether apps HOST` says which presets the remote has, over one
// exec, with nothing of tether installed there.
func TestAppsHostE2E(t *testing.T) {
	e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
	e2e.Need(t, "R", "r-cran-shiny")
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	start := time.Now()
	out, errOut, code := e2e.RunTether(t, "apps", "-F", s.Config, s.Alias)
	t.Logf("tether apps HOST: %s", e2e.FmtDur(time.Since(start)))
	if code != 0 {
		t.Fatalf("apps: exit %d: %s", code, errOut)
	}
	e2e.MustContain(t, "apps HOST", out, "jupyter ", "Jupyter Notebook: /usr/bin/jupyter-notebook", "R Shiny: /usr/bin/R", "static ", "built in")
	out, errOut, code = e2e.RunTether(t, "apps", "-F", s.Config, s.Alias, "--json")
	var list []struct {
		App, Flavour, Path string
		Found              bool
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("apps --json: exit %d %q %s", code, out, errOut)
	}
	by := map[string]bool{}
	for _, a := range list {
		by[a.App] = a.Found
	}
	_, tbErr := exec.LookPath("tensorboard")
	if !by["jupyter"] || !by["notebook"] || !by["shiny"] || !by["static"] || by["tensorboard"] != (tbErr == nil) {
		t.Errorf("found: %v", by)
	}
	if n, conns := strings.Count(s.Log(), "Starting session:"), strings.Count(s.Log(), "Accepted publickey"); n != conns {
		t.Errorf("apps HOST used %d execs over %d connections; want one each", n, conns)
	}
	if _, err := os.Stat(filepath.Join(s.Home, ".cache", "tether")); !os.IsNotExist(err) {
		t.Errorf("apps HOST installed something on the remote: %v", err)
	}

	// A preset the remote lacks: one line saying so, exit 1, nothing left running.
	e2e.StopAllOnCleanup(t, s)
	_, errOut, code = e2e.RunTether(t, "launch", "-F", s.Config, s.Alias, "marimo", "--no-browser")
	t.Logf("launch marimo where it is missing: exit %d: %s", code, strings.TrimSpace(errOut))
	if code != 1 || !strings.Contains(errOut, "marimo is not installed") || !strings.Contains(errOut, "tether apps") {
		t.Errorf("launching a preset that is not installed: exit %d, %q", code, errOut)
	}
	if list := e2e.SessionsOn(t, s); len(list) != 0 {
		t.Errorf("sessions left: %v", list)
	}
}

// TestPresetJupyterKernelDiesWithKilledServer: kill -9 of a Jupyter session's server
// takes Jupyter and its kernel with it, although Jupyter starts kernels in a session
// (and process group) of their own. (ipykernel also exits once its parent is gone, so
// this checks the user's view; TestAppGroupDiesWithItsServer in remote checks that the
// supervisor ends such descendants itself.)
func TestPresetJupyterKernelDiesWithKilledServer(t *testing.T) {
	e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	rec := e2e.DetachOverSSH(t, s, "--app", "jupyter")
	code, body := direct(t, rec.Socket, "POST", rec.BaseURL+"api/kernels", "Authorization", "token "+rec.Token)
	if code != http.StatusCreated {
		t.Fatalf("starting a kernel through the gate: %d %.200q", code, body)
	}
	var kernels []int
	if !e2e.WaitFor(30*time.Second, func() bool {
		kernels = nil
		for _, pid := range e2e.Descendants(rec.PID, "") {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "ipykernel") {
				kernels = append(kernels, pid)
			}
		}
		return len(kernels) > 0
	}) {
		t.Fatalf("no kernel process under the server %d", rec.PID)
	}
	procs := e2e.Descendants(rec.PID, "")
	e2e.KillSessionOnCleanup(t, rec.PID) // again, now that the kernel is there
	sid := func(pid int) string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 4 {
			return "?"
		}
		return f[3]
	}
	serverSID, kernelSID := sid(rec.PID), sid(kernels[0])
	t.Logf("kernel %d in session %s (the server's: %s); %d processes under the server", kernels[0], kernelSID, serverSID, len(procs))
	killed := time.Now()
	syscall.Kill(rec.PID, syscall.SIGKILL)
	for _, pid := range procs {
		if !e2e.WaitFor(15*time.Second, func() bool { return !e2e.Alive(pid) }) {
			t.Errorf("process %d (Jupyter or its kernel) outlived its killed server", pid)
		}
	}
	t.Logf("all gone %s after kill -9 of the server", e2e.FmtDur(time.Since(killed)))
}
