//go:build unix

package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// connectionProcesses are sshd's per-connection processes (monitor and session child)
// serving the connections open now.
func connectionProcesses(s *SSHD) []int { return s.ConnectionPIDs() }

// TestLaunchSurvivesSilentDrop: the sshd processes serving the launcher's connection
// are stopped (SIGSTOP: no FIN, no RST, the kernel still ACKs, nothing answers, as a
// suspended or unplugged peer). A request to the local URL then waits; the launcher
// must say "connection to HOST lost; reconnecting" promptly and the same URL must
// answer again within 20 s, with the app never restarted.
func TestLaunchSurvivesSilentDrop(t *testing.T) {
	NeedPython(t)
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	args := append([]string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--"}, HTTPServerApp...)
	l := StartLauncher(t, args, true)
	tok := l.Line.Session.Token
	base := fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort)
	apps := Descendants(l.Line.Session.PID, "python3")
	if len(apps) != 1 {
		t.Fatalf("app processes under the server %d: %v", l.Line.Session.PID, apps)
	}
	answers := func() bool {
		status, body, _ := Fetch(t, base, "Authorization", "token "+tok)
		return status == 200 && strings.Contains(body, HTTPServerTitle)
	}
	if !answers() {
		t.Fatal("the URL does not answer before the drop")
	}
	for round := 1; round <= 2; round++ {
		frozen := s.ConnectionPIDs()
		if len(frozen) == 0 {
			t.Fatalf("round %d: no sshd connection process", round)
		}
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		t.Cleanup(func() {
			for _, pid := range frozen {
				syscall.Kill(pid, syscall.SIGKILL)
				syscall.Kill(pid, syscall.SIGCONT)
			}
		})
		lostBefore := strings.Count(l.Stderr.String(), "lost")
		start := time.Now()
		var lostAfter time.Duration
		lostSeen := make(chan time.Duration, 1)
		go func() {
			if WaitFor(90*time.Second, func() bool { return strings.Count(l.Stderr.String(), "lost") > lostBefore }) {
				lostSeen <- time.Since(start)
			}
		}()
		// The browser keeps asking (each fetch waits up to 10 s).
		back := WaitFor(90*time.Second, answers)
		took := time.Since(start)
		select {
		case lostAfter = <-lostSeen:
		case <-time.After(time.Second):
			lostAfter = -1
		}
		t.Logf("round %d: stopped %d sshd processes; \"lost\" line after %s, the URL answered again after %s", round, len(frozen), FmtDur(lostAfter), FmtDur(took))
		if !back {
			t.Fatalf("round %d: the URL did not come back within 90 s; stderr:\n%s", round, l.Stderr.String())
		}
		if took > 20*time.Second {
			t.Errorf("round %d: %s to come back; want at most 20 s", round, FmtDur(took))
		}
		if lostAfter < 0 || lostAfter > took {
			t.Errorf("round %d: no \"lost\" line before the URL came back (%s); stderr:\n%s", round, FmtDur(lostAfter), l.Stderr.String())
		}
		MustContain(t, "launcher stderr", l.Stderr.String(), "connection to "+s.Alias+" lost", "reconnecting")
		for _, pid := range frozen {
			syscall.Kill(pid, syscall.SIGKILL)
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	if now := Descendants(l.Line.Session.PID, "python3"); len(now) != 1 || now[0] != apps[0] || !Alive(l.Line.Session.PID) {
		t.Errorf("the app was restarted: before %v, after %v", apps, now)
	}
}
