package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/relay"
)

func TestRelayToken(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "relay.secret")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("s"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := relay.KeyFromSecret(bytes.Repeat([]byte("s"), 32)).Public().(ed25519.PublicKey)
	for _, tt := range []struct {
		args []string
		role relay.Role
		ttl  time.Duration
	}{
		{[]string{"relay", "token", "--secret-file", secret, "--role", "host", "--portal", "lab", "robot1"}, relay.RoleHost, 30 * 24 * time.Hour},
		{[]string{"relay", "token", "robot1", "--role", "client", "--secret-file", secret, "--portal", "lab"}, relay.RoleClient, 24 * time.Hour},
		{[]string{"relay", "token", "--secret-file", secret, "--role", "client", "--portal", "lab", "--days", "7", "robot1"}, relay.RoleClient, 7 * 24 * time.Hour},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tt.args, &stdout, &stderr); code != 0 {
			t.Fatalf("%q: exit %d: %s", tt.args, code, stderr.String())
		}
		tok := strings.TrimSpace(stdout.String())
		c, err := relay.Verify(pub, tok, tt.role, "lab")
		if err != nil {
			t.Fatalf("%q: the token printed does not verify: %v", tt.args, err)
		}
		if c.Name != "robot1" || c.Expires.Sub(c.IssuedAt) != tt.ttl {
			t.Errorf("%q: claims %+v; want robot1 for %v", tt.args, c, tt.ttl)
		}
		if strings.Contains(stderr.String(), tok) || !strings.Contains(stderr.String(), "TETHER_PORTAL_TOKEN") {
			t.Errorf("%q: stderr %q", tt.args, stderr.String())
		}
	}
}

func TestRelayRefusals(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "relay.secret")
	os.WriteFile(secret, bytes.Repeat([]byte("s"), 32), 0o600)
	open := filepath.Join(dir, "open.secret")
	os.WriteFile(open, bytes.Repeat([]byte("s"), 32), 0o644)
	os.Chmod(open, 0o644)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"relay", "--listen", "0.0.0.0:0", "--secret-file", secret}, 1, "tether: --listen 0.0.0.0:0 is beyond loopback: give --tls-cert and --tls-key"},
		{[]string{"relay", "--listen", ":0", "--secret-file", secret}, 1, "is beyond loopback"},
		{[]string{"relay", "--listen", "127.0.0.1:0", "--secret-file", open}, 1, "chmod 600 " + open},
		{[]string{"relay", "--listen", "127.0.0.1:0", "--secret-file", secret, "--tls-cert", "c.pem"}, 1, "give both --tls-cert and --tls-key"},
		{[]string{"relay", "token", "--secret-file", secret, "--role", "admin", "--portal", "lab", "x"}, 2, "--role must be one of"},
		{[]string{"relay", "token", "--secret-file", secret, "--role", "host", "--portal", "a/b", "x"}, 1, `portal id "a/b" is not valid`},
		{[]string{"relay", "token", "--secret-file", secret, "--role", "host", "--portal", "lab", "--days", "400", "x"}, 2, "--days 400: give 1 to 366"},
		{[]string{"relay", "token", "--secret-file", filepath.Join(dir, "none"), "--role", "host", "--portal", "lab", "x"}, 1, "head -c 32 /dev/urandom > " + filepath.Join(dir, "none")},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.msg) || strings.Count(stderr.String(), "\n") != 1 || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d and one line with %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.msg)
		}
	}
}

// TestRelayServes: `tether relay` on loopback serves until its context ends.
func TestRelayServes(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "relay.secret")
	os.WriteFile(secret, bytes.Repeat([]byte("s"), 32), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"relay", "--listen", "127.0.0.1:0", "--secret-file", secret}, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "listening on ws://127.0.0.1:") {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	line := stderr.String()
	url := strings.TrimSpace(line[strings.Index(line, "ws://"):])
	// A client of a portal with no host gets the router's 503.
	tok, _ := relay.Mint(relay.KeyFromSecret(bytes.Repeat([]byte("s"), 32)), relay.RoleClient, "lab", "alice", time.Hour)
	_, err := relay.Dial(context.Background(), url, tok, "lab", nil)
	if err == nil || !strings.Contains(err.Error(), "no host is connected for portal lab") {
		t.Errorf("Dial: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tether relay did not stop with its context")
	}
	if strings.Contains(stderr.String(), tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Errorf("the token is in the relay's log: %s", stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
