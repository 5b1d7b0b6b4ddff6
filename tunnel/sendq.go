//go:build linux || darwin

package tunnel

import (
	"net"
	"syscall"
)

// sendQueued is how many bytes the kernel holds for conn's peer, not yet sent or not
// yet acknowledged; -1 when unknown (not a socket: a ProxyCommand's pipe, a jump
// host's channel).
func sendQueued(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) {
		if v, err := queuedBytes(int(fd)); err == nil {
			n = v
		}
	})
	return n
}
