//go:build unix

package relay

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/e2e"
)

// proxyModeEnv makes the test binary ssh's ProxyCommand (TestMain).
const proxyModeEnv = "TETHER_E2E_RELAY_PROXY"

// TestHostLaunch: a real `tether relay`, and the built `tether host` run by a fresh
// Unix user with --authorized-keys, reached by the real launcher through OpenSSH
// (--ssh openssh; its ProxyCommand is this test binary doing relay.Dial): it logs in
// with a key and the client token (SSH partial success, the token through
// SSH_ASKPASS), installs tether into that user's home, starts the built-in app,
// forwards to its socket, lists and stops it, as over sshd. The key alone is refused;
// the SSH user name given maps to the user running the host; no token reaches a log
// or a command line; SIGTERM stops the host at once.
func TestHostLaunch(t *testing.T) {
	sshPath := e2e.Need(t, "ssh", "openssh-client")
	keygen := e2e.Need(t, "ssh-keygen", "openssh-client")
	u := e2e.OtherUserWithShell(t, "bash")
	bin := installFor(t, u, e2e.Binary(t))
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	r := startRelay(t)
	hostToken := r.mint(t, "host", "lab", "lab-box")
	clientToken := r.mint(t, "client", "lab", "ann")

	dir := t.TempDir() // the laptop's files (root's, 0700)
	clientKey := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", clientKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(clientKey + ".pub")
	ak := filepath.Join(u.Home, "relay_authorized_keys")
	e2e.WriteFile(t, ak, string(pub), 0o600)
	os.Chown(ak, u.UID, u.GID)

	start := time.Now()
	hostErr := &e2e.Buffer{}
	cmd := u.Command(bin, "host", "--relay", r.url, "--authorized-keys", ak)
	cmd.Env = append(cmd.Env, "TETHER_PORTAL_TOKEN="+hostToken)
	cmd.Stdout, cmd.Stderr = hostErr, hostErr
	host := e2e.Start(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether host output:\n%s", hostErr.String())
		}
	})
	if !e2e.WaitFor(20*time.Second, func() bool { return strings.Contains(hostErr.String(), "offering this machine") }) {
		t.Fatalf("no banner from tether host:\n%s", hostErr.String())
	}

	// The host key: made on first run where the README says, 0600, the user's; the
	// banner names its fingerprint.
	keyPath := filepath.Join(u.Home, ".config", "tether", "relay_host_ed25519_key")
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatalf("no host key at the default path: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o600 || int(st.Uid) != u.UID {
		t.Errorf("host key mode %v owner %d; want 0600 and %d", fi.Mode(), st.Uid, u.UID)
	}
	keyPEM, _ := os.ReadFile(keyPath)
	hostKey, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	banner := hostErr.String()
	e2e.MustContain(t, "tether host's banner", banner, "made a new host key "+keyPath,
		"offering this machine as portal lab", ssh.FingerprintSHA256(hostKey.PublicKey()),
		"logs in as:      "+u.Name+", whatever SSH user name")

	// The laptop: an ssh_config whose Host reaches the portal through the ProxyCommand,
	// the host key pinned, the client token answered by SSH_ASKPASS from a 0600 file.
	kh := filepath.Join(dir, "known_hosts")
	e2e.WriteFile(t, kh, "relay-lab "+string(ssh.MarshalAuthorizedKey(hostKey.PublicKey())), 0o600)
	answer := filepath.Join(dir, "answer") // the client token, for SSH_ASKPASS and the ProxyCommand
	e2e.WriteFile(t, answer, clientToken+"\n", 0o600)
	askpass := filepath.Join(dir, "askpass")
	e2e.WriteFile(t, askpass, "#!/bin/sh\ncat "+answer+"\n", 0o700)
	block := func(alias, methods string) string {
		return fmt.Sprintf("Host %s\n  HostName portal.invalid\n  User somebody-else\n"+
			"  ProxyCommand env %s=1 %s %s\n  HostKeyAlias relay-lab\n  UserKnownHostsFile %s\n"+
			"  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  IdentityFile %s\n"+
			"  IdentitiesOnly yes\n  BatchMode no\n  PreferredAuthentications %s\n  NumberOfPasswordPrompts 1\n",
			alias, proxyModeEnv, self, r.proxyArgs("lab", answer), kh, clientKey, methods)
	}
	cfg := filepath.Join(dir, "ssh_config")
	e2e.WriteFile(t, cfg, block("lab", "publickey,password")+block("lab-key-only", "publickey"), 0o600)
	rt, err := os.MkdirTemp("", "tx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2e.StopMasters(&e2e.SSHD{Config: cfg, Alias: "lab"}, rt); os.RemoveAll(rt) })
	env := []string{"XDG_RUNTIME_DIR=" + rt, "SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0", "SSH_AUTH_SOCK="}

	// The key alone: refused.
	out, err := exec.Command(sshPath, "-F", cfg, "lab-key-only", "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("ssh with the key alone: %v\n%s", err, out)
	}

	// launch, fetch, ls, stop: as over sshd.
	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", cfg, "lab", "--json", "--no-browser"}, true, env...)
	t.Logf("tether host started to launch URL ready: %s", e2e.FmtDur(time.Since(start)))
	if status, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+l.Line.Session.Token); status != 200 {
		t.Errorf("GET the app through the tunnel: %d %.200s", status, body)
	}
	if owner := procOwner(l.Line.Session.PID); owner != u.UID {
		t.Errorf("the session's server runs as uid %d; want %d (%s, who runs tether host)", owner, u.UID, u.Name)
	}
	if !strings.HasPrefix(l.Line.Session.Socket, u.Home+"/") && !strings.HasPrefix(l.Line.Session.Socket, "/run/user/"+strconv.Itoa(u.UID)+"/") {
		t.Errorf("the session's socket %s is not in %s's places", l.Line.Session.Socket, u.Name)
	}
	if err := l.Interrupt(t); err != nil {
		t.Errorf("launcher after Ctrl-C: %v", err)
	}
	if out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "--ssh", "openssh", "-F", cfg, "lab"); code != 0 || !strings.Contains(out, l.Line.Session.ID) {
		t.Errorf("ls: exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := e2e.RunTetherEnv(t, env, "stop", "--ssh", "openssh", "-F", cfg, "lab", "--all"); code != 0 {
		t.Errorf("stop --all: exit %d, %q, %q", code, out, errOut)
	}
	if !e2e.WaitFor(10*time.Second, func() bool { return !e2e.Alive(l.Line.Session.PID) }) {
		t.Errorf("the session's server %d outlived stop", l.Line.Session.PID)
	}

	logs := hostErr.String()
	e2e.MustContain(t, "tether host's log", logs, `client token "ann" accepted`,
		"login as "+u.Name+` (SSH user "somebody-else", password)`) // key first, then the token
	for _, secret := range []string{hostToken, clientToken} {
		if strings.Contains(logs, secret) || strings.Contains(l.Stderr.String(), secret) {
			t.Error("a relay token is in a log")
		}
		if ps := e2e.ProcessesWith(secret); len(ps) > 0 {
			t.Errorf("a relay token is on a command line: %q", ps)
		}
	}
	select {
	case <-host.Done():
		t.Errorf("tether host ended: %s", e2e.LastLines(logs, 3))
	default:
	}
	// SIGTERM (as systemd stops it): tether host ends at once, saying so.
	t0 := time.Now()
	host.Cmd.Process.Signal(syscall.SIGTERM)
	if err, ok := host.Wait(10 * time.Second); !ok || err != nil {
		t.Errorf("tether host after SIGTERM: ended %v, %v; want exit 0 within 10 s", ok, err)
	}
	e2e.MustContain(t, "tether host's log", hostErr.String(), "tether host: stopped")
	t.Logf("tether host stopped %s after SIGTERM", e2e.FmtDur(time.Since(t0)))
}

// installFor copies bin where u may run it.
func installFor(t *testing.T, u e2e.User, bin string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(u.Home, "tether-host")
	e2e.WriteFile(t, p, string(b), 0o755)
	os.Chown(p, u.UID, u.GID)
	return p
}

// procOwner is the uid that runs pid (-1 if it is gone).
func procOwner(pid int) int {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}
