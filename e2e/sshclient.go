//go:build unix

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

// OpenSSHEnv is a private XDG_RUNTIME_DIR for tether's ssh sockets (short: socket paths
// are limited), so that a test's master is its own; the masters tether leaves there
// are told to exit when the test ends.
func OpenSSHEnv(t *testing.T, s *SSHD, extra ...string) (env []string, dir string) {
	t.Helper()
	Need(t, "ssh", "openssh-client")
	dir, err := os.MkdirTemp("", "tx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		StopMasters(s, dir)
		os.RemoveAll(dir)
	})
	return append([]string{"XDG_RUNTIME_DIR=" + dir}, extra...), dir
}

// StopMasters asks every ControlMaster with a socket under dir to exit, then kills by
// PID any ssh still naming dir on its command line.
func StopMasters(s *SSHD, dir string) {
	socks, _ := filepath.Glob(filepath.Join(dir, "*", "c-*"))
	more, _ := filepath.Glob(filepath.Join(dir, "c-*"))
	for _, p := range append(socks, more...) {
		if strings.HasSuffix(p, ".lock") {
			continue
		}
		exec.Command("ssh", "-F", s.Config, "-o", "ControlPath="+p, "-O", "exit", s.Alias).Run()
	}
	for _, pid := range SSHProcessesUnder(dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// SSHProcessesUnder are the PIDs of ssh processes whose command line names dir (a
// ControlPath in it).
func SSHProcessesUnder(dir string) []int {
	var pids []int
	for _, line := range ProcessesWith(dir) {
		var pid int
		var rest string
		if _, err := fmt.Sscanf(line, "%d: %s", &pid, &rest); err == nil && strings.Contains(line, "ssh") && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Resolve is host's tunnel config from the ssh_config at cfgFile (warnings to stderr).
func Resolve(t *testing.T, cfgFile, host string) *tunnel.Config {
	t.Helper()
	cfg, err := tunnel.Resolve(host, tunnel.ResolveOptions{ConfigFile: cfgFile, Warn: os.Stderr})
	if err != nil {
		t.Fatalf("Resolve %s: %v", host, err)
	}
	return cfg
}

// DialT dials cfg with o and closes the client when the test ends.
func DialT(t *testing.T, cfg *tunnel.Config, o tunnel.Options) *tunnel.Client {
	t.Helper()
	c, err := tunnel.Dial(Context(t, 30*time.Second), cfg, o)
	if err != nil {
		t.Fatalf("Dial %s: %v", cfg.Alias, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
