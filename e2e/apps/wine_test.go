//go:build unix

package apps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// winePrefix makes a throwaway wine prefix (wineboot, bounded) with the test-only
// bcryptprimitives.dll that Go's Windows programs need and wine 8.0 lacks (built here
// from testdata/wine with mingw-w64), and returns the environment that runs programs
// in it. The prefix's wineserver is stopped when the test ends.
func winePrefix(t *testing.T) []string {
	t.Helper()
	wine := e2e.Need(t, "wine", "wine64")
	gcc := e2e.Need(t, "x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
	prefix := t.TempDir()
	env := append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEARCH=win64",
		// No Mono or Gecko install prompts: nothing here needs .NET or a browser engine.
		"WINEDLLOVERRIDES=mscoree,mshtml=", "DISPLAY=", "WAYLAND_DISPLAY=")
	t.Cleanup(func() {
		k := exec.Command(filepath.Join(filepath.Dir(wine), "wineserver"), "-k")
		k.Env = env
		k.Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	boot := exec.CommandContext(ctx, filepath.Join(filepath.Dir(wine), "wineboot"), "-i")
	boot.Env = env
	if out, err := boot.CombinedOutput(); err != nil {
		t.Fatalf("wineboot -i: %v\n%s", err, out)
	}
	t.Logf("wineboot: %s", e2e.FmtDur(time.Since(start)))
	system32 := filepath.Join(prefix, "drive_c", "windows", "system32")
	dll := filepath.Join(system32, "bcryptprimitives.dll")
	if _, err := os.Stat(dll); err != nil {
		src := filepath.Join(e2e.ModuleRoot(), "e2e", "testdata", "wine", "bcryptprimitives.c")
		if out, err := exec.Command(gcc, "-shared", "-O2", "-s", "-o", dll, src, "-ladvapi32").CombinedOutput(); err != nil {
			t.Fatalf("building the ProcessPrng shim: %v\n%s", err, out)
		}
	}
	return env
}

// TestWindowsLauncherUnderWine: the launcher from the windows/amd64 archive, run by
// wine against the real sshd, installs the linux/amd64 build it carries, launches the
// built-in app, the URL works, and Ctrl-C detaches it cleanly.
func TestWindowsLauncherUnderWine(t *testing.T) {
	if os.Getenv("TETHER_E2E_WINE") == "0" {
		t.Skip("TETHER_E2E_WINE=0")
	}
	env := winePrefix(t)
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	dir := unpack(t, releaseArchive(t, "windows", "amd64"))
	exe := filepath.Join(dir, "tether.exe")
	getExe := filepath.Join(t.TempDir(), "get.exe")
	build := exec.Command("go", "build", "-trimpath", "-o", getExe, "./e2e/testdata/wine/get")
	build.Dir = e2e.ModuleRoot()
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building get.exe: %v\n%s", err, out)
	}

	cmd := exec.Command(e2e.Need(t, "wine", "wine64"), exe, "launch", "-F", s.Config, s.Alias, "--json", "--no-browser")
	cmd.Env = append(env, "TETHER_BROWSER=")
	l := &e2e.Launched{Stdout: &e2e.Buffer{}, Stderr: &e2e.Buffer{}}
	cmd.Stdout, cmd.Stderr = l.Stdout, l.Stderr
	start := time.Now()
	l.Proc = e2e.Start(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tether.exe stderr:\n%s", l.Stderr.String())
		}
	})
	if !e2e.WaitFor(2*time.Minute, func() bool {
		select {
		case <-l.Proc.Done():
			return true
		default:
		}
		return strings.Contains(l.Stdout.String(), "\n")
	}) {
		t.Fatalf("no JSON line from tether.exe launch")
	}
	if err := e2e.JSONUnmarshal(strings.TrimSpace(l.Stdout.String()), &l.Line); err != nil {
		t.Fatalf("JSON line %q: %v\n%s", l.Stdout.String(), err, l.Stderr.String())
	}
	t.Logf("tether.exe launch under wine: %s\n%s", e2e.FmtDur(time.Since(start)), l.Stderr.String())
	e2e.MustContain(t, "stderr", l.Stderr.String(), "installing tether on "+s.Alias+" (linux/amd64, ", " compressed, ")
	// The URL works for a Windows program of the same user (wine runs it); a Linux
	// process, which Windows cannot name, is refused like another user's.
	tok := l.Line.Session.Token
	base := strings.TrimSuffix(l.Line.URL, "?token="+tok)
	get := exec.Command(e2e.Need(t, "wine", "wine64"), getExe, base)
	get.Env = append(env, "TETHER_TOKEN="+tok)
	out, err := get.Output()
	if status, body, _ := strings.Cut(string(out), "\n"); err != nil || status != "200" || !strings.Contains(body, "tether session "+l.Line.Session.ID) {
		t.Errorf("the app through tether.exe's tunnel, from a Windows program: %v %.300q", err, out)
	}
	if status, _, _ := e2e.Fetch(t, base, "Authorization", "token "+tok); status == 200 {
		t.Errorf("a process Windows cannot name got through")
	}
	// Ctrl-C: wine turns SIGINT into a console CTRL_C_EVENT, which Go delivers as
	// os.Interrupt.
	l.Proc.Cmd.Process.Signal(syscall.SIGINT)
	err, ok := l.Proc.Wait(30 * time.Second)
	if !ok {
		t.Fatalf("tether.exe did not exit after SIGINT; stderr:\n%s", l.Stderr.String())
	}
	if err != nil {
		t.Errorf("tether.exe after SIGINT: %v", err)
	}
	e2e.MustContain(t, "stderr after Ctrl-C", l.Stderr.String(), "detached", l.Line.Session.ID)
	if list := e2e.SessionsOn(t, s); len(list) != 1 || list[0]["state"] != "running" {
		t.Errorf("after Ctrl-C: %v; want the session running", list)
	}
}
