//go:build unix

package remote

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tether-dev/tether/tokenserver"
	"github.com/tether-dev/tether/wire"
)

// running is a Serve call in this process.
type running struct {
	rec    wire.Record
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

// startServe runs Serve with JSON output in a goroutine, waits for the record and
// checks it as the launcher would.
func startServe(t *testing.T, o ServeOptions) *running {
	t.Helper()
	r := startServeUnchecked(t, o)
	if err := r.rec.Validate(); err != nil && r.rec.Token != "" { // no token: TETHER_NO_AUTH
		t.Fatalf("ready record %+v: %v", r.rec, err)
	}
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
		return nil
	}
}

func socketClient(socket string, tlsConf *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		TLSClientConfig: tlsConf,
	}}
}

func fetch(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeBuiltinForeground(t *testing.T) {
	root := tempRoot(t)
	r := startServe(t, ServeOptions{Name: "builtin"})
	rec := r.rec
	if rec.PID != os.Getpid() || rec.Host != hostname() || rec.Name != "builtin" || rec.BaseURL != "/" || len(rec.Token) != 43 {
		t.Errorf("record: %+v", rec)
	}
	if filepath.Dir(rec.Socket) != filepath.Join(root, rec.ID) || filepath.Base(rec.Socket) != serverSocket {
		t.Errorf("socket %s; want server.sock in the session dir", rec.Socket)
	}
	if fi, err := os.Lstat(rec.Socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v", fi.Mode(), err)
	}
	c := socketClient(rec.Socket, nil)
	if code, _ := fetch(t, c, "http://localhost/", ""); code != http.StatusUnauthorized {
		t.Errorf("without token: %d", code)
	}
	code, body := fetch(t, c, "http://localhost/", rec.Token)
	if code != http.StatusOK || !strings.Contains(body, rec.ID) || !strings.Contains(body, rec.Host) {
		t.Errorf("with token: %d %q", code, body)
	}

	// The built-in WebSocket, through the gate, with the JEP 119 subprotocol token.
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "unix", rec.Socket)
	}, Subprotocols: []string{"v1.token.websocket.jupyter.org", "v1.token.websocket.jupyter.org." + rec.Token}}
	ws, resp, err := d.Dial("ws://localhost/ws", http.Header{"Origin": {"http://localhost"}})
	if err != nil {
		t.Fatalf("websocket: %v (%v)", err, resp)
	}
	ws.WriteMessage(websocket.TextMessage, []byte("ping"))
	_, msg, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"echo":"ping"`) {
		t.Errorf("websocket reply %q, %v", msg, err)
	}
	ws.Close()
	// A foreign Origin is refused even with the token's cookie path closed off.
	if _, resp, err := d.Dial("ws://localhost/ws", http.Header{"Origin": {"http://localhost.evil.example"}}); err == nil {
		t.Error("websocket from a foreign origin accepted")
	} else if resp != nil && resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %d; want 403", resp.StatusCode)
	}

	// ls sees it running; stop by signal (ctx) removes everything.
	var out syncBuffer
	Ls(context.Background(), LsOptions{JSON: true, Stdout: &out, Stderr: io.Discard})
	if !strings.Contains(out.String(), `"state":"running"`) {
		t.Errorf("ls: %s", out.String())
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, rec.ID)); !os.IsNotExist(err) {
		t.Errorf("session dir left after stop: %v", err)
	}
}

func TestServeTokenSources(t *testing.T) {
	tempRoot(t)
	const custom = "my-custom-token-0123456789"
	t.Run("TETHER_TOKEN", func(t *testing.T) {
		t.Setenv("TETHER_TOKEN", custom)
		r := startServe(t, ServeOptions{})
		if !tokenserver.TokensEqual(r.rec.Token, custom) {
			t.Errorf("token %q; want TETHER_TOKEN's", r.rec.Token)
		}
	})
	t.Run("token file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "tok")
		os.WriteFile(f, []byte(custom+"\n"), 0o600)
		r := startServe(t, ServeOptions{TokenFile: f})
		if !tokenserver.TokensEqual(r.rec.Token, custom) {
			t.Errorf("token %q; want the file's", r.rec.Token)
		}
	})
	tests := []struct {
		name  string
		env   string
		file  string
		mode  os.FileMode
		want  string
		usage bool
	}{
		{name: "short TETHER_TOKEN", env: "Zq9x", want: "TETHER_TOKEN is not valid"},
		{name: "TETHER_TOKEN with a space", env: "abcdefghijklmnop qrs", want: "TETHER_TOKEN is not valid"},
		{name: "token file readable by others", file: custom, mode: 0o644, want: "chmod 600"},
		{name: "bad token in file", file: "a b", mode: 0o600, want: "is not valid"},
		{name: "both", env: custom, file: custom, mode: 0o600, want: "use one", usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TETHER_TOKEN", tt.env)
			o := ServeOptions{Stdout: io.Discard, Stderr: io.Discard}
			if tt.file != "" {
				o.TokenFile = filepath.Join(t.TempDir(), "tok")
				os.WriteFile(o.TokenFile, []byte(tt.file), tt.mode)
				os.Chmod(o.TokenFile, tt.mode)
			}
			err := Serve(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v; want a one-line error saying %q", err, tt.want)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("usage error %v; want %v", errors.As(err, &ue), tt.usage)
			}
			if tt.env != "" && tt.env != custom && strings.Contains(err.Error(), tt.env) {
				t.Errorf("the error repeats the token: %v", err)
			}
		})
	}
}

func TestServeNoAuth(t *testing.T) {
	tempRoot(t)
	t.Setenv("TETHER_NO_AUTH", "1")
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", "[::]:0", "gpu-node:0"} {
		err := Serve(context.Background(), ServeOptions{Listen: addr, Stdout: io.Discard, Stderr: io.Discard})
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "refused when listening beyond loopback") {
			t.Errorf("for --listen %s with TETHER_NO_AUTH=1, got %v; want a usage error", addr, err)
		}
	}
	r := startServe(t, ServeOptions{Listen: "127.0.0.1:0"})
	if !strings.Contains(r.stderr.String(), "WARNING: TETHER_NO_AUTH=1") {
		t.Errorf("no loud warning: %q", r.stderr.String())
	}
	if code, _ := fetch(t, http.DefaultClient, r.rec.URL, ""); code != http.StatusOK {
		t.Errorf("no-auth server: %d", code)
	}
}

func TestServeRefusesSecondSessionOfTheSameName(t *testing.T) {
	root := tempRoot(t)
	startServe(t, ServeOptions{Name: "lab"})
	err := Serve(context.Background(), ServeOptions{Name: "lab", Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `a session named "lab" is already running`) {
		t.Fatalf("got %v", err)
	}
	if des, _ := os.ReadDir(root); len(des) != 1 {
		t.Errorf("the refused start left a directory: %v", des)
	}
}

// The gate's traffic counts as activity, and an idle session ends and leaves nothing.
// This one runs on real sockets, so on the real clock (synctest's fake clock cannot
// advance while a goroutine waits on a socket); awaitEnd's timing itself is checked on
// the fake clock in TestAwaitEndIdleTimeout.
func TestServeIdleTimeout(t *testing.T) {
	root := tempRoot(t)
	// The gate reports activity at most about once a second.
	r := startServe(t, ServeOptions{IdleTimeout: 2 * time.Second})
	// Traffic keeps it alive.
	c := socketClient(r.rec.Socket, nil)
	for range 8 {
		time.Sleep(300 * time.Millisecond)
		if code, _ := fetch(t, c, "http://localhost/", r.rec.Token); code != http.StatusOK {
			t.Fatalf("session ended while in use: %d", code)
		}
	}
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the idle session did not stop")
	}
	if !strings.Contains(r.stderr.String(), "no activity for 2s") {
		t.Errorf("stderr: %q", r.stderr.String())
	}
	if des, _ := os.ReadDir(root); len(des) != 0 {
		t.Errorf("the idle-stopped session left %v", des)
	}
}

func TestServeSocketFlagNeverTakesAnExistingPath(t *testing.T) {
	tempRoot(t)
	path := filepath.Join(t.TempDir(), "taken.sock")
	os.WriteFile(path, []byte("not ours"), 0o600)
	err := Serve(context.Background(), ServeOptions{Socket: path, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "never reuses") {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not ours" {
		t.Fatal("the existing file was touched")
	}
	free := filepath.Join(t.TempDir(), "mine.sock")
	r := startServe(t, ServeOptions{Socket: free})
	if r.rec.Socket != free {
		t.Errorf("socket %s; want %s", r.rec.Socket, free)
	}
	r.stop(t)
	if _, err := os.Lstat(free); !os.IsNotExist(err) {
		t.Errorf("our --socket was left behind: %v", err)
	}
}

func TestServeTLSRecordPinsTheCertificate(t *testing.T) {
	tempRoot(t)
	r := startServe(t, ServeOptions{TLS: true, Listen: "127.0.0.1:0", BaseURL: "lab"})
	rec := r.rec
	if !rec.TLS || !strings.HasPrefix(rec.URL, "https://127.0.0.1:") || !strings.HasSuffix(rec.URL, "/lab/") || rec.BaseURL != "/lab/" {
		t.Fatalf("record: %+v", rec)
	}
	var seen string
	conf := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		seen = hex.EncodeToString(sum[:])
		if seen != rec.CertSHA256 {
			return errors.New("certificate does not match the record")
		}
		return nil
	}}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
	if code, body := fetch(t, c, rec.URL, rec.Token); code != http.StatusOK || !strings.Contains(body, rec.ID) {
		t.Errorf("https with token: %d %.100q (cert %s, record %s)", code, body, seen, rec.CertSHA256)
	}
}

func TestServeUsageErrors(t *testing.T) {
	tempRoot(t)
	tests := []struct {
		o    ServeOptions
		want string
	}{
		{ServeOptions{BaseURL: "/a/../b"}, "--base-url"},
		{ServeOptions{BaseURL: "//evil.example"}, "--base-url"},
		{ServeOptions{BaseURL: "/a?b"}, "--base-url"},
		// The gate's rule, judged before anything starts: serve used to let this by,
		// start the app, and fail when the gate refused it after the app was ready.
		{ServeOptions{BaseURL: "/a+b/", ReadyTimeout: 10 * time.Second, Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}}, "--base-url \"/a+b/\" has a character other than"},
		{ServeOptions{AllowHosts: []string{"http://x.example"}}, "--allow-host"},
		{ServeOptions{Name: "bad name"}, "session name"},
		{ServeOptions{Name: "abcdefgh"}, "looks like a session id"},
		{ServeOptions{TLSKey: "k.pem"}, "--tls-key needs --tls-cert"},
		{ServeOptions{Listen: ":8080"}, "--listen"},
		{ServeOptions{Listen: "nonsense"}, "--listen"},
		{ServeOptions{Socket: "/" + strings.Repeat("s", 120)}, "too long"},
		{ServeOptions{IdleTimeout: -time.Second}, "--idle-timeout"},
	}
	for _, tt := range tests {
		err := Serve(context.Background(), tt.o)
		var coded interface{ ExitCode() int }
		if !errors.As(err, &coded) || coded.ExitCode() != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("for %+v, got %v; want a usage error saying %q", tt.o, err, tt.want)
		}
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "lab": "/lab/", "/lab": "/lab/", "/a/b/": "/a/b/"} {
		if got, err := wire.BaseURL(in); err != nil || got != want {
			t.Errorf("for %q, got %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestServeOptionsWire: serve's options and its command line (wire.Serve) carry the
// same things: every field of a full command line comes back through ServeOptions.
func TestServeOptionsWire(t *testing.T) {
	full := wire.Serve{Listen: "127.0.0.1:0", Socket: "/s/x.sock", TokenFile: "/t/f", BaseURL: "/lab/", TLS: true,
		AllowHosts: []string{"a.example"}, IdleTimeout: time.Hour, Name: "n", JSON: true, JSONNotes: true,
		Detach: true, ReadyTimeout: time.Minute, ReadyFD: 3, CancelOnEOF: true, Reuse: true, BatchSession: "/b/abcd2345",
		SetupStdin: true, SetupFile: "/f", LoginShell: true, App: "jupyter", AppSecretEnv: "S",
		AppHeaders: []string{"A: b"}, AllowExposed: true, NoPortProxy: true, Command: []string{"x"},
		Apps: []string{"nb=jupyter"}, Access: "/team.yml"}
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() && v.Type().Field(i).Name != "TLSCert" && v.Type().Field(i).Name != "TLSKey" {
			t.Errorf("wire.Serve.%s is not set in the test", v.Type().Field(i).Name)
		}
	}
	o := ServeOptionsOf(full)
	if got := o.wire(); !reflect.DeepEqual(got, full) {
		t.Errorf("through ServeOptions:\n got %+v\nwant %+v", got, full)
	}
	withCert := wire.Serve{TLSCert: "/c.pem", TLSKey: "/k.pem"}
	if o := ServeOptionsOf(withCert); !reflect.DeepEqual(o.wire(), withCert) {
		t.Errorf("a certificate: %+v", o.wire())
	}
}

func TestChildArgs(t *testing.T) {
	o := ServeOptions{Listen: "127.0.0.1:0", Socket: "/s/x.sock", TokenFile: "/t/f", BaseURL: "/lab/", TLS: true,
		AllowHosts: []string{"a.example", "b,c"}, IdleTimeout: time.Hour, Name: "n", ReadyTimeout: time.Minute,
		AllowExposed: true, NoPortProxy: true, Command: []string{"jupyter", "lab", "--port={port}", "--", "x y"}}
	got := strings.Join(childArgs(o), "|")
	want := "serve|--ready-fd=3|--listen=127.0.0.1:0|--socket=/s/x.sock|--token-file=/t/f|--base-url=/lab/|--tls|" +
		"--allow-host=a.example|--allow-host=b,c|--name=n|--ready-timeout=1m0s|--idle-timeout=1h0m0s|--allow-exposed|--no-port-proxy|--|jupyter|lab|--port={port}|--|x y"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	t.Setenv("TETHER_TOKEN", "never-in-argv-0123456789")
	if strings.Contains(got, "never-in-argv") {
		t.Error("the token is in the child's argv")
	}
}

// TestRecordChallengeAndLoginCode: what the launcher does with a record works against
// the server that wrote it — the challenge answer matches (an impostor without the
// token could not produce it), and a login code lets a client in once.
func TestRecordChallengeAndLoginCode(t *testing.T) {
	tempRoot(t)
	r := startServe(t, ServeOptions{})
	rec := r.rec
	c := socketClient(rec.Socket, nil)
	const nonce = "nonce-0123456789abcdef"
	code, body := fetch(t, c, "http://localhost/_tether/challenge?nonce="+nonce, "")
	if code != http.StatusOK || strings.TrimSpace(body) != rec.ChallengeResponse(nonce) {
		t.Errorf("challenge: %d %q; want %q", code, body, rec.ChallengeResponse(nonce))
	}
	other := rec
	other.Token = "an-impostors-guess-0123456789"
	if other.ChallengeResponse(nonce) == rec.ChallengeResponse(nonce) {
		t.Error("a different token gives the same challenge answer")
	}

	login, err := rec.LoginCode(time.Minute)
	if err != nil || strings.Contains(login, rec.Token) {
		t.Fatalf("login code %q, %v", login, err)
	}
	nc := socketClient(rec.Socket, nil)
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	use := func() (int, []*http.Cookie) {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost/?code="+login, nil)
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		resp, err := nc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Cookies()
	}
	if code, cookies := use(); code != http.StatusSeeOther || len(cookies) != 1 {
		t.Errorf("first use of the login code: %d, %d cookies; want 303 and a cookie", code, len(cookies))
	}
	if code, cookies := use(); code == http.StatusSeeOther && len(cookies) == 1 {
		t.Error("the login code worked twice")
	}
}

// The Host names a listener beyond loopback answers to: its own address and this
// machine's name; never a wildcard address, a zone, or a name the gate would refuse.
func TestListenAllowHosts(t *testing.T) {
	h := hostname()
	for _, c := range []struct {
		listen string
		want   []string
	}{
		{"10.1.2.3:8888", []string{"10.1.2.3", h}},
		{"[fd00::7]:0", []string{"fd00::7", h}},
		{"0.0.0.0:8888", []string{h}},
		{"[::]:8888", []string{h}},
		{"Node7.Cluster.Example:0", []string{"node7.cluster.example", h}},
		{"[fe80::1%eth0]:0", []string{h}},
		{"bad_name:0", []string{h}},
	} {
		want := c.want
		if _, err := tokenserver.NormalizeAllowHost(h); h == "localhost" || err != nil {
			want = slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == h })
		}
		if got := listenAllowHosts(c.listen); !slices.Equal(got, want) {
			t.Errorf("listenAllowHosts(%q) = %q; want %q", c.listen, got, want)
		}
	}
}

// TestServeListenBeyondLoopback: --listen on an address that is not a loopback
// literal (here this machine's name; a test listens on loopback only, so the name must
// resolve there) makes the gate answer to that name as Host without --allow-host, and
// serve says so and suggests --tls. A foreign Host is still refused.
func TestServeListenBeyondLoopback(t *testing.T) {
	tempRoot(t)
	name := hostname()
	addrs, err := net.LookupHost(name)
	if _, nerr := tokenserver.NormalizeAllowHost(name); err != nil || len(addrs) == 0 || nerr != nil || name == "localhost" {
		t.Skipf("this machine's name %q does not resolve (%v); TestListenAllowHosts covers the names", name, err)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			t.Skipf("%s resolves to %s, beyond loopback: tests listen on loopback only", name, a)
		}
	}
	r := startServeUnchecked(t, ServeOptions{Listen: net.JoinHostPort(name, "0")})
	u, err := url.Parse(r.rec.URL)
	if err != nil || u.Hostname() != name {
		t.Fatalf("record url %q; want one on %s", r.rec.URL, name)
	}
	get := func(host string) int {
		req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(addrs[0], u.Port())+"/", nil)
		req.Host = host
		req.Header.Set("Authorization", "token "+r.rec.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(net.JoinHostPort(name, u.Port())); code != http.StatusOK {
		t.Errorf("Host %s: %d; want 200 (the listen name is allowed)", name, code)
	}
	if code := get("evil.example:" + u.Port()); code != http.StatusForbidden {
		t.Errorf("Host evil.example: %d; want 403", code)
	}
	e := r.stderr.String()
	for _, want := range []string{"browsers may also use the Host " + name, "without TLS", "add --tls"} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}
	if strings.Contains(e, r.rec.Token) {
		t.Errorf("stderr holds the token")
	}
	// With TLS there is no such hint.
	r2 := startServeUnchecked(t, ServeOptions{Listen: net.JoinHostPort(name, "0"), TLS: true})
	if strings.Contains(r2.stderr.String(), "without TLS") {
		t.Errorf("--tls still got the hint:\n%s", r2.stderr.String())
	}
}

// startServeUnchecked runs Serve with JSON output in a goroutine and decodes the
// record without the launcher's checks (a listener beyond loopback has a url that
// Validate refuses).
func startServeUnchecked(t *testing.T, o ServeOptions) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	o.JSON, o.Stdout, o.Stderr, o.Version = true, pw, r.stderr, "test"
	go func() {
		err := Serve(ctx, o)
		pw.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		select {
		case serr := <-r.done:
			r.done <- serr
			t.Fatalf("Serve ended before ready: %v\n%s", serr, r.stderr)
		case <-time.After(time.Second):
		}
		t.Fatalf("no ready line: %v\n%s", err, r.stderr)
	}
	go io.Copy(io.Discard, pr)
	if err := json.Unmarshal([]byte(line), &r.rec); err != nil {
		t.Fatalf("ready line %q: %v", line, err)
	}
	return r
}
