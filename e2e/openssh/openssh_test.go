//go:build unix

package openssh

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// The OpenSSH transport (--ssh openssh, and auto): the user's own ssh client and sshd,
// logins counted in sshd's log (LogLevel VERBOSE: one "Accepted publickey" per login).

// logins counts the logins sshd has accepted so far.
func logins(s *e2e.SSHD) int { return strings.Count(s.Log(), "Accepted publickey") }

// ownMasters are the control sockets tether's own masters listen on under dir.
func ownMasters(dir string) []string {
	found, _ := filepath.Glob(filepath.Join(dir, "tether", "c-*"))
	var socks []string
	for _, p := range found {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			socks = append(socks, p)
		}
	}
	return socks
}

// TestOpenSSHLaunch: `launch --ssh openssh` of the built-in app, a browserless request
// through the local URL, then `ls` and `stop` from other tether processes: one login in
// all (tether's own master), no token on any command line, and the attached launcher
// sees the stop (the session's socket refused through ssh's forward) and exits saying
// so.
func TestOpenSSHLaunch(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	env, dir := e2e.OpenSSHEnv(t, s)
	before := logins(s)
	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+tok); status != 200 || !strings.Contains(body, "tether's built-in app") {
		t.Fatalf("GET %s through the OpenSSH transport: %d %.200q", base, status, body)
	}
	if status, _, _ := e2e.Fetch(t, base); status != 401 {
		t.Errorf("without the token: status %d, want 401", status)
	}
	if ps := e2e.ProcessesWith(tok); len(ps) > 0 {
		t.Errorf("the token is on a command line: %v", ps)
	}
	if len(ownMasters(dir)) != 1 {
		t.Errorf("tether's own masters under %s: %v; want one", dir, ownMasters(dir))
	}
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "connecting to "+s.Alias+" (OpenSSH)")

	out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "--ssh", "openssh", "-F", s.Config, s.Alias)
	if code != 0 || !strings.Contains(out, l.Line.Session.ID) {
		t.Fatalf("ls --ssh openssh: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = e2e.RunTetherEnv(t, env, "stop", "--ssh", "openssh", "-F", s.Config, s.Alias, l.Line.Session.ID)
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop --ssh openssh: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if n := logins(s) - before; n != 1 {
		t.Errorf("launch + ls + stop logged in %d times; want 1 (tether's own master)", n)
	}
	// The launcher notices the stop within its 3 s socket check.
	err, ok := l.Proc.Wait(30 * time.Second)
	if !ok {
		t.Fatalf("the launcher did not exit after its session was stopped; stderr:\n%s", l.Stderr.String())
	}
	if err != nil {
		t.Errorf("launcher exit: %v; stderr:\n%s", err, l.Stderr.String())
	}
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "ended: it was stopped")
	if left, _ := filepath.Glob(filepath.Join(dir, "tether", "f-*")); len(left) > 0 {
		t.Errorf("forward sockets left behind after the launcher exited: %v", left)
	}
}

// TestOpenSSHUsesUserMaster: the user's own `ssh -MNf` master runs (their config names
// ControlMaster and ControlPath); tether (auto, the default) says it uses OpenSSH, and
// its launch, ls and stop add no login and start no master of tether's.
func TestOpenSSHUsesUserMaster(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	env, dir := e2e.OpenSSHEnv(t, s)
	cp := filepath.Join(dir, "u-%C")
	cfg := filepath.Join(s.Dir, "ssh_config_cm")
	e2e.WriteFile(t, cfg, s.ConfigBlock()+"  ControlMaster auto\n  ControlPath "+cp+"\n", 0o600)
	master := exec.Command("ssh", "-F", cfg, "-MNf", "-o", "ControlPersist=120", s.Alias)
	if out, err := master.CombinedOutput(); err != nil {
		t.Fatalf("the user's master (ssh -MNf): %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ssh", "-F", cfg, "-O", "exit", s.Alias).Run() })
	if out, err := exec.Command("ssh", "-F", cfg, "-O", "check", s.Alias).CombinedOutput(); err != nil {
		t.Fatalf("ssh -O check: %v\n%s", err, out)
	}
	before := logins(s)

	l := e2e.StartLauncher(t, []string{"launch", "-F", cfg, s.Alias, "--json", "--no-browser"}, true, env...)
	if status, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "tether's built-in app") {
		t.Fatalf("GET through the user's master: %d %.200q", status, body)
	}
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(),
		"tether: using OpenSSH's ssh for "+s.Alias+" (your config sets ControlMaster and ControlPath)")
	if n := strings.Count(l.Stderr.String(), "using OpenSSH's ssh"); n != 1 {
		t.Errorf("the choice was told %d times; want once:\n%s", n, l.Stderr.String())
	}
	if err := l.Interrupt(t); err != nil {
		t.Errorf("launcher exit after Ctrl-C: %v", err)
	}
	out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "-F", cfg, s.Alias)
	if code != 0 || !strings.Contains(out, l.Line.Session.ID) {
		t.Fatalf("ls: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code = e2e.RunTetherEnv(t, env, "stop", "-F", cfg, s.Alias, "--all"); code != 0 {
		t.Fatalf("stop --all: exit %d: %s", code, errOut)
	}
	if n := logins(s) - before; n != 0 {
		t.Errorf("with the user's master running, launch + ls + stop logged in %d times; want 0", n)
	}
	if m := ownMasters(dir); len(m) > 0 {
		t.Errorf("tether started a master of its own beside the user's: %v", m)
	}
}

