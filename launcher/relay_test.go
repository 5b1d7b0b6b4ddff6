package launcher

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/tunnel"
)

// The relay's stream is replaced by a direct loopback TCP dial to the in-process
// server (fakeRemote): what is tested is everything the launcher does around it.

const relayTestToken = "client-token-for-portal-lab-0123456789abcdef"

// relayDialer records what the launcher asked the relay for and dials addr.
type relayDialer struct {
	addr  string
	mu    sync.Mutex
	calls []string // "URL TOKEN PORTAL"
	fail  error
}

func (d *relayDialer) dial(ctx context.Context, relayURL, token, portal string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, relayURL+" "+token+" "+portal)
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return (&net.Dialer{}).DialContext(ctx, "tcp", d.addr)
}

func (d *relayDialer) n() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// relayRemote is a fakeRemote that takes the client token as the SSH password and no
// key of the launcher's, and the options that reach it as portal:lab.
func relayRemote(t *testing.T) (*fakeRemote, *relayDialer, Options) {
	t.Helper()
	// No key of the user running the tests, no agent: the token alone logs in.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SSH_AUTH_SOCK", "")
	f := newFakeRemoteWith(t, func(s *tunnel.Server) { s.Password = relayTestToken })
	d := &relayDialer{addr: net.JoinHostPort(f.cfg.HostName, fmt.Sprint(f.cfg.Port))}
	o := Options{Host: "portal:lab", Relay: "wss://relay.example.test/r", RelayToken: relayTestToken,
		RelayKnownHosts: filepath.Join(t.TempDir(), "cfg", "tether", "known_hosts"), RelayDial: d.dial,
		Version: "test", RemoteBinary: f.bin}
	return f, d, o
}

