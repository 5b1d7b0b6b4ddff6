//go:build unix

package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// loginHome makes a HOME whose startup files, for the shell named, set RC_VAR and put
// HOME/rcbin first on PATH, the way conda's block or a module init would, and sets
// SHELL to that shell. It skips when the shell is not installed.
func loginHome(t *testing.T, shell string) (home string) {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed", shell)
	}
	home = t.TempDir()
	files := map[string]string{}
	switch shell {
	case "bash":
		// Debian's and Ubuntu's skeleton: ~/.profile sources ~/.bashrc, which returns
		// at once unless the shell is interactive; conda init appends below that.
		files[".profile"] = "if [ -n \"$BASH_VERSION\" ] && [ -f \"$HOME/.bashrc\" ]; then . \"$HOME/.bashrc\"; fi\n"
		files[".bashrc"] = "case $- in *i*) ;; *) return;; esac\necho bashrc banner\nexport RC_VAR=bash-rc\nPATH=\"$HOME/rcbin:$PATH\"\n"
	case "zsh":
		files[".zshrc"] = "echo zshrc banner\nexport RC_VAR=zsh-rc\npath=($HOME/rcbin $path)\n"
	case "tcsh":
		files[".tcshrc"] = "echo tcshrc banner\nsetenv RC_VAR tcsh-rc\nsetenv PATH $HOME/rcbin:$PATH\n"
		files[".login"] = "setenv LOGIN_VAR tcsh-login\n"
	case "dash", "sh":
		files[".profile"] = "echo profile banner\nexport RC_VAR=sh-rc\nPATH=\"$HOME/rcbin:$PATH\"\n"
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"rcbin", "work"} {
		if err := os.Mkdir(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", home)
	t.Setenv("SHELL", path)
	for _, k := range []string{"ZDOTDIR", "ENV", "BASH_ENV"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)  // zsh reads $ZDOTDIR/.zshrc even when it is empty
	}
	return home
}

func envValue(env []string, k string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, k+"="); ok {
			return v
		}
	}
	return ""
}

// The login shell's environment, after its startup files and the setup in that same
// shell, for each shell syntax: the startup files' variables and PATH, the setup's
// variable built on them, its cd and its umask; its output in the log without the
// shell's complaints about having no terminal; the temporary files gone.
func TestCaptureLoginEnvPerShell(t *testing.T) {
	for _, shell := range []string{"sh", "bash", "zsh", "tcsh"} {
		t.Run(shell, func(t *testing.T) {
			home := loginHome(t, shell)
			dir := t.TempDir()
			setup := "echo setup says hi\nexport SETUP_VAR=set-$RC_VAR\ncd \"$HOME/work\"\numask 027\n"
			if shell == "tcsh" {
				setup = "echo setup says hi\nsetenv SETUP_VAR set-$RC_VAR\ncd $HOME/work\numask 027\n"
			}
			var out syncBuffer
			se, err := captureLoginEnv(context.Background(), dir, setup, &out, func(wire.Note) {})
			if err != nil {
				t.Fatalf("captureLoginEnv: %v", err)
			}
			want := map[string]string{"RC_VAR": shell + "-rc", "SETUP_VAR": "set-" + shell + "-rc"}
			if shell == "tcsh" {
				want["LOGIN_VAR"] = "tcsh-login" // ~/.login: a login shell
			}
			for k, v := range want {
				if got := envValue(se.env, k); got != v {
					t.Errorf("%s=%q; want %q", k, got, v)
				}
			}
			if p := pathVar(se.env); !strings.HasPrefix(p, filepath.Join(home, "rcbin")+":") {
				t.Errorf("PATH=%q; want the startup files' directory first", p)
			}
			if se.dir != filepath.Join(home, "work") || se.umask != 0o027 || se.shell != shell {
				t.Errorf("dir %q, umask %o, shell %q; want %s, 027, %s", se.dir, se.umask, se.shell, filepath.Join(home, "work"), shell)
			}
			for _, e := range se.env {
				if strings.HasPrefix(e, "_=") || strings.HasPrefix(e, "TETHER_") {
					t.Errorf("the environment holds %q", e)
				}
			}
			o := out.String()
			if !strings.Contains(o, "setup says hi") || !strings.Contains(o, "banner") {
				t.Errorf("the output lacks the startup file's banner or the setup's line: %q", o)
			}
			for _, noise := range []string{"job control", "terminal process group", "no access to tty"} {
				if strings.Contains(o, noise) {
					t.Errorf("the output holds the shell's %q: %q", noise, o)
				}
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left in the session directory: %v", left)
			}
		})
	}
}

