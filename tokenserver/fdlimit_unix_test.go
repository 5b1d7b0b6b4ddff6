//go:build unix

package tokenserver

import "syscall"

// fdLimit is how many descriptors this process may open (Go raises the soft limit to
// the hard one at start).
func fdLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
