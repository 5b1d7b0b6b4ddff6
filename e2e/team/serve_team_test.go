//go:build unix

package team

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/wire"
)

// teamServer is one real `tether serve --listen 127.0.0.1:PORT --tls-cert F --tls-key F
// --access team.yml --app nb=jupyter --app site=static:DIR --app echo='python3 echo.py
// {port}'` on loopback, with a real OpenID provider: the issue's "done when" line.
type teamServer struct {
	URL      string // https://127.0.0.1:PORT/
	Provider *e2e.OIDCProvider
	Proc     *e2e.Proc
	Stderr   *e2e.Buffer
	Rec      wire.Record
	State    string // TETHER_STATE_DIR
	dir      string
	yml      string
	keys     map[string]string // name → key
	hashes   map[string]string // name → its PHC hash
	www      string
	secret   string
	Cert     *x509.Certificate // the server's (self-signed, for 127.0.0.1)
	certFile string
	pool     *x509.CertPool // trusts Cert only
}

// testCert writes a self-signed ECDSA certificate for 127.0.0.1 and its key, as PEM,
// into dir: what a lab would get from its CA, for the test's clients to trust.
func testCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "tether e2e team server"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	e2e.WriteFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	e2e.WriteFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certFile, keyFile, cert
}

// echoApp answers every GET with the request's headers as JSON: the app that shows
// what X-Tether-User reaches it.
const echoApp = `import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = json.dumps({k: v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`

