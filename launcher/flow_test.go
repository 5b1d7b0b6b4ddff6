package launcher

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// fakeRemote is the in-process SSH server with a fake tether installed: it runs real
// /bin/sh commands (the probe script, uploads) with HOME in a temp dir, and its "tether"
// prints what the test prepared, so the launcher's whole flow runs in a unit test.
type fakeRemote struct {
	t    *testing.T
	cfg  *tunnel.Config
	srv  *tunnel.Server
	home string
	dir  string // the fake's files: serve.out, serve.err, serve.status, ls.out, calls
	// bin is the fake tether on this side: launches upload it (--remote-binary), so its
	// SHA-256 is the one the probe checks before running it.
	bin string
}

const fakeTether = `#!/bin/sh
echo "$*" >> "$FAKE/calls"
case "$1" in
version) echo "tether fake" ;;
serve) case "$*" in *--setup-stdin*) head -n 2 > "$FAKE/stdin" ;; esac; cat "$FAKE/serve.out" 2>/dev/null; cat "$FAKE/serve.err" >&2 2>/dev/null; exit $(cat "$FAKE/serve.status" 2>/dev/null || echo 0) ;;
stop) if [ -f "$FAKE/stop.out" ]; then cat "$FAKE/stop.out"; cat "$FAKE/stop.err" >&2 2>/dev/null; exit $(cat "$FAKE/stop.status" 2>/dev/null || echo 0); fi; echo "stopped $2" ;;
ls) cat "$FAKE/ls.out" ;;
logs) echo "app line 1"; echo "app line 2" ;;
esac
`

func newFakeRemote(t *testing.T) *fakeRemote {
	t.Helper()
	return newFakeRemoteWith(t, nil)
}

// newFakeRemoteWith is newFakeRemote with tweak applied to the server before it serves
// (its settings are read once, when Serve starts).
func newFakeRemoteWith(t *testing.T, tweak func(*tunnel.Server)) *fakeRemote {
	t.Helper()
	hostPub, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	_ = hostPub
	hostKey, _ := ssh.NewSignerFromKey(hostPriv)
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	clientKey, _ := ssh.NewSignerFromKey(clientPriv)
	base := t.TempDir()
	f := &fakeRemote{t: t, home: filepath.Join(base, "home"), dir: filepath.Join(base, "fake")}
	os.Mkdir(f.home, 0o700)
	os.Mkdir(f.dir, 0o700)
	f.bin = filepath.Join(base, "tether-fake")
	if err := os.WriteFile(f.bin, []byte(fakeTether), 0o700); err != nil {
		t.Fatal(err)
	}
	f.srv = &tunnel.Server{HostKey: hostKey, AuthorizedKey: clientKey.PublicKey(),
		Env: []string{"HOME=" + f.home, "XDG_CACHE_HOME=", "FAKE=" + f.dir}}
	if tweak != nil {
		tweak(f.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	f.cfg = &tunnel.Config{Alias: "fake", HostName: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, User: "u",
		Signers: []ssh.Signer{clientKey}, HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()), BatchMode: true,
		IdentitiesOnly: true, IdentityAgent: "none", ConnectTimeout: 5 * time.Second}
	return f
}

// install puts the fake tether where the launcher (version "test", --remote-binary
// f.bin) looks for it.
func (f *fakeRemote) install() {
	f.t.Helper()
	b, err := newBuild("test", f.bin)
	if err != nil {
		f.t.Fatal(err)
	}
	installFake(f.t, filepath.Join(f.home, ".cache/tether/bin"), b.remoteName(), strings.TrimPrefix(fakeTether, "#!/bin/sh\n"))
}

func (f *fakeRemote) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeRemote) calls() string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "calls"))
	return string(b)
}

// fakeServer is what listens on the session's socket: the genuine server (answers the
// challenge with the token) or an impostor; it records whether it ever saw the token.
type fakeServer struct {
	rec       wire.Record
	mu        sync.Mutex
	sawToken  bool
	requests  []string
	impostor  bool
	socketDir string
	// hang, when set, holds the challenge until the request ends: a server that does
	// not answer yet.
	hang bool
	// owner, when set, answers the owner proof as the gate does (accepted when it
	// matches, refused otherwise); unset, it is an older server that ignores it.
	owner bool
	// refuseOwner: refused whatever the proof.
	refuseOwner bool
}

