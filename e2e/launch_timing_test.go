//go:build unix

package e2e

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestLaunchTimings logs (never fails on) how long a launch takes to a working URL:
// the first one (with the upload) and, with the binary in place, against `ssh HOST
// true` (issue 7 benchmarks these properly).
func TestLaunchTimings(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	StopAllOnCleanup(t, s)
	Binary(t) // built before the clock starts
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	var sshTrue []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		if out, err := exec.Command("ssh", "-F", s.Config, s.Alias, "true").CombinedOutput(); err != nil {
			t.Fatalf("ssh true: %v %s", err, out)
		}
		sshTrue = append(sshTrue, time.Since(start))
	}
	launchOnce := func() time.Duration {
		start := time.Now()
		l := StartLauncher(t, []string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--rm"}, true)
		el := time.Since(start)
		l.Interrupt(t)
		return el
	}
	first := launchOnce()
	// Reconnect: from killing the SSH connection to the local URL answering again.
	l := StartLauncher(t, []string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser", "--rm"}, true)
	tok := l.Line.Session.Token
	base := strings.TrimSuffix(l.Line.URL, "?token="+tok)
	var back []time.Duration
	for i := 0; i < 3; i++ {
		s.KillConnections()
		start := time.Now()
		WaitFor(15*time.Second, func() bool { status, _, _ := Fetch(t, base, "Authorization", "token "+tok); return status == 200 })
		back = append(back, time.Since(start))
	}
	l.Interrupt(t)
	var again []time.Duration
	for i := 0; i < 5; i++ {
		again = append(again, launchOnce())
	}
	t.Logf("ssh HOST true: median %s; tether launch (built-in app) to a verified URL: first (upload) %s, binary in place median %s (%v); reconnect to a working URL: %v",
		FmtDur(median(sshTrue)), FmtDur(first), FmtDur(median(again)), again, back)
}
