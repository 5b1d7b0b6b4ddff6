package remote

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAppStopEndsTheGroup: stop reaches the whole process group, and a child that
// ignores TERM is killed after the grace period.
func TestAppStopEndsTheGroup(t *testing.T) {
	p := testPlan(t, "sh", "-c", `trap "" TERM; sleep 300 & echo kid $!; sh -c 'trap "" TERM; while :; do sleep 1; done' & wait`)
	var out syncBuffer
	app, err := startApp(p, &out)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the app's children", func() bool { return len(groupMembers(app.pid, app.sid)) >= 3 })
	members := groupMembers(app.pid, app.sid)
	start := time.Now()
	app.stop(300 * time.Millisecond)
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("stop took %s; want the grace period then a kill", d)
	}
	waitUntil(t, 5*time.Second, "the whole group to be gone", func() bool {
		for _, pid := range members {
			if ps, err := readProcStat(pid); err == nil && ps.state != 'Z' {
				return false
			}
		}
		return true
	})
	if !strings.Contains(describeExit(app.err), "signal") {
		t.Errorf("exit %q; want killed by a signal", describeExit(app.err))
	}
}

// TestAppDiesWithItsServer: kill -9 of the process that started the app takes the
// app with it (Pdeathsig on the locked thread).
func TestAppDiesWithItsServer(t *testing.T) {
	cmd, appPID := startAppServer(t)
	ident, err := processIdentity(appPID)
	if err != nil {
		t.Fatal(err)
	}
	// The app runs in its own process group, not the helper's.
	if ps, _ := readProcStat(appPID); ps.pgrp != appPID {
		t.Errorf("app pgrp %d; want its own (%d)", ps.pgrp, appPID)
	}
	// Let the runtime move goroutines across threads for a while: the app must
	// survive that, and die only with its server.
	time.Sleep(300 * time.Millisecond)
	if !processAlive(appPID, ident) {
		t.Fatal("the app died while its server lived")
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	waitUntil(t, 5*time.Second, "the app to die with its server", func() bool { return !processAlive(appPID, ident) })
}

func TestStopEndsServerAndLeftovers(t *testing.T) {
	root := tempRoot(t)
	old := serverStopWait
	serverStopWait = 2 * time.Second
	defer func() { serverStopWait = old }()

	// A stand-in server that obeys TERM.
	server := startProc(t, "sleep", "60")
	serverID, _ := processIdentity(server.Process.Pid)
	s1, _ := fakeSession(t, root, func(sf *sessionFile) { sf.Name, sf.PID, sf.ServerStart = "one", server.Process.Pid, serverID })

	// A dead server whose app group (leader and a child ignoring TERM) lives on.
	app := exec.Command("sh", "-c", `trap "" TERM; sleep 60 & wait`)
	app.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	appDone := make(chan struct{})
	go func() { app.Wait(); close(appDone) }()
	defer syscall.Kill(-app.Process.Pid, syscall.SIGKILL)
	appID, _ := processIdentity(app.Process.Pid)
	waitUntil(t, 5*time.Second, "the app's child", func() bool { return len(groupMembers(app.Process.Pid, processSID(app.Process.Pid))) == 2 })
	s2, _ := fakeSession(t, root, func(sf *sessionFile) {
		sf.PID = deadPID(t)
		sf.AppPID, sf.AppStart, sf.AppSID = app.Process.Pid, appID, processSID(app.Process.Pid)
	})

	var out, errb bytes.Buffer
	if err := Stop(context.Background(), StopOptions{Target: "one", Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatal(err)
	}
	if processAlive(server.Process.Pid, serverID) {
		t.Error("the server survived stop")
	}
	if _, err := os.Stat(s1.Dir); !os.IsNotExist(err) {
		t.Errorf("stop left the session dir: %v", err)
	}
	if !strings.Contains(out.String(), "stopped "+s1.ID) {
		t.Errorf("stop said %q", out.String())
	}

	old2 := appGrace
	appGrace = 200 * time.Millisecond
	defer func() { appGrace = old2 }()
	if err := Stop(context.Background(), StopOptions{Target: s2.ID, Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-appDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the dead server's app survived stop")
	}
	if ms := groupMembers(app.Process.Pid, processSID(os.Getpid())); len(ms) != 0 {
		t.Errorf("app group members left: %v", ms)
	}
	if _, err := os.Stat(s2.Dir); !os.IsNotExist(err) {
		t.Errorf("stop left the session dir: %v", err)
	}
}

// TestStopInsidePIDNamespace: in a container or CI runner the session leader may live
// outside the PID namespace, and /proc reports session id 0. Stopping must still find
// the app's group there.
func TestStopInsidePIDNamespace(t *testing.T) {
	if os.Getenv("TETHER_IN_PIDNS") != "" {
		t.Skip("already inside the namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1) to make a PID namespace")
	}
	if out, err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a PID namespace here (a container without CAP_SYS_ADMIN?): %v: %s", err, bytes.TrimSpace(out))
	}
	cmd := exec.Command(unshare, "--pid", "--fork", "--mount-proc", os.Args[0],
		"-test.run=^(TestAppStopEndsTheGroup|TestStopEndsServerAndLeftovers)$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TETHER_IN_PIDNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("inside a PID namespace: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestAppStopEndsTheGroup")) || !bytes.Contains(out, []byte("--- PASS: TestStopEndsServerAndLeftovers")) {
		t.Fatalf("the tests did not run inside the namespace:\n%s", out)
	}
}

// TestAppGroupDiesWithItsServer: kill -9 of the server takes the whole app with it,
// not just its leader: background children that ignore TERM go too, in the app's
// group or in a session of their own (as Jupyter starts its kernels): the supervisor
// gets SIGTERM by Pdeathsig and ends its group and descendants: TERM, grace, KILL.
func TestAppGroupDiesWithItsServer(t *testing.T) {
	cmd, leader := startAppServer(t,
		`TETHER_REMOTE_TEST_APP=trap "" TERM; sleep 300 & sh -c 'trap "" TERM; while :; do sleep 1; done' & `+
			`setsid sh -c 'trap "" TERM; sleep 301 & while :; do sleep 1; done' & wait`)
	sid := processSID(leader)
	defer syscall.Kill(-leader, syscall.SIGKILL)
	waitUntil(t, 5*time.Second, "the app and its children", func() bool {
		return len(groupMembers(leader, sid)) >= 4 && len(descendants(leader)) >= 7
	})
	members := append([]int{leader}, descendants(leader)...)
	idents := map[int]string{}
	outside := 0
	for _, pid := range members {
		idents[pid], _ = processIdentity(pid)
		if ps, _ := readProcStat(pid); ps.pgrp != leader {
			outside++
		}
	}
	defer func() { // should the test fail: each by PID, if still the same process
		for pid, ident := range idents {
			if processAlive(pid, ident) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	if outside < 2 {
		t.Errorf("%d processes outside the app's group; want the setsid'd shell and its sleep", outside)
	}
	if ps, _ := readProcStat(cmd.Process.Pid); ps.pgrp == leader {
		t.Fatal("the server is in the app's group")
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	start := time.Now()
	waitUntil(t, 5*time.Second, "every process of the app to die with its server", func() bool {
		for pid, ident := range idents {
			if processAlive(pid, ident) {
				return false
			}
		}
		return true
	})
	t.Logf("%d processes (%d in a session of their own) gone %s after kill -9 of the server (grace 500ms)", len(members), outside, time.Since(start).Round(10*time.Millisecond))
}

// TestSupervisedAppStatus: the server reads the app's own exit through the supervisor:
// its status, or the signal that killed it; output and environment are the app's.
func TestSupervisedAppStatus(t *testing.T) {
	for _, c := range []struct{ script, want string }{
		{"echo hello $PORT; exit 3", "exited with status 3"},
		{"exit 0", "exited with status 0"},
		{"kill -TERM $$", "was killed by signal terminated"},
		{"kill -KILL $$", "was killed by signal killed"},
	} {
		p := testPlan(t, "sh", "-c", c.script)
		var out syncBuffer
		app, err := startApp(p, &out)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-app.done:
		case <-time.After(5 * time.Second):
			app.stop(0)
			t.Fatalf("%q did not end", c.script)
		}
		if got := describeExit(app.err); got != c.want {
			t.Errorf("%q: %s; want %s", c.script, got, c.want)
		}
		port := ""
		for _, e := range p.env {
			if v, ok := strings.CutPrefix(e, "PORT="); ok {
				port = v
			}
		}
		if strings.HasPrefix(c.script, "echo") && (port == "" || !strings.Contains(out.String(), "hello "+port+"\n")) {
			t.Errorf("app output %q; want hello and its PORT", out.String())
		}
	}
}

// startAppServer runs this test binary as a stand-in server (its own process group)
// that starts an app and prints the app's PID; env adds to its environment. The
// server's group is killed and reaped when the test ends.
func startAppServer(t *testing.T, env ...string) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "TETHER_REMOTE_TEST_HELPER=start-app"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	return cmd, pid
}
