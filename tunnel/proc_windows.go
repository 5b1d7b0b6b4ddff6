package tunnel

import (
	"os/exec"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// setProcessGroup: Windows has no process groups to signal; the command is killed
// on its own.
func setProcessGroup(cmd *exec.Cmd) {}

// signalGroup ends cmd for the signals that mean "stop"; Windows cannot deliver the
// others.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT:
		cmd.Process.Kill()
	}
}

var signals = map[ssh.Signal]syscall.Signal{
	ssh.SIGINT: syscall.SIGINT, ssh.SIGKILL: syscall.SIGKILL, ssh.SIGTERM: syscall.SIGTERM,
}
