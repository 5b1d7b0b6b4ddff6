//go:build unix

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// launchFails runs `tether launch` with a config that must fail: exit 1, one line on
// stderr starting with "tether: " holding every want, within limit.
func launchFails(t *testing.T, name string, limit time.Duration, args []string, want ...string) string {
	t.Helper()
	Binary(t) // built before the clock starts
	start := time.Now()
	out, errOut, code := RunTether(t, args...)
	el := time.Since(start)
	last := strings.TrimSpace(errOut)
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	if code != 1 || !strings.HasPrefix(last, "tether: ") || out != "" {
		t.Errorf("%s: exit %d, stdout %q, stderr %q: want exit 1 and a `tether: …` line", name, code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(last), strings.ToLower(w)) {
			t.Errorf("%s: %q lacks %q", name, last, w)
		}
	}
	if el > limit {
		t.Errorf("%s: took %s, want under %s", name, FmtDur(el), limit)
	}
	t.Logf("%s (%s): %s", name, FmtDur(el), last)
	return errOut
}

func writeConfig(t *testing.T, s *SSHD, replace ...string) string {
	t.Helper()
	block := s.ConfigBlock()
	for i := 0; i+1 < len(replace); i += 2 {
		block = strings.Replace(block, replace[i], replace[i+1], 1)
	}
	p := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(p, []byte(block), 0o600)
	return p
}

// nothingOnRemote checks that a failed launch left no install and no session behind.
func nothingOnRemote(t *testing.T, s *SSHD, cacheDir string) {
	t.Helper()
	if cacheDir == "" {
		cacheDir = filepath.Join(s.Home, ".cache")
	}
	bin := filepath.Join(cacheDir, "tether", "bin")
	entries, _ := os.ReadDir(bin)
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", bin, e.Name())
	}
	run := SessionRoot(s.Home)
	if entries, _ := os.ReadDir(run); len(entries) > 0 {
		t.Errorf("a session directory was left in %s: %v", run, entries)
	}
}

func TestLaunchConnectErrors(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	// Unknown host key under BatchMode / StrictHostKeyChecking yes.
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	cfg := writeConfig(t, s, s.KnownHosts, empty)
	launchFails(t, "unknown host key", 5*time.Second, []string{"launch", "-F", cfg, s.Alias, "--no-browser"}, "host key", "not known", "ssh "+s.Alias)

	// Authentication refused: a key the server does not know.
	other := filepath.Join(t.TempDir(), "id_other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	cfg = writeConfig(t, s, s.ClientKey, other)
	launchFails(t, "auth refused", 5*time.Second, []string{"launch", "-F", cfg, s.Alias, "--no-browser"}, "refused", "ssh "+s.Alias)

	// Host unreachable: nothing listens on the port.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg = writeConfig(t, s, "Port "+strconv.Itoa(s.Port), "Port "+strconv.Itoa(closed))
	launchFails(t, "unreachable", 5*time.Second, []string{"launch", "-F", cfg, s.Alias, "--no-browser"}, "cannot reach", "connection refused")

	// DNS failure.
	cfg = writeConfig(t, s, "HostName 127.0.0.1", "HostName no-such-host.invalid")
	launchFails(t, "dns", 15*time.Second, []string{"launch", "-F", cfg, s.Alias, "--no-browser"}, "cannot reach", "no-such-host.invalid")

	// Port in use locally: fails before anything starts on the remote.
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	launchFails(t, "port in use", 5*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--port", strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)}, "already in use", "--port")
	nothingOnRemote(t, s, "")
}

func TestLaunchAppFailsToStart(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	errOut := launchFails(t, "app fails", 20*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser", "--", "/bin/sh", "-c", "echo boom-from-the-app >&2; exit 3"}, "could not start", "exit")
	MustContain(t, "stderr", errOut, "boom-from-the-app")
	if list := SessionsOn(t, s); len(list) != 0 {
		t.Errorf("a failed app left sessions: %v", list)
	}
}

func TestLaunchRemotePlatformWithoutBuild(t *testing.T) {
	fake := t.TempDir()
	os.WriteFile(filepath.Join(fake, "uname"), []byte("#!/bin/sh\ncase \"$1\" in -m) echo mips64;; *) echo Linux;; esac\n"), 0o755)
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"PATH": fake + ":/usr/local/bin:/usr/bin:/bin"}})
	launchFails(t, "no build", 10*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser"}, "mips64", "no build", "--remote-binary")
	nothingOnRemote(t, s, "")
}

// mountTmpfs mounts a small tmpfs (root only; skipped otherwise).
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

func TestLaunchRemoteDiskFullOrReadOnly(t *testing.T) {
	full := mountTmpfs(t, "size=1m")
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_CACHE_HOME": full}})
	launchFails(t, "disk full", 10*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser"}, "full", "XDG_CACHE_HOME")
	nothingOnRemote(t, s, full)

	ro := mountTmpfs(t, "size=1m,ro")
	s2 := StartSSHD(t, SSHDOptions{Alias: "ro", Env: map[string]string{"XDG_CACHE_HOME": ro}})
	launchFails(t, "read-only", 10*time.Second, []string{"launch", "-F", s2.Config, s2.Alias, "--no-browser"}, "not writable")
}
