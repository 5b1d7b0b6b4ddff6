//go:build unix

package tokenserver

import (
	"bytes"
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

// waitingHolds reports whether the bytes c has received and not yet read begin with
// (within their first maxPeek bytes) something holding want, without reading them or
// waiting: a ClientHello in the kernel that offers the owner's hint.
func waitingHolds(c net.Conn, want []byte) bool {
	sc, ok := c.(syscall.Conn)
	if !ok || len(want) == 0 {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	found := false
	rc.Control(func(fd uintptr) {
		var b [maxPeek]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		found = err == nil && n > 0 && bytes.Contains(b[:n], want)
	})
	return found
}

// maxPeek bounds what waitingHolds looks at: a ClientHello with a post-quantum key
// share is about 1.8 KB.
const maxPeek = 4096
