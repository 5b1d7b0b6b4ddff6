package tunnel

import (
	"context"
	"errors"
	"net"
	"path/filepath"
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
	// Without a way to ask, the encrypted keys are skipped with a warning.
	var warn strings.Builder
	cfg.BatchMode = true
	c, err := Dial(context.Background(), cfg, Options{Warn: &warn})
	if err == nil {
		c.Close()
		t.Fatal("encrypted key used without a passphrase")
	}
	var ae *AuthError
	if !errors.As(err, &ae) || !strings.Contains(warn.String(), "encrypted") {
		t.Errorf("err %v, warnings %q", err, warn.String())
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