func startFakeServer(t *testing.T, impostor bool) *fakeServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "tl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	fs := &fakeServer{rec: goodRecord(), impostor: impostor, socketDir: dir}
	fs.rec.Socket = filepath.Join(dir, "s.sock")
	fs.rec.Host = "fakehost"
	ln, err := net.Listen("unix", fs.rec.Socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fs}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return fs
}

func (fs *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.requests = append(fs.requests, r.URL.String())
	if strings.Contains(r.URL.String()+fmt.Sprint(r.Header), fs.rec.Token) {
		fs.sawToken = true
	}
	hang := fs.hang
	fs.mu.Unlock()
	if r.URL.Path == "/_tether/challenge" {
		if hang {
			<-r.Context().Done()
			return
		}
		if fs.impostor {
			// It claims to take the token too: worth nothing without the right answer.
			w.Header().Set(wire.OwnerAcceptedHeader, wire.OwnerAccepted)
			io.WriteString(w, strings.Repeat("0", 64))
			return
		}
		nonce := r.URL.Query().Get("nonce")
		if p := r.Header.Values(wire.OwnerProofHeader); fs.owner && len(p) > 0 {
			verdict := wire.OwnerRefused
			if len(p) == 1 && eqSecret(p[0], fs.rec.OwnerProof(nonce)) && !fs.refuseOwner {
				verdict = wire.OwnerAccepted
			}
			w.Header().Set(wire.OwnerAcceptedHeader, verdict)
		}
		want, _ := challengeResponse(fs.rec, nonce)
		io.WriteString(w, want)
		return
	}
	if !eqSecret(r.Header.Get("Authorization"), "token "+fs.rec.Token) && !eqSecret(r.URL.Query().Get("token"), fs.rec.Token) {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	io.WriteString(w, "the app")
}

// noRemoteBinary as LaunchOptions.RemoteBinary makes startLaunch leave it empty.
const noRemoteBinary = "\x00none"

// launchBG runs Launch until the returned cancel; wait returns its error.
type run struct {
	stdout, stderr *syncBuf
	opened         chan string
	cancel         context.CancelFunc
	done           chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startLaunch(t *testing.T, f *fakeRemote, o LaunchOptions) *run {
	t.Helper()
	r := &run{stdout: &syncBuf{}, stderr: &syncBuf{}, opened: make(chan string, 4), done: make(chan error, 1)}
	o.SSH, o.Host, o.Version, o.Stdout, o.Stderr = f.cfg, "fakehost", "test", r.stdout, r.stderr
	switch o.RemoteBinary {
	case "":
		o.RemoteBinary = f.bin
	case noRemoteBinary:
		o.RemoteBinary = "" // as the user runs it: what to install is tether's choice
	}
	if o.Open == nil {
		o.Open = func(target string) error { r.opened <- target; return nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- Launch(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("Launch did not return")
		}
	})
	return r
}

func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("Launch did not return; stderr:\n%s", r.stderr.String())
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLaunchJSONAndBrowser(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, Command: []string{"python3", "-m", "http.server", "{port}"}})

	waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	out := r.stdout.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("stdout must be exactly one line, got %q", out)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 3 || raw["url"] == nil || raw["local_port"] == nil || raw["session"] == nil {
		t.Fatalf("JSON keys: %s", out)
	}
	var line JSONLine
	json.Unmarshal([]byte(out), &line)
	wantURL := fmt.Sprintf("http://127.0.0.1:%d/?token=%s", line.LocalPort, fs.rec.Token)
	if line.URL != wantURL || line.Session.ID != fs.rec.ID || !eqSecret(line.Session.Token, fs.rec.Token) {
		t.Errorf("JSON line %s; want url %s", out, wantURL)
	}
	// The URL works.
	resp, err := http.Get(line.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "the app" {
		t.Errorf("GET %s: %q", line.URL, body)
	}
	// The browser was opened on a code URL, never the token.
	select {
	case target := <-r.opened:
		if strings.Contains(target, fs.rec.Token) || !strings.HasPrefix(target, fmt.Sprintf("http://127.0.0.1:%d/?code=", line.LocalPort)) {
			t.Errorf("opened %q", target)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no browser opened")
	}
	// The command reached serve argument by argument.
	if c := f.calls(); !strings.Contains(c, "serve --detach --json --json-notes --cancel-on-eof --reuse --login-shell -- python3 -m http.server {port}") {
		t.Errorf("remote calls: %q", c)
	}
	// Ctrl-C detaches: the session is not stopped, and the user learns how to come back.
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if strings.Contains(f.calls(), "stop") {
		t.Errorf("detach stopped the session: %q", f.calls())
	}
	if e := r.stderr.String(); !strings.Contains(e, "tether attach fakehost "+fs.rec.ID) || !strings.Contains(e, "tether stop fakehost "+fs.rec.ID) {
		t.Errorf("stderr lacks the attach/stop hints:\n%s", e)
	}
	if strings.Contains(r.stderr.String(), fs.rec.Token) {
		t.Errorf("stderr holds the token")
	}
}

// serve's warnings and notes (a taken port, where the app listens) stay on the
// launcher's terminal, once each; --allow-exposed reaches serve.
func TestLaunchShowsServeWarnings(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	f.write("serve.err", "a login shell's chatter\n"+
		noteLine(t, wire.Stepf("starting python3 -m http.server 4242"))+
		noteLine(t, wire.Notef("the command has no {port} or {socket}: the app must listen on 127.0.0.1:$PORT"))+
		noteLine(t, wire.Warnf("the app's port 127.0.0.1:4242 is held by another user, bob (uid 1001), not by the app; nothing was sent to it; starting the app again on another port"))+
		noteLine(t, wire.Warnf("the app listens on 0.0.0.0:4243, where anyone who can reach %v gets to it without the token (--allow-exposed)", wire.ThisMachine)))
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{NoBrowser: true}, AllowExposed: true,
		Command: []string{"python3", "-m", "http.server"}})
	waitFor(t, "the URL", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	e := r.stderr.String()
	for _, want := range []string{
		"tether: fakehost: warning: the app's port 127.0.0.1:4242 is held by another user, bob (uid 1001)",
		"tether: fakehost: warning: the app listens on 0.0.0.0:4243, where anyone who can reach fakehost gets to it",
	} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}
	if n := strings.Count(e, "no {port} or {socket}"); n != 1 {
		t.Errorf("the port hint is shown %d times; want once:\n%s", n, e)
	}
	if strings.Contains(e, "chatter") || strings.Contains(e, "this machine") || strings.Contains(e, "{\"level") {
		t.Errorf("stderr shows what is not serve's notes, or them unworded:\n%s", e)
	}
	if c := f.calls(); !strings.Contains(c, "serve --detach --json --json-notes --cancel-on-eof --reuse --login-shell --allow-exposed -- python3 -m http.server") {
		t.Errorf("remote calls: %q", c)
	}
	r.cancel()
	r.wait(t)
}

