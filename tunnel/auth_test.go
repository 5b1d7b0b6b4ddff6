package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// otpServer asks one hidden question and accepts "123456".
func otpServer(t *testing.T) *testServer {
	return startServer(t, func(s *Server) {
		s.AuthorizedKey = newEd25519(t).PublicKey() // the client's key is not it
		s.KeyboardInteractive = func(user string, ch ssh.KeyboardInteractiveChallenge) bool {
			ans, err := ch(user, "Duo two-factor", []string{"Verification code: "}, []bool{false})
			return err == nil && len(ans) == 1 && ans[0] == "123456"
		}
	})
}

func TestKeyboardInteractive(t *testing.T) {
	ts := otpServer(t)
	cfg := ts.config()
	cfg.BatchMode = false
	p := &fakePrompter{answers: []string{"123456"}}
	if err := dialErr(cfg, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.all(), `kbd ["Verification code: "] [false]`) {
		t.Errorf("asked: %q", p.all())
	}
	// A wrong code is refused with an AuthError naming what was tried.
	err := dialErr(cfg, &fakePrompter{answers: []string{"000000"}})
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("wrong code: %v", err)
	}
}

func TestPassword(t *testing.T) {
	ts := startServer(t, func(s *Server) {
		s.AuthorizedKey = newEd25519(t).PublicKey()
		s.Password = "s3cret"
	})
	cfg := ts.config()
	cfg.BatchMode = false
	p := &fakePrompter{password: "s3cret"}
	if err := dialErr(cfg, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.all(), "password tester@127.0.0.1") {
		t.Errorf("asked: %q", p.all())
	}
}

// TestNoPromptFailsFast: BatchMode, or no terminal, with a server that wants a typed
// answer: a clear error at once, no hang.
func TestNoPromptFailsFast(t *testing.T) {
	ts := otpServer(t)
	for _, batch := range []bool{true, false} {
		cfg := ts.config()
		cfg.BatchMode = batch
		c := newClient(cfg, Options{})
		c.prompter = nil // as without a terminal
		start := time.Now()
		_, err := c.dialOnce(context.Background())
		c.cancel()
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, ErrNoPrompt) {
			t.Fatalf("batch=%v: %v; want AuthError wrapping ErrNoPrompt", batch, err)
		}
		want := "there is no terminal"
		if batch {
			want = "BatchMode"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("batch=%v: %v; want it to say %q", batch, err, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("batch=%v: took %v", batch, d)
		}
	}
	// BatchMode never uses a Prompter, even one given.
	cfg := ts.config()
	p := &fakePrompter{answers: []string{"123456"}}
	if err := dialErr(cfg, p); err == nil || p.all() != "" {
		t.Fatalf("BatchMode with a prompter: err %v, asked %q", err, p.all())
	}
}

// TestEncryptedKey: the passphrase is asked only for the key the server accepts.
func TestEncryptedKey(t *testing.T) {
	dir := t.TempDir()
	other, _ := writeKey(t, dir, "id_other", "pass-other")
	good, signer := writeKey(t, dir, "id_good", "pass-good")
	ts := startServer(t, func(s *Server) { s.AuthorizedKey = signer.PublicKey() })
	cfg := ts.config()
	cfg.Signers = nil
	cfg.BatchMode = false
	cfg.IdentityFiles = []string{filepath.Join(dir, "missing"), other, good}
	p := &fakePrompter{passphrase: "pass-good"}
	if err := dialErr(cfg, p); err != nil {
		t.Fatal(err)
	}
	if got := p.all(); got != "passphrase "+good {
		t.Errorf("asked %q; want only the passphrase of %s", got, good)
	}
	// A wrong passphrase is asked three times, then the dial fails saying so.
	forgetDecryptedKeys()
	wrong := &fakePrompter{passphrase: "nope"}
	err := dialErr(cfg, wrong)
	if err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Errorf("wrong passphrase: %v", err)
	}
	if n := strings.Count(wrong.all(), "passphrase "+good); n != 3 {
		t.Errorf("asked %d times; want 3", n)
	}
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Errorf("wrong passphrase: %T %v; want an AuthError (final: a redial would ask again)", err, err)
	}
	// An empty answer skips the key, as in ssh: asked once, and the AuthError names the
	// key not unlocked (not x/crypto's "bcrypt_pbkdf: empty password").
	forgetDecryptedKeys()
	empty := &fakePrompter{passphrase: ""}
	err = dialErr(cfg, empty)
	if !errors.As(err, &ae) || !slices.Contains(ae.NotUnlocked, good) || strings.Contains(err.Error(), "bcrypt") {
		t.Errorf("empty passphrase: %T %v; want an AuthError naming %s not unlocked", err, err, good)
	}
	if n := strings.Count(empty.all(), "passphrase "+good); n != 1 {
		t.Errorf("empty passphrase: asked %d times; want 1", n)
	}
	// Without a way to ask, the encrypted keys are skipped with a warning and named.
	var warn strings.Builder
	cfg.BatchMode = true
	c, err := Dial(context.Background(), cfg, Options{Warn: &warn})
	if err == nil {
		c.Close()
		t.Fatal("encrypted key used without a passphrase")
	}
	ae = nil
	if !errors.As(err, &ae) || !strings.Contains(warn.String(), "encrypted") {
		t.Errorf("err %v, warnings %q", err, warn.String())
	}
	if ae != nil && (len(ae.Locked) != 2 || ae.Locked[0] != other || ae.Locked[1] != good) {
		t.Errorf("AuthError.Locked = %q; want both encrypted keys", ae.Locked)
	}
}

