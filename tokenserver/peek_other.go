//go:build !unix

package tokenserver

import "net"

// bytesWaiting: not looked at on this platform (the server side runs on Unix).
func bytesWaiting(net.Conn) bool { return false }

// waitingHolds: not looked at on this platform.
func waitingHolds(net.Conn, []byte) bool { return false }
