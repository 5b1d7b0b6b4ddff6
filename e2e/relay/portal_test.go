//go:build unix

package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/relay"
)

// portalHost is a `tether host` process run by a fresh Unix user.
type portalHost struct {
	proc *e2e.Proc
	log  *e2e.Buffer
}

// startHost runs `bin host --relay url args...` as u with token in TETHER_PORTAL_TOKEN
// and waits for its banner.
func startHost(t *testing.T, u e2e.User, bin, url, token string, args ...string) *portalHost {
	t.Helper()
	h := &portalHost{log: &e2e.Buffer{}}
	cmd := u.Command(bin, append([]string{"host", "--relay", url}, args...)...)
	cmd.Env = append(cmd.Env, "TETHER_PORTAL_TOKEN="+token)
	cmd.Stdout, cmd.Stderr = h.log, h.log
	h.proc = e2e.Start(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether host output:\n%s", h.log.String())
		}
	})
	if !e2e.WaitFor(20*time.Second, func() bool { return strings.Contains(h.log.String(), "offering this machine") }) {
		t.Fatalf("no banner from tether host:\n%s", h.log.String())
	}
	return h
}

// laptop is the launcher's side: its own HOME (with an SSH key when asked) and
// XDG_CONFIG_HOME (where portal host keys are pinned), and the client token.
type laptop struct {
	home, knownHosts string
	env              []string
}

func newLaptop(t *testing.T, token string, withKey bool) *laptop {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	if withKey {
		keygen := e2e.Need(t, "ssh-keygen", "openssh-client")
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "laptop", "-f", filepath.Join(home, ".ssh", "id_ed25519")).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	cfg := filepath.Join(dir, "config")
	return &laptop{home: home, knownHosts: filepath.Join(cfg, "tether", "known_hosts"),
		env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + cfg, "TETHER_PORTAL_TOKEN=" + token, "SSH_AUTH_SOCK="}}
}

// with is the laptop's environment with another token.
func (l *laptop) with(token string) []string {
	return append(append([]string(nil), l.env...), "TETHER_PORTAL_TOKEN="+token)
}

