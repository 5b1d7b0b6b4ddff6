package remote

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func TestProcessIdentityAndLiveness(t *testing.T) {
	self, err := processIdentity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !processAlive(os.Getpid(), self) {
		t.Fatal("this process is not alive by its own identity")
	}
	boot, start, _ := strings.Cut(self, ":")
	n, _ := strconv.ParseUint(start, 10, 64)
	tests := []struct {
		name  string
		pid   int
		ident string
	}{
		{"reused pid (other start time)", os.Getpid(), boot + ":" + strconv.FormatUint(n+1, 10)},
		{"after a reboot (other boot id)", os.Getpid(), "00000000-0000-0000-0000-000000000000:" + start},
		{"no identity recorded", os.Getpid(), ""},
		{"dead pid", deadPID(t), self},
		{"pid zero", 0, self},
	}
	for _, tt := range tests {
		if processAlive(tt.pid, tt.ident) {
			t.Errorf("for %s, got alive; want dead", tt.name)
		}
	}
}

func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	ident, err := processIdentity(cmd.Process.Pid)
	if err != nil {
		t.Skip("exited before it could be identified")
	}
	waitUntil(t, 5*time.Second, "the child to become a zombie", func() bool {
		ps, err := readProcStat(cmd.Process.Pid)
		return err == nil && ps.state == 'Z'
	})
	if processAlive(cmd.Process.Pid, ident) {
		t.Fatal("a zombie counts as alive")
	}
}

func TestSessionStateNeverRunningForAGoneServer(t *testing.T) {
	root := tempRoot(t)
	sleeper := startProc(t, "sleep", "60")
	sleeperID, _ := processIdentity(sleeper.Process.Pid)
	dead := deadPID(t)
	tests := []struct {
		name string
		edit func(*sessionFile)
		want string
	}{
		{"live server", func(sf *sessionFile) { sf.PID, sf.ServerStart = sleeper.Process.Pid, sleeperID }, wire.StateRunning},
		{"killed server", func(sf *sessionFile) { sf.PID = dead }, wire.StateDead},
		{"pid reused by another process", func(sf *sessionFile) { sf.PID = sleeper.Process.Pid }, wire.StateDead},
		{"app exited", func(sf *sessionFile) { sf.Phase, sf.PID = phaseAppExited, dead }, wire.StateAppExited},
		{"starting", func(sf *sessionFile) { sf.Phase = phaseStarting }, phaseStarting},
		{"starting, server gone", func(sf *sessionFile) { sf.Phase, sf.PID = phaseStarting, dead }, wire.StateDead},
		{"unknown phase", func(sf *sessionFile) { sf.Phase = "weird" }, wire.StateDead},
	}
	for _, tt := range tests {
		s, _ := fakeSession(t, root, tt.edit)
		sf, err := readRecord(s.recordPath())
		if err != nil {
			t.Fatal(err)
		}
		if got := sessionState(entry{s: s, rec: sf}); got != tt.want {
			t.Errorf("for %s, got %s; want %s", tt.name, got, tt.want)
		}
	}
	if got := sessionState(entry{}); got != wire.StateDead {
		t.Errorf("without a record, got %s; want dead", got)
	}
}
