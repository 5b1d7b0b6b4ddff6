//go:build linux

package openssh

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tether-dev/tether/e2e"
)

// TestOpenSSHNoDelay: sshd leaves Nagle on for a connection until a session runs a
// command; a launcher using OpenSSH has one run on its master's connection, the first
// and the one after a reconnect (which runs no command of its own), so that small
// answers do not wait 40 ms for a delayed ACK.
func TestOpenSSHNoDelay(t *testing.T) {
	s := e2e.StartSSHD(t, e2e.SSHDOptions{})
	e2e.StopAllOnCleanup(t, s)
	env, _ := e2e.OpenSSHEnv(t, s)
	l := e2e.StartLauncher(t, []string{"launch", "--ssh", "openssh", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	if v, err := sshdNoDelay(t, s); err != nil {
		if e2e.Required() && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			t.Fatalf("TETHER_E2E=require: cannot inspect sshd's sockets: %v", err)
		}
		t.Skipf("cannot inspect sshd's sockets here (pidfd_getfd): %v", err)
	} else if !allSet(v) {
		t.Errorf("after launch: TCP_NODELAY on sshd's sockets = %v; want all on", v)
	}
	if s.KillConnections() == 0 {
		t.Fatal("no sshd connection process to kill")
	}
	if !e2e.WaitFor(30*time.Second, func() bool { return strings.Contains(l.Stderr.String(), "back: session") }) {
		t.Fatalf("no reconnect; stderr:\n%s", l.Stderr.String())
	}
	if !e2e.WaitFor(10*time.Second, func() bool { v, _ := sshdNoDelay(t, s); return allSet(v) }) {
		v, _ := sshdNoDelay(t, s)
		t.Errorf("after the reconnect: TCP_NODELAY on sshd's sockets = %v; want all on", v)
	}
}