// A failing setup is the setup's failure, with its status and its output; for csh
// too, where the status travels as an argument (tcsh ignores `exit` inside -c).
func TestCaptureLoginEnvSetupFails(t *testing.T) {
	for _, shell := range []string{"bash", "tcsh"} {
		t.Run(shell, func(t *testing.T) {
			loginHome(t, shell)
			setup := "echo about to fail\nsh -c 'exit 3'\n"
			_, err := captureLoginEnv(context.Background(), t.TempDir(), setup, &syncBuffer{}, func(wire.Note) {})
			var le *loginEnvError
			if !errors.As(err, &le) || !le.setup || !strings.Contains(le.msg, "the setup failed in your login shell ("+shell+") with status 3") {
				t.Fatalf("err %v; want the setup's failure with status 3", err)
			}
			if !slices.Contains(le.tail, "about to fail") {
				t.Errorf("tail %q lacks the setup's output", le.tail)
			}
		})
	}
}

// A setup that exits the shell, and a startup file that does, never look like success.
func TestCaptureLoginEnvShellExits(t *testing.T) {
	home := loginHome(t, "bash")
	_, err := captureLoginEnv(context.Background(), t.TempDir(), "exit 4\n", &syncBuffer{}, func(wire.Note) {})
	var le *loginEnvError
	if !errors.As(err, &le) || !le.setup || !strings.Contains(le.msg, "exited with status 4 before the setup was done") {
		t.Errorf("setup `exit 4`: %v", err)
	}
	os.WriteFile(filepath.Join(home, ".bashrc"), []byte("exit 5\n"), 0o600)
	_, err = captureLoginEnv(context.Background(), t.TempDir(), "", &syncBuffer{}, func(wire.Note) {})
	if !errors.As(err, &le) || le.setup || !strings.Contains(le.msg, "exited with status 5 without running tether's command") {
		t.Errorf("~/.bashrc `exit 5`: %v", err)
	}
}

// processesWith lists the pids whose command line holds s (Linux).
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	des, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var out []string
	for _, d := range des {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, d.Name())
		}
	}
	return out
}

// processesLeft is processesWith after giving a SIGKILL that was sent already up to
// 3 s to take effect (delivery is asynchronous; under the race detector on a loaded
// machine the process can still be listed just after the kill).
func processesLeft(t *testing.T, s string) []string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		p := processesWith(t, s)
		if len(p) == 0 || time.Now().After(deadline) {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The setup never appears on a command line, while it runs; what it leaves running in
// the background is stopped once the shell is done.
func TestCaptureLoginEnvSetupOffCommandLines(t *testing.T) {
	loginHome(t, "bash")
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc")
	}
	const marker = "SETUP-MARKER-7c1f"
	setup := "export M=" + marker + "\nsleep 1.5\nsleep 301.25 &\n"
	done := make(chan error, 1)
	go func() {
		_, err := captureLoginEnv(context.Background(), t.TempDir(), setup, &syncBuffer{}, func(wire.Note) {})
		done <- err
	}()
	var seen []string
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("captureLoginEnv: %v", err)
			}
			running = false
		case <-time.After(20 * time.Millisecond):
			if p := processesWith(t, marker); len(p) > 0 {
				seen = p
			}
		}
	}
	if len(seen) > 0 {
		t.Errorf("the setup is on the command line of %v", seen)
	}
	if p := processesLeft(t, "301.25"); len(p) > 0 {
		t.Errorf("the setup's background sleep is still running: %v", p)
	}
}

