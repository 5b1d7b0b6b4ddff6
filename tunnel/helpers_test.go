package tunnel

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestMain lets the test binary act as a tiny netcat for ProxyCommand tests:
// TUNNEL_TEST_NC=1 tunnel.test HOST PORT.
func TestMain(m *testing.M) {
	if os.Getenv("TUNNEL_TEST_NC") == "1" {
		os.Exit(netcat(os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func netcat(host, port string) int {
	c, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nc:", err)
		return 1
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(c, os.Stdin); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(os.Stdout, c); done <- struct{}{} }()
	<-done
	return 0
}

func newEd25519(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newECDSA(tb testing.TB) ssh.Signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newRSA(tb testing.TB) ssh.Signer {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// writeKey writes an OpenSSH private key file (encrypted when passphrase is set) and
// its .pub, and returns the private key's path.
func writeKey(tb testing.TB, dir, name string, passphrase string) (string, ssh.Signer) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if passphrase != "" {
		// ssh-keygen with one KDF round: x/crypto always uses 16, slow under -race.
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-a", "1", "-N", passphrase, "-C", "", "-f", p).CombinedOutput(); err != nil {
			tb.Skipf("ssh-keygen: %v %s", err, out)
		}
		pk, _, _, _, err := ssh.ParseAuthorizedKey(readFileT(tb, p+".pub"))
		if err != nil {
			tb.Fatal(err)
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(readFileT(tb, p), []byte(passphrase))
		if err != nil || !bytes.Equal(s.PublicKey().Marshal(), pk.Marshal()) {
			tb.Fatal(err)
		}
		return p, s
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	if err := os.WriteFile(p+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		tb.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(priv)
	return p, s
}

// testServer is an in-process Server on 127.0.0.1 with a client Config that reaches it.
type testServer struct {
	*Server
	ln         net.Listener
	Addr       string
	Port       int
	ClientKey  ssh.Signer
	Dir        string
	KnownHosts string
}

// startServer serves on a real socket on 127.0.0.1.
func startServer(tb testing.TB, tweak func(*Server)) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return serveOn(tb, ln, tweak)
}

// serveOn serves a new testServer on ln, whose Addr must be a *net.TCPAddr.
func serveOn(tb testing.TB, ln net.Listener, tweak func(*Server)) *testServer {
	tb.Helper()
	ts := &testServer{Server: &Server{HostKey: newEd25519(tb)}, ClientKey: newEd25519(tb), Dir: tb.TempDir()}
	ts.AuthorizedKey = ts.ClientKey.PublicKey()
	ts.Env = []string{"HOME=" + ts.Dir}
	if tweak != nil {
		tweak(ts.Server)
	}
	ts.ln = ln
	ts.Addr = ln.Addr().String()
	ts.Port = ln.Addr().(*net.TCPAddr).Port
	ts.KnownHosts = filepath.Join(ts.Dir, "known_hosts")
	writeFile(tb, ts.KnownHosts, knownhosts.Line([]string{ts.Addr}, ts.HostKey.PublicKey())+"\n")
	served := make(chan struct{})
	go func() { ts.Serve(ln); close(served) }()
	tb.Cleanup(func() { ts.Close(); <-served })
	return ts
}

// config is a programmatic Config for ts: its key, its known_hosts, strict, batch.
func (ts *testServer) config() *Config {
	return &Config{
		Alias: "test", HostName: "127.0.0.1", Port: ts.Port, User: "tester",
		Signers:               []ssh.Signer{ts.ClientKey},
		IdentityAgent:         "none",
		IdentitiesOnly:        true,
		UserKnownHostsFiles:   []string{ts.KnownHosts},
		StrictHostKeyChecking: "yes",
		BatchMode:             true,
		ConnectTimeout:        5 * time.Second,
		ServerAliveCountMax:   3,
	}
}

func (ts *testServer) dial(tb testing.TB, cfg *Config, o Options) *Client {
	tb.Helper()
	c, err := Dial(context.Background(), cfg, o)
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func writeFile(tb testing.TB, p, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// events records Events for assertions.
type events struct {
	mu sync.Mutex
	ev []Event
	ch chan Event
}

func newEvents() *events { return &events{ch: make(chan Event, 1000)} }

func (e *events) on(ev Event) {
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

// waitFor waits for an event of state s.
func (e *events) waitFor(tb testing.TB, s State, timeout time.Duration) Event {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev := <-e.ch:
			if ev.State == s {
				return ev
			}
		case <-t.C:
			tb.Fatalf("no %v event within %v; saw %v", s, timeout, e.states())
			return Event{}
		}
	}
}

func (e *events) states() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s []string
	for _, ev := range e.ev {
		s = append(s, ev.State.String())
	}
	return strings.Join(s, ",")
}

// fakePrompter answers from fixed values and records what it was asked.
type fakePrompter struct {
	mu         sync.Mutex
	passphrase string
	password   string
	answers    []string
	confirm    bool
	asked      []string
}

func (f *fakePrompter) record(s string) {
	f.mu.Lock()
	f.asked = append(f.asked, s)
	f.mu.Unlock()
}

func (f *fakePrompter) Passphrase(k string) ([]byte, error) {
	f.record("passphrase " + k)
	return []byte(f.passphrase), nil
}

func (f *fakePrompter) Password(u, h string) (string, error) {
	f.record("password " + u + "@" + h)
	return f.password, nil
}

func (f *fakePrompter) KeyboardInteractive(u, h, name, instr string, q []string, echos []bool) ([]string, error) {
	f.record(fmt.Sprintf("kbd %q %v", q, echos))
	return f.answers, nil
}

func (f *fakePrompter) ConfirmHostKey(h, msg string) (bool, error) {
	f.record("hostkey " + msg)
	return f.confirm, nil
}

func (f *fakePrompter) all() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.asked, "\n")
}

// scriptedPrompter answers keyboard-interactive rounds with answers[i] for the i-th
// call (the last one again after that).
type scriptedPrompter struct {
	fakePrompter
	answers []func() ([]string, error)
	n       atomic.Int32
}

func (s *scriptedPrompter) KeyboardInteractive(u, h, name, instr string, q []string, echos []bool) ([]string, error) {
	i := int(s.n.Add(1)) - 1
	return s.answers[min(i, len(s.answers)-1)]()
}

func (s *scriptedPrompter) calls() int { return int(s.n.Load()) }

// forgetDecryptedKeys empties the process's cache of decrypted keys.
func forgetDecryptedKeys() {
	decrypted.Lock()
	clear(decrypted.m)
	decrypted.Unlock()
}

// echoUnix serves an echo server on a Unix socket in a temp dir.
func echoUnix(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "tt-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", p)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.(*net.UnixConn).CloseWrite()
				c.Close()
			}()
		}
	}()
	return p
}

func readFileT(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
