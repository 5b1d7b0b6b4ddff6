//go:build unix

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ssh"
)

// TestLaunchE2E is the product as users meet it, against a real sshd: launch → the local
// URL serves the app (token, cookie, login and header flows); no token in any
// /proc/*/cmdline or in sshd's log; the browser is opened on a one-time code (Chromium
// lands on a clean URL, a reused code fails); Ctrl-C leaves the session running;
// attach brings it back; logs and stop work over SSH.
func TestLaunchE2E(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--"}, HTTPServerApp...)
	l := StartLauncher(t, args, true)
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	if !EqSecret(l.Line.URL, base+"?token="+tok) || len(tok) < 40 || l.Line.Session.ID == "" {
		t.Fatalf("JSON line: %+v", l.Line)
	}

	// Token in the URL: a 303 to the clean URL with the cookie.
	status, _, resp := Fetch(t, l.Line.URL)
	if status != http.StatusSeeOther || resp == nil || strings.Contains(resp.Header.Get("Location"), tok) || len(resp.Cookies()) == 0 {
		t.Fatalf("GET ?token=: status %d, response %+v", status, resp)
	}
	cookie := resp.Cookies()[0]
	if status, body, _ := Fetch(t, base, "Cookie", cookie.Name+"="+cookie.Value); status != 200 || !strings.Contains(body, HTTPServerTitle) {
		t.Errorf("with the cookie: %d %.200q", status, body)
	}
	if status, body, _ := Fetch(t, base, "Authorization", "token "+tok); status != 200 || !strings.Contains(body, HTTPServerTitle) {
		t.Errorf("with the header: %d %.200q", status, body)
	}
	if status, body, _ := Fetch(t, base, "Accept", "text/html"); status != http.StatusUnauthorized || strings.Contains(body, HTTPServerTitle) {
		t.Errorf("without credentials: %d %.200q", status, body)
	}
	// The login form.
	form := url.Values{"token": {tok}, "next": {"/"}}
	req, _ := http.NewRequest(http.MethodPost, base+"_tether/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(base, "/"))
	if resp, err := NoRedirect.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Errorf("login form: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The token is in no process's argv and not in sshd's log.
	if p := ProcessesWith(tok); len(p) > 0 {
		t.Errorf("the token is on a command line: %q", p)
	}
	if strings.Contains(s.Log(), tok) {
		t.Errorf("the token is in sshd's log")
	}

	// The opener got a one-time code URL, not the token.
	var target string
	if !WaitFor(10*time.Second, func() bool { ts := OpenedTargets(l); target = strings.Join(ts, " "); return len(ts) > 0 }) {
		t.Fatalf("the launcher opened no browser")
	}
	if strings.Contains(target, tok) || !strings.HasPrefix(target, base+"?code=") {
		t.Fatalf("opened %q", target)
	}
	code := strings.TrimPrefix(target, base+"?code=")
	if p := ProcessesWith(code); len(p) > 0 {
		t.Errorf("the code is still on a command line: %q", p)
	}
	// Chromium: the app loads and the address bar holds neither token nor code.
	ctx := Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(target)); err != nil {
		t.Fatal(err)
	}
	var loc, title string
	WaitFor(10*time.Second, func() bool {
		title, _ = chromedp.Run(ctx, chromedp.Title())
		return title == HTTPServerTitle
	})
	loc, _ = chromedp.Run(ctx, chromedp.Location())
	if title != HTTPServerTitle || loc != base || strings.Contains(loc, code) || strings.Contains(loc, tok) {
		t.Errorf("Chromium: title %q at %q; want %q at %q", title, loc, HTTPServerTitle, base)
	}
	// The same code again (a browser without the cookie): refused.
	if status, body, _ := Fetch(t, target, "Accept", "text/html", "Sec-Fetch-Mode", "navigate"); status == http.StatusSeeOther || strings.Contains(body, HTTPServerTitle) {
		t.Errorf("reusing the code: status %d", status)
	}
	if ctx2 := Browser(t); ctx2 != nil {
		chromedp.Do(ctx2, chromedp.Navigate(target))
		title2, _ := chromedp.Run(ctx2, chromedp.Title())
		if title2 == HTTPServerTitle {
			t.Errorf("a second browser got in with the used code")
		}
	}

	// Ctrl-C detaches: exit 0, the session keeps running, the user is told how to return.
	id := l.Line.Session.ID
	if err := l.Interrupt(t); err != nil {
		t.Fatalf("launcher after SIGINT: %v", err)
	}
	MustContain(t, "stderr after Ctrl-C", l.Stderr.String(), "tether attach", id, "tether stop")
	list := SessionsOn(t, s)
	if len(list) != 1 || list[0]["id"] != id || list[0]["state"] != "running" {
		t.Fatalf("after detach: %v", list)
	}

	// attach brings it back (nothing local needed: a fresh HOME, the token read over SSH).
	a := StartLauncher(t, []string{"attach", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true)
	if a.Line.Session.ID != id || !EqSecret(a.Line.Session.Token, tok) {
		t.Fatalf("attach found %+v", a.Line.Session)
	}
	if status, body, _ := Fetch(t, strings.TrimSuffix(a.Line.URL, "?token="+tok), "Authorization", "token "+tok); status != 200 || !strings.Contains(body, HTTPServerTitle) {
		t.Errorf("after attach: %d %.100q", status, body)
	}
	if len(OpenedTargets(a)) != 0 {
		t.Errorf("--no-browser opened a browser")
	}

	// logs and stop over SSH.
	out, errOut, code2 := RunTether(t, "logs", "-F", s.Config, s.Alias, id)
	if code2 != 0 || !strings.Contains(out, "GET /") {
		t.Errorf("logs: exit %d, stdout %q, stderr %q", code2, out, errOut)
	}
	out, errOut, code2 = RunTether(t, "ls", "-F", s.Config, s.Alias)
	if code2 != 0 || !strings.Contains(out, id) {
		t.Errorf("ls: exit %d, stdout %q, stderr %q", code2, out, errOut)
	}
	if _, errOut, code2 = RunTether(t, "stop", "-F", s.Config, s.Alias, id); code2 != 0 {
		t.Errorf("stop: exit %d: %s", code2, errOut)
	}
	for _, r := range SessionsOn(t, s) {
		if r["id"] == id {
			t.Errorf("after stop: %v", r)
		}
	}
	if _, _, code2 = RunTether(t, "stop", "-F", s.Config, s.Alias, "nosuchid"); code2 != 1 {
		t.Errorf("stop of an unknown session: exit %d, want 1", code2)
	}
	a.Interrupt(t)
}

// TestLaunchSurvivesDroppedConnections kills sshd's per-connection processes twice
// while the launcher runs: the same local URL answers again within seconds each time,
// and the app was never restarted.
func TestLaunchSurvivesDroppedConnections(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, HTTPServerApp...)
	l := StartLauncher(t, args, true)
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	apps := Descendants(l.Line.Session.PID, "python3")
	if len(apps) != 1 {
		t.Fatalf("app processes under the server %d: %v", l.Line.Session.PID, apps)
	}
	for round := 1; round <= 2; round++ {
		if n := s.KillConnections(); n == 0 {
			t.Fatalf("round %d: no sshd connection process to kill", round)
		}
		start := time.Now()
		ok := WaitFor(15*time.Second, func() bool {
			status, body, _ := Fetch(t, base, "Authorization", "token "+tok)
			return status == 200 && strings.Contains(body, HTTPServerTitle)
		})
		if !ok {
			t.Fatalf("round %d: the URL did not come back within 15 s; stderr:\n%s", round, l.Stderr.String())
		}
		t.Logf("round %d: the local URL answered again %s after the connection was killed", round, FmtDur(time.Since(start)))
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("round %d: %s to come back; want seconds", round, FmtDur(el))
		}
	}
	if now := Descendants(l.Line.Session.PID, "python3"); len(now) != 1 || now[0] != apps[0] || !Alive(l.Line.Session.PID) {
		t.Errorf("the app was restarted: before %v, after %v", apps, now)
	}
	WaitFor(5*time.Second, func() bool { return strings.Count(l.Stderr.String(), "back:") >= 2 })
	MustContain(t, "launcher status", l.Stderr.String(), "reconnecting", "back:")
}

