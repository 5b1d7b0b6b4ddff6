//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A first launch sends tether on the exec that probed (issue 19). Interrupted while
// the build is on its way (Ctrl-C on a slow link), it leaves nothing on the remote: no
// temporary file, none of the directories it made, no process, and the next launch
// installs from scratch. The same for a command that does not stop by itself when its
// stdin ends (ls): while the build goes in, the launcher closes stdin rather than
// killing the script, whose trap cleans up.
func TestInterruptedFirstLaunchLeavesNothing(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache") // the remote's XDG_CACHE_HOME, not there yet
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_CACHE_HOME": cache}})
	StopAllOnCleanup(t, s)
	tp := StartToxiproxy(t)
	p := tp.Proxy("slow", s.Addr())
	// 1 MB/s towards sshd: the build (over 10 MB) takes seconds to go.
	if err := p.AddToxic("slow", "bandwidth", "upstream", map[string]any{"rate": 1000}); err != nil {
		t.Fatal(err)
	}
	cfg := s.ThroughProxy(t, p, s.Alias)
	bin := filepath.Join(cache, "tether", "bin")

	for _, args := range [][]string{{"launch", "-F", cfg, s.Alias, "--no-browser", "--json"}, {"ls", "-F", cfg, s.Alias}} {
		l := StartLauncher(t, args, false)
		var tmp []string
		var size int64
		if !WaitFor(60*time.Second, func() bool {
			tmp, _ = filepath.Glob(filepath.Join(bin, ".tether-*.tether-upload-*"))
			if len(tmp) == 0 {
				return false
			}
			fi, err := os.Stat(tmp[0])
			size = fi.Size()
			return err == nil && size > 256<<10 // under way
		}) {
			t.Fatalf("tether %s: no upload under way in %s; stderr:\n%s", args[0], bin, l.Stderr.String())
		}
		MustContain(t, "stderr", l.Stderr.String(), "installing tether on "+s.Alias)
		if strings.Contains(l.Stderr.String(), "installed tether") {
			t.Fatalf("the upload finished before the interrupt; slow the link down more:\n%s", l.Stderr.String())
		}
		l.Interrupt(t)
		t.Logf("tether %s interrupted with %d bytes in %s; launcher:\n%s", args[0], size, filepath.Base(tmp[0]), l.Stderr.String())

		// The script sees its stdin end (what was in flight arrives first), finds the
		// file short, and its trap removes it and the directories it made.
		if !WaitFor(30*time.Second, func() bool {
			_, err := os.Lstat(cache)
			return os.IsNotExist(err)
		}) {
			var left []string
			filepath.Walk(cache, func(p string, _ os.FileInfo, _ error) error { left = append(left, p); return nil })
			t.Errorf("tether %s: left behind: %v", args[0], left)
			os.RemoveAll(cache)
		}
		if !WaitFor(10*time.Second, func() bool { return len(Descendants(s.PID(), "sh")) == 0 && len(Descendants(s.PID(), "head")) == 0 }) {
			t.Errorf("tether %s: remote processes left: sh %v, head %v", args[0], Descendants(s.PID(), "sh"), Descendants(s.PID(), "head"))
		}
	}

	// The next launch (a fast link) installs from scratch and starts.
	if err := p.RemoveToxic("slow"); err != nil {
		t.Fatal(err)
	}
	l2 := StartLauncher(t, []string{"launch", "-F", cfg, s.Alias, "--no-browser", "--json"}, true)
	MustContain(t, "stderr", l2.Stderr.String(), "installing tether on "+s.Alias)
	if got := FileSum(t, filepath.Join(bin, remoteName(t))); got != binarySum(t) {
		t.Errorf("installed sum %s, want %s", got, binarySum(t))
	}
	if left, _ := filepath.Glob(filepath.Join(bin, ".*")); len(left) != 0 {
		t.Errorf("temporary files after the install: %v", left)
	}
	l2.Interrupt(t)
}

// The first command on a remote installs tether in place whatever the user's login
// shell, which gets the probe script as one quoted word (sshd runs SHELL -c COMMAND):
// fish, csh/tcsh (history expansion), dash, zsh. Real sshd, a user per shell: the
// first `tether ls` installs and runs, leaving no temporary file, and the second runs
// what is installed. (bash, zsh and tcsh first launches with --setup are in
// TestLaunchSetupModules; the exec count of an install in place is checked in the
// launcher's tests.)
func TestFirstCommandInstallsInPlaceUnderLoginShells(t *testing.T) {
	shells := []string{"fish", "tcsh", "dash", "zsh"}
	var users []User
	for _, sh := range shells {
		users = append(users, OtherUserWithShell(t, sh))
	}
	s, cfgs := sshdForUsers(t, SSHDOptions{}, users...)
	for i, sh := range shells {
		t.Run(sh, func(t *testing.T) {
			out, errOut, code := RunTether(t, "ls", "-F", cfgs[i], s.Alias)
			if code != 0 || !strings.Contains(errOut, "installing tether on "+s.Alias) {
				t.Fatalf("tether ls as a %s user: exit %d\nstdout: %s\nstderr: %s", sh, code, out, errOut)
			}
			bin := filepath.Join(users[i].Home, ".cache", "tether", "bin")
			if got := FileSum(t, filepath.Join(bin, remoteName(t))); got != binarySum(t) {
				t.Errorf("%s: installed sum %s, want %s", sh, got, binarySum(t))
			}
			if left, _ := filepath.Glob(filepath.Join(bin, ".*")); len(left) != 0 {
				t.Errorf("%s: temporary files after the install: %v", sh, left)
			}
			// Installed: the next command runs it without a word about installing.
			if _, errOut, code := RunTether(t, "ls", "-F", cfgs[i], s.Alias); code != 0 || strings.Contains(errOut, "installing") {
				t.Errorf("second tether ls as a %s user: exit %d, %q", sh, code, errOut)
			}
		})
	}
}