// TestOpenSSHOwnMasterPersist: without a master of the user's, launch (then detach),
// ls and stop log in once, through tether's own master; that master is gone within its
// ControlPersist (TETHER_SSH_PERSIST, here 5 s) after the last of them.
func TestOpenSSHOwnMasterPersist(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	env, dir := e2e.OpenSSHEnv(t, s, "TETHER_SSH_PERSIST=5s")
	before := logins(s)
	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	if err := l.Interrupt(t); err != nil {
		t.Errorf("launcher exit after Ctrl-C: %v", err)
	}
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "come back: tether attach -F "+s.Config+" --ssh openssh "+s.Alias)
	out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "--ssh", "openssh", "-F", s.Config, s.Alias)
	if code != 0 || !strings.Contains(out, l.Line.Session.ID) {
		t.Fatalf("ls: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code = e2e.RunTetherEnv(t, env, "stop", "--ssh", "openssh", "-F", s.Config, s.Alias, l.Line.Session.ID); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
	last := time.Now()
	if n := logins(s) - before; n != 1 {
		t.Errorf("launch + ls + stop logged in %d times; want 1", n)
	}
	masters := ownMasters(dir)
	pids := e2e.SSHProcessesUnder(dir)
	if len(masters) != 1 || len(pids) != 1 {
		t.Fatalf("tether's own master: sockets %v, processes %v; want one of each", masters, pids)
	}
	gone := e2e.WaitFor(30*time.Second, func() bool { return !e2e.Alive(pids[0]) })
	took := time.Since(last)
	t.Logf("the master (pid %d) exited %s after the last command (ControlPersist 5 s)", pids[0], e2e.FmtDur(took))
	if !gone {
		t.Fatalf("tether's master (pid %d) still runs %s after its last use (ControlPersist 5 s)", pids[0], e2e.FmtDur(took))
	}
	if _, err := os.Lstat(masters[0]); err == nil {
		t.Errorf("the master's control socket %s is still there", masters[0])
	}
}

// TestOpenSSHReconnect: the connection under a launcher using OpenSSH dies (sshd's
// connection processes killed): the launcher says it lost it, ssh logs in again (one
// more login, no prompt), and the same local URL answers, the app never restarted.
func TestOpenSSHReconnect(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	env, _ := e2e.OpenSSHEnv(t, s)
	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	answers := func() bool {
		status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+l.Line.Session.Token)
		return status == 200 && strings.Contains(body, "tether's built-in app")
	}
	if !answers() {
		t.Fatal("the URL does not answer before the drop")
	}
	before := logins(s)
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	start := time.Now()
	if !e2e.WaitFor(30*time.Second, func() bool { return strings.Contains(l.Stderr.String(), "back: session") }) {
		t.Fatalf("no reconnect within 30 s; stderr:\n%s", l.Stderr.String())
	}
	if !e2e.WaitFor(15*time.Second, answers) {
		t.Fatalf("the URL does not answer after the reconnect; stderr:\n%s", l.Stderr.String())
	}
	t.Logf("answering again %s after the connection was killed", e2e.FmtDur(time.Since(start)))
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "connection to "+s.Alias+" lost (ssh's master connection ended); reconnecting")
	if n := logins(s) - before; n != 1 {
		t.Errorf("the reconnect logged in %d times; want 1", n)
	}
	if !e2e.Alive(l.Line.Session.PID) {
		t.Errorf("the session's server (pid %d) is gone", l.Line.Session.PID)
	}
}