// TestLaunchChangedHostKey: a changed host key makes launch fail within seconds with a
// message about the host key, and nothing is started (nor installed) on the remote.
func TestLaunchChangedHostKey(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	known, err := os.ReadFile(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the key with another ed25519 key under the same name.
	other := StartSSHD(t, SSHDOptions{Alias: "other"})
	otherKnown, _ := os.ReadFile(other.KnownHosts)
	f := strings.Fields(string(otherKnown))
	fields := strings.Fields(string(known))
	os.WriteFile(s.KnownHosts, []byte(fields[0]+" "+f[1]+" "+f[2]+"\n"), 0o600)

	Binary(t) // built before the clock starts
	start := time.Now()
	_, errOut, code := RunTether(t, "launch", "-F", s.Config, s.Alias, "--no-browser")
	el := time.Since(start)
	if code != 1 || !strings.Contains(strings.ToLower(errOut), "host key") || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
		t.Errorf("exit %d, stderr %q: want exit 1 and one line about the host key", code, errOut)
	}
	// As OpenSSH's warning: both fingerprints, where the old key is, and the fix.
	fp := func(typ, b64 string) string {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(typ + " " + b64))
		if err != nil {
			t.Fatal(err)
		}
		return ssh.FingerprintSHA256(k)
	}
	offered, knownFP := fp(fields[1], fields[2]), fp(f[1], f[2])
	t.Logf("stderr: %s", errOut)
	for _, want := range []string{"CHANGED", "offers " + fields[1] + " " + offered, s.KnownHosts + ":1 holds " + knownFP,
		"ssh-keygen -R '" + fields[0] + "' -f " + s.KnownHosts} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if el > 5*time.Second {
		t.Errorf("took %s; want seconds", FmtDur(el))
	}
	if _, err := os.Stat(s.Home + "/.cache"); !os.IsNotExist(err) {
		t.Errorf("something was installed or started on the remote: %v", err)
	}
	if strings.Contains(s.Log(), "Accepted publickey") {
		t.Errorf("the client authenticated to a host whose key changed")
	}
}

