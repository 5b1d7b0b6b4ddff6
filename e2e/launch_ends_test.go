//go:build unix

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quitApp serves Python's file server until the file quit appears, then says goodbye
// and exits 0: an app that ends on its own (Jupyter's Quit button).
func quitApp(quit string) []string {
	return []string{"/bin/sh", "-c", "/usr/bin/python3 -m http.server {port} --bind 127.0.0.1 & p=$!; " +
		"while [ ! -e " + quit + " ]; do sleep 0.1; done; kill $p; wait $p; echo 'goodbye from the app: quit requested'; exit 0"}
}

// waitExit waits up to limit for the launcher to exit on its own and returns how long
// it took.
func (l *Launched) waitExit(t *testing.T, limit time.Duration, what string) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	err, ok := l.Proc.Wait(limit)
	if !ok {
		t.Fatalf("the attached launcher still runs %s after %s; stderr:\n%s", limit, what, l.Stderr.String())
	}
	return time.Since(start), err
}

// TestLaunchEndsWhenSessionStoppedElsewhere: `tether stop HOST ID` from another
// process makes the attached launcher exit within 10 s, saying the session was
// stopped, and suggest no attach.
func TestLaunchEndsWhenSessionStoppedElsewhere(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, HTTPServerApp...)
	l := StartLauncher(t, args, true)
	id := l.Line.Session.ID
	if _, errOut, code := RunTether(t, "stop", "-F", s.Config, s.Alias, id); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, errOut)
	}
	took, err := l.waitExit(t, 10*time.Second, "tether stop")
	e := l.Stderr.String()
	t.Logf("the launcher exited %s after `tether stop` returned (%v); stderr:\n%s", FmtDur(took), err, e)
	last := LastLine(e)
	want := fmt.Sprintf("session %s on %s ended", id, s.Alias)
	if !strings.Contains(last, want) || !strings.Contains(last, "stopped") {
		t.Errorf("last line %q: want %q and that it was stopped", last, want)
	}
	if strings.Contains(e, "tether attach") {
		t.Errorf("the launcher suggests an attach to a stopped session:\n%s", e)
	}
	if err != nil {
		t.Errorf("exit after a deliberate stop: %v; want 0", err)
	}
}

// TestLaunchEndsWhenAppQuits: the app exiting on its own (status 0, a goodbye line)
// makes the attached launcher exit within 10 s with the status and the app's last
// output.
func TestLaunchEndsWhenAppQuits(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	quit := filepath.Join(s.Dir, "quit-now")
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, quitApp(quit)...)
	l := StartLauncher(t, args, true)
	id := l.Line.Session.ID
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	if status, _, _ := Fetch(t, base, "Authorization", "token "+l.Line.Session.Token); status != 200 {
		t.Fatalf("the app does not answer: %d", status)
	}
	if err := os.WriteFile(quit, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	took, err := l.waitExit(t, 10*time.Second, "the app quit")
	e := l.Stderr.String()
	t.Logf("the launcher exited %s after the app was told to quit (%v); stderr:\n%s", FmtDur(took), err, e)
	last := LastLine(e)
	want := fmt.Sprintf("session %s on %s ended: the app exited with status 0", id, s.Alias)
	if !strings.Contains(last, want) || !strings.Contains(e, "goodbye from the app: quit requested") {
		t.Errorf("last line %q: want %q, and the app's last output in stderr", last, want)
	}
	if strings.Contains(e, "tether attach") {
		t.Errorf("the launcher suggests an attach to an ended session:\n%s", e)
	}
	if err != nil {
		t.Errorf("exit after the app quit with status 0: %v; want 0", err)
	}
}

// TestLaunchEndsWhenServerKilled: the session's server killed outright (kill -9: no
// cleanup, its socket file left behind) makes the attached launcher exit 1 within 10 s
// saying the server is gone.
func TestLaunchEndsWhenServerKilled(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, HTTPServerApp...)
	l := StartLauncher(t, args, true)
	id := l.Line.Session.ID
	if err := syscall.Kill(l.Line.Session.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took, err := l.waitExit(t, 10*time.Second, "its server was killed")
	e := l.Stderr.String()
	t.Logf("the launcher exited %s after the server was killed (%v); stderr:\n%s", FmtDur(took), err, e)
	want := fmt.Sprintf("session %s on %s ended: its server is gone", id, s.Alias)
	if last := LastLine(e); !strings.Contains(last, want) {
		t.Errorf("last line %q: want %q", last, want)
	}
	if err == nil {
		t.Errorf("exit 0 after the server died; want 1")
	}
}
