package tunnel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// jumpSetup starts a jump server and a target server, both accepting one identity file,
// and writes an ssh_config naming them "jump" and "target" (through jump).
func jumpSetup(t *testing.T, targetProxy string) (cfgFile, knownHosts string, jump, target *testServer) {
	dir := t.TempDir()
	keyPath, signer := writeKey(t, dir, "id", "")
	auth := func(s *Server) { s.AuthorizedKey = signer.PublicKey() }
	jump, target = startServer(t, auth), startServer(t, auth)
	knownHosts = filepath.Join(dir, "known_hosts")
	writeFile(t, knownHosts, knownhosts.Line([]string{jump.Addr}, jump.HostKey.PublicKey())+"\n"+
		knownhosts.Line([]string{target.Addr}, target.HostKey.PublicKey())+"\n")
	cfgFile = filepath.Join(dir, "config")
	writeFile(t, cfgFile, fmt.Sprintf(`Host jump target
  HostName 127.0.0.1
  User tester
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile none
  StrictHostKeyChecking yes
  BatchMode yes
Host jump
  Port %d
Host target
  Port %d
  %s
`, keyPath, knownHosts, jump.Port, target.Port, targetProxy))
	return
}

func TestProxyJump(t *testing.T) {
	cfgFile, _, _, target := jumpSetup(t, "ProxyJump jump")
	cfg, err := Resolve("target", ResolveOptions{ConfigFile: cfgFile})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _, _, err := c.Output(context.Background(), []string{"sh", "-c", "echo $HOME"}, 1000)
	if err != nil || strings.TrimSpace(string(out)) != target.Dir {
		t.Fatalf("ran on %q (%v); want the target (%s)", out, err, target.Dir)
	}
}

// TestProxyJumpWrongTargetKey: the jump host's key is right, the target's is not: the
// target is refused under its own name.
func TestProxyJumpWrongTargetKey(t *testing.T) {
	cfgFile, kh, jump, target := jumpSetup(t, "ProxyJump jump")
	writeFile(t, kh, knownhosts.Line([]string{jump.Addr}, jump.HostKey.PublicKey())+"\n"+
		knownhosts.Line([]string{target.Addr}, newEd25519(t).PublicKey())+"\n")
	cfg, err := Resolve("target", ResolveOptions{ConfigFile: cfgFile})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(context.Background(), cfg, Options{})
	var ce *HostKeyChangedError
	if !errors.As(err, &ce) || ce.Host != fmt.Sprintf("[127.0.0.1]:%d", target.Port) {
		t.Fatalf("got %v; want HostKeyChangedError for the target", err)
	}
	// And a wrong jump key stops at the jump host.
	writeFile(t, kh, knownhosts.Line([]string{jump.Addr}, newEd25519(t).PublicKey())+"\n"+
		knownhosts.Line([]string{target.Addr}, target.HostKey.PublicKey())+"\n")
	_, err = Dial(context.Background(), cfg, Options{})
	if !errors.As(err, &ce) || ce.Host != fmt.Sprintf("[127.0.0.1]:%d", jump.Port) || !strings.Contains(err.Error(), "jump host") {
		t.Fatalf("got %v; want HostKeyChangedError for the jump host", err)
	}
}

func TestProxyCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfgFile, _, _, target := jumpSetup(t, "ProxyCommand env TUNNEL_TEST_NC=1 "+exe+" %h %p")
	cfg, err := Resolve("target", ResolveOptions{ConfigFile: cfgFile})
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	c, err := Dial(context.Background(), cfg, Options{OnEvent: ev.on})
	if err != nil {
		t.Fatal(err)
	}
	out, _, _, err := c.Output(context.Background(), []string{"sh", "-c", "echo $HOME"}, 1000)
	if err != nil || strings.TrimSpace(string(out)) != target.Dir {
		t.Fatalf("ran on %q (%v)", out, err)
	}
	// Reconnect through the proxy command too.
	target.CloseConnections()
	ev.waitFor(t, Back, 10e9)
	c.Close()

	// A failing proxy command reports what it printed.
	cfg.ProxyCommand = "echo no route to gpu >&2; exit 1"
	_, err = Dial(context.Background(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "no route to gpu") {
		t.Fatalf("failing ProxyCommand: %v", err)
	}
}

// TestProgrammaticHostKeyCallback: Config.HostKeyCallback replaces known_hosts.
func TestProgrammaticHostKeyCallback(t *testing.T) {
	ts := startServer(t, nil)
	cfg := ts.config()
	cfg.UserKnownHostsFiles = nil
	cfg.HostKeyCallback = ssh.FixedHostKey(ts.HostKey.PublicKey())
	if err := dialErr(cfg, nil); err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyCallback = ssh.FixedHostKey(newEd25519(t).PublicKey())
	if err := dialErr(cfg, nil); err == nil {
		t.Fatal("wrong fixed key accepted")
	}
}

// TestProxyCommandGoneBeforeWrite: a proxy command that has already exited (and been
// reaped) when the handshake writes still yields its stderr, not "file already closed".
func TestProxyCommandGoneBeforeWrite(t *testing.T) {
	cfg := &Config{Alias: "gpu", HostName: "gpu", Port: 22, User: "me", ProxyCommand: "echo no route to gpu >&2; exit 1"}
	c, err := startProxyCommand(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy command did not exit")
	}
	if _, err := c.Write([]byte("SSH-2.0-tether\r\n")); err == nil || !strings.Contains(err.Error(), "no route to gpu") {
		t.Errorf("write after exit: %v; want the command's stderr", err)
	}
	if _, err := c.Read(make([]byte, 10)); err == nil || !strings.Contains(err.Error(), "no route to gpu") {
		t.Errorf("read after exit: %v; want the command's stderr", err)
	}
}

// TestMessage: an error of this package is shown without its prefix by Message, in
// one place, instead of each caller cutting "tunnel: " off its text.
func TestMessage(t *testing.T) {
	err := fmt.Errorf("resolving: %w", &DialError{Addr: "gpu:22", Err: errors.New("connection refused")})
	if got := err.Error(); !strings.HasPrefix(got, "resolving: tunnel: ") {
		t.Fatalf("Error() = %q", got)
	}
	de := &DialError{Addr: "gpu:22", Err: errors.New("connection refused")}
	if got := Message(de); strings.HasPrefix(got, "tunnel: ") || got != de.Msg() {
		t.Errorf("Message = %q; want %q", got, de.Msg())
	}
	if got := Message(errors.New("other: x")); got != "other: x" {
		t.Errorf("Message of another package's error = %q", got)
	}
	if Message(nil) != "" {
		t.Error("Message(nil) is not empty")
	}
}