func hashKey(t *testing.T, key string) string {
	t.Helper()
	cmd := exec.Command(e2e.Binary(t), "hash-key")
	cmd.Stdin = strings.NewReader(key + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tether hash-key: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// accessFile is team.yml: OIDC groups (lab: nb and site with paths; umich: site) and
// three keys (script: nb and echo; reader: site with paths; gone: echo). Without
// gone when drop is set.
func (s *teamServer) accessFile(drop bool) string {
	f := fmt.Sprintf(`access_control: oidc
oidc:
  issuer: %s
  client_id: %s
  client_secret_file: %s
  redirect_url: %s_tether/oidc/callback
user_groups:
  lab:
    emails: ["*@lab.example.org"]
    apps: [nb, site]
    paths: {read: [%s/pub], load_default: %s/pub}
  umich:
    emails: ["*@umich.edu"]
    apps: [site]
keys:
  script:
    hash: %s
    apps: [nb, echo]
  reader:
    hash: %s
    apps: [site]
    paths: {read: [%s/pub]}
`, s.Provider.Issuer, clientID, s.secret, s.URL, s.www, s.www, s.hashes["script"], s.hashes["reader"], s.www)
	if !drop {
		f += fmt.Sprintf("  gone:\n    hash: %s\n    apps: [echo]\n", s.hashes["gone"])
	}
	return f
}

func startTeamServer(t *testing.T) *teamServer {
	t.Helper()
	e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
	e2e.Need(t, "python3", "python3")
	e2e.Need(t, "curl", "curl")
	s := &teamServer{dir: t.TempDir(), keys: map[string]string{}, hashes: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the provider needs the callback's port first
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.URL = fmt.Sprintf("https://127.0.0.1:%d/", port)
	certFile, keyFile, cert := testCert(t, s.dir)
	s.Cert, s.certFile, s.pool = cert, certFile, x509.NewCertPool()
	s.pool.AddCert(cert)
	secret := fmt.Sprintf("secret-%d", time.Now().UnixNano())
	s.Provider = e2e.StartOIDCProvider(t, e2e.OIDCProviderConfig{
		ClientID: clientID, ClientSecret: secret, RedirectURL: s.URL + "_tether/oidc/callback",
		Accounts: []e2e.OIDCAccount{
			{Login: "alice", Password: password, Email: "Alice@Lab.Example.org", EmailVerified: true},
			{Login: "bob", Password: password, Email: "bob@lab.example.org", EmailVerified: false},
			{Login: "eve", Password: password, Email: "eve@umich.edu.evil.com", EmailVerified: true},
			{Login: "carol", Password: password, Email: "carol@umich.edu", EmailVerified: true},
		},
	})
	s.secret = filepath.Join(s.dir, "client-secret")
	e2e.WriteFile(t, s.secret, secret+"\n", 0o600)
	s.www = filepath.Join(s.dir, "www")
	for _, d := range []string{"pub", "private"} {
		if err := os.MkdirAll(filepath.Join(s.www, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e2e.WriteFile(t, filepath.Join(s.www, "pub", "hello.txt"), "hello team", 0o644)
	e2e.WriteFile(t, filepath.Join(s.www, "private", "secret.txt"), "the owner's only", 0o644)
	echo := filepath.Join(s.dir, "echo.py")
	e2e.WriteFile(t, echo, echoApp, 0o644)
	for _, name := range []string{"script", "reader", "gone"} {
		s.keys[name] = fmt.Sprintf("%s-key-%d-long-enough", name, time.Now().UnixNano())
		s.hashes[name] = hashKey(t, s.keys[name])
	}
	s.yml = filepath.Join(s.dir, "team.yml")
	e2e.WriteFile(t, s.yml, s.accessFile(false), 0o600)

	s.State = filepath.Join(s.dir, "state")
	cmd := exec.Command(e2e.Binary(t), "serve", "--json", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--tls-cert", certFile, "--tls-key", keyFile, "--access", s.yml,
		"--app", "nb=jupyter", "--app", "site=static:"+s.www, "--app", "echo=python3 "+echo+" {port}")
	cmd.Env = append(cleanEnv(), "TETHER_STATE_DIR="+s.State)
	s.Stderr = &e2e.Buffer{}
	cmd.Stderr = s.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.Proc = e2e.Start(t, cmd)
	line := make(chan string, 1)
	go func() { l, _ := bufio.NewReader(stdout).ReadString('\n'); line <- l }()
	select {
	case l := <-line:
		if s.Rec, err = wire.DecodeRecord([]byte(l)); err != nil {
			t.Fatalf("ready record %q: %v\nstderr:\n%s", l, err, s.Stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no ready record from the team server\nstderr:\n%s", s.Stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether serve stderr:\n%s", e2e.LastLines(s.Stderr.String(), 60))
		}
	})
	return s
}

func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TETHER_") {
			env = append(env, e)
		}
	}
	return env
}

// curl runs curl against the server with an access key in Authorization (none when
// key is empty) and returns the status and body.
func curl(t *testing.T, s *teamServer, key, path string, header ...string) (int, string) {
	t.Helper()
	args := []string{"-sS", "--max-time", "10", "--cacert", s.certFile, "-w", "\n%{http_code}"}
	if key != "" {
		args = append(args, "-H", "Authorization: Bearer "+key)
	}
	for _, h := range header {
		args = append(args, "-H", h)
	}
	out, err := exec.Command("curl", append(args, s.URL+strings.TrimPrefix(path, "/"))...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", path, err)
	}
	i := strings.LastIndex(string(out), "\n")
	var n int
	fmt.Sscan(string(out[i+1:]), &n)
	return n, string(out[:i])
}

// signInAt signs a Go-client person in at the team server through the provider's own
// pages: the gate's sign-in link, login, Allow, back through the callback.
func (p *person) signInAt(s *teamServer, login string) page {
	p.t.Helper()
	p.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool}}
	pg := p.do("GET", s.URL+"_tether/signin?next=/", nil)
	if !strings.HasPrefix(pg.URL.String(), s.Provider.Issuer+"/interaction/") {
		p.t.Fatalf("the gate's sign-in did not lead to the provider: %s (%d)\n%s", pg.URL, pg.Status, pg.Body)
	}
	pg = p.submit(pg, "/login", url.Values{"username": {login}, "password": {password}})
	if !strings.Contains(pg.Body, "Allow") {
		p.t.Fatalf("no consent page for %s: %d\n%s", login, pg.Status, pg.Body)
	}
	return p.submit(pg, "/confirm", nil)
}

// waitJS evaluates expr until it is true, through the page's navigations (a poll
// inside the page dies with it), up to timeout.
func waitJS(ctx context.Context, expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%s stayed false for %s", expr, timeout)
			}
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kernelJS starts a Jupyter kernel of app nb from the page and opens its WebSocket.
const kernelJS = `(async () => {
  const r = await fetch("/nb/api/kernels", {method: "POST", body: "{}", headers: {"Content-Type": "application/json"}});
  if (r.status != 201) return "kernel: " + r.status;
  const k = await r.json();
  return await new Promise(res => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/nb/api/kernels/" + k.id + "/channels");
    ws.onopen = () => { ws.close(); res("open"); };
    ws.onerror = () => res("error");
    setTimeout(() => res("timeout"), 10000);
  });
})()`