// TestPassphraseOncePerProcess: an encrypted key without an agent is asked for once per
// process: not again at a reconnect, nor for another connection; a changed key file is
// asked for again.
func TestPassphraseOncePerProcess(t *testing.T) {
	forgetDecryptedKeys()
	t.Cleanup(forgetDecryptedKeys)
	dir := t.TempDir()
	key, signer := writeKey(t, dir, "id_locked", "open sesame")
	ts := startServer(t, func(s *Server) { s.AuthorizedKey = signer.PublicKey() })
	cfg := ts.config()
	cfg.Signers = nil
	cfg.BatchMode = false
	cfg.IdentityFiles = []string{key}
	p := &fakePrompter{passphrase: "open sesame"}
	ev := newEvents()
	c := ts.dial(t, cfg, Options{Prompter: p, OnEvent: ev.on})
	sock := echoUnix(t)
	for round := 1; round <= 2; round++ {
		if ts.CloseConnections() == 0 {
			t.Fatalf("round %d: no connection to drop", round)
		}
		ev.waitFor(t, Back, 10*time.Second)
		conn, err := c.DialContext(context.Background(), "unix", sock)
		if err != nil {
			t.Fatalf("round %d: after the reconnect: %v", round, err)
		}
		conn.Close()
	}
	if got := p.all(); got != "passphrase "+key {
		t.Errorf("asked %q over a dial and two reconnects; want the passphrase once", got)
	}
	// Another connection of the same process: not asked either.
	if err := dialErr(cfg, p); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.all(), "passphrase"); n != 1 {
		t.Errorf("a second connection asked again (%d questions)", n)
	}
	// A new key in the same file is a new question.
	os.Remove(key)
	os.Remove(key + ".pub")
	key2, signer2 := writeKey(t, dir, "id_locked", "open sesame")
	ts.AuthorizedKey = signer2.PublicKey()
	if key2 != key {
		t.Fatalf("key written to %s, not %s", key2, key)
	}
	if err := dialErr(cfg, p); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.all(), "passphrase"); n != 2 {
		t.Errorf("a changed key file was asked for %d times in all; want 2", n)
	}
}

// TestGivingUpAtAPromptIsFinal: when the user gives up at the question of a reconnect
// (Ctrl-D, an error from the terminal), the client fails with an AuthError instead of
// redialing and asking again and again.
func TestGivingUpAtAPromptIsFinal(t *testing.T) {
	ts := otpServer(t)
	cfg := ts.config()
	cfg.BatchMode = false
	p := &scriptedPrompter{answers: []func() ([]string, error){
		func() ([]string, error) { return []string{"123456"}, nil },
		func() ([]string, error) { return nil, io.EOF },
	}}
	ev := newEvents()
	c := ts.dial(t, cfg, Options{Prompter: p, OnEvent: ev.on})
	ts.CloseConnections()
	failed := ev.waitFor(t, Failed, 10*time.Second)
	var ae *AuthError
	if !errors.As(failed.Err, &ae) || !errors.Is(failed.Err, io.EOF) {
		t.Errorf("failed with %v; want an AuthError wrapping the prompt's EOF", failed.Err)
	}
	// Final: the reconnecting goroutine has ended (nothing is left to ask again), and
	// a request now gets the failure without a question.
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client still reconnects after the user gave up")
	}
	if _, err := c.DialContext(context.Background(), "unix", "/nowhere"); !errors.As(err, &ae) {
		t.Errorf("a request after giving up: %v; want the AuthError", err)
	}
	if n := p.calls(); n != 2 {
		t.Errorf("asked %d times; want 2 (the login, then the reconnect that gave up)", n)
	}
}

