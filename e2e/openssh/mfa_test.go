//go:build linux

package openssh

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-dev/tether/e2e"
)

// tetherOnTerminal runs tether as a user at a terminal does: the terminal is its
// controlling terminal (where it asks for codes and passphrases) and its stderr; stdout
// is a pipe (the --json line, ls's output).
func tetherOnTerminal(t *testing.T, extraEnv []string, args ...string) (*e2e.Terminal, *e2e.Buffer) {
	t.Helper()
	env, _ := e2e.LauncherEnv(t)
	cmd := exec.Command(e2e.Binary(t), args...)
	cmd.Env = append(env, extraEnv...)
	var stdout e2e.Buffer
	cmd.Stdout = &stdout
	term := e2e.StartOnTerminal(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether %s: terminal:\n%s\nstdout:\n%s", strings.Join(args, " "), term.Screen(), stdout.String())
		}
	})
	return term, &stdout
}

// answerPrompt waits for the n-th prompt (a line holding question) on term, checks it
// stands on its own line (nothing before it but OpenSSH's "(user@host) "), and types
// answer.
func answerPrompt(t *testing.T, term *e2e.Terminal, question string, n int, answer string) {
	t.Helper()
	if !term.WaitFor(question, n, 30*time.Second) {
		t.Fatalf("prompt %d (%q) never came; terminal:\n%s", n, question, term.Screen())
	}
	checkPromptLines(t, term.Screen(), question)
	term.Type(t, answer+"\n")
}

// promptPrefix is what may stand before a question on its line: OpenSSH's "(user@host) ".
var promptPrefix = regexp.MustCompile(`^(\([^ ()]+@[^ ()]+\) )?$`)

// checkPromptLines fails if any occurrence of question on screen shares its line with
// other output (a status line such as "tether: connecting to HOST" glued in front).
func checkPromptLines(t *testing.T, screen, question string) {
	t.Helper()
	rest := screen
	for {
		i := strings.Index(rest, question)
		if i < 0 {
			return
		}
		lineStart := strings.LastIndexAny(rest[:i], "\r\n") + 1
		if before := rest[lineStart:i]; !promptPrefix.MatchString(before) {
			t.Errorf("the prompt %q shares its line with %q; terminal:\n%q", question, before, screen)
		}
		rest = rest[i+len(question):]
	}
}