// TestOpenSSHSilentDrop: sshd's processes for tether's master are stopped (SIGSTOP: no
// FIN, no RST, as a suspended or unplugged peer). The keepalives tether gives its own
// master (the config sets none) give up within about 16 s: the launcher says the
// connection was lost, reconnects, and the URL answers again.
func TestOpenSSHSilentDrop(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	env, _ := e2e.OpenSSHEnv(t, s)
	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	answers := func() bool {
		status, _, _ := e2e.Fetch(t, base, "Authorization", "token "+l.Line.Session.Token)
		return status == 200
	}
	if !answers() {
		t.Fatal("the URL does not answer before the drop")
	}
	frozen := s.ConnectionPIDs()
	if len(frozen) == 0 {
		t.Fatal("no sshd connection process")
	}
	for _, pid := range frozen {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	start := time.Now()
	if !e2e.WaitFor(60*time.Second, func() bool { return strings.Contains(l.Stderr.String(), "lost") }) {
		t.Fatalf("no \"lost\" line within 60 s of a silent drop; stderr:\n%s", l.Stderr.String())
	}
	lost := time.Since(start)
	if !e2e.WaitFor(60*time.Second, answers) {
		t.Fatalf("the URL did not answer again; stderr:\n%s", l.Stderr.String())
	}
	t.Logf("silent drop: \"lost\" after %s, answering again after %s", e2e.FmtDur(lost), e2e.FmtDur(time.Since(start)))
	if lost > 25*time.Second {
		t.Errorf("the drop was noticed after %s; want about 16 s (ServerAliveInterval 4, CountMax 3)", e2e.FmtDur(lost))
	}
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "connection to "+s.Alias+" lost", "reconnecting")
}