// A login shell that never finishes is cut off at the deadline, with all it started.
func TestCaptureLoginEnvTimeout(t *testing.T) {
	loginHome(t, "bash")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := captureLoginEnv(ctx, t.TempDir(), "sleep 302.5\n", &syncBuffer{}, func(wire.Note) {})
	var le *loginEnvError
	if !errors.As(err, &le) || !strings.Contains(le.msg, "did not finish its startup files and the setup") {
		t.Errorf("err %v; want the deadline", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	if p := processesLeft(t, "302.5"); len(p) > 0 {
		t.Errorf("the setup's sleep is still running: %v", p)
	}
}

// A shell tether does not speak is said so by name.
func TestCaptureLoginEnvUnsupportedShell(t *testing.T) {
	fish := filepath.Join(t.TempDir(), "fish")
	os.WriteFile(fish, []byte("#!/bin/sh\nexit 0\n"), 0o700)
	t.Setenv("SHELL", fish)
	_, err := captureLoginEnv(context.Background(), t.TempDir(), "", &syncBuffer{}, func(wire.Note) {})
	if err == nil || !strings.Contains(err.Error(), "your login shell is fish") {
		t.Errorf("err %v", err)
	}
}

// --setup-file must be the user's own and writable by no one else.
func TestReadSetupFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.sh")
	os.WriteFile(p, []byte("module load x\n"), 0o600)
	if s, err := readSetupFile(p); err != nil || s != "module load x\n" {
		t.Errorf("readSetupFile: %q, %v", s, err)
	}
	os.Chmod(p, 0o620)
	if _, err := readSetupFile(p); err == nil || !strings.Contains(err.Error(), "chmod go-w") {
		t.Errorf("a group-writable file: %v", err)
	}
	if _, err := readSetupFile(dir); err == nil {
		t.Errorf("a directory was accepted")
	}
}

func TestLookPathIn(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(a, 0o700)
	os.Mkdir(b, 0o700)
	os.WriteFile(filepath.Join(a, "app"), []byte("x"), 0o600) // not executable
	os.WriteFile(filepath.Join(b, "app"), []byte("x"), 0o700)
	os.Mkdir(filepath.Join(a, "dir"), 0o700)
	if p, err := lookPathIn("app", "rel:"+a+":"+b, ""); err != nil || p != filepath.Join(b, "app") {
		t.Errorf("app: %q, %v", p, err)
	}
	if _, err := lookPathIn("dir", a, ""); err == nil {
		t.Errorf("a directory was found")
	}
	if p, err := lookPathIn("./app", "", b); err != nil || p != filepath.Join(b, "app") {
		t.Errorf("./app from %s: %q, %v", b, p, err)
	}
}

// recReporter records what serve reports.
type recReporter struct{ setupMsg, failedMsg string }

func (r *recReporter) progress(wire.Note) {}
func (r *recReporter) ready(wire.Record)  {}
func (r *recReporter) failed(f *wire.Failure) {
	if f.Kind == wire.FailSetupFailed {
		r.setupMsg = f.Error()
		return
	}
	r.failedMsg = f.Error()
}

// A login shell that hangs (a startup file waiting on something) costs a bounded wait:
// without a setup the app starts in the plain environment, with a note saying why;
// with one, the start fails and says the shell did not finish, and nothing of the
// shell is left running either way.
func TestPrepareShellEnvHangingShell(t *testing.T) {
	home := loginHome(t, "bash")
	os.WriteFile(filepath.Join(home, ".bashrc"), []byte("echo hello from bashrc\nsleep 303.25\n"), 0o600)
	old := loginShellTimeout
	loginShellTimeout = 700 * time.Millisecond
	t.Cleanup(func() { loginShellTimeout = old })

	o := ServeOptions{LoginShell: true, Command: []string{"app"}, ReadyTimeout: time.Second}
	var notes []string
	rep := &recReporter{}
	start := time.Now()
	err := o.prepareShellEnv(context.Background(), t.TempDir(), io.Discard, rep, func(n wire.Note) { notes = append(notes, n.String()) })
	if err != nil || o.shellEnv != nil || o.LoginShell || rep.setupMsg != "" {
		t.Fatalf("err %v, shellEnv %v, LoginShell %v, reported %q; want the plain environment", err, o.shellEnv, o.LoginShell, rep.setupMsg)
	}
	joined := strings.Join(notes, "\n")
	if !strings.Contains(joined, "note: your login shell (bash) did not finish its startup files within") || !strings.Contains(joined, "plain SSH command") {
		t.Errorf("progress %q; want a note on the fallback", notes)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}

	o = ServeOptions{LoginShell: true, Setup: "module load x\n", Command: []string{"app"}, ReadyTimeout: 700 * time.Millisecond}
	rep = &recReporter{}
	err = o.prepareShellEnv(context.Background(), t.TempDir(), io.Discard, rep, func(wire.Note) {})
	if err == nil || !strings.Contains(rep.setupMsg, "did not finish its startup files and the setup within") {
		t.Errorf("with a setup: err %v, reported %q; want the start to fail on the deadline", err, rep.setupMsg)
	}
	if p := processesLeft(t, "303.25"); len(p) > 0 {
		t.Errorf("the startup file's sleep is still running: %v", p)
	}
}
