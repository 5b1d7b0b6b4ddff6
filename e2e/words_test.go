//go:build unix

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// finalLine is the last line of s (a command's stderr).
func finalLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestWordsE2E: what a person reads from ls, stop, logs and launch against a real
// sshd: flags anywhere among the arguments, the remote's errors in the laptop's words
// (the host as typed, each command as it runs from here), a forgotten session id said
// so, and "fix the command" only when the command is what failed.
func TestWordsE2E(t *testing.T) {
	Binary(t) // built before the clock starts
	start := time.Now()
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	cfg, host := s.Config, s.Alias
	ls := "`tether ls -F " + cfg + " " + host + "`"

	t.Run("stop HOST -F cfg ID", func(t *testing.T) {
		_, errOut, code := RunTether(t, "stop", host, "-F", cfg, "nosuch")
		want := "tether: no session \"nosuch\" on " + host + "; run " + ls + " to see yours"
		if code != 1 || finalLine(errOut) != want {
			t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
		}
	})
	t.Run("logs HOST ID -F cfg", func(t *testing.T) {
		_, errOut, code := RunTether(t, "logs", host, "nosuch", "-F", cfg)
		want := "tether: no session \"nosuch\" on " + host + "; run " + ls + " to see yours"
		if code != 1 || finalLine(errOut) != want {
			t.Errorf("exit %d, stderr %q; want 1 and %q", code, errOut, want)
		}
	})
	t.Run("stop HOST without the id", func(t *testing.T) {
		logins := len(s.Logins())
		_, errOut, code := RunTether(t, "stop", host, "-F", cfg)
		if code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("exit %d, stderr %q; want 2 and one line", code, errOut)
		}
		MustContain(t, "stderr", errOut, "stop "+host+": which session?", "`tether stop -F "+cfg+" "+host+" ID`", ls+" lists them")
		if n := len(s.Logins()); n != logins {
			t.Errorf("%d logins to sshd; want none for a usage error", n-logins)
		}
	})
	t.Run("preset not installed", func(t *testing.T) {
		if _, err := exec.LookPath("rserver"); err == nil {
			t.Skip("rserver is installed here: rstudio is not a missing app")
		}
		if _, err := os.Stat("/usr/lib/rstudio-server/bin/rserver"); err == nil {
			t.Skip("rserver is installed here: rstudio is not a missing app")
		}
		_, errOut, code := RunTether(t, "launch", host, "rstudio", "-F", cfg, "--no-browser")
		last := finalLine(errOut)
		if code != 1 {
			t.Errorf("exit %d; want 1 (stderr %q)", code, errOut)
		}
		MustContain(t, "the error", last, "could not start rstudio on "+host+": rstudio is not installed on "+host+":",
			"`tether apps -F "+cfg+" "+host+"` to see which apps "+host+" has", "; nothing was left running")
		for _, bad := range []string{"this machine", "tether apps HOST", "fix the command"} {
			if strings.Contains(last, bad) {
				t.Errorf("the error says %q: %s", bad, last)
			}
		}
	})
	t.Run("apps HOST -F cfg", func(t *testing.T) {
		out, errOut, code := RunTether(t, "apps", host, "-F", cfg)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if strings.Contains(out, "rserver, rserver") {
			t.Errorf("apps says rserver twice:\n%s", out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "rstudio") && strings.Contains(l, "not found") && !strings.Contains(l, "looked for rserver on PATH and /usr/lib/rstudio-server/bin/rserver") {
				t.Errorf("rstudio line: %q", l)
			}
		}
	})
	t.Run("app exits", func(t *testing.T) {
		_, errOut, code := RunTether(t, "launch", host, "-F", cfg, "--no-browser", "--", "false")
		if code != 1 || !strings.HasSuffix(finalLine(errOut), "; fix the command and try again (nothing was left running)") {
			t.Errorf("exit %d, stderr %q; want 1 and the command to fix", code, errOut)
		}
	})
	t.Run("launch HOST flags -- command with its own flags", func(t *testing.T) {
		Need(t, "python3", "python3")
		l := StartLauncher(t, []string{"launch", host, "--json", "--no-browser", "-F", cfg, "--",
			"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}, true)
		code, body, _ := Fetch(t, "http://127.0.0.1:"+strconv.Itoa(l.Line.LocalPort)+"/", "Authorization", "token "+l.Line.Session.Token)
		if code != 200 || !strings.Contains(body, "Directory listing") {
			t.Errorf("GET: %d %q; want python's directory listing", code, body[:min(len(body), 200)])
		}
		want := []string{"python3", "-m", "http.server"}
		if got := l.Line.Session.Command; len(got) < 3 || strings.Join(got[:3], " ") != strings.Join(want, " ") {
			t.Errorf("the session's command is %q; want it to start with %q", got, want)
		}
		out, errOut, code := RunTether(t, "stop", host, l.Line.Session.ID, "-F", cfg)
		if code != 0 || !strings.Contains(out, "stopped "+l.Line.Session.ID) {
			t.Errorf("stop HOST ID -F cfg: exit %d, %q %q", code, out, errOut)
		}
		l.Interrupt(t)
	})
	t.Logf("TestWordsE2E took %s", FmtDur(time.Since(start)))
}

// TestHomeTildeE2E: `launch HOST static ~/site` serves the remote's ~/site both ways:
// typed plainly (the laptop's shell made it /home/laptop-user/site, which tether hands
// back as ~/site, saying so) and quoted (serve expands the ~ on the remote).
func TestHomeTildeE2E(t *testing.T) {
	Binary(t)
	start := time.Now()
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	site := filepath.Join(s.Home, "site")
	os.Mkdir(site, 0o700)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("remote home site\n"), 0o600)
	laptop := t.TempDir() // the laptop's HOME: another directory than the remote's
	for _, tt := range []struct{ name, arg, note string }{
		{"expanded by the laptop's shell", filepath.Join(laptop, "site"), "is this computer's home (your shell expanded ~); " + s.Alias + " gets ~/site"},
		{"quoted", "~/site", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := StartLauncher(t, []string{"launch", s.Alias, "static", tt.arg, "-F", s.Config, "--json", "--no-browser"}, true, "HOME="+laptop)
			code, body, _ := Fetch(t, "http://127.0.0.1:"+strconv.Itoa(l.Line.LocalPort)+"/index.html", "Authorization", "token "+l.Line.Session.Token)
			if code != 200 || body != "remote home site\n" {
				t.Errorf("GET /index.html: %d %q; want the remote's ~/site/index.html", code, body)
			}
			if tt.note != "" && !strings.Contains(l.Stderr.String(), tt.note) {
				t.Errorf("stderr lacks the note %q:\n%s", tt.note, l.Stderr.String())
			}
			l.Interrupt(t)
		})
	}
	t.Logf("TestHomeTildeE2E took %s", FmtDur(time.Since(start)))
}