// TestRelayPortal: the three processes on loopback with the real launcher's own SSH
// (`tether launch --relay URL portal:ID`, the token in TETHER_PORTAL_TOKEN): a real
// `tether relay` behind a recorder, a `tether host --authorized-keys` run by a fresh
// Unix user, and the launcher with a key in ~/.ssh. One relay and host serve every
// subtest: the built-in app in Chromium (its WebSocket echoing through the relay), 200
// concurrent requests, attach/ls/logs/stop, Jupyter in Chromium with a kernel running
// print(6*7), a missing key, six kinds of bad token, and a host taking the portal over
// with a new key; at the end, the relay handled none of the secrets or app bytes.
func TestRelayPortal(t *testing.T) {
	began := time.Now()
	u := e2e.OtherUserWithShell(t, "bash")
	bin := installFor(t, u, e2e.Binary(t))
	r := startRelay(t)
	rec := startRecorder(t, r.listen)
	url := rec.url()
	hostToken := r.mint(t, "host", "lab", "lab-box")
	clientToken := r.mint(t, "client", "lab", "ann")

	lap := newLaptop(t, clientToken, true)
	pub, _ := os.ReadFile(filepath.Join(lap.home, ".ssh", "id_ed25519.pub"))
	ak := filepath.Join(u.Home, "relay_authorized_keys")
	e2e.WriteFile(t, ak, string(pub), 0o600)
	os.Chown(ak, u.UID, u.GID)
	host := startHost(t, u, bin, url, hostToken, "--authorized-keys", ak)
	t.Cleanup(func() { u.Command(bin, "stop", "--all").Run() }) // what a failed subtest left

	var secrets []string // what must never reach the relay in the clear
	marker := "relay-e2e-marker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	secrets = append(secrets, marker)

	t.Run("builtin", func(t *testing.T) {
		start := time.Now()
		l := e2e.StartLauncher(t, []string{"launch", "--relay", url, "portal:lab", "--json", "--no-browser"}, true, lap.env...)
		t.Logf("launch --relay: URL ready after %s", e2e.FmtDur(time.Since(start)))
		rec := l.Line.Session
		secrets = append(secrets, rec.Token)
		e2e.MustContain(t, "the launcher's stderr", l.Stderr.String(),
			"tether: Permanently added 'portal:lab' (ED25519 SHA256:", lap.knownHosts)
		pinned, _ := os.ReadFile(lap.knownHosts)
		if !strings.HasPrefix(string(pinned), "portal:lab ssh-ed25519 ") || strings.Count(string(pinned), "\n") != 1 {
			t.Errorf("known_hosts after the first launch: %q", pinned)
		}
		// The key was offered and taken, then the token (partial success): both.
		e2e.MustContain(t, "tether host's log", host.log.String(), `client token "ann" accepted`, "login as "+u.Name)
		if owner := procOwner(rec.PID); owner != u.UID {
			t.Errorf("the session's server runs as uid %d; want %d (%s)", owner, u.UID, u.Name)
		}

		// Chromium: the page, its WebSocket, and an echo of the marker through it.
		ctx := e2e.Browser(t)
		bctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(bctx, chromedp.Navigate(l.Line.URL), chromedp.WaitVisible("#session")); err != nil {
			t.Fatalf("Chromium loading %s: %v", l.Line.URL, err)
		}
		if !e2e.WaitFor(20*time.Second, func() bool { return wsState(bctx) == "connected" }) {
			t.Errorf("the page's WebSocket: %q; want connected", wsState(bctx))
		}
		echo, err := chromedp.Run(bctx, chromedp.Evaluate[string](`new Promise((res, rej) => {
			const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
			ws.onopen = () => ws.send(`+strconv.Quote(marker)+`);
			ws.onmessage = e => { res(JSON.parse(e.data).echo); ws.close(); };
			ws.onerror = () => rej("websocket error"); })`, chromedp.EvalAwaitPromise))
		if err != nil || echo != marker {
			t.Errorf("the marker echoed through the relay: %q, %v", echo, err)
		}
		t.Logf("Chromium: page and WebSocket echo after %s", e2e.FmtDur(time.Since(start)))

		// 200 requests at once through the launcher's local URL: 200 SSH channels in the
		// one relay stream.
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		t0 := time.Now()
		ok, fails := concurrentGets(200, base+"app.css", "token "+rec.Token, "grid-template-columns")
		t.Logf("200 concurrent requests through the relay: %d succeeded in %s", ok, e2e.FmtDur(time.Since(t0)))
		if ok != 200 {
			t.Errorf("200 concurrent requests: %d succeeded; failures: %q", ok, fails)
		}

		// Detach, then attach, ls, logs and stop through the relay.
		if err := l.Interrupt(t); err != nil {
			t.Errorf("launcher after Ctrl-C: %v", err)
		}
		a := e2e.StartLauncher(t, []string{"attach", "--relay", url, "portal:lab", rec.ID, "--json", "--no-browser"}, true, lap.env...)
		if a.Line.Session.ID != rec.ID {
			t.Errorf("attach: session %q; want %q", a.Line.Session.ID, rec.ID)
		}
		if st, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", a.Line.LocalPort), "Authorization", "token "+rec.Token); st != 200 || !strings.Contains(body, rec.ID) {
			t.Errorf("GET through the attached tunnel: %d %.200s", st, body)
		}
		a.Interrupt(t)
		out, errOut, code := e2e.RunTetherEnv(t, lap.env, "ls", "--relay", url, "portal:lab")
		if code != 0 || !strings.Contains(out, rec.ID) || !strings.Contains(out, "builtin") {
			t.Errorf("ls --relay: exit %d, %q, %q", code, out, errOut)
		}
		out, errOut, code = e2e.RunTetherEnv(t, lap.env, "logs", "--relay", url, "portal:lab", rec.ID)
		if code != 0 {
			t.Errorf("logs --relay: exit %d, %q, %q", code, out, errOut)
		}
		out, errOut, code = e2e.RunTetherEnv(t, lap.env, "stop", "--relay", url, "portal:lab", rec.ID)
		if code != 0 || !strings.Contains(out+errOut, "stopped "+rec.ID) {
			t.Errorf("stop --relay: exit %d, %q, %q", code, out, errOut)
		}
		if !e2e.WaitFor(10*time.Second, func() bool { return !e2e.Alive(rec.PID) }) {
			t.Errorf("the session's server %d outlived stop", rec.PID)
		}
	})

	t.Run("jupyter", func(t *testing.T) {
		e2e.Need(t, "jupyter-notebook", "jupyter-notebook")
		start := time.Now()
		l := e2e.StartLauncher(t, []string{"launch", "--relay", url, "portal:lab", "jupyter", "--json", "--no-browser"}, true, lap.env...)
		rec := l.Line.Session
		secrets = append(secrets, rec.Token)
		t.Logf("launch --relay jupyter: URL ready after %s", e2e.FmtDur(time.Since(start)))
		ctx := e2e.Browser(t)
		bctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(bctx, chromedp.Navigate(l.Line.URL), chromedp.WaitVisible("#notebook_list")); err != nil {
			t.Fatalf("Chromium loading Jupyter's tree through the relay: %v", err)
		}
		t.Logf("Chromium: Jupyter's tree after %s", e2e.FmtDur(time.Since(start)))
		if got := runInKernel(t, l, "print(6*7)"); got != "42\n" {
			t.Errorf("print(6*7) in a kernel through the relay: %q", got)
		}
		t.Logf("kernel: print(6*7) after %s", e2e.FmtDur(time.Since(start)))
		if _, errOut, code := e2e.RunTetherEnv(t, lap.env, "stop", "--relay", url, "portal:lab", rec.ID); code != 0 {
			t.Errorf("stop --relay: exit %d: %s", code, errOut)
		}
		l.Interrupt(t)
	})

	t.Run("no-key", func(t *testing.T) {
		// The token alone, to a host that also requires a key: refused, saying so.
		bare := newLaptop(t, clientToken, false)
		os.MkdirAll(filepath.Dir(bare.knownHosts), 0o700)
		pinned, _ := os.ReadFile(lap.knownHosts)
		e2e.WriteFile(t, bare.knownHosts, string(pinned), 0o600)
		_, errOut, code := e2e.RunTetherEnv(t, bare.env, "ls", "--relay", url, "portal:lab")
		if code == 0 || !strings.Contains(errOut, "tether: the host of portal:lab took your token but also requires an SSH key it knows") {
			t.Errorf("ls with the token alone: exit %d, %q", code, errOut)
		}
	})

	t.Run("bad-tokens", func(t *testing.T) {
		secret, err := relay.ReadSecret(r.secret)
		if err != nil {
			t.Fatal(err)
		}
		key := relay.KeyFromSecret(secret)
		other := relay.KeyFromSecret([]byte("another relay's secret, 32 bytes or more"))
		now := time.Now().Unix()
		claims := func(exp int64) map[string]any {
			return map[string]any{"sub": "mallory", "role": "client", "portal": "lab", "iat": now - 7200, "nbf": now - 7200, "exp": exp,
				"jti": "e2e", "rk": base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
		}
		otherPortal := r.mint(t, "client", "other", "ann")
		otherKey, err := relay.Mint(other, relay.RoleClient, "lab", "ann", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// Tampered: another portal's genuine token with its payload rewritten to lab.
		parts := strings.Split(otherPortal, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		parts[1] = base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte(`"portal":"other"`), []byte(`"portal":"lab"`), 1))
		tampered := strings.Join(parts, ".")
		for _, tt := range []struct {
			name, token, want string
		}{
			{"host token as client", hostToken, "it is a host token, not a client token"},
			{"another portal's", otherPortal, "it is for portal other, not lab"},
			{"expired", craft(key, "EdDSA", claims(now-3600)), "it has expired"},
			{"another relay's key", otherKey, "its signature is not this relay's"},
			{"tampered payload", tampered, "its signature is not this relay's"},
			{"alg none", craft(nil, "none", claims(now+3600)), "it is unsigned (alg none); the relay takes only tokens signed with its key"},
		} {
			_, errOut, code := e2e.RunTetherEnv(t, lap.with(tt.token), "ls", "--relay", url, "portal:lab")
			first, _, _ := strings.Cut(errOut, "\n")
			t.Logf("%s: %s", tt.name, first)
			// One line: what was refused, why (once), and where to get a good token.
			want := "tether: the relay " + url + " refused the token in TETHER_PORTAL_TOKEN for portal:lab: " + tt.want + "; it must be a client token for portal lab"
			if code == 0 || !strings.HasPrefix(first, want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("%s: exit %d; stderr %q; want one line beginning %q", tt.name, code, errOut, want)
			}
			if strings.Contains(errOut, tt.token) {
				t.Errorf("%s: the token is in the message", tt.name)
			}
		}
		if strings.Contains(host.log.String(), "mallory") {
			t.Errorf("a bad token reached the host (the relay should refuse it first):\n%s", host.log.String())
		}
	})

	t.Run("takeover", func(t *testing.T) {
		// Another tether host (a new host key) takes the portal with the same host token:
		// the relay lets the newer one win, the old one stops, and the launcher refuses
		// the new key as a changed host key, pin untouched.
		before, _ := os.ReadFile(lap.knownHosts)
		newKey := filepath.Join(u.Home, "other_host_key")
		startHost(t, u, bin, url, hostToken, "--authorized-keys", ak, "--host-key", newKey)
		if err, ok := host.proc.Wait(15 * time.Second); !ok {
			t.Errorf("the replaced tether host still runs")
		} else {
			t.Logf("the replaced host ended (%v): %s", err, e2e.LastLines(host.log.String(), 1))
		}
		e2e.MustContain(t, "the replaced host's log", host.log.String(), "a newer host took over portal lab")
		_, errOut, code := e2e.RunTetherEnv(t, lap.env, "ls", "--relay", url, "portal:lab")
		first, _, _ := strings.Cut(errOut, "\n")
		t.Logf("ls after the takeover: %s", first)
		if code == 0 || !strings.HasPrefix(first, "tether: the host key of portal:lab has CHANGED: it offers ssh-ed25519 SHA256:") {
			t.Errorf("ls after the takeover: exit %d, %q", code, errOut)
		}
		if after, _ := os.ReadFile(lap.knownHosts); !bytes.Equal(before, after) {
			t.Errorf("known_hosts changed: %q -> %q", before, after)
		}
	})

	// What the relay handled: the SSH version strings in the clear (so the recording
	// and its decoding work), and none of the session tokens, the client token (sent
	// inside SSH as the password), the marker or the app's pages.
	raw, payloads := rec.seen()
	var total int
	var banners int
	for i, p := range payloads {
		total += len(raw[i])
		if bytes.HasPrefix(p, []byte("SSH-2.0-")) {
			banners++
		}
	}
	// (Each byte is counted twice: from one end to the relay, and from it to the other.)
	t.Logf("the relay handled %d connections, %d bytes; %d stream directions begin with an SSH banner", len(raw)/2, total, banners)
	if banners < 2 || total < 100<<10 {
		t.Errorf("the recording looks wrong: %d bytes, %d SSH banners", total, banners)
	}
	clear := append(secrets, "This is tether's built-in app", "notebook_list", "print(6*7)", "grid-template-columns")
	for _, s := range clear {
		for i := range raw {
			if bytes.Contains(raw[i], []byte(s)) || bytes.Contains(payloads[i], []byte(s)) {
				t.Errorf("the relay saw %.30q in the clear", s)
				break
			}
		}
	}
	// The recorder does see what is in the clear: the client token in the handshake's
	// Authorization header (the relay checks it; it is meant to see it).
	sawHeader := false
	for i := range raw {
		sawHeader = sawHeader || bytes.Contains(raw[i], []byte("Bearer "+clientToken))
	}
	if !sawHeader {
		t.Errorf("the recorder missed the client token in the WebSocket handshake: it does not see what the relay sees")
	}
	for i := range payloads {
		if bytes.Contains(payloads[i], []byte(clientToken)) {
			t.Errorf("the client token crossed the relay inside a stream in the clear")
			break
		}
	}
	t.Logf("TestRelayPortal: %s in all", e2e.FmtDur(time.Since(began)))
}

