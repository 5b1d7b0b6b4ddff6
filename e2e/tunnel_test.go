//go:build unix

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

func remoteHome(t *testing.T, c *tunnel.Client) string {
	t.Helper()
	out, errOut, st, err := c.Output(Context(t, 20*time.Second), []string{"sh", "-c", `printf %s "$HOME"`}, 4096)
	if err != nil || st != 0 {
		t.Fatalf("remote command: status %d, %v, %s", st, err, errOut)
	}
	return string(out)
}

// echoSocket serves an echo server on a Unix socket (sshd, on this same machine, can
// reach it by direct-streamlocal) and returns its path.
func echoSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tether-echo-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "echo.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
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
				c.Close()
			}()
		}
	}()
	return p
}

func echoOnce(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	msg := []byte("ping through sshd")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo: got %q", got)
	}
	return nil
}

// forwardT runs tunnel.Forward on 127.0.0.1:0 to the remote Unix socket and returns the
// local address.
func forwardT(t *testing.T, c *tunnel.Client, network, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tunnel.Forward(ctx, ln, func(ctx context.Context) (net.Conn, error) { return c.DialContext(ctx, network, addr) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// TestTunnelKeyFile: key file auth against real sshd; exec, upload, and forwarding to a
// Unix socket and to loopback TCP.
func TestTunnelKeyFile(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	c := DialT(t, Resolve(t, s.Config, s.Alias), tunnel.Options{})
	if h := remoteHome(t, c); h != s.Home {
		t.Fatalf("remote HOME %q; want %q", h, s.Home)
	}
	data := bytes.Repeat([]byte("tether binary "), 100000)
	if err := c.Upload(Context(t, 30*time.Second), bytes.NewReader(data), int64(len(data)), "~/.cache/tether/v1/tether", nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.Home, ".cache/tether/v1/tether")
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file differs: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if err := echoOnce(forwardT(t, c, "unix", echoSocket(t)), 10*time.Second); err != nil {
		t.Fatalf("unix forward: %v", err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	if err := echoOnce(forwardT(t, c, "tcp", tl.Addr().String()), 10*time.Second); err != nil {
		t.Fatalf("tcp forward: %v", err)
	}
}

// TestTunnelAgent: a real ssh-agent at IdentityAgent holds the key; the private key file
// is gone and only its .pub selects the agent key under IdentitiesOnly, as with ssh.
func TestTunnelAgent(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	a := StartAgent(t)
	a.Add(t, s.ClientKey)
	dir := t.TempDir()
	pub := filepath.Join(dir, "id_agent")
	b, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub+".pub", b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config")
	block := strings.Replace(s.ConfigBlock(), "IdentityFile "+s.ClientKey, "IdentityFile "+pub+"\n  IdentityAgent "+a.Socket, 1)
	if err := os.WriteFile(cfgFile, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DialT(t, Resolve(t, cfgFile, s.Alias), tunnel.Options{})
	if h := remoteHome(t, c); h != s.Home {
		t.Fatalf("remote HOME %q", h)
	}
	// The same through SSH_AUTH_SOCK.
	t.Setenv("SSH_AUTH_SOCK", a.Socket)
	block = strings.Replace(block, "IdentityAgent "+a.Socket, "IdentityAgent SSH_AUTH_SOCK", 1)
	os.WriteFile(cfgFile, []byte(block), 0o600)
	c2 := DialT(t, Resolve(t, cfgFile, s.Alias), tunnel.Options{})
	remoteHome(t, c2)
	// IdentityAgent none: no key at all, refused with an AuthError.
	block = strings.Replace(block, "IdentityAgent SSH_AUTH_SOCK", "IdentityAgent none", 1)
	os.WriteFile(cfgFile, []byte(block), 0o600)
	_, err = tunnel.Dial(Context(t, 20*time.Second), Resolve(t, cfgFile, s.Alias), tunnel.Options{})
	var ae *tunnel.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("IdentityAgent none: %v; want AuthError", err)
	}
}

// jumpConfig writes an ssh_config with the jump and target blocks; target uses proxy.
func jumpConfig(t *testing.T, jump, target *SSHD, proxy string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	content := jump.ConfigBlock() + strings.Replace(target.ConfigBlock(), "Host "+target.Alias+"\n", "Host "+target.Alias+"\n  "+proxy+"\n", 1)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTunnelProxyJump: through a second sshd; the target's key is checked under its own
// name, and a wrong target key fails though the jump host's is right.
func TestTunnelProxyJump(t *testing.T) {
	jump := StartSSHD(t, SSHDOptions{Alias: "jump"})
	target := StartSSHD(t, SSHDOptions{Alias: "target"})
	// The target only accepts its own client key: give the jump host's config the
	// target's key too is not needed; each block names its own key.
	cfgFile := jumpConfig(t, jump, target, "ProxyJump jump")
	if out, err := exec.Command("ssh", "-F", cfgFile, "target", "echo", "ok").CombinedOutput(); err != nil {
		t.Fatalf("OpenSSH itself cannot do this jump: %v\n%s", err, out)
	}
	c := DialT(t, Resolve(t, cfgFile, "target"), tunnel.Options{})
	if h := remoteHome(t, c); h != target.Home {
		t.Fatalf("landed in %q; want the target's %q", h, target.Home)
	}
	if !strings.Contains(target.Log(), "127.0.0.1") {
		t.Log(target.Log())
	}
	// A wrong key for the target: refused, naming the target.
	other := StartSSHD(t, SSHDOptions{Alias: "other"})
	kh, _ := os.ReadFile(other.KnownHosts)
	wrong := strings.ReplaceAll(string(kh), fmt.Sprintf("]:%d ", other.Port), fmt.Sprintf("]:%d ", target.Port))
	if err := os.WriteFile(target.KnownHosts, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := tunnel.Dial(Context(t, 20*time.Second), Resolve(t, cfgFile, "target"), tunnel.Options{})
	var ce *tunnel.HostKeyChangedError
	if !errors.As(err, &ce) || ce.Host != fmt.Sprintf("[127.0.0.1]:%d", target.Port) {
		t.Fatalf("wrong target key: %v; want HostKeyChangedError for the target", err)
	}
	t.Logf("refused as: %v", err)
}

// TestTunnelProxyCommand: ProxyCommand `ssh -W %h:%p jump`, OpenSSH's own client as the
// proxy.
func TestTunnelProxyCommand(t *testing.T) {
	Need(t, "ssh", "openssh-client")
	jump := StartSSHD(t, SSHDOptions{Alias: "jump"})
	target := StartSSHD(t, SSHDOptions{Alias: "target"})
	jumpCfg := filepath.Join(t.TempDir(), "jump_config")
	os.WriteFile(jumpCfg, []byte(jump.ConfigBlock()), 0o600)
	cfgFile := jumpConfig(t, jump, target, "ProxyCommand ssh -F "+jumpCfg+" -W %h:%p jump")
	c := DialT(t, Resolve(t, cfgFile, "target"), tunnel.Options{})
	if h := remoteHome(t, c); h != target.Home {
		t.Fatalf("landed in %q; want %q", h, target.Home)
	}
}

// TestTunnelChangedHostKey: known_hosts holds another key for the server: refused, as
// OpenSSH refuses it, with the file and line to fix.
func TestTunnelChangedHostKey(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	other := StartSSHD(t, SSHDOptions{Alias: "other"})
	kh, _ := os.ReadFile(other.KnownHosts)
	wrong := "# managed by hand\n" + strings.ReplaceAll(string(kh), fmt.Sprintf("]:%d ", other.Port), fmt.Sprintf("]:%d ", s.Port))
	if err := os.WriteFile(s.KnownHosts, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := s.SSH("true"); err == nil || !strings.Contains(out, "CHANGED") {
		t.Fatalf("OpenSSH does not refuse it either: %v\n%s", err, out)
	}
	for _, mode := range []string{"yes", "accept-new", "ask"} {
		cfg := Resolve(t, s.Config, s.Alias)
		cfg.StrictHostKeyChecking = mode
		_, err := tunnel.Dial(Context(t, 20*time.Second), cfg, tunnel.Options{})
		var ce *tunnel.HostKeyChangedError
		if !errors.As(err, &ce) {
			t.Fatalf("StrictHostKeyChecking %s: %v; want HostKeyChangedError", mode, err)
		}
		if !strings.Contains(err.Error(), "line 2 of "+s.KnownHosts) {
			t.Errorf("message lacks the line to fix: %v", err)
		}
	}
}

// TestTunnelReconnect: sshd's per-connection processes are killed while a forward is in
// use; the client reports lost and back, and a new local connection made right after the
// drop succeeds within a few seconds.
func TestTunnelReconnect(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	var mu sync.Mutex
	var log []string
	evc := make(chan tunnel.Event, 100)
	c := DialT(t, Resolve(t, s.Config, s.Alias), tunnel.Options{OnEvent: func(e tunnel.Event) {
		mu.Lock()
		log = append(log, e.State.String())
		mu.Unlock()
		select {
		case evc <- e:
		default:
		}
	}})
	local := forwardT(t, c, "unix", echoSocket(t))
	if err := echoOnce(local, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	inUse, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer inUse.Close()
	inUse.Write([]byte("x"))
	io.ReadFull(inUse, make([]byte, 1))

	for round := 1; round <= 3; round++ {
		start := time.Now()
		if n := s.KillConnections(); n == 0 {
			t.Fatal("no sshd connection process to kill")
		}
		waitEvent(t, evc, tunnel.Lost, 10*time.Second)
		lostAt := time.Since(start)
		if err := echoOnce(local, 15*time.Second); err != nil {
			t.Fatalf("round %d: a new connection after the drop: %v", round, err)
		}
		worksAt := time.Since(start)
		waitEvent(t, evc, tunnel.Back, 10*time.Second)
		t.Logf("round %d: lost noticed after %v, new local connection served after %v", round, lostAt, worksAt)
		if worksAt > 5*time.Second {
			t.Errorf("round %d: took %v", round, worksAt)
		}
	}
	mu.Lock()
	t.Logf("events: %s", strings.Join(log, ","))
	mu.Unlock()
	inUse.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := inUse.Read(make([]byte, 1)); err == nil {
		t.Error("the connection in use across the drop was not closed")
	}
}

func waitEvent(t *testing.T, c <-chan tunnel.Event, s tunnel.State, timeout time.Duration) tunnel.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-c:
			if e.State == s {
				return e
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", s, timeout)
		}
	}
}

// TestTunnelUserCertificate: sshd trusts a user CA, not the key: the certificate beside
// the key (FILE-cert.pub) logs in, and so does one named by CertificateFile.
func TestTunnelUserCertificate(t *testing.T) {
	Need(t, "ssh-keygen", "openssh-client")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	ca, key := filepath.Join(dir, "ca"), filepath.Join(dir, "id_cert")
	run("-q", "-t", "ed25519", "-N", "", "-f", ca)
	run("-q", "-t", "ed25519", "-N", "", "-f", key)
	s := StartSSHD(t, SSHDOptions{ExtraConfig: []string{"TrustedUserCAKeys " + ca + ".pub"}})
	run("-q", "-s", ca, "-I", "tether-e2e", "-n", s.User, "-V", "-5m:+1h", key+".pub")

	cfgFile := filepath.Join(dir, "config")
	block := strings.Replace(s.ConfigBlock(), "IdentityFile "+s.ClientKey, "IdentityFile "+key, 1)
	os.WriteFile(cfgFile, []byte(block), 0o600)
	c := DialT(t, Resolve(t, cfgFile, s.Alias), tunnel.Options{})
	if h := remoteHome(t, c); h != s.Home {
		t.Fatalf("remote HOME %q", h)
	}
	// The certificate moved away and named by CertificateFile.
	moved := filepath.Join(dir, "elsewhere-cert.pub")
	if err := os.Rename(key+"-cert.pub", moved); err != nil {
		t.Fatal(err)
	}
	_, err := tunnel.Dial(Context(t, 20*time.Second), Resolve(t, cfgFile, s.Alias), tunnel.Options{})
	var ae *tunnel.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("without the certificate: %v; want AuthError", err)
	}
	block = strings.Replace(block, "IdentityFile "+key, "IdentityFile "+key+"\n  CertificateFile "+moved, 1)
	os.WriteFile(cfgFile, []byte(block), 0o600)
	c2 := DialT(t, Resolve(t, cfgFile, s.Alias), tunnel.Options{})
	remoteHome(t, c2)
}