// TestSSHAutoStaysNative: with a config that asks for nothing OpenSSH-only, auto uses
// tether's own client: nothing said, no master started.
func TestSSHAutoStaysNative(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	env, dir := e2e.OpenSSHEnv(t, s)
	before := logins(s)
	for range 2 {
		out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "-F", s.Config, s.Alias)
		if code != 0 || strings.Contains(errOut, "OpenSSH") {
			t.Fatalf("ls (auto): exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	if n := logins(s) - before; n != 2 {
		t.Errorf("two native ls logged in %d times; want 2 (no master)", n)
	}
	if m := ownMasters(dir); len(m) > 0 {
		t.Errorf("auto started an OpenSSH master for a plain config: %v", m)
	}
	// TETHER_SSH=openssh picks OpenSSH without a flag.
	before = logins(s)
	for range 2 {
		if out, errOut, code := e2e.RunTetherEnv(t, append(env, "TETHER_SSH=openssh"), "ls", "-F", s.Config, s.Alias); code != 0 {
			t.Fatalf("TETHER_SSH=openssh ls: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	if n := logins(s) - before; n != 1 || len(ownMasters(dir)) != 1 {
		t.Errorf("TETHER_SSH=openssh: two ls logged in %d times with masters %v; want 1 and one master", n, ownMasters(dir))
	}
}

// TestOpenSSHSlurm: Slurm sessions through the user's ssh: the login node's master
// carries the launcher's TLS hop to the node (a stdio forward: direct-tcpip), and with
// --via-node-ssh a master to the node is reached through the login node's (no second
// login there): two logins for both launches.
func TestOpenSSHSlurm(t *testing.T) {
	site := e2e.StartSlurmSite(t, e2e.SlurmOptions{})
	env, _ := e2e.OpenSSHEnv(t, site.SSHD)
	before := logins(site.SSHD)
	for _, extra := range [][]string{nil, {"--via-node-ssh"}} {
		args := site.Args("launch", append([]string{"--ssh", "openssh", "--slurm", "-t 5", "--json", "--rm", "--no-browser"}, extra...)...)
		l := e2e.StartLauncher(t, args, false, env...)
		if !e2e.WaitFor(90*time.Second, func() bool {
			select {
			case <-l.Proc.Done():
				return true
			default:
			}
			return strings.Contains(l.Stdout.String(), "\n")
		}) || json.Unmarshal([]byte(l.Stdout.String()), &l.Line) != nil {
			t.Fatalf("tether %s: no JSON line; stderr:\n%s", strings.Join(args, " "), l.Stderr.String())
		}
		base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
		if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "tether's built-in app") {
			t.Errorf("%v: through ssh's master: %d %.200q", extra, status, body)
		}
		if extra != nil {
			e2e.MustContain(t, "launcher stderr", l.Stderr.String(), "connecting to node "+site.Slurm.Node+" through "+site.SSHD.Alias+" (OpenSSH)")
		}
		if err := l.Interrupt(t); err != nil {
			t.Errorf("%v: launcher after Ctrl-C (--rm): %v\n%s", extra, err, l.Stderr.String())
		}
	}
	if n := logins(site.SSHD) - before; n != 2 {
		t.Errorf("two Slurm launches (one --via-node-ssh) logged in %d times; want 2 (the login node, then the node through it)", n)
	}
}

// TestOpenSSHPromptsOnce: a key with a passphrase and no agent. ssh asks for it (here
// through SSH_ASKPASS, which counts the questions) once for launch, ls, stop and an
// attach: they share the login. A reconnect that needs a new login asks once more;
// when that answer is wrong, ssh's own tries run out and the launcher gives up with
// one line instead of asking again and again.
func TestOpenSSHPromptsOnce(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	key := filepath.Join(s.Dir, "id_pass")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-C", "tether-e2e", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	ak, _ := os.ReadFile(filepath.Join(s.Dir, "authorized_keys"))
	e2e.WriteFile(t, filepath.Join(s.Dir, "authorized_keys"), string(ak)+string(pub), 0o600)
	cfg := filepath.Join(s.Dir, "ssh_config_pass")
	block := strings.NewReplacer(s.ClientKey, key, "BatchMode yes", "BatchMode no").Replace(s.ConfigBlock())
	e2e.WriteFile(t, cfg, block, 0o600)
	asked := filepath.Join(s.Dir, "asked")
	answer := filepath.Join(s.Dir, "answer")
	e2e.WriteFile(t, answer, "correct horse\n", 0o600)
	askpass := filepath.Join(s.Dir, "askpass")
	e2e.WriteFile(t, askpass, "#!/bin/sh\nprintf '%s\\n' \"$1\" >> "+asked+"\ncat "+answer+"\n", 0o700)
	env, _ := e2e.OpenSSHEnv(t, s, "SSH_ASKPASS="+askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0", "SSH_AUTH_SOCK=")
	questions := func() int {
		b, _ := os.ReadFile(asked)
		return strings.Count(string(b), "\n")
	}
	before := logins(s)

	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", cfg, s.Alias, "--json", "--no-browser"}, true, env...)
	if err := l.Interrupt(t); err != nil {
		t.Errorf("launcher after Ctrl-C: %v", err)
	}
	if out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "--ssh", "openssh", "-F", cfg, s.Alias); code != 0 || !strings.Contains(out, l.Line.Session.ID) {
		t.Fatalf("ls: exit %d, %q, %q", code, out, errOut)
	}
	a := e2e.StartLauncher(t, []string{"attach", "--ssh", "openssh", "-F", cfg, s.Alias, l.Line.Session.ID, "--json", "--no-browser"}, true, env...)
	if status, _, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", a.Line.LocalPort), "Authorization", "token "+a.Line.Session.Token); status != 200 {
		t.Errorf("attach: status %d", status)
	}
	if n, q := logins(s)-before, questions(); n != 1 || q != 1 {
		b, _ := os.ReadFile(asked)
		t.Errorf("launch, ls and attach: %d logins, %d questions (%q); want 1 and 1", n, q, b)
	}

	// The connection dies: a new login, so one more question.
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	if !e2e.WaitFor(30*time.Second, func() bool { return strings.Contains(a.Stderr.String(), "back: session") }) {
		t.Fatalf("no reconnect; stderr:\n%s", a.Stderr.String())
	}
	if q := questions(); q != 2 {
		t.Errorf("after a reconnect: %d questions in all; want 2", q)
	}

	// Again, with the wrong answer: ssh asks its NumberOfPasswordPrompts (3) and gives
	// up; the launcher says so once and exits, asking no more.
	e2e.WriteFile(t, answer, "wrong\n", 0o600)
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	err, ok := a.Proc.Wait(60 * time.Second)
	if !ok {
		t.Fatalf("the launcher keeps going after a refused login; stderr:\n%s", a.Stderr.String())
	}
	if err == nil {
		t.Errorf("the launcher exited 0 after a refused login")
	}
	t.Logf("after the wrong answer: %d questions in all; the launcher ended with: %s", questions(), e2e.LastLines(a.Stderr.String(), 2))
	if q := questions(); q > 2+3 {
		t.Errorf("%d questions in all after a wrong answer; want at most 5 (ssh's own 3 tries)", q)
	}
	e2e.MustContain(t, "attach stderr", a.Stderr.String(), "refused the login through ssh")
	if _, errOut, code := e2e.RunTetherEnv(t, env, "stop", "--ssh", "openssh", "-F", cfg, s.Alias, "--all"); code == 0 || !strings.Contains(errOut, "refused the login") {
		t.Errorf("stop with the wrong passphrase: exit %d, %q; want the refusal", code, errOut)
	}
}

// TestOpenSSHPromptOnTerminal: on a terminal (a pty, through script(1)), ssh's
// passphrase prompt has a line of its own: after "connecting to HOST (OpenSSH)", and,
// when the connection dies and ssh must log in again, after the line that says so;
// nothing of tether's lands in the middle of it.
func TestOpenSSHPromptOnTerminal(t *testing.T) {
	scriptPath := e2e.Need(t, "script", "bsdutils")
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	key := filepath.Join(s.Dir, "id_pass")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-C", "tether-e2e", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	ak, _ := os.ReadFile(filepath.Join(s.Dir, "authorized_keys"))
	e2e.WriteFile(t, filepath.Join(s.Dir, "authorized_keys"), string(ak)+string(pub), 0o600)
	cfg := filepath.Join(s.Dir, "ssh_config_pass")
	e2e.WriteFile(t, cfg, strings.NewReplacer(s.ClientKey, key, "BatchMode yes", "BatchMode no").Replace(s.ConfigBlock()), 0o600)
	env, _ := e2e.OpenSSHEnv(t, s, "SSH_AUTH_SOCK=", "SSH_ASKPASS=", "DISPLAY=")
	base, _ := e2e.LauncherEnv(t)
	cmdline := e2e.Binary(t) + " launch --ssh openssh -F " + cfg + " " + s.Alias + " --no-browser"
	cmd := exec.Command(scriptPath, "-q", "-e", "-c", cmdline, "/dev/null")
	cmd.Env = append(base, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out e2e.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p := e2e.Start(t, cmd)
	defer stdin.Close()
	const prompt = "Enter passphrase for key '"
	answer := func(n int) {
		t.Helper()
		if !e2e.WaitFor(30*time.Second, func() bool { return strings.Count(out.String(), prompt) >= n }) {
			t.Fatalf("no passphrase prompt #%d on the terminal:\n%s", n, out.String())
		}
		io.WriteString(stdin, "correct horse\n")
	}
	answer(1)
	if !e2e.WaitFor(60*time.Second, func() bool { return strings.Contains(out.String(), "tether: ready:") }) {
		t.Fatalf("not ready:\n%s", out.String())
	}
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	answer(2)
	if !e2e.WaitFor(30*time.Second, func() bool { return strings.Contains(out.String(), "answers again") }) {
		t.Fatalf("no reconnect:\n%s", out.String())
	}
	p.Cmd.Process.Signal(syscall.SIGINT)
	p.Wait(30 * time.Second)
	// The terminal's lines (CR LF, a prompt may start with CR).
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(out.String(), "\r\n", "\n"), "\n") {
		lines = append(lines, strings.TrimLeft(l, "\r"))
	}
	var before []string
	for i, l := range lines {
		if strings.Contains(l, prompt) {
			if !strings.HasPrefix(l, prompt) {
				t.Errorf("the prompt shares its line: %q", l)
			}
			if i > 0 {
				before = append(before, lines[i-1])
			}
		}
	}
	want := []string{"tether: connecting to " + s.Alias + " (OpenSSH)", "tether: connection to " + s.Alias + " lost (ssh's master connection ended); reconnecting"}
	if strings.Join(before, "\n") != strings.Join(want, "\n") {
		t.Errorf("the lines before the prompts: %q; want %q\nterminal:\n%s", before, want, out.String())
	}
}
