//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11, items 8-10: an attached launcher under a silent drop, a session that ends
// elsewhere, and Ctrl-C while the app starts.

// slowApp is an app that sleeps (marker seconds, a number no other process uses) and
// then serves Python's file server: a start to interrupt.
func slowApp(marker string) []string {
	return []string{"/bin/sh", "-c", "sleep " + marker + "; exec /usr/bin/python3 -m http.server {port} --bind 127.0.0.1"}
}

// sessionProcesses lists the remote processes a session of this test may have left:
// anything whose argv holds marker (the app, its shell, the supervisor) and any
// `tether serve` of this sshd's home.
func sessionProcesses(marker string) []string { return ProcessesWith(marker) }

// noSessionLeft checks that `tether ls HOST --json` shows nothing, and that the state
// root holds no session directory.
func noSessionLeft(t *testing.T, s *SSHD) {
	t.Helper()
	if list := SessionsOn(t, s); len(list) != 0 {
		t.Errorf("tether ls %s shows %v; want nothing", s.Alias, list)
	}
	if des, _ := os.ReadDir(stateRootOf(s)); len(des) != 0 {
		t.Errorf("the state root still holds %v", des)
	}
}

// sshdForUser starts an sshd that u logs in to (with the harness's client key, its
// own home as HOME) and returns it with an ssh_config for that login. A login that is
// not root's is what users have: sshd then runs the session unprivileged (privilege
// separation) and honours the client's signal requests, which it refuses for root.
func sshdForUser(t *testing.T, u User) (*SSHD, string) {
	t.Helper()
	s, cfgs := sshdForUsers(t, SSHDOptions{}, u)
	return s, cfgs[0]
}

// sshdForUsers is sshdForUser for several users of one sshd (opts as StartSSHD's; a
// Match block per user is added to its ExtraConfig): one ssh_config per user, in order.
func sshdForUsers(t *testing.T, opts SSHDOptions, users ...User) (*SSHD, []string) {
	t.Helper()
	// useradd leaves the account locked ("!" password), which sshd refuses outright;
	// "*" still matches no password, so only the key logs in.
	usermod := Need(t, "usermod", "passwd")
	opts.ExtraConfig = append([]string{}, opts.ExtraConfig...)
	for _, u := range users {
		if out, err := exec.Command(usermod, "-p", "*", u.Name).CombinedOutput(); err != nil {
			t.Fatalf("usermod -p '*' %s: %v\n%s", u.Name, err, out)
		}
		opts.ExtraConfig = append(opts.ExtraConfig,
			"Match User "+u.Name,
			"  AuthorizedKeysFile "+filepath.Join(u.Home, ".ssh", "authorized_keys"),
			"  SetEnv HOME="+u.Home)
	}
	s := StartSSHD(t, opts)
	pub, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []string
	for _, u := range users {
		ssh := filepath.Join(u.Home, ".ssh")
		if err := os.MkdirAll(ssh, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ssh, "authorized_keys"), pub, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{ssh, filepath.Join(ssh, "authorized_keys")} {
			if err := os.Chown(p, u.UID, u.GID); err != nil {
				t.Fatal(err)
			}
		}
		cfg := filepath.Join(s.Dir, "ssh_config_"+u.Name)
		block := strings.Replace(s.ConfigBlock(), "  User "+s.User+"\n", "  User "+u.Name+"\n", 1)
		if err := os.WriteFile(cfg, []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, cfg)
	}
	return s, cfgs
}

// TestLaunchInterruptedWhileAppStarts: Ctrl-C while the remote app is still starting
// (it sleeps before it listens) leaves nothing running on the remote within seconds:
// no background server, no supervisor, no app, and `tether ls HOST` shows nothing.
// While it starts, `tether ls HOST` shows the session as starting. The login is an
// ordinary user's, as users have it (see sshdForUser).
func TestLaunchInterruptedWhileAppStarts(t *testing.T) {
	NeedPython(t)
	u := OtherUser(t)
	s, cfg := sshdForUser(t, u)
	s.Config = cfg // every tether command of this test logs in as u
	s.Home = u.Home
	StopAllOnCleanup(t, s)
	const marker = "47.125"
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--"}, slowApp(marker)...)
	l := StartLauncher(t, args, false)
	if !WaitFor(30*time.Second, func() bool { return len(sessionProcesses(marker)) > 0 }) {
		t.Fatalf("the app never started; stderr:\n%s", l.Stderr.String())
	}
	// While the app starts, ls shows the session as starting (its server writes the
	// record right after it starts).
	var list []map[string]any
	if !WaitFor(10*time.Second, func() bool { list = SessionsOn(t, s); return len(list) > 0 }) ||
		len(list) != 1 || list[0]["state"] != "starting" {
		t.Errorf("tether ls %s --json while the app starts: %v; want one session, state starting", s.Alias, list)
	}
	out, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias)
	if code != 0 || !strings.Contains(out, "starting") {
		t.Errorf("tether ls %s while the app starts: exit %d, %q %q; want the session shown as starting", s.Alias, code, out, errOut)
	}
	start := time.Now()
	if err := l.Interrupt(t); err == nil {
		t.Errorf("the interrupted launch exited 0; stderr:\n%s", l.Stderr.String())
	}
	exited := time.Since(start)
	gone := WaitFor(20*time.Second, func() bool { return len(sessionProcesses(marker)) == 0 })
	took := time.Since(start)
	t.Logf("launcher exited %s after SIGINT; the remote app was gone after %s", FmtDur(exited), FmtDur(took))
	if !gone {
		t.Fatalf("20 s after Ctrl-C the remote still runs: %q\nlauncher stderr:\n%s", sessionProcesses(marker), l.Stderr.String())
	}
	if took > 8*time.Second {
		t.Errorf("the remote app outlived Ctrl-C by %s; want a few seconds", FmtDur(took))
	}
	noSessionLeft(t, s)
	e := l.Stderr.String()
	t.Logf("launcher stderr:\n%s", e)
	MustContain(t, "launcher stderr", e, "interrupted; nothing was left running on "+s.Alias)
	if strings.Contains(e, "tether attach") {
		t.Errorf("the interrupted launch suggests an attach:\n%s", e)
	}
}

// TestLaunchReadyTimeoutFlag: `launch --ready-timeout 2s` with an app slower than that
// fails in about 2 s with one clear line naming the flag, and leaves nothing running;
// the flag is in launch's help.
func TestLaunchReadyTimeoutFlag(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	help, _, _ := RunTether(t, "launch", "--help")
	if !strings.Contains(help, "--ready-timeout") {
		t.Errorf("launch --help does not document --ready-timeout:\n%s", help)
	}
	const marker = "53.375"
	Binary(t)
	start := time.Now()
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--ready-timeout", "2s", "--"}, slowApp(marker)...)
	_, errOut, code := RunTether(t, args...)
	took := time.Since(start)
	t.Logf("launch --ready-timeout 2s failed after %s:\n%s", FmtDur(took), errOut)
	if code != 1 {
		t.Errorf("exit %d; want 1", code)
	}
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("failed after %s; want about 2 s", FmtDur(took))
	}
	last := LastLine(errOut)
	if !strings.HasPrefix(last, "tether: ") || !strings.Contains(last, "not ready after 2s") || !strings.Contains(last, "--ready-timeout") {
		t.Errorf("last line %q: want one tether: line saying the app was not ready after 2s and naming --ready-timeout", last)
	}
	if !WaitFor(5*time.Second, func() bool { return len(sessionProcesses(marker)) == 0 }) {
		t.Errorf("left running: %q", sessionProcesses(marker))
	}
	noSessionLeft(t, s)
}
