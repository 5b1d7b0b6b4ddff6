package remote

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// AppSupervisorArg is the hidden first argument that makes the binary an app
// supervisor (see RunAppSupervisor). main dispatches on it before parsing the command
// line, so it is in no help text.
const AppSupervisorArg = "_app-supervisor"

// supervisorCommand is how the server starts the app on Linux: this very binary (by
// /proc/self/exe, which works even after the file was replaced by an upgrade) as the
// app's process-group leader, with the real app as its child.
func supervisorCommand(p *appPlan, path string, grace time.Duration) *exec.Cmd {
	args := append([]string{"tether", AppSupervisorArg, strconv.Itoa(os.Getpid()), grace.String(), path}, p.argv...)
	env := p.env
	if p.umask >= 0 {
		// The login shell's umask, which the supervisor takes out of the environment
		// and sets before it starts the app.
		env = append(append([]string{}, p.env...), supervisorUmaskVar+"="+strconv.FormatInt(int64(p.umask), 8))
	}
	return &exec.Cmd{Path: "/proc/self/exe", Args: args, Env: env,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}}
}

// supervisorUmaskVar carries the app's umask (octal) to the supervisor.
const supervisorUmaskVar = "TETHER_APP_UMASK"

// RunAppSupervisor is the app's process-group leader, started by the server:
//
//	tether _app-supervisor SERVER_PID GRACE PATH ARGV...
//
// It runs PATH (argv ARGV) as its child in its own process group and returns the
// exit code to leave with:
//   - the app exits: the app's status (a signal that killed the app kills the
//     supervisor too, so the server reads the same status);
//   - the server dies, even by kill -9 (the kernel sends us SIGTERM by Pdeathsig, and
//     we also watch our parent pid): the whole group, and every descendant that left
//     it (we are a child subreaper, so orphans stay below us), gets TERM, then KILL
//     after GRACE, so nothing the app started (kernels, `sleep 300 &`) outlives the
//     server;
//   - a signal while the server lives is the server's own stop, which signals the
//     whole group and escalates to KILL itself: we pass the first one on to the group
//     (in case it came before the app was in it), wait for the app and mirror it.
func RunAppSupervisor(args []string) int {
	if len(args) < 4 {
		fmt.Fprintf(os.Stderr, "tether: %s is internal to tether serve; run tether serve -- COMMAND instead\n", AppSupervisorArg)
		return 2
	}
	parent, err1 := strconv.Atoi(args[0])
	grace, err2 := time.ParseDuration(args[1])
	if err1 != nil || err2 != nil || parent <= 0 {
		fmt.Fprintf(os.Stderr, "tether: %s: bad arguments; run tether serve -- COMMAND instead\n", AppSupervisorArg)
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if os.Getppid() != parent {
		// The server died before we got here.
		endGroup(grace)
		return 1
	}
	if v, ok := os.LookupEnv(supervisorUmaskVar); ok {
		os.Unsetenv(supervisorUmaskVar)
		if m, err := strconv.ParseUint(v, 8, 32); err == nil && m <= 0o777 {
			syscall.Umask(int(m))
		}
	}
	// Orphans of the app (a kernel in a session of its own whose parent died) become
	// our children, so that ending the app's tree finds them too.
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	// The app dies with this thread if we are killed outright (Pdeathsig is per thread).
	runtime.LockOSThread()
	cmd := &exec.Cmd{Path: args[2], Args: args[3:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	// The server's stop signals our whole group. One that came before the app existed
	// reached only us, and the app, started after it, would never hear it (the server
	// then waits its whole grace before KILL): a stop seen before the start means no
	// start, and the first signal the loop below reads while the server lives is passed
	// on to the group (a TERM the app may also have had from the server: apps take a
	// second TERM as the first; without it, a stop that raced the start went unheard).
	if len(sigs) > 0 {
		return 128 + int(syscall.SIGTERM)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "tether: cannot start the app: %v\n", err)
		return 127
	}
	passedOn := false
	// One reaper for the app and the orphans we adopt (cmd.Wait would race with it).
	// Nothing waits for it: it blocks in wait4 while an adopted orphan lives, and the
	// supervisor process exits as soon as the loop below returns.
	appDone := make(chan syscall.WaitStatus, 1)
	go func() {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, 0, nil)
			switch {
			case err == syscall.EINTR:
			case err != nil:
				return
			case pid == cmd.Process.Pid:
				appDone <- ws
			}
		}
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ws := <-appDone:
			if os.Getppid() != parent {
				endGroup(grace) // the server is gone: what the app left goes too
			}
			return mirrorExit(ws)
		case <-sigs:
			// Pdeathsig comes when the server's thread that started us ends, which under
			// kill -9 can be a moment before the server's pid is gone: give it that moment
			// before taking the signal for the server's own stop.
			if parentGone(parent, 200*time.Millisecond) {
				endGroup(grace)
				return 1
			}
			if !passedOn {
				passedOn = true
				syscall.Kill(-syscall.Getpgrp(), syscall.SIGTERM)
			}
		case <-tick.C:
			if os.Getppid() != parent {
				endGroup(grace)
				return 1
			}
		}
	}
}

// parentGone reports whether our parent is no longer parent, looking again every 10 ms
// for up to wait.
func parentGone(parent int, wait time.Duration) bool {
	for end := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		if os.Getppid() != parent {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

// endGroup ends everything the app left: our process group, and our descendants that
// left it (setsid), TERM first, then KILL after grace (which ends us too) unless they
// are all gone by then.
func endGroup(grace time.Duration) {
	pg, sid, self := syscall.Getpgrp(), processSID(os.Getpid()), os.Getpid()
	others := func() []int {
		procs := liveProcs()
		var pids []int
		for _, pid := range groupMembersIn(procs, pg, sid) {
			if pid != self {
				pids = append(pids, pid)
			}
		}
		for _, pid := range descendantsIn(procs, self) {
			if !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for _, pid := range others() {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	syscall.Kill(-pg, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for len(others()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := others(); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		signal.Reset()
		syscall.Kill(-pg, syscall.SIGKILL)
		time.Sleep(time.Second) // the KILL reaches us too
	}
}

// descendants lists the live (not zombie) processes below pid, by parent links.
func descendants(pid int) []int { return descendantsIn(liveProcs(), pid) }

func descendantsIn(procs map[int]procStat, pid int) []int {
	children := map[int][]int{}
	for p, ps := range procs {
		children[ps.ppid] = append(children[ps.ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 1<<16 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if c != pid && !slices.Contains(out, c) {
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// mirrorExit turns the app's end into ours: its exit status, or death by the signal
// that killed it, so that the server's account of the app is the same as without us.
func mirrorExit(ws syscall.WaitStatus) int {
	if !ws.Signaled() {
		return ws.ExitStatus()
	}
	sig := ws.Signal()
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGKILL:
		signal.Reset()
		syscall.Kill(os.Getpid(), sig)
		time.Sleep(time.Second)
	}
	return 128 + int(sig)
}
