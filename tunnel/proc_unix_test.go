//go:build unix

package tunnel

import "syscall"

// processGone reports whether no process has pid any more.
func processGone(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }
