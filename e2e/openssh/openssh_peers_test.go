//go:build linux

package openssh

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// The OpenSSH transport at the sites it is for: an sshd that wants a TOTP after the
// key (PAM, pam_oath), and a Kerberos realm whose sshd takes only gssapi-with-mic.

// TestOpenSSHMFA: one one-time code serves a launch, an attach after the launcher was
// killed (through tether's master), ls and stop: one login in sshd's log. When the
// connection itself drops, the new login is unavoidable: the code is asked once more,
// on a line of its own after the line that says the connection was lost, a request
// made meanwhile waits for it, and nothing asks again.
func TestOpenSSHMFA(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{MFA: true})
	env, _ := e2e.OpenSSHEnv(t, s)

	term, stdout := tetherOnTerminal(t, env, "launch", "--ssh", "openssh", "-F", s.Config, s.Alias, "--json", "--no-browser")
	answerPrompt(t, term, e2e.TOTPPrompt, 1, s.TOTP.Next(t))
	line := waitJSONLine(t, term, stdout)
	e2e.KillSessionOnCleanup(t, line.Session.PID)
	if status, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", line.LocalPort), "Authorization", "token "+line.Session.Token); status != 200 || !strings.Contains(body, "tether's built-in app") {
		t.Fatalf("after launch: %d %.200q", status, body)
	}
	e2e.MustContain(t, "launch's terminal", term.Screen(), "tether: connecting to "+s.Alias+" (OpenSSH)")

	// The launcher dies outright; attach comes back through the master it left.
	syscall.Kill(term.Proc.Cmd.Process.Pid, syscall.SIGKILL)
	term.Wait(10 * time.Second)
	aterm, aout := tetherOnTerminal(t, env, "attach", "--ssh", "openssh", "-F", s.Config, s.Alias, line.Session.ID, "--json", "--no-browser")
	aline := waitJSONLine(t, aterm, aout)
	base := fmt.Sprintf("http://127.0.0.1:%d/", aline.LocalPort)
	if status, _, _ := e2e.Fetch(t, base, "Authorization", "token "+aline.Session.Token); status != 200 {
		t.Fatalf("after attach: status %d", status)
	}
	if out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "--ssh", "openssh", "-F", s.Config, s.Alias); code != 0 || !strings.Contains(out, line.Session.ID) {
		t.Fatalf("ls: exit %d, %q, %q", code, out, errOut)
	}
	logins := s.Logins()
	if len(logins) != 1 || logins[0].Method != "keyboard-interactive/pam" {
		t.Errorf("launch, attach after a crash, ls: logins %+v; want one keyboard-interactive/pam", logins)
	}
	if n := strings.Count(term.Screen()+aterm.Screen(), e2e.TOTPPrompt); n != 1 {
		t.Errorf("the code was asked %d times for launch, attach and ls; want once", n)
	}

	// The connection drops: tether's master is gone, a new login asks for a code.
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	type result struct {
		status int
		at     time.Duration
	}
	waited := make(chan result, 1)
	start := time.Now()
	go func() {
		status, _, _ := e2e.Fetch(t, base+"?during-the-login", "Authorization", "token "+aline.Session.Token)
		waited <- result{status, time.Since(start)}
	}()
	if !aterm.WaitFor(e2e.TOTPPrompt, 1, 30*time.Second) {
		t.Fatalf("no code asked after the drop; terminal:\n%s", aterm.Screen())
	}
	time.Sleep(time.Second)
	select {
	case r := <-waited:
		t.Fatalf("the request made during the drop ended (%d) before the code was given", r.status)
	default:
	}
	answerPrompt(t, aterm, e2e.TOTPPrompt, 1, s.TOTP.Next(t))
	select {
	case r := <-waited:
		if r.status != 200 {
			t.Errorf("the request made during the drop: status %d", r.status)
		}
		t.Logf("the request made during the drop answered %s after it (the code typed about 1 s after the question)", e2e.FmtDur(r.at))
	case <-time.After(60 * time.Second):
		t.Fatal("the request made during the drop never answered")
	}
	if !aterm.WaitFor("answers again", 1, 30*time.Second) {
		t.Fatalf("attach did not come back; terminal:\n%s", aterm.Screen())
	}
	checkPromptLines(t, aterm.Screen(), e2e.TOTPPrompt)
	lines := strings.Split(strings.ReplaceAll(aterm.Screen(), "\r\n", "\n"), "\n")
	for i, l := range lines {
		if strings.Contains(l, e2e.TOTPPrompt) && (i == 0 || !strings.Contains(lines[i-1], "connection to "+s.Alias+" lost")) {
			t.Errorf("the line before the code's question is not the lost-connection line: %q", lines[max(i-1, 0)])
		}
	}

	if out, errOut, code := e2e.RunTetherEnv(t, env, "stop", "--ssh", "openssh", "-F", s.Config, s.Alias, line.Session.ID); code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d, %q, %q", code, out, errOut)
	}
	time.Sleep(time.Second) // nothing asks again
	logins = s.Logins()
	for _, l := range logins {
		if l.Method != "keyboard-interactive/pam" {
			t.Errorf("a login without the second factor: %+v", l)
		}
	}
	if len(logins) != 2 {
		t.Errorf("%d logins in all; want 2 (the first, and the one after the drop): %+v", len(logins), logins)
	}
	if n := strings.Count(term.Screen()+aterm.Screen(), e2e.TOTPPrompt); n != 2 {
		t.Errorf("the code was asked %d times in all; want 2", n)
	}
	t.Logf("logins in sshd's log: %d; codes asked: launch, attach after a crash, ls and stop 1, the drop 1", len(logins))
}