// waitJSONLine waits for the launcher's --json line on stdout.
func waitJSONLine(t *testing.T, term *e2e.Terminal, stdout *e2e.Buffer) e2e.LaunchLine {
	t.Helper()
	if !e2e.WaitFor(60*time.Second, func() bool {
		select {
		case <-term.Proc.Done():
			return true
		default:
		}
		return strings.Contains(stdout.String(), "\n")
	}) || !strings.Contains(stdout.String(), "\n") {
		t.Fatalf("no JSON line; terminal:\n%s", term.Screen())
	}
	var line e2e.LaunchLine
	if err := json.Unmarshal([]byte(strings.SplitN(stdout.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatalf("JSON line %q: %v", stdout.String(), err)
	}
	return line
}

// TestNativeMFALaunchLsStop: at an MFA site (the key, then a TOTP through PAM) the
// native transport launches, survives a dropped connection by logging in again, and ls
// and stop work; each login asks for the code exactly once, on a line of its own (not
// glued to "tether: connecting to HOST"), and the browser's request made during the
// drop (a Chromium tab reloaded) waits for the new login and then loads. sshd's log
// counts one login per process plus one for the reconnect.
func TestNativeMFALaunchLsStop(t *testing.T) {
	e2e.NeedPython(t)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{MFA: true})
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, e2e.HTTPServerApp...)
	term, stdout := tetherOnTerminal(t, nil, args...)
	answerPrompt(t, term, e2e.TOTPPrompt, 1, s.TOTP.Next(t))
	line := waitJSONLine(t, term, stdout)
	e2e.KillSessionOnCleanup(t, line.Session.PID)
	base := fmt.Sprintf("http://127.0.0.1:%d/", line.LocalPort)
	tok := line.Session.Token
	if status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+tok); status != 200 || !strings.Contains(body, e2e.HTTPServerTitle) {
		t.Fatalf("the URL does not answer after launch: %d %.200s", status, body)
	}
	if got := s.Logins(); len(got) != 1 || got[0].Method != "keyboard-interactive/pam" {
		t.Fatalf("logins after launch: %+v; want one keyboard-interactive/pam", got)
	}
	if n := strings.Count(term.Screen(), e2e.TOTPPrompt); n != 1 {
		t.Fatalf("the code was asked %d times for one login", n)
	}

	// Chromium opens the session (the URL's token becomes its cookie).
	ctx := e2e.Browser(t)
	if err := chromedp.Do(e2e.WithTimeout(ctx, 30*time.Second), chromedp.Navigate(line.URL)); err != nil {
		t.Fatalf("Chromium opening %s: %v", base, err)
	}
	if title, _ := chromedp.Run(ctx, chromedp.Title()); title != e2e.HTTPServerTitle {
		t.Fatalf("Chromium: title %q; want %q", title, e2e.HTTPServerTitle)
	}

	// The network drops; the tab is reloaded and waits while tether logs in again.
	if n := s.KillConnections(); n == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	loaded := make(chan error, 1)
	reloaded := time.Now()
	go func() { loaded <- chromedp.Do(e2e.WithTimeout(ctx, 90*time.Second), chromedp.Navigate(base)) }()
	if !term.WaitFor(e2e.TOTPPrompt, 2, 30*time.Second) {
		t.Fatalf("no second prompt after the drop; terminal:\n%s", term.Screen())
	}
	time.Sleep(500 * time.Millisecond) // the tab is waiting, not failing
	select {
	case err := <-loaded:
		t.Fatalf("the tab finished loading (%v) before the code was given", err)
	default:
	}
	answerPrompt(t, term, e2e.TOTPPrompt, 2, s.TOTP.Next(t))
	select {
	case err := <-loaded:
		if err != nil {
			t.Fatalf("the tab reloaded during the drop: %v", err)
		}
		if title, _ := chromedp.Run(ctx, chromedp.Title()); title != e2e.HTTPServerTitle {
			t.Fatalf("the tab reloaded during the drop shows %q; want %q", title, e2e.HTTPServerTitle)
		}
		t.Logf("the tab reloaded during the drop loaded %v after the reload", time.Since(reloaded).Round(time.Millisecond))
	case <-time.After(90 * time.Second):
		t.Fatal("the tab reloaded during the drop never loaded")
	}
	time.Sleep(time.Second) // nothing asks again once the connection is back
	if n := strings.Count(term.Screen(), e2e.TOTPPrompt); n != 2 {
		t.Fatalf("the code was asked %d times for two logins", n)
	}
	if n := len(s.Logins()); n != 2 {
		t.Fatalf("%d logins after the reconnect; want 2", n)
	}

	// ls and stop: one login each, one prompt each.
	lsTerm, lsOut := tetherOnTerminal(t, nil, "ls", "-F", s.Config, s.Alias)
	answerPrompt(t, lsTerm, e2e.TOTPPrompt, 1, s.TOTP.Next(t))
	if code := lsTerm.Wait(60 * time.Second); code != 0 || !strings.Contains(lsOut.String(), line.Session.ID) {
		t.Fatalf("ls: exit %d, stdout %q", code, lsOut.String())
	}
	if n := strings.Count(lsTerm.Screen(), e2e.TOTPPrompt); n != 1 {
		t.Errorf("ls asked for the code %d times", n)
	}
	stopTerm, _ := tetherOnTerminal(t, nil, "stop", "-F", s.Config, s.Alias, line.Session.ID)
	answerPrompt(t, stopTerm, e2e.TOTPPrompt, 1, s.TOTP.Next(t))
	if code := stopTerm.Wait(60 * time.Second); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	if n := strings.Count(stopTerm.Screen(), e2e.TOTPPrompt); n != 1 {
		t.Errorf("stop asked for the code %d times", n)
	}
	if !e2e.WaitFor(10*time.Second, func() bool { return !e2e.Alive(line.Session.PID) }) {
		t.Errorf("the session's server %d still runs after stop", line.Session.PID)
	}
	logins := s.Logins()
	for _, l := range logins {
		if l.Method != "keyboard-interactive/pam" {
			t.Errorf("a login without the second factor: %+v", l)
		}
	}
	if len(logins) != 4 {
		t.Errorf("%d logins for launch, a reconnect, ls and stop; want 4: %+v", len(logins), logins)
	}
	t.Logf("logins in sshd's log: %d (launch, reconnect, ls, stop), each asked its code once", len(logins))
}