// wsState is the built-in page's WebSocket state.
func wsState(ctx context.Context) string {
	s, _ := chromedp.Run(e2e.WithTimeout(ctx, 2*time.Second), chromedp.Text("#ws"))
	return s
}

// craft is a JWT with the given alg over claims, signed with key (none: unsigned).
func craft(key ed25519.PrivateKey, alg string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if key == nil {
		return in + "."
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(in)))
}

// concurrentGets GETs url n times at once, each on its own TCP connection, and counts
// the answers that are 200 and hold want.
func concurrentGets(n int, url, auth, want string) (int, []string) {
	tr := &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 60 * time.Second, Transport: tr}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok, fails := 0, []string{}
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", auth)
			resp, err := c.Do(req)
			var why string
			if err != nil {
				why = err.Error()
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
					why = fmt.Sprintf("%d %.80s", resp.StatusCode, b)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if why == "" {
				ok++
			} else if len(fails) < 5 {
				fails = append(fails, why)
			}
		}()
	}
	close(gate)
	wg.Wait()
	return ok, fails
}

// runInKernel starts a kernel of the launched Jupyter through the launcher's URL, runs
// code on it over the kernel's WebSocket and returns what it printed.
func runInKernel(t *testing.T, l *e2e.Launched, code string) string {
	t.Helper()
	tok, base, kernel := e2e.StartKernel(t, l)
	d := websocket.Dialer{HandshakeTimeout: 20 * time.Second}
	c, wsResp, err := d.Dial("ws://"+base+"/api/kernels/"+kernel+"/channels", http.Header{"Authorization": {"token " + tok}})
	if err != nil {
		t.Fatalf("the kernel's WebSocket through the relay: %v (%v)", err, wsResp)
	}
	defer c.Close()
	id := make([]byte, 8)
	rand.Read(id)
	msgID := fmt.Sprintf("%x", id)
	msg := map[string]any{
		"header":        map[string]any{"msg_id": msgID, "username": "e2e", "session": "e2e-" + msgID, "msg_type": "execute_request", "version": "5.3"},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{}, "allow_stdin": false},
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var out strings.Builder
	for {
		var m struct {
			Header struct {
				MsgType string `json:"msg_type"`
			} `json:"header"`
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct {
				Text           string `json:"text"`
				ExecutionState string `json:"execution_state"`
			} `json:"content"`
		}
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("reading the kernel's answer: %v (so far %q)", err, out.String())
		}
		if m.ParentHeader.MsgID != msgID {
			continue
		}
		switch {
		case m.Header.MsgType == "stream":
			out.WriteString(m.Content.Text)
		case m.Header.MsgType == "status" && m.Content.ExecutionState == "idle":
			return out.String()
		}
	}
}