// TestFailuresAsDataE2E: what the remote says when a start fails crosses SSH as data
// (DESIGN.md "Failures are structured"), and inputs are judged before anything
// starts. serve --json prints exactly one JSON line on failure, error, hint and
// app_output; a --base-url the gate cannot serve under is a usage error before the
// app is started (it used to start the app and fail once the app was ready). From a
// laptop, a remote failure that names a session and a command (a name taken) reads in
// the laptop's words: the host as typed, the command as it runs from here.
func TestFailuresAsDataE2E(t *testing.T) {
	Binary(t)
	start := time.Now()
	t.Run("serve --json --base-url the gate refuses", func(t *testing.T) {
		env, root := stateEnv(t)
		marker := "/tmp/tether-e2e-baseurl-" + strconv.Itoa(os.Getpid())
		out, errOut, err := tetherRun(t, env, "serve", "--json", "--base-url", "/a+b/", "--ready-timeout", "20s", "--",
			"/usr/bin/python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", marker)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("exit %v; want status 2 (a usage error)", err)
		}
		var f struct {
			Error     string   `json:"error"`
			Hint      *string  `json:"hint"`
			AppOutput []string `json:"app_output"`
			Kind      string   `json:"kind"`
		}
		if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &f) != nil || f.Hint == nil || f.AppOutput == nil ||
			f.Kind != "usage" || !strings.Contains(f.Error, `--base-url "/a+b/"`) {
			t.Errorf("stdout %q; want one JSON line with error, hint, app_output", out)
		}
		MustContain(t, "stderr", errOut, `tether: --base-url "/a+b/" has a character other than A-Z a-z 0-9 - . _ ~`)
		if strings.Contains(errOut, "starting") || len(ProcessesWith(marker)) > 0 {
			t.Errorf("the app was started before the flag was judged: stderr %q, processes %q", errOut, ProcessesWith(marker))
		}
		if des, _ := os.ReadDir(root); len(des) != 0 {
			t.Errorf("the state root holds %v", des)
		}
	})
	t.Run("a name taken, from the laptop", func(t *testing.T) {
		s := StartSSHD(t, SSHDOptions{})
		StopAllOnCleanup(t, s)
		args := append([]string{"launch", s.Alias, "-F", s.Config, "--json", "--no-browser", "--new", "--name", "nb", "--"}, HTTPServerApp...)
		l := StartLauncher(t, args, true)
		_, errOut, code := RunTether(t, args...)
		want := fmt.Sprintf("a session named \"nb\" is already running (%s); stop it with `tether stop -F %s %s nb` or pick another --name; nothing was left running",
			l.Line.Session.ID, s.Config, s.Alias)
		if last := finalLine(errOut); code != 1 || !strings.HasSuffix(last, want) || strings.Contains(errOut, "this machine") {
			t.Errorf("exit %d, last line %q; want 1 and a line ending %q", code, last, want)
		}
		l.Interrupt(t)
	})
	t.Logf("TestFailuresAsDataE2E took %s", FmtDur(time.Since(start)))
}