// TestReconnectWaitsForTheAnswer: a request made while the reconnect's login waits for
// the user (a one-time code) waits for the answer, past ReconnectWait, and then works.
func TestReconnectWaitsForTheAnswer(t *testing.T) {
	ts := otpServer(t)
	cfg := ts.config()
	cfg.BatchMode = false
	release := make(chan struct{})
	p := &scriptedPrompter{answers: []func() ([]string, error){
		func() ([]string, error) { return []string{"123456"}, nil },
		func() ([]string, error) { <-release; return []string{"123456"}, nil },
	}}
	ev := newEvents()
	c := ts.dial(t, cfg, Options{Prompter: p, OnEvent: ev.on, ReconnectWait: 300 * time.Millisecond})
	sock := echoUnix(t)
	ts.CloseConnections()
	ev.waitFor(t, Reconnecting, 5*time.Second)
	time.AfterFunc(time.Second, func() { close(release) }) // the user types after 1 s
	start := time.Now()
	conn, err := c.DialContext(context.Background(), "unix", sock)
	if err != nil {
		t.Fatalf("a request during the question failed after %v: %v", time.Since(start), err)
	}
	conn.Close()
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Errorf("answered after %v, before the code was given", d)
	}
	if n := p.calls(); n != 2 {
		t.Errorf("asked %d times; want 2", n)
	}
	// With nobody being asked, ReconnectWait still bounds the wait.
	ts.ln.Close()
	ts.CloseConnections()
	ev.waitFor(t, Lost, 5*time.Second)
	start = time.Now()
	if _, err := c.DialContext(context.Background(), "unix", sock); err == nil || !strings.Contains(err.Error(), "still reconnecting") {
		t.Errorf("with the server gone: %v; want still reconnecting", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %v; want about ReconnectWait", d)
	}
}

// TestAuthErrorUnsupported: a server that accepts only methods tether's client lacks
// (Kerberos) is told apart from one that refused the keys offered.
func TestAuthErrorUnsupported(t *testing.T) {
	tests := []struct {
		methods []string
		want    bool
	}{
		{nil, false},
		{[]string{"gssapi-with-mic"}, true},
		{[]string{"gssapi-with-mic", "hostbased"}, true},
		{[]string{"publickey", "gssapi-with-mic"}, false},
		{[]string{"keyboard-interactive"}, false},
	}
	for _, tt := range tests {
		if got := (&AuthError{ServerMethods: tt.methods}).Unsupported(); got != tt.want {
			t.Errorf("for %q, got %v; want %v", tt.methods, got, tt.want)
		}
	}
	// The server's methods are recorded from a real refusal.
	ts := startServer(t, nil)
	cfg := ts.config()
	cfg.Signers = []ssh.Signer{newEd25519(t)}
	err := dialErr(cfg, nil)
	var ae *AuthError
	if !errors.As(err, &ae) || !slices.Equal(ae.ServerMethods, []string{"publickey"}) {
		t.Errorf("refused: %v; want ServerMethods [publickey]", err)
	}
}

// TestAgent: keys come from the agent at IdentityAgent; IdentitiesOnly keeps only
// agent keys that match an identity file.
func TestAgent(t *testing.T) {
	dir := t.TempDir()
	keyPath, signer := writeKey(t, dir, "id_agent", "")
	ts := startServer(t, func(s *Server) { s.AuthorizedKey = signer.PublicKey() })
	kr := agent.NewKeyring()
	_, priv := mustParse(t, keyPath)
	if err := kr.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	cfg := ts.config()
	cfg.Signers = nil
	cfg.IdentityAgent = sock
	cfg.IdentitiesOnly = false
	if err := dialErr(cfg, nil); err != nil {
		t.Fatalf("agent: %v", err)
	}
	// IdentitiesOnly with an unrelated identity file: the agent key is not offered.
	other, _ := writeKey(t, dir, "id_other", "")
	cfg.IdentitiesOnly = true
	cfg.IdentityFiles = []string{other}
	var ae *AuthError
	if err := dialErr(cfg, nil); !errors.As(err, &ae) {
		t.Fatalf("IdentitiesOnly: %v", err)
	}
	// …and with the matching .pub beside a file, it is.
	cfg.IdentityFiles = []string{keyPath}
	if err := dialErr(cfg, nil); err != nil {
		t.Fatalf("IdentitiesOnly with the matching file: %v", err)
	}
	// IdentityAgent none: no agent.
	cfg.IdentityAgent, cfg.IdentityFiles = "none", nil
	if err := dialErr(cfg, nil); !errors.As(err, &ae) {
		t.Fatalf("IdentityAgent none: %v", err)
	}
}

func mustParse(t *testing.T, path string) (ssh.Signer, any) {
	t.Helper()
	b := readFileT(t, path)
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s, raw
}
