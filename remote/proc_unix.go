//go:build unix && !linux

package remote

import (
	"errors"
	"os/exec"
	"strconv"
	"syscall"
)

// Without /proc a process is identified by its pid alone; the liveness check then
// also asks the server's socket (see sessionState).

func processIdentity(pid int) (string, error) { return "pid:" + strconv.Itoa(pid), nil }

func processAlive(pid int, ident string) bool {
	if pid <= 0 || ident != "pid:"+strconv.Itoa(pid) {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func processSID(pid int) int {
	sid, err := syscall.Getsid(pid)
	if err != nil {
		return -1
	}
	return sid
}

func groupMembers(pgid, sid int) []int { return nil }

// appCommand starts the app itself, leading its own process group.
func appCommand(p *appPlan, path string) *exec.Cmd {
	return &exec.Cmd{Path: path, Args: p.argv, Env: p.env, SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
}

func peerUID(c syscall.Conn) (int, error) { return -1, errors.ErrUnsupported }