// --setup reaches serve on stdin, one frame ahead of the held-open rest, and never on
// its command line.
func TestLaunchSetupGoesOnStdin(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	const setup = "module load cuda/12 && conda activate ml # secret-ish\n"
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{NoBrowser: true}, Setup: setup,
		Command: []string{"app", "{port}"}})
	waitFor(t, "the URL", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	c := f.calls()
	if !strings.Contains(c, "serve --detach --json --json-notes --cancel-on-eof --reuse --setup-stdin --login-shell -- app {port}") || strings.Contains(c, "module") {
		t.Errorf("remote calls: %q; want --setup-stdin and no script", c)
	}
	b, _ := os.ReadFile(filepath.Join(f.dir, "stdin"))
	if string(b) != string(wire.SetupFrame(setup)) {
		t.Errorf("serve read %q on stdin; want the frame %q", b, wire.SetupFrame(setup))
	}
	r.cancel()
	r.wait(t)
}

func TestLaunchRmStopsTheSession(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{NoBrowser: true, Rm: true}})
	waitFor(t, "the URL", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	if got := strings.TrimSpace(r.stdout.String()); !strings.HasPrefix(got, "http://127.0.0.1:") || !strings.HasSuffix(got, "/?token="+fs.rec.Token) {
		t.Errorf("--no-browser printed %q", got)
	}
	if len(r.opened) != 0 {
		t.Errorf("--no-browser opened a browser")
	}
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if c := f.calls(); !strings.Contains(c, "stop --json-notes -- "+fs.rec.ID) {
		t.Errorf("--rm did not stop the session: %q", c)
	}
}