// TestOpenSSHKerberos: a user with a ticket and no SSH key launches through ssh
// (GSSAPI): auto picks OpenSSH for GSSAPIAuthentication yes with a ticket and says
// so; the built-in app answers; ls and stop log in no more.
func TestOpenSSHKerberos(t *testing.T) {
	k := e2e.StartKDC(t)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{Kerberos: k})
	e2e.Need(t, "klist", "krb5-user")
	k.Kinit(t)
	env, _ := e2e.OpenSSHEnv(t, s, s.ClientEnv...)
	l := e2e.StartLauncher(t, []string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	e2e.KillSessionOnCleanup(t, l.Line.Session.PID)
	e2e.MustContain(t, "launcher stderr", l.Stderr.String(),
		"tether: using OpenSSH's ssh for "+s.Alias+" (your config sets GSSAPIAuthentication yes and you have a Kerberos ticket)")
	if status, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "tether's built-in app") {
		t.Fatalf("through the Kerberos login: %d %.200q", status, body)
	}
	if err := l.Interrupt(t); err != nil {
		t.Errorf("launcher after Ctrl-C: %v", err)
	}
	if out, errOut, code := e2e.RunTetherEnv(t, env, "ls", "-F", s.Config, s.Alias); code != 0 || !strings.Contains(out, l.Line.Session.ID) {
		t.Fatalf("ls: exit %d, %q, %q", code, out, errOut)
	}
	if out, errOut, code := e2e.RunTetherEnv(t, env, "stop", "--ssh", "openssh", "-F", s.Config, s.Alias, l.Line.Session.ID); code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d, %q, %q", code, out, errOut)
	}
	if got := s.Logins(); len(got) != 1 || got[0] != (e2e.Login{Method: "gssapi-with-mic", User: s.User}) {
		t.Errorf("logins for launch, ls and stop: %+v; want one gssapi-with-mic", got)
	}
	// Without a ticket auto stays native: the config alone (GSSAPIAuthentication yes, as
	// Debian sets for every host) is no reason, and the native refusal points to ssh.
	noTicket := append(append([]string{}, env...), "KRB5CCNAME=FILE:"+k.Dir+"/no-such-ccache")
	_, errOut, code := e2e.RunTetherEnv(t, noTicket, "ls", "-F", s.Config, s.Alias)
	if code == 0 || strings.Contains(errOut, "using OpenSSH") || !strings.Contains(errOut, "--ssh openssh") {
		t.Errorf("without a ticket: exit %d, stderr %q; want native's refusal pointing to --ssh openssh", code, errOut)
	}
}
