package remote

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// procStat is the part of /proc/PID/stat that liveness checks read.
type procStat struct {
	state           byte
	ppid, pgrp, sid int
	starttime       uint64 // clock ticks after boot
}

func readProcStat(pid int) (procStat, error) {
	// "/proc/./PID": qemu-user (an arm64 tether on an x86 host, through binfmt_misc)
	// answers /proc/self/stat and /proc/<its own pid>/stat with a made-up line (state 0,
	// no session, a start time of its own), so a server would record an identity that
	// ls, attach and stop never see, and its session would look dead. It only
	// recognises those two spellings.
	b, err := os.ReadFile("/proc/./" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name in parentheses may hold anything; fields resume after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	var ps procStat
	ps.state = f[0][0]
	ps.ppid, _ = strconv.Atoi(f[1])
	ps.pgrp, _ = strconv.Atoi(f[2])
	ps.sid, _ = strconv.Atoi(f[3])
	ps.starttime, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return ps, nil
}

var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "unknown-boot"
	}
	return strings.TrimSpace(string(b))
})

// processIdentity names a running process beyond its pid: the boot id and the
// process's start time. A pid reused later (or after a reboot) gets another identity.
func processIdentity(pid int) (string, error) {
	ps, err := readProcStat(pid)
	if err != nil {
		return "", err
	}
	return bootID() + ":" + strconv.FormatUint(ps.starttime, 10), nil
}

// processAlive reports whether pid is still the process that had identity ident, and
// not a zombie.
func processAlive(pid int, ident string) bool {
	if pid <= 0 || ident == "" {
		return false
	}
	ps, err := readProcStat(pid)
	if err != nil || ps.state == 'Z' || ps.state == 'X' {
		return false
	}
	return bootID()+":"+strconv.FormatUint(ps.starttime, 10) == ident
}

// processSID is pid's session id, or -1 when pid cannot be read. Zero is a real
// answer: the session's leader lives outside this PID namespace (a container, a CI
// runner), as /proc reports it.
func processSID(pid int) int {
	ps, err := readProcStat(pid)
	if err != nil {
		return -1
	}
	return ps.sid
}

// groupMembers lists the live processes in process group pgid and session sid: what is
// left of an app whose server died. Matching the session too keeps a reused pgid of an
// unrelated job out. Session id 0 (a leader outside this PID namespace) is compared
// like any other.
func groupMembers(pgid, sid int) []int { return groupMembersIn(liveProcs(), pgid, sid) }

func groupMembersIn(procs map[int]procStat, pgid, sid int) []int {
	if pgid <= 1 || sid < 0 {
		return nil
	}
	var pids []int
	for pid, ps := range procs {
		if ps.pgrp == pgid && ps.sid == sid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// liveProcs reads /proc once: every live (not zombie) process, by pid.
func liveProcs() map[int]procStat {
	des, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	procs := make(map[int]procStat, len(des))
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		ps, err := readProcStat(pid)
		if err != nil || ps.state == 'Z' || ps.state == 'X' {
			continue
		}
		procs[pid] = ps
	}
	return procs
}

// appCommand is how the server starts the app: under the app supervisor (see
// RunAppSupervisor), which leads the app's own process group, dies with the server's
// thread that started it (Pdeathsig; the server locks that thread for the app's
// lifetime) and then ends the whole group, so even kill -9 of the server leaves no
// part of the app behind.
func appCommand(p *appPlan, path string) *exec.Cmd {
	return supervisorCommand(p, path, appGrace)
}

// peerUID is the uid of the process at the other end of a Unix socket connection.
func peerUID(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid := -1
	var serr error
	err = rc.Control(func(fd uintptr) {
		var cred *syscall.Ucred
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if serr == nil {
			uid = int(cred.Uid)
		}
	})
	if err != nil {
		return -1, err
	}
	return uid, serr
}