// Verification is one exchange with a server that answers the owner proof: the
// challenge, whose answer proves the server and says it takes the token; the token
// itself is never sent for it (before, a second request carried it, a round trip more).
// An older server, which says nothing of the proof, is asked the old way once its
// answer proved it; a server that refuses the proof fails the launch, the token unsent.
func TestLaunchVerifiesInOneExchange(t *testing.T) {
	for _, tc := range []struct {
		name          string
		owner, refuse bool
		want          []string // the requests' paths
		wantErr       string
	}{
		{name: "answers the proof", owner: true, want: []string{"/_tether/challenge"}},
		{name: "older server", want: []string{"/_tether/challenge", "/"}},
		{name: "refuses the proof", owner: true, refuse: true, want: []string{"/_tether/challenge"}, wantErr: "refused the session's token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRemote(t)
			f.install()
			fs := startFakeServer(t, false)
			fs.owner, fs.refuseOwner = tc.owner, tc.refuse
			f.write("serve.out", recordLine(t, fs.rec)+"\n")
			r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
			if tc.wantErr != "" {
				if err := r.wait(t); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want %q", err, tc.wantErr)
				}
			} else {
				waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
			}
			fs.mu.Lock()
			defer fs.mu.Unlock()
			var paths []string
			for _, u := range fs.requests {
				p, _, _ := strings.Cut(u, "?")
				paths = append(paths, p)
			}
			if !slices.Equal(paths, tc.want) {
				t.Errorf("requests before ready: %q; want %q", fs.requests, tc.want)
			}
			if tc.owner && fs.sawToken {
				t.Errorf("the token was sent to verify a server that answers the proof: %q", fs.requests)
			}
		})
	}
}

// An impostor listening on the session's socket, without the session secret, fails the
// launcher's challenge; the launcher aborts before opening a browser or sending the
// token, and stops what it started.
func TestLaunchImpostorOnSocket(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, true)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "did not prove") {
		t.Fatalf("got %v; want the challenge failure", err)
	}
	if len(r.opened) != 0 || r.stdout.String() != "" {
		t.Errorf("opened %d browsers, stdout %q: want nothing", len(r.opened), r.stdout.String())
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.sawToken {
		t.Errorf("the impostor saw the token; requests: %q", fs.requests)
	}
	if !strings.Contains(f.calls(), "stop --json-notes -- "+fs.rec.ID) {
		t.Errorf("the launched session was not stopped: %q", f.calls())
	}
}

// Ctrl-C while the launcher still checks the session's server: the session it
// launched is stopped, and the command ends "interrupted" (exit code 130), saying
// whether nothing was left running; a session it only attached to is left alone.
func TestServeLocalInterruptedWhileChecking(t *testing.T) {
	tests := []struct {
		name     string
		attach   bool
		stopFail bool
		wantMsg  string
		wantStop bool
		wantLine string // on stderr
	}{
		{name: "launched", wantMsg: "interrupted; nothing was left running on fakehost", wantStop: true},
		{name: "launched, stop fails", stopFail: true, wantMsg: "interrupted", wantStop: true,
			wantLine: "tether: could not stop session abcdefgh on fakehost"},
		{name: "attached", attach: true, wantMsg: "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRemote(t)
			f.install()
			fs := startFakeServer(t, false)
			fs.mu.Lock()
			fs.hang = true
			fs.mu.Unlock()
			f.write("serve.out", recordLine(t, fs.rec)+"\n")
			running := fs.rec
			running.State = wire.StateRunning
			list, _ := json.Marshal([]wire.Record{running})
			f.write("ls.out", string(list)+"\n")
			if tt.stopFail {
				f.write("stop.out", "")
				f.write("stop.err", "tether: no\n")
				f.write("stop.status", "1")
			}
			var stderr syncBuf
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			o := Options{SSH: f.cfg, Host: "fakehost", Version: "test", RemoteBinary: f.bin, Stdout: io.Discard, Stderr: &stderr}
			fo := ForwardOptions{NoBrowser: true}
			go func() {
				if tt.attach {
					done <- Attach(ctx, AttachOptions{Options: o, ForwardOptions: fo})
				} else {
					done <- Launch(ctx, LaunchOptions{Options: o, ForwardOptions: fo})
				}
			}()
			waitFor(t, "the check of the server", func() bool {
				fs.mu.Lock()
				defer fs.mu.Unlock()
				return len(fs.requests) > 0
			})
			cancel()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("serveLocal did not return; stderr:\n%s", stderr.String())
			}
			var le *Error
			if !errors.As(err, &le) || le.Msg != tt.wantMsg || le.Code != 130 {
				t.Fatalf("got %#v; want %q, code 130\nstderr:\n%s", err, tt.wantMsg, stderr.String())
			}
			if stopped := strings.Contains(f.calls(), "stop --json-notes -- "+fs.rec.ID); stopped != tt.wantStop {
				t.Errorf("stopped %v, want %v; calls %q", stopped, tt.wantStop, f.calls())
			}
			if e := stderr.String(); !strings.Contains(e, tt.wantLine) || strings.Contains(e, "ready") {
				t.Errorf("stderr lacks %q or says ready:\n%s", tt.wantLine, e)
			}
		})
	}
}

