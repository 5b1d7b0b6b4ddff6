//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMFAPeerWithOpenSSH proves the MFA sshd with OpenSSH's own client on a terminal:
// the key alone does not log in, the TOTP asked after it does (one login in sshd's log,
// by keyboard-interactive/pam after a partial publickey), a replayed code is refused,
// and the next code from TOTP.Next logs in again at once.
func TestMFAPeerWithOpenSSH(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{MFA: true})
	ssh := Need(t, "ssh", "openssh-client")
	login := func(code string) (screen string, exit int) {
		t.Helper()
		term := StartOnTerminal(t, exec.Command(ssh, "-F", s.Config, "-o", "NumberOfPasswordPrompts=1", s.Alias, "echo", "mfa-login-ok"))
		if !term.WaitFor(TOTPPrompt, 1, 20*time.Second) {
			t.Fatalf("ssh did not ask for the one-time password; screen:\n%s", term.Screen())
		}
		term.Type(t, code+"\n")
		exit = term.Wait(30 * time.Second)
		return term.Screen(), exit
	}

	first := s.TOTP.Next(t)
	screen, exit := login(first)
	if exit != 0 || !strings.Contains(screen, "mfa-login-ok") {
		t.Fatalf("login with the TOTP: exit %d, screen:\n%s", exit, screen)
	}
	if got := s.Logins(); len(got) != 1 || got[0] != (Login{Method: "keyboard-interactive/pam", User: s.User}) {
		t.Fatalf("logins after one: %+v; want one keyboard-interactive/pam", got)
	}
	MustContain(t, "sshd log", s.Log(), "Partial publickey for "+s.User)

	// pam_oath takes each code once.
	screen, exit = login(first)
	if exit == 0 || strings.Contains(screen, "mfa-login-ok") {
		t.Fatalf("a replayed code logged in: exit %d, screen:\n%s", exit, screen)
	}
	if n := len(s.Logins()); n != 1 {
		t.Fatalf("%d logins after a replayed code; want still 1", n)
	}

	// The next code (a later step when this one is used up) logs in without waiting.
	start := time.Now()
	screen, exit = login(s.TOTP.Next(t))
	if exit != 0 || !strings.Contains(screen, "mfa-login-ok") {
		t.Fatalf("login with the next TOTP: exit %d, screen:\n%s", exit, screen)
	}
	if n := len(s.Logins()); n != 2 {
		t.Fatalf("%d logins; want 2", n)
	}
	t.Logf("second login took %v; logins: %+v", time.Since(start).Round(time.Millisecond), s.Logins())
}

// TestKerberosPeerWithOpenSSH proves the Kerberos peer with OpenSSH's own client:
// without a ticket the login fails; with one from `kinit -k` it succeeds by
// gssapi-with-mic (no key exists for the user); tether's native SSH stack cannot log in
// there (golang.org/x/crypto/ssh has no GSSAPI), which is why --ssh openssh exists.
func TestKerberosPeerWithOpenSSH(t *testing.T) {
	k := StartKDC(t)
	s := StartSSHD(t, SSHDOptions{Kerberos: k})
	Need(t, "ssh", "openssh-client")

	if out, err := s.SSH("true"); err == nil {
		t.Fatalf("logged in without a ticket: %s", out)
	}
	if n := len(s.Logins()); n != 0 {
		t.Fatalf("%d logins without a ticket", n)
	}

	k.Kinit(t)
	// As a user types it: ssh -o GSSAPIAuthentication=yes -o
	// PreferredAuthentications=gssapi-with-mic localhost true (with this server's port
	// and known_hosts).
	cmd := exec.Command("ssh", "-p", strconv.Itoa(s.Port), "-o", "UserKnownHostsFile="+s.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "GSSAPIAuthentication=yes",
		"-o", "PreferredAuthentications=gssapi-with-mic", "-l", s.User, "localhost", "echo", "kerberos-login-ok")
	cmd.Env = append(os.Environ(), s.ClientEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kerberos-login-ok") {
		t.Fatalf("ssh with the ticket: %v\n%s", err, out)
	}
	if got := s.Logins(); len(got) != 1 || got[0] != (Login{Method: "gssapi-with-mic", User: s.User}) {
		t.Fatalf("logins: %+v; want one gssapi-with-mic", got)
	}
	MustContain(t, "sshd log", s.Log(), "Accepted gssapi-with-mic for "+s.User+" from 127.0.0.1 port")
	if !strings.Contains(s.Log(), ": "+k.Principal) {
		t.Errorf("sshd did not log the principal %s:\n%s", k.Principal, s.Log())
	}
	// The config block alone does it too.
	if out, err := s.SSH("echo", "via-config"); err != nil || !strings.Contains(out, "via-config") {
		t.Fatalf("ssh -F %s %s: %v\n%s", s.Config, s.Alias, err, out)
	}

	// The native stack has no GSSAPI: a clear refusal that names the way out, no login.
	env, _ := LauncherEnv(t)
	cmd = exec.Command(Binary(t), "ls", "-F", s.Config, s.Alias)
	cmd.Env = append(append(env, "TETHER_SSH=native"), s.ClientEnv...)
	var stdout, stderr Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p := Start(t, cmd)
	if err, ok := p.Wait(60 * time.Second); !ok || err == nil {
		t.Fatalf("tether ls (native) at the Kerberos host: err %v (finished: %v); stdout %q stderr %q", err, ok, stdout.String(), stderr.String())
	}
	t.Logf("native at the Kerberos host: %s", strings.TrimSpace(stderr.String()))
	MustContain(t, "native tether's error", stderr.String(), "tether: "+s.Alias+" accepts only gssapi-with-mic (Kerberos) logins", "--ssh openssh")
	if n := len(s.Logins()); n != 2 {
		t.Errorf("%d logins after the native attempt; want still 2", n)
	}
}