// wsJS opens a WebSocket to a path of this server: "open" or "error".
const wsJS = `new Promise(res => {
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + %q);
  ws.onopen = () => { ws.close(); res("open"); };
  ws.onerror = () => res("error");
  setTimeout(() => res("timeout"), 10000);
})`

// TestTeamServer: `tether serve --access team.yml --app nb=jupyter --app site=static:DIR
// --app echo=...` with a real OpenID provider: Chromium signs in through the
// provider's own pages and sees only its apps; keys by curl and by the login form;
// the attacks; SIGHUP removes a key; nothing outlives the server.
func TestTeamServer(t *testing.T) {
	began := time.Now()
	s := startTeamServer(t)
	t.Logf("provider and team server (jupyter, static, echo) ready in %s", e2e.FmtDur(time.Since(began)))

	aliceBrowser := e2e.Browser(t, e2e.TrustCertificate(s.Cert)) // kept for the SIGHUP subtest: alice's session stays
	t.Run("oidc sign-in in Chromium", func(t *testing.T) {
		ctx := aliceBrowser
		tctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		// No session: the gate's login page, with the organisation's sign-in.
		err := chromedp.Do(tctx, chromedp.Navigate(s.URL+"nb/tree"),
			chromedp.WaitVisible(chromedp.CSS(`a[href*="_tether/signin"]`)), chromedp.Click(chromedp.CSS(`a[href*="_tether/signin"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#username`)))
		loc, _ := chromedp.Run(tctx, chromedp.Location())
		if err != nil || !strings.HasPrefix(loc, s.Provider.Issuer+"/interaction/") {
			t.Fatalf("to the provider's login page: %v (at %s)", err, loc)
		}
		err = chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`#username`), "alice"), chromedp.SendKeys(chromedp.CSS(`#password`), password),
			chromedp.Click(chromedp.CSS(`#signin`)), chromedp.WaitVisible(chromedp.CSS(`#allow`)), chromedp.Click(chromedp.CSS(`#allow`)))
		if err != nil {
			t.Fatalf("the provider's login and consent: %v", err)
		}
		// Back through the callback to where alice was going: Jupyter's tree page.
		if err := waitJS(tctx, `location.pathname.startsWith("/nb/tree") && document.readyState == "complete" && /Jupyter|Home/.test(document.title)`, 20*time.Second); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("after sign-in, Jupyter's tree page did not load: %v (at %s)", err, loc)
		}
		// From Jupyter's page (the gate's own pages allow no script to connect): a
		// kernel and its WebSocket; the app she may not open refused, WebSocket too.
		if res, err := chromedp.Run(tctx, chromedp.Evaluate[string](kernelJS, chromedp.EvalAwaitPromise)); err != nil || res != "open" {
			t.Errorf("a kernel and its WebSocket from alice's browser: %q, %v; want open", res, err)
		}
		if status, err := chromedp.Run(tctx, chromedp.Evaluate[int](`fetch("/echo/").then(r => r.status)`, chromedp.EvalAwaitPromise)); err != nil || status != 403 {
			t.Errorf("alice's fetch of /echo/: %v, %v; want 403", status, err)
		}
		if res, err := chromedp.Run(tctx, chromedp.Evaluate[string](fmt.Sprintf(wsJS, "/echo/ws"), chromedp.EvalAwaitPromise)); err != nil || res != "error" {
			t.Errorf("alice's WebSocket to /echo/ws: %q, %v; want refused", res, err)
		}
		if status, err := chromedp.Run(tctx, chromedp.Evaluate[int](`fetch("/site/private/secret.txt").then(r => r.status)`, chromedp.EvalAwaitPromise)); err != nil || status != 404 {
			t.Errorf("alice's fetch of a file outside her paths: %v, %v; want 404", status, err)
		}
		if err := chromedp.Do(tctx, chromedp.Navigate(s.URL), chromedp.WaitVisible(chromedp.CSS(`h1`))); err != nil {
			t.Fatal(err)
		}
		start, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`body`)))
		links, _ := chromedp.Run(tctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("ul a")).map(a => a.getAttribute("href"))`))
		if !strings.Contains(start, "alice@lab.example.org") || strings.Join(links, " ") != "/nb/ /site/" {
			t.Errorf("start page: %q, links %q; want alice@lab.example.org and /nb/ /site/ only", start, links)
		}
		// load_default: the static app opens at pub/, and only pub/ is hers.
		err = chromedp.Do(tctx, chromedp.Navigate(s.URL+"site/"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		loc, _ = chromedp.Run(tctx, chromedp.Location())
		body, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil || !strings.HasSuffix(loc, "/site/pub/") || !strings.Contains(body, "hello.txt") {
			t.Errorf("site/ for alice: at %s, %q, %v; want pub/ listing hello.txt", loc, body, err)
		}
		aliceAfterReload = func(t *testing.T) {
			err := chromedp.Do(ctx, chromedp.Navigate(s.URL), chromedp.WaitVisible(chromedp.CSS(`h1`)))
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
			if err != nil || !strings.Contains(body, "alice@lab.example.org") {
				t.Errorf("alice's session after the reload: %q, %v; want still signed in", body, err)
			}
		}
	})

	t.Run("access key in the login form", func(t *testing.T) {
		ctx := e2e.Browser(t, e2e.TrustCertificate(s.Cert))
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		// The team's login page says whose apps these are, above the key form.
		host, _ := os.Hostname()
		me, _ := user.Current()
		want := "Sign in to " + me.Username + "'s apps on " + host
		err := chromedp.Do(tctx, chromedp.Navigate(s.URL), chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)))
		h1, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`h1`)))
		if err != nil || h1 != want {
			t.Errorf("the team's login page: heading %q, %v; want %q", h1, err, want)
		}
		err = chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS(`input[name=token]`), s.keys["reader"]), chromedp.Submit(chromedp.CSS(`input[name=token]`)))
		if err == nil {
			err = waitJS(tctx, `document.readyState == "complete" && document.body.innerText.includes("Signed in as")`, 10*time.Second)
		}
		body, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil || !strings.Contains(body, "Signed in as reader") {
			t.Fatalf("the reader key in the login form: %q, %v", body, err)
		}
		err = chromedp.Do(tctx, chromedp.Navigate(s.URL+"site/pub/hello.txt"))
		body, _ = chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`body`)))
		if err != nil || !strings.Contains(body, "hello team") {
			t.Errorf("reader's hello.txt: %q, %v", body, err)
		}
	})

	t.Run("Chromium trusts the one key it is given", func(t *testing.T) {
		// A browser told to trust another certificate's key refuses this server's: the
		// harness's option pins one key, it does not ignore certificate errors.
		_, _, other := testCert(t, t.TempDir())
		ctx, cancel := context.WithTimeout(e2e.Browser(t, e2e.TrustCertificate(other)), 20*time.Second)
		defer cancel()
		err := chromedp.Do(ctx, chromedp.Navigate(s.URL))
		if err == nil || !strings.Contains(err.Error(), "ERR_CERT") {
			t.Errorf("Chromium trusting another key opened %s: %v; want a certificate error", s.URL, err)
		}
	})

	t.Run("cookies are Secure over TLS", func(t *testing.T) {
		// The session cookie of a key's sign-in, and the OIDC state cookie.
		for _, c := range []struct{ what, method, path, form string }{
			{"the login form's session cookie", "POST", "_tether/login", "next=/&token=" + url.QueryEscape(s.keys["reader"])},
			{"the sign-in's state cookie", "GET", "_tether/signin?next=/", ""},
		} {
			args := []string{"-sS", "--max-time", "10", "--cacert", s.certFile, "-o", "/dev/null", "-D", "-", "-X", c.method}
			if c.form != "" {
				args = append(args, "--data", c.form)
			}
			out, err := exec.Command("curl", append(args, s.URL+c.path)...).Output()
			var cookies []string
			for _, l := range strings.Split(string(out), "\n") {
				if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, "Set-Cookie") {
					cookies = append(cookies, strings.TrimSpace(v))
				}
			}
			if err != nil || len(cookies) == 0 {
				t.Errorf("%s: no Set-Cookie (%v):\n%s", c.what, err, out)
			}
			for _, ck := range cookies {
				if !strings.Contains(ck, "; Secure") || !strings.Contains(ck, "; HttpOnly") {
					name, _, _ := strings.Cut(ck, "=")
					_, attrs, _ := strings.Cut(ck, ";")
					t.Errorf("%s (%s) is not Secure and HttpOnly:%s", c.what, name, attrs)
				}
			}
		}
	})

	t.Run("access keys by curl", func(t *testing.T) {
		if code, body := curl(t, s, s.keys["reader"], "/"); code != 200 || !strings.Contains(body, "Signed in as <b>reader</b>") || !strings.Contains(body, `href="/site/"`) || strings.Contains(body, `href="/nb/"`) {
			t.Errorf("reader's start page: %d %q", code, body)
		}
		for _, c := range []struct {
			key, path string
			code      int
			has       string
		}{
			{s.keys["reader"], "/site/pub/hello.txt", 200, "hello team"},
			{s.keys["reader"], "/site/private/secret.txt", 404, ""},
			{s.keys["reader"], "/echo/", 403, "does not include this app"},
			{s.keys["reader"], "/nb/api/status", 403, ""},
			{s.keys["script"], "/nb/api/status", 200, "kernels"},
			{s.keys["script"], "/site/pub/hello.txt", 403, ""},
			{"", "/echo/", 401, ""},
			// A key's hash (public in the access file) is not the key.
			{s.hashes["script"], "/echo/", 401, ""},
			{s.Rec.Token, "/site/private/secret.txt", 200, "the owner's only"},
		} {
			if code, body := curl(t, s, c.key, c.path); code != c.code || !strings.Contains(body, c.has) {
				t.Errorf("GET %s with %.8s…: %d %.120q; want %d with %q", c.path, c.key, code, body, c.code, c.has)
			}
		}
		// A kernel and its WebSocket with a key in Authorization; another key is refused
		// the WebSocket.
		code, body := curlPost(t, s, s.keys["script"], "/nb/api/kernels")
		var k struct{ ID string }
		json.Unmarshal([]byte(body), &k)
		if code != 201 || k.ID == "" {
			t.Fatalf("script's POST /nb/api/kernels: %d %q", code, body)
		}
		wsURL := strings.Replace(s.URL, "https://", "wss://", 1) + "nb/api/kernels/" + k.ID + "/channels"
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{RootCAs: s.pool}}
		c, resp, err := d.Dial(wsURL, http.Header{"Authorization": {"Bearer " + s.keys["script"]}})
		if err != nil {
			t.Errorf("script's kernel WebSocket: %v (%v)", err, resp)
		} else {
			c.Close()
		}
		_, resp, err = d.Dial(wsURL, http.Header{"Authorization": {"Bearer " + s.keys["reader"]}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("reader's kernel WebSocket: %v (%v); want 403", err, resp)
		}
	})

	t.Run("spoofed X-Tether-User", func(t *testing.T) {
		// The app learns who came from the gate, never from the client.
		code, body := curl(t, s, s.keys["script"], "/echo/", "X-Tether-User: owner", "X_Tether_User: alice@lab.example.org")
		var h map[string]string
		json.Unmarshal([]byte(body), &h)
		if code != 200 || h["X-Tether-User"] != "script" || strings.Contains(body, "alice@") || strings.Contains(body, "owner") {
			t.Errorf("echo with spoofed headers: %d %s; want X-Tether-User: script only", code, body)
		}
		// The static app trusts the header because the gate replaces it: a reader
		// claiming to be the owner still sees only pub/.
		if code, body := curl(t, s, s.keys["reader"], "/site/private/secret.txt", "X-Tether-User: owner"); code != 404 || strings.Contains(body, "owner's only") {
			t.Errorf("reader claiming to be the owner: %d %q; want 404", code, body)
		}
	})

	t.Run("oidc attacks", func(t *testing.T) {
		// An unverified e-mail is refused even though *@lab.example.org is a group.
		if pg := newPerson(t).signInAt(s, "bob"); pg.Status != 401 || !strings.Contains(pg.Body, "has not verified") {
			t.Errorf("bob (email_verified false): %d %q; want refused", pg.Status, pg.Body)
		}
		// *@umich.edu does not match eve@umich.edu.evil.com.
		if pg := newPerson(t).signInAt(s, "eve"); pg.Status != 403 || !strings.Contains(pg.Body, "has no access to this server") {
			t.Errorf("eve@umich.edu.evil.com: %d %q; want 403 no access", pg.Status, pg.Body)
		}
		// carol@umich.edu does: she gets the site only.
		carol := newPerson(t)
		if pg := carol.signInAt(s, "carol"); pg.Status != 200 || !strings.Contains(pg.Body, "carol@umich.edu") || strings.Contains(pg.Body, `href="/nb/"`) {
			t.Errorf("carol@umich.edu: %d %q; want the start page with site only", pg.Status, pg.Body)
		}
		if pg := carol.do("GET", s.URL+"nb/tree", nil); pg.Status != 403 {
			t.Errorf("carol's nb/tree: %d; want 403", pg.Status)
		}
	})

	t.Run("SIGHUP removes a key", func(t *testing.T) {
		if code, _ := curl(t, s, s.keys["gone"], "/echo/"); code != 200 {
			t.Fatalf("the gone key before the reload: %d; want 200", code)
		}
		e2e.WriteFile(t, s.yml, s.accessFile(true), 0o600)
		syscall.Kill(s.Proc.Cmd.Process.Pid, syscall.SIGHUP)
		if !e2e.WaitFor(10*time.Second, func() bool { return strings.Contains(s.Stderr.String(), "the access file was reloaded") }) {
			t.Fatalf("no reload logged:\n%s", s.Stderr)
		}
		if code, _ := curl(t, s, s.keys["gone"], "/echo/"); code != 401 {
			t.Errorf("the removed key after the reload: %d; want 401", code)
		}
		if code, _ := curl(t, s, s.keys["script"], "/echo/"); code != 200 {
			t.Errorf("another key after the reload: %d; want 200", code)
		}
		if aliceAfterReload != nil {
			aliceAfterReload(t)
		}
		// A bad file keeps the policy in force.
		e2e.WriteFile(t, s.yml, "access_control: keys\nkeys: {}\nbogus: 1\n", 0o600)
		syscall.Kill(s.Proc.Cmd.Process.Pid, syscall.SIGHUP)
		if !e2e.WaitFor(10*time.Second, func() bool { return strings.Contains(s.Stderr.String(), "was not reloaded") }) {
			t.Errorf("a bad file's reload was not logged as refused:\n%s", s.Stderr)
		}
		if code, _ := curl(t, s, s.keys["script"], "/echo/"); code != 200 {
			t.Errorf("a key after a bad reload: %d; want 200", code)
		}
		select {
		case <-s.Proc.Done():
			t.Errorf("SIGHUP ended the server")
		default:
		}
	})

	t.Run("audit lines", func(t *testing.T) {
		log := s.Stderr.String()
		for _, want := range []string{`msg="signed in" user=alice@lab.example.org`, `msg="app opened" user=reader how=key`, `msg=refused user=reader how=key`} {
			if !strings.Contains(log, want) {
				t.Errorf("stderr has no %s", want)
			}
		}
		for name, key := range s.keys {
			if strings.Contains(log, key) {
				t.Errorf("stderr holds the %s key", name)
			}
		}
	})

	t.Run("nothing outlives the server", func(t *testing.T) {
		syscall.Kill(s.Proc.Cmd.Process.Pid, syscall.SIGTERM)
		if _, ok := s.Proc.Wait(15 * time.Second); !ok {
			t.Fatalf("tether serve did not stop on SIGTERM")
		}
		if left := e2e.ProcessesWith(s.State); len(left) > 0 {
			t.Errorf("processes left after the server stopped: %q", left)
		}
		if ents, _ := os.ReadDir(s.State); len(ents) > 0 {
			t.Errorf("the state directory still holds %d entries", len(ents))
		}
	})
}

// aliceAfterReload checks alice's browser session after the SIGHUP (set by the
// Chromium subtest).
var aliceAfterReload func(t *testing.T)

func curlPost(t *testing.T, s *teamServer, key, path string) (int, string) {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "10", "--cacert", s.certFile, "-w", "\n%{http_code}", "-X", "POST", "-d", "{}",
		"-H", "Content-Type: application/json", "-H", "Authorization: Bearer "+key, s.URL+strings.TrimPrefix(path, "/")).Output()
	if err != nil {
		t.Fatalf("curl POST %s: %v", path, err)
	}
	i := strings.LastIndex(string(out), "\n")
	var n int
	fmt.Sscan(string(out[i+1:]), &n)
	return n, string(out[:i])
}

// TestTeamServerNeedsTLSBeyondLoopback: --access on an address beyond loopback
// without TLS is refused before anything starts, in one line naming the fix.
func TestTeamServerNeedsTLSBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(e2e.Binary(t), "serve", "--listen", "0.0.0.0:0", "--access", filepath.Join(dir, "team.yml"), "--app", "site=static:"+dir)
	cmd.Env = append(cleanEnv(), "TETHER_STATE_DIR="+filepath.Join(dir, "state"))
	out, err := cmd.CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 ||
		!strings.Contains(string(out), "tether: --access on --listen 0.0.0.0:0 (beyond loopback) needs TLS") || !strings.Contains(string(out), "--tls-cert FILE --tls-key FILE") {
		t.Errorf("serve --access on 0.0.0.0 without TLS: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Errorf("a state directory was made")
	}
}