func TestLaunchAppFailsToStart(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	f.write("serve.err", noteLine(t, wire.Stepf("starting python3 app.py")))
	// serve's failure is data: the launcher decides by its kind, and words the line.
	failure := wire.Fail(wire.FailAppExited, wire.Plain("the app exited with status 2 before it was ready"), wire.Plain("check the command and try again"))
	failure.AppOutput = []string{"Traceback (most recent call last):", "  ValueError: bad flag --x"}
	f.write("serve.out", string(failure.Line()))
	f.write("serve.status", "1")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, Command: []string{"python3", "app.py"}})
	err := r.wait(t)
	want := "could not start python3 app.py on fakehost: the app exited with status 2 before it was ready; fix the command and try again (nothing was left running)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v; want %q", err, want)
	}
	e := r.stderr.String()
	if !strings.Contains(e, "tether: the app's last output on fakehost:\n  Traceback (most recent call last):\n  ValueError: bad flag --x\n") {
		t.Errorf("stderr should show the app's output:\n%q", e)
	}
	if len(r.opened) != 0 || r.stdout.String() != "" {
		t.Errorf("a failed launch printed or opened something")
	}
}

// Inputs are judged once, before anything starts: serve's flags by serve's own rules
// (wire.Serve.Check), on the laptop, so a bad one costs no connection at all.
func TestLaunchJudgesServeFlagsFirst(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	for _, o := range []LaunchOptions{{Name: "bad name"}, {Name: "abcd2345"}, {IdleTimeout: -time.Second}} {
		r := startLaunch(t, f, o)
		err := r.wait(t)
		var le *Error
		if !errors.As(err, &le) || le.ExitCode() != 2 || !strings.Contains(err.Error(), "session name") && !strings.Contains(err.Error(), "--idle-timeout") {
			t.Errorf("%+v: got %v; want a usage error", o, err)
		}
	}
	if c := f.calls(); c != "" {
		t.Errorf("the remote was reached: %q", c)
	}
}

func TestLaunchHostileRecord(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	f.write("serve.out", `{"id":"abcdefgh","socket":"/etc/passwd","token":"x"}`+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "sent a bad answer to the start") {
		t.Fatalf("got %v", err)
	}
}

func TestLaunchInstallsWithProgress(t *testing.T) {
	f := newFakeRemote(t)
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	bin := f.bin
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
	waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	if e := r.stderr.String(); !strings.Contains(e, "installing tether on fakehost") {
		t.Errorf("no install step on stderr:\n%s", e)
	}
	b, _ := newBuild("test", bin)
	if _, err := os.Stat(filepath.Join(f.home, ".cache/tether/bin", b.remoteName())); err != nil {
		t.Errorf("not installed: %v", err)
	}
}

func TestLaunchPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f := newFakeRemote(t)
	f.install()
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{Port: ln.Addr().(*net.TCPAddr).Port}})
	err = r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), "--port") {
		t.Fatalf("got %v", err)
	}
	if f.calls() != "" {
		t.Errorf("something ran on the remote: %q", f.calls())
	}
}

