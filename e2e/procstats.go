//go:build unix

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// OpenFDs is the number of open file descriptors of pid (-1 if it cannot be read).
func OpenFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// RSS is pid's resident set size in bytes (VmRSS; -1 if it cannot be read).
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// RaiseFileLimit raises this process's soft RLIMIT_NOFILE to its hard limit (children
// inherit it) and returns the new soft limit.
func RaiseFileLimit() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	return r.Cur
}

// SocketsTo is how many of pid's open sockets are TCP connections to 127.0.0.1:port
// (read from /proc/PID/fd and /proc/net/tcp).
func SocketsTo(pid, port int) int {
	inodes := map[string]bool{}
	b, _ := os.ReadFile("/proc/net/tcp")
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 {
			continue
		}
		if _, rport, ok := strings.Cut(f[2], ":"); ok {
			if p, err := strconv.ParseInt(rport, 16, 32); err == nil && int(p) == port {
				inodes[f[9]] = true
			}
		}
	}
	n := 0
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			n++
		}
	}
	return n
}