// TestRelayRestart: the relay process is killed (SIGKILL) under a live session shown
// in Chromium and started again on the same port: tether host and the launcher come
// back by themselves (their backoffs), and the page works again, its WebSocket
// reconnected, without anyone touching either end.
func TestRelayRestart(t *testing.T) {
	began := time.Now()
	u := e2e.OtherUserWithShell(t, "bash")
	bin := installFor(t, u, e2e.Binary(t))
	r := startRelay(t)
	hostToken := r.mint(t, "host", "lab", "lab-box")
	clientToken := r.mint(t, "client", "lab", "ann")
	host := startHost(t, u, bin, r.url, hostToken)
	t.Cleanup(func() { u.Command(bin, "stop", "--all").Run() })
	lap := newLaptop(t, clientToken, false)
	l := e2e.StartLauncher(t, []string{"launch", "--relay", r.url, "portal:lab", "--json", "--no-browser"}, true, lap.env...)
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	ctx := e2e.Browser(t)
	bctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(l.Line.URL), chromedp.WaitVisible("#session")); err != nil {
		t.Fatalf("Chromium loading %s: %v", l.Line.URL, err)
	}
	if !e2e.WaitFor(20*time.Second, func() bool { return wsState(bctx) == "connected" }) {
		t.Fatalf("the page's WebSocket: %q; want connected", wsState(bctx))
	}

	// Kill the relay; the page notices its WebSocket gone.
	r.proc.Cmd.Process.Kill()
	if _, ok := r.proc.Wait(10 * time.Second); !ok {
		t.Fatal("the relay outlived SIGKILL")
	}
	if !e2e.WaitFor(20*time.Second, func() bool { return wsState(bctx) != "connected" }) {
		t.Errorf("the page's WebSocket stayed connected with the relay dead")
	}
	t0 := time.Now()
	r2 := startRelayAt(t, r.listen, r.secret)
	if !e2e.WaitFor(60*time.Second, func() bool { return strings.Contains(r2.out.String(), "host portal=lab name=lab-box") }) {
		t.Fatalf("tether host did not come back to the restarted relay; host log:\n%s", host.log.String())
	}
	t.Logf("host back %s after the relay restarted", e2e.FmtDur(time.Since(t0)))
	if !e2e.WaitFor(60*time.Second, func() bool {
		st, _, _ := e2e.Fetch(t, base, "Authorization", "token "+l.Line.Session.Token)
		return st == 200
	}) {
		t.Fatalf("the launcher's URL did not work again; launcher:\n%s", l.Stderr.String())
	}
	t.Logf("the launcher's URL works %s after the relay restarted", e2e.FmtDur(time.Since(t0)))
	if !e2e.WaitFor(30*time.Second, func() bool { return wsState(bctx) == "connected" }) {
		t.Errorf("the page's WebSocket did not reconnect: %q", wsState(bctx))
	}
	if err := chromedp.Do(bctx, chromedp.Reload(), chromedp.WaitVisible("#session")); err != nil {
		t.Errorf("reloading the page: %v", err)
	}
	t.Logf("the page's WebSocket reconnected, page reloaded, %s after the relay restarted", e2e.FmtDur(time.Since(t0)))
	e2e.MustContain(t, "tether host's log", host.log.String(), "control connection lost", "reconnected to")
	select {
	case <-host.proc.Done():
		t.Errorf("tether host ended: %s", e2e.LastLines(host.log.String(), 3))
	case <-l.Proc.Done():
		t.Errorf("the launcher ended: %s", e2e.LastLines(l.Stderr.String(), 3))
	default:
	}
	t.Logf("launcher's stderr after the restart: %s", e2e.LastLines(l.Stderr.String(), 4))
	if _, errOut, code := e2e.RunTetherEnv(t, lap.env, "stop", "--relay", r.url, "portal:lab", l.Line.Session.ID); code != 0 {
		t.Errorf("stop --relay after the restart: exit %d: %s", code, errOut)
	}
	l.Interrupt(t)
	t.Logf("TestRelayRestart: %s in all", e2e.FmtDur(time.Since(began)))
}