// passphrasePrompt is the question for an encrypted key (the same words as ssh's).
const passphrasePrompt = "Enter passphrase for key"

// TestNativePassphraseOncePerProcess: a passphrase-protected key and no agent. The
// launcher asks for the passphrase once, on its own line; when the connection drops it
// logs in again with the key it already decrypted (no second question) and the URL
// answers again.
func TestNativePassphraseOncePerProcess(t *testing.T) {
	e2e.NeedPython(t)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{KeyPassphrase: "correct horse battery"})
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, e2e.HTTPServerApp...)
	term, stdout := tetherOnTerminal(t, nil, args...)
	answerPrompt(t, term, passphrasePrompt, 1, "correct horse battery")
	line := waitJSONLine(t, term, stdout)
	e2e.KillSessionOnCleanup(t, line.Session.PID)
	base := fmt.Sprintf("http://127.0.0.1:%d/", line.LocalPort)
	answers := func() bool {
		status, body, _ := e2e.Fetch(t, base, "Authorization", "token "+line.Session.Token)
		return status == 200 && strings.Contains(body, e2e.HTTPServerTitle)
	}
	if !answers() {
		t.Fatal("the URL does not answer after launch")
	}
	for round := 1; round <= 2; round++ {
		if n := s.KillConnections(); n == 0 {
			t.Fatalf("round %d: no sshd connection process to kill", round)
		}
		start := time.Now()
		back := e2e.WaitFor(30*time.Second, func() bool {
			return strings.Count(term.Screen(), passphrasePrompt) > 1 || answers()
		})
		if n := strings.Count(term.Screen(), passphrasePrompt); n != 1 {
			t.Fatalf("round %d: the passphrase was asked %d times; want once per process", round, n)
		}
		if !back {
			t.Fatalf("round %d: the URL did not answer again within 30 s", round)
		}
		t.Logf("round %d: the URL answered again %v after the drop, no new question", round, time.Since(start).Round(time.Millisecond))
	}
	if n := len(s.Logins()); n != 3 {
		t.Errorf("%d logins; want 3 (launch and two reconnects)", n)
	}
}

// TestNativeEncryptedKeyWithoutTerminal: an encrypted key, no agent and no terminal to
// ask on (a script, cron): the login fails at once with one line that names the key and
// the fix (ssh-add), not "no key was found".
func TestNativeEncryptedKeyWithoutTerminal(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{KeyPassphrase: "correct horse battery"})
	env, _ := e2e.LauncherEnv(t)
	cmd := exec.Command(e2e.Binary(t), "ls", "-F", s.Config, s.Alias)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	var stdout, stderr e2e.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p := e2e.Start(t, cmd)
	err, ok := p.Wait(30 * time.Second)
	if !ok {
		t.Fatal("tether ls did not finish without a terminal")
	}
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 1 {
		t.Fatalf("tether ls: %v; want exit 1; stderr:\n%s", err, stderr.String())
	}
	msg := stderr.String()
	t.Logf("stderr: %s", msg)
	if strings.Contains(msg, "warning: warning:") {
		t.Errorf("a doubled warning prefix: %s", msg)
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(msg), "\n") {
		if !strings.HasPrefix(l, "tether: warning: ") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 {
		t.Fatalf("want one error line; got %q", errLines)
	}
	e2e.MustContain(t, "the error", errLines[0], "tether: "+s.Alias+" refused to let "+s.User+" in",
		s.ClientKey+" is encrypted", "`ssh-add "+s.ClientKey+"`")
	if strings.Contains(errLines[0], "no key was found") {
		t.Errorf("the error says no key was found: %s", errLines[0])
	}
	if n := len(s.Logins()); n != 0 {
		t.Errorf("%d logins", n)
	}
}
