//go:build unix

package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Agent is a real ssh-agent started for one test.
type Agent struct {
	// Socket is the agent's socket (for IdentityAgent or SSH_AUTH_SOCK).
	Socket string
}

// StartAgent starts `ssh-agent -D -a SOCK` (stopped by PID when tb ends) and waits for
// its socket.
func StartAgent(tb testing.TB) *Agent {
	tb.Helper()
	path := Need(tb, "ssh-agent", "openssh-client")
	Need(tb, "ssh-add", "openssh-client")
	dir, err := os.MkdirTemp("", "tether-agent-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	a := &Agent{Socket: filepath.Join(dir, "agent.sock")}
	var out Buffer
	cmd := exec.Command(path, "-D", "-a", a.Socket)
	cmd.Stdout, cmd.Stderr = &out, &out
	Start(tb, cmd)
	// The socket file appears at bind(), before listen(): wait until it answers.
	if !WaitFor(10*time.Second, func() bool {
		c, err := net.Dial("unix", a.Socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		tb.Fatalf("ssh-agent did not create its socket:\n%s", out.String())
	}
	return a
}

// Add loads a private key file into the agent with ssh-add.
func (a *Agent) Add(tb testing.TB, keyFile string) {
	tb.Helper()
	cmd := exec.Command("ssh-add", keyFile)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+a.Socket)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("ssh-add %s: %v\n%s", keyFile, err, out)
	}
}