// TestDemoE2E: `tether demo --no-browser --json` works with nothing set up, and stops
// its session and cleans up on exit.
func TestDemoE2E(t *testing.T) {
	l := StartLauncher(t, []string{"demo", "--no-browser", "--json"}, true)
	checkDemo(t, l)
}

// TestDemoNoDisplayPrintsURL: with no graphical display and no BROWSER, the launcher
// does not try xdg-open; it says why on stderr and prints the URL with the token on
// stdout for the user to open by hand.
func TestDemoNoDisplayPrintsURL(t *testing.T) {
	env, _ := LauncherEnv(t)
	env = append(env, "TETHER_BROWSER=", "DISPLAY=", "WAYLAND_DISPLAY=")
	cmd := exec.Command(Binary(t), "demo")
	cmd.Env = env
	l := &Launched{Stdout: &Buffer{}, Stderr: &Buffer{}}
	cmd.Stdout, cmd.Stderr = l.Stdout, l.Stderr
	l.Proc = Start(t, cmd)
	if !WaitFor(60*time.Second, func() bool { return strings.Contains(l.Stdout.String(), "\n") }) {
		t.Fatalf("demo without a display printed no URL; stderr:\n%s", l.Stderr.String())
	}
	url := strings.TrimSpace(l.Stdout.String())
	i := strings.Index(url, "?token=")
	if !strings.HasPrefix(url, "http://127.0.0.1:") || i < 0 {
		t.Fatalf("stdout %q; want the local URL with the token", url)
	}
	tok := url[i+len("?token="):]
	if status, _, _ := Fetch(t, url[:i], "Authorization", "token "+tok); status != 200 {
		t.Errorf("the printed URL's token: %d; want 200", status)
	}
	if !WaitFor(10*time.Second, func() bool { return strings.Contains(l.Stderr.String(), "ready") }) {
		t.Fatalf("no ready line; stderr:\n%s", l.Stderr.String())
	}
	e := l.Stderr.String()
	MustContain(t, "demo stderr", e, "could not open a browser (no graphical display")
	if strings.Contains(e, tok) {
		t.Errorf("stderr holds the token:\n%s", e)
	}
	l.Proc.Cmd.Process.Signal(syscall.SIGINT)
	if err, ok := l.Proc.Wait(30 * time.Second); !ok || err != nil {
		t.Fatalf("demo after Ctrl-C: exited %v, %v; stderr:\n%s", ok, err, l.Stderr.String())
	}
}

// TestDemoGoRun is the README's first command, once.
func TestDemoGoRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the module with go run")
	}
	Need(t, "go", "golang")
	env, opened := LauncherEnv(t)
	cmd := ExecGoRun(t, env)
	l := &Launched{Stdout: &Buffer{}, Stderr: &Buffer{}, Opened: opened}
	cmd.Stdout, cmd.Stderr = l.Stdout, l.Stderr
	l.Proc = Start(t, cmd)
	if !WaitFor(90*time.Second, func() bool { return strings.Contains(l.Stdout.String(), "\n") }) {
		t.Fatalf("go run . demo: no JSON line; stderr:\n%s", l.Stderr.String())
	}
	if err := JSONUnmarshal(l.Stdout.String(), &l.Line); err != nil {
		t.Fatal(err)
	}
	// go run waits for its child; the group gets Ctrl-C as from a terminal.
	syscall.Kill(-l.Proc.Cmd.Process.Pid, syscall.SIGINT)
	checkDemoAfter(t, l, false)
}

func checkDemo(t *testing.T, l *Launched) {
	t.Helper()
	tok := l.Line.Session.Token
	status, body, _ := Fetch(t, strings.TrimSuffix(l.Line.URL, "?token="+tok), "Authorization", "token "+tok)
	if status != 200 || body == "" {
		t.Errorf("demo URL: %d %.100q", status, body)
	}
	if p := ProcessesWith(tok); len(p) > 0 {
		t.Errorf("the token is on a command line: %q", p)
	}
	l.Proc.Cmd.Process.Signal(syscall.SIGINT)
	checkDemoAfter(t, l, true)
}

func checkDemoAfter(t *testing.T, l *Launched, direct bool) {
	t.Helper()
	err, ok := l.Proc.Wait(30 * time.Second)
	// `go run` itself exits 1 when it got SIGINT, whatever its child did.
	if !ok || err != nil && direct {
		t.Fatalf("demo after Ctrl-C: exited %v, %v; stderr:\n%s", ok, err, l.Stderr.String())
	}
	MustContain(t, "demo stderr", l.Stderr.String(), "stopped session "+l.Line.Session.ID)
	if _, err := os.Stat(l.Line.Session.Socket); !os.IsNotExist(err) {
		t.Errorf("the demo session's socket %s is still there", l.Line.Session.Socket)
	}
	if Alive(l.Line.Session.PID) {
		t.Errorf("the demo server %d is still running", l.Line.Session.PID)
	}
}
