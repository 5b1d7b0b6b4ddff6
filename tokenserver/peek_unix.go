//go:build unix

package tokenserver

import (
	"net"
	"syscall"
)

// bytesWaiting reports whether c has received bytes not yet read, without reading
// them or waiting (MSG_PEEK|MSG_DONTWAIT under Control, which takes no read lock, so
// it never waits for a Read in progress on another goroutine).
func bytesWaiting(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	waiting := false
	rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		waiting = err == nil && n > 0
	})
	return waiting
}