// TestRelayLaunch: a whole launch over the relay's stream: the token logs in as the
// SSH password, the host key is pinned on first use (the file, its mode, its line,
// the note), the session is forwarded, and the hints to come back carry --relay.
func TestRelayLaunch(t *testing.T) {
	f, d, o := relayRemote(t)
	f.install()
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	stdout, stderr := &syncBuf{}, &syncBuf{}
	o.Stdout, o.Stderr = stdout, stderr
	lo := LaunchOptions{Options: o, ForwardOptions: ForwardOptions{JSON: true, Open: func(string) error { return nil }}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Launch(ctx, lo) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Launch did not return")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.HasSuffix(stdout.String(), "\n") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("Launch ended before its JSON line: %v; stderr:\n%s", err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JSON line; stderr:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var line JSONLine
	if err := json.Unmarshal([]byte(stdout.String()), &line); err != nil || line.Session.ID != fs.rec.ID {
		t.Fatalf("JSON line %q: %v", stdout.String(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Launch: %v; stderr:\n%s", err, stderr)
	}
	done <- nil

	if d.n() == 0 || d.calls[0] != "wss://relay.example.test/r "+relayTestToken+" lab" {
		t.Errorf("relay dials %q; want the URL, the token and portal lab", d.calls)
	}
	// Pinned: one line `portal:lab ssh-ed25519 …` in a 0600 file in a 0700 directory.
	b, err := os.ReadFile(o.RelayKnownHosts)
	if err != nil {
		t.Fatalf("known_hosts not written: %v", err)
	}
	want := "portal:lab " + string(ssh.MarshalAuthorizedKey(f.srv.HostKey.PublicKey()))
	if string(b) != want {
		t.Errorf("known_hosts:\n%q\nwant\n%q", b, want)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(o.RelayKnownHosts)
		di, _ := os.Stat(filepath.Dir(o.RelayKnownHosts))
		if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
			t.Errorf("known_hosts mode %v, its directory %v; want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
		}
	}
	fp := ssh.FingerprintSHA256(f.srv.HostKey.PublicKey())
	e := stderr.String()
	if !strings.Contains(e, "tether: Permanently added 'portal:lab' (ED25519 "+fp+") to the list of known hosts in "+o.RelayKnownHosts) {
		t.Errorf("stderr lacks the note on the pinned key:\n%s", e)
	}
	if !strings.Contains(e, "tether attach --relay wss://relay.example.test/r portal:lab "+fs.rec.ID) {
		t.Errorf("stderr lacks the attach hint with --relay:\n%s", e)
	}
	if strings.Contains(e+stdout.String(), relayTestToken) {
		t.Errorf("the portal token was printed:\n%s", e)
	}

	// Again: the pinned key is accepted, said nothing of, and not written twice.
	var out bytes.Buffer
	o.Stdout, o.Stderr = &out, &out
	s, err := open(context.Background(), o, oneCommand)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	s.close()
	if b2, _ := os.ReadFile(o.RelayKnownHosts); string(b2) != want {
		t.Errorf("known_hosts after the second connection:\n%q", b2)
	}
	if strings.Contains(out.String(), "Permanently added") {
		t.Errorf("a known key was announced again: %q", out.String())
	}
}

// TestRelayReconnect: a dropped connection is made again through the relay's dialer,
// with the pinned key checked again.
func TestRelayReconnect(t *testing.T) {
	f, d, o := relayRemote(t)
	s, err := open(context.Background(), o, oneCommand)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	run := func() {
		t.Helper()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if st, err := s.conn.Run(ctx, "echo through-the-relay", nil, &out, nil); err != nil || st != 0 || out.String() != "through-the-relay\n" {
			t.Fatalf("Run: status %d, err %v, out %q", st, err, out.String())
		}
	}
	run()
	if f.srv.CloseConnections() == 0 {
		t.Fatal("no connection to drop")
	}
	waitFor(t, "a second dial through the relay", func() bool { return d.n() >= 2 })
	run()
}

// TestRelayChangedKey: a portal whose host shows another key than the one pinned is
// refused with the words of a changed SSH host key, the file and line, and the fix.
func TestRelayChangedKey(t *testing.T) {
	_, _, o := relayRemote(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := ssh.NewPublicKey(other.Public())
	if err := os.MkdirAll(filepath.Dir(o.RelayKnownHosts), 0o700); err != nil {
		t.Fatal(err)
	}
	pinned := "portal:other ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\n" +
		"portal:lab " + string(ssh.MarshalAuthorizedKey(otherKey))
	if err := os.WriteFile(o.RelayKnownHosts, []byte(pinned), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o.Stdout, o.Stderr = &out, &out
	_, err := open(context.Background(), o, oneCommand)
	var changed *tunnel.HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("open: %v; want a changed host key", err)
	}
	msg := err.Error()
	for _, w := range []string{
		"the host key of portal:lab has CHANGED",
		fmt.Sprintf("%s:2 holds %s", o.RelayKnownHosts, ssh.FingerprintSHA256(otherKey)),
		"someone may be intercepting the connection (man-in-the-middle)",
		fmt.Sprintf("`ssh-keygen -R portal:lab -f %s`", o.RelayKnownHosts),
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if b, _ := os.ReadFile(o.RelayKnownHosts); string(b) != pinned {
		t.Errorf("known_hosts changed by a refused connection:\n%s", b)
	}
}

// TestRelayRefusedToken: the host refuses the token (as SSH password): one line
// saying so and where to get a client token, without the token.
func TestRelayRefusedToken(t *testing.T) {
	_, _, o := relayRemote(t)
	o.RelayToken = "a-token-the-host-does-not-take-0123456789"
	_, err := open(context.Background(), o, oneCommand)
	var le *Error
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "the host of portal:lab refused the token in TETHER_PORTAL_TOKEN") ||
		!strings.Contains(err.Error(), "tether relay token --role client --portal lab NAME") {
		t.Fatalf("open: %v; want the refused token, worded", err)
	}
	if strings.Contains(err.Error(), o.RelayToken) {
		t.Errorf("the error shows the token: %v", err)
	}
}

// TestRelayDialFails: the relay's refusal is one line naming the portal and the
// relay, never the token.
func TestRelayDialFails(t *testing.T) {
	_, d, o := relayRemote(t)
	// As relay.RefusedError says it; the launcher drops the package prefix and the status.
	d.fail = errors.New("relay: no host is connected for portal lab (token " + relayTestToken + ") (HTTP 503)")
	_, err := open(context.Background(), o, oneCommand)
	if err == nil || !strings.Contains(err.Error(), "cannot reach portal:lab through the relay wss://relay.example.test/r: no host is connected for portal lab (token [token]); check that") {
		t.Fatalf("open: %v", err)
	}
	if strings.Contains(err.Error(), relayTestToken) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q shows the token or is more than a line", err)
	}
}

// TestRelayArguments: the combinations that cannot work are refused before anything
// is dialled, each with one line saying what to do.
func TestRelayArguments(t *testing.T) {
	var dials atomic.Int32
	base := Options{Host: "portal:lab", Relay: "wss://relay.example.test", RelayToken: relayTestToken,
		RelayKnownHosts: filepath.Join(t.TempDir(), "known_hosts"),
		RelayDial: func(context.Context, string, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, errors.New("not dialled in this test")
		}}
	for _, tt := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no token", func(o *Options) { o.RelayToken = "" }, "--relay needs your client token for portal:lab in TETHER_PORTAL_TOKEN (never on the command line)"},
		{"not a portal", func(o *Options) { o.Host = "gpu-box" }, "--relay reaches a portal: give the host as portal:ID"},
		{"portal without relay", func(o *Options) { o.Relay = "" }, "portal:lab names a portal behind a relay: add --relay URL"},
		{"user@portal", func(o *Options) { o.Host = "me@portal:lab" }, "me@portal:lab: drop the user name and give portal:ID"},
		{"bad id", func(o *Options) { o.Host = "portal:-x" }, "portal:-x: a portal id is 1 to 64 letters"},
		{"empty id", func(o *Options) { o.Host = "portal:" }, "portal:: a portal id is 1 to 64 letters"},
		{"token in URL", func(o *Options) { o.Relay = "wss://relay.example.test/?token=abc" }, "--relay takes the relay's address only"},
		{"not a URL", func(o *Options) { o.Relay = "relay" }, "--relay relay is not a URL"},
		{"ssh openssh", func(o *Options) { o.SSHMode = SSHOpenSSH }, "--ssh openssh cannot go through a relay"},
		{"-F", func(o *Options) { o.ConfigFile = "/dev/null" }, "-F reads ssh_config, which a portal behind a relay does not use"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.edit(&o)
			_, err := open(context.Background(), o, oneCommand)
			var le *Error
			if !errors.As(err, &le) || le.ExitCode() != 2 || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("open: %v; want a one-line usage error with %q", err, tt.want)
			}
		})
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("the relay was dialled %d times for refused arguments", n)
	}
}