func TestAttachAndPassThrough(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	running := fs.rec
	running.State = wire.StateRunning
	list, _ := json.Marshal([]wire.Record{running})
	f.write("ls.out", string(list)+"\n")

	stdout, stderr := &syncBuf{}, &syncBuf{}
	opened := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Attach(ctx, AttachOptions{Options: Options{SSH: f.cfg, Host: "fakehost", Version: "test", RemoteBinary: f.bin, Stdout: stdout, Stderr: stderr},
			ForwardOptions: ForwardOptions{OpenFile: true, Open: func(p string) error { opened <- p; return nil }}})
	}()
	var target string
	select {
	case target = <-opened:
	case err := <-done:
		t.Fatalf("attach: %v\n%s", err, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatal("attach opened nothing")
	}
	if strings.Contains(target, "code=") || strings.Contains(target, fs.rec.Token) || !strings.HasSuffix(target, ".html") {
		t.Errorf("--open-file opened %q: want a file path without code or token", target)
	}
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("redirect file: %v %v", fi, err)
	}
	di, _ := os.Stat(filepath.Dir(target))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("redirect dir mode %v", di.Mode().Perm())
	}
	page, _ := os.ReadFile(target)
	if !strings.Contains(string(page), "?code=tc1.") && !strings.Contains(string(page), "?code=") {
		t.Errorf("redirect page lacks the code: %s", page)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the redirect file outlived the launcher")
	}

	// ls, stop and logs pass output and exit status through.
	var out syncBuf
	o := Options{SSH: f.cfg, Host: "fakehost", Version: "test", RemoteBinary: f.bin, Stdout: &out, Stderr: &out}
	if err := Logs(context.Background(), LogsOptions{Options: o, Target: "abcdefgh"}); err != nil || out.String() != "app line 1\napp line 2\n" {
		t.Errorf("logs: %v %q", err, out.String())
	}
	if err := Stop(context.Background(), StopOptions{Options: o, Target: "abcdefgh"}); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := Stop(context.Background(), StopOptions{Options: o}); err == nil {
		t.Errorf("stop without a target: no error")
	}
}

// noteLine is a note as serve --json-notes writes it on stderr.
func noteLine(t *testing.T, n wire.Note) string {
	t.Helper()
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// stop HOST (--all) is data: the remote's wire.Stopped lines are worded here, the host
// as the user typed it; nothing else the remote prints on stdout (its own host name, a
// login shell's chatter) reaches the user. Its failure is worded too.
func TestStopWordsTheRemotesAnswer(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	stop := func(all bool, target string) (string, error) {
		var out, errb syncBuf
		o := Options{SSH: f.cfg, Host: "gpu-box", Version: "test", RemoteBinary: f.bin, Stdout: &out, Stderr: &errb}
		err := Stop(context.Background(), StopOptions{Options: o, All: all, Target: target})
		return out.String() + errb.String(), err
	}

	// Nothing to stop: said with the host as typed (the remote knows itself as
	// login7.cluster.example).
	f.write("stop.out", "Welcome to login7.cluster.example\n")
	out, err := stop(true, "")
	if err != nil || out != "no tether sessions on gpu-box\n" {
		t.Errorf("stop --all, nothing to stop: %v\n%q; want %q", err, out, "no tether sessions on gpu-box\n")
	}
	if c := f.calls(); !strings.Contains(c, "stop --json-notes --json --all") {
		t.Errorf("the remote was not asked for data: calls\n%s", c)
	}

	// Two sessions, one a batch job's.
	f.write("stop.out", "Welcome to login7.cluster.example\n"+`{"stopped":"abcdefgh"}`+"\n"+`{"stopped":"ijklmnop","job_id":"42"}`+"\n")
	out, err = stop(true, "")
	if want := "stopped abcdefgh\nstopped ijklmnop (job 42 cancelled)\n"; err != nil || out != want {
		t.Errorf("stop --all: %v\n%q; want %q", err, out, want)
	}

	// A failure is the remote's, worded here, the machine as the user typed it.
	f.write("stop.out", "")
	f.write("stop.err", string(wire.Fail(wire.FailNoSession, wire.Textf("no session nb on %v", wire.Machine("login7.cluster.example")), nil).Line()))
	f.write("stop.status", "1")
	out, err = stop(false, "nb")
	if err == nil || !strings.Contains(err.Error(), "no session nb on gpu-box") || strings.Contains(out+err.Error(), "login7") {
		t.Errorf("stop nb, no such session: %v\n%q", err, out)
	}

	// A line that claims to be an answer but is not a valid one is not shown.
	f.write("stop.err", "")
	f.write("stop.status", "0")
	f.write("stop.out", `{"stopped":"../../etc"}`+"\n")
	if out, err = stop(false, "nb"); err == nil || strings.Contains(out, "etc") {
		t.Errorf("a bad answer: %v\n%q", err, out)
	}
}