// TestRelayPinConcurrent: launches pinning at once (other portals, and the same one)
// leave a file with every portal once, each line whole.
func TestRelayPinConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tether", "known_hosts")
	keys := make([]ssh.PublicKey, 8)
	for i := range keys {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		keys[i], _ = ssh.NewPublicKey(priv.Public())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for round := 0; round < 4; round++ {
		for i, k := range keys {
			wg.Go(func() {
				p := &hostPin{file: file, host: fmt.Sprintf("portal:p%d", i)}
				errs <- p.check("", nil, k)
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("check: %v", err)
		}
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(keys) {
		t.Fatalf("%d lines; want %d:\n%s", len(lines), len(keys), b)
	}
	for i, k := range keys {
		want := fmt.Sprintf("portal:p%d %s", i, strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n"))
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("no line %q", want)
		}
	}
	if _, err := os.Stat(file + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file was left behind: %v", err)
	}
}

// refused is the relay's refusal of a token (relay.RefusedError's Permanent).
type refused struct{}

func (refused) Error() string   { return "relay: token expired (HTTP 401)" }
func (refused) Permanent() bool { return true }

// TestRelayTokenRefusedOnReconnect: the relay refuses the token when the launcher
// comes back after a drop (it expired meanwhile): the reconnecting stops at once and
// the command ends saying the token was refused and how to get another.
func TestRelayTokenRefusedOnReconnect(t *testing.T) {
	f, d, o := relayRemote(t)
	s, err := open(context.Background(), o, oneCommand)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	d.mu.Lock()
	d.fail = refused{}
	d.mu.Unlock()
	f.srv.CloseConnections()
	waitFor(t, "the redial through the relay", func() bool { return d.n() >= 2 })
	var ferr error
	waitFor(t, "the client to give up", func() bool {
		_, ferr = s.conn.DialContext(context.Background(), "tcp", "127.0.0.1:1")
		return errors.As(ferr, new(refused))
	})
	msg := s.connectError(ferr).Error()
	if !strings.Contains(msg, "the relay wss://relay.example.test/r refused the token in TETHER_PORTAL_TOKEN for portal:lab: token expired; it must be") ||
		!strings.Contains(msg, "tether relay token --role client --portal lab NAME") {
		t.Errorf("error %q", msg)
	}
	time.Sleep(500 * time.Millisecond) // a retry would come after 250 ms or so
	if n := d.n(); n != 2 {
		t.Errorf("relay dialled %d times; want 2 (no retry after the refusal)", n)
	}
}

// TestRelayKeyAlsoRequired: a host that took the token as a first step (partial
// success) and then wants a key says so, not that the token was refused.
func TestRelayKeyAlsoRequired(t *testing.T) {
	o := Options{Host: "portal:lab", Relay: "wss://relay.example.test"}
	err := relayError(o, &tunnel.AuthError{User: "me", Host: "portal:lab", Tried: []string{"password", "agent key SHA256:abc"},
		ServerMethods: []string{"publickey"}, Partial: []string{"password"}})
	if !strings.Contains(err.Error(), "the host of portal:lab took your token but also requires an SSH key it knows, and refused yours (tried agent key SHA256:abc)") {
		t.Errorf("error %q", err)
	}
}

// TestRefusalReason: the relay's refusals, as relay.Dial returns them, say the reason
// once (e2e/relay's bad-tokens found "relay: the relay refused the token: token not
// valid: it has expired; ask for a new one (tether relay token) (HTTP 401)" inside
// "the relay … refused the token …: ").
func TestRefusalReason(t *testing.T) {
	for in, want := range map[string]string{
		"relay: the relay refused the token: token not valid: it has expired; ask for a new one (tether relay token) (HTTP 401)": "it has expired",
		"relay: the relay refused the token: token is for another role: it is a host token, not a client token (HTTP 403)":       "it is a host token, not a client token",
		"relay: the relay refused the token: token is for another portal: it is for portal other, not lab (HTTP 403)":            "it is for portal other, not lab",
		"relay: the relay refused the token: token not valid: its signature is not this relay's (HTTP 401)":                      "its signature is not this relay's",
		"relay: the relay needs a token (Authorization: Bearer) (HTTP 401)":                                                      "the relay needs a token (Authorization: Bearer)",
	} {
		if got := refusalReason(in); got != want {
			t.Errorf("refusalReason(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestRelayReconnectToldOnce: while the host is away the launcher redials through the
// relay with backoff and warns once, in one line without the hint, not at every
// attempt; a relay that cannot be reached is named once, not "cannot reach" twice.
func TestRelayReconnectToldOnce(t *testing.T) {
	f, d, o := relayRemote(t)
	var stderr syncBuf
	o.Stderr = &stderr
	s, err := open(context.Background(), o, oneCommand)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	d.mu.Lock()
	d.fail = errors.New("relay: no host is connected for portal lab (HTTP 503)")
	d.mu.Unlock()
	f.srv.CloseConnections()
	waitFor(t, "three redials", func() bool { return d.n() >= 4 })
	d.mu.Lock()
	d.fail = errors.New("relay: cannot reach the relay at relay.example.test:443: connection refused (is tether relay running there?)")
	d.mu.Unlock()
	n := d.n()
	waitFor(t, "two more redials", func() bool { return d.n() >= n+2 })
	var got []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "reconnecting") || strings.Contains(l, "check that") {
			got = append(got, l)
		}
	}
	want := []string{
		"tether: warning: reconnecting to portal:lab (attempt 1): cannot reach portal:lab through the relay wss://relay.example.test/r: no host is connected for portal lab; trying again",
		"tether: warning: reconnecting to portal:lab (attempt ",
	}
	if len(got) != 2 || got[0] != want[0] || !strings.HasPrefix(got[1], want[1]) ||
		!strings.HasSuffix(got[1], "): cannot reach portal:lab: cannot reach the relay at relay.example.test:443: connection refused (is tether relay running there?); trying again") {
		t.Errorf("over %d failed attempts the launcher said:\n%s\nwant two lines, one per kind of failure:\n%s", d.n()-1, stderr.String(), strings.Join(want, "\n"))
	}
}

// TestRelayTokenExpiredAtLogin: a login the host refuses once the client token has
// expired (the host closed the connection at its exp; the relay's 30 s of leeway let
// the redial through) says the token expired and how to come back.
func TestRelayTokenExpiredAtLogin(t *testing.T) {
	_, _, o := relayRemote(t)
	o.RelayToken = "a-token-the-host-does-not-take-0123456789"
	o.RelayTokenExpires = time.Date(2026, 1, 2, 3, 4, 0, 0, time.Local)
	_, err := open(context.Background(), o, oneCommand)
	want := "your client token for portal:lab (in TETHER_PORTAL_TOKEN) expired at 2026-01-02 03:04 " + o.RelayTokenExpires.Format("MST") +
		"; ask the relay's operator for a new one (`tether relay token --role client --portal lab NAME`); sessions on portal:lab keep running: `tether attach --relay wss://relay.example.test/r portal:lab` reaches them again"
	if err == nil || err.Error() != want {
		t.Errorf("open: %v; want %q", err, want)
	}
	o.RelayTokenExpires = time.Now().Add(time.Hour) // not expired: the host's refusal as it is
	if _, err := open(context.Background(), o, oneCommand); err == nil || !strings.Contains(err.Error(), "the host of portal:lab refused the token") {
		t.Errorf("open with a token not expired: %v", err)
	}
}
