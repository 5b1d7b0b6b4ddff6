//go:build unix

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Required reports whether TETHER_E2E=require: a missing sshd or Chromium then fails
// the test instead of skipping it.
func Required() bool { return os.Getenv("TETHER_E2E") == "require" }

// Need skips tb (or fails it under TETHER_E2E=require) when a program is missing, naming
// the Debian package that provides it.
func Need(tb testing.TB, program, debianPackage string) string {
	tb.Helper()
	if path, err := FindProgram(program); err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found: install it with `apt-get install -y %s`", program, debianPackage)
	if Required() {
		tb.Fatalf("TETHER_E2E=require: %s", msg)
	}
	tb.Skip(msg)
	return ""
}

// FindProgram looks for program in PATH, then in the directories a user's PATH often
// lacks (sshd, slurmctld and munged live in sbin).
func FindProgram(program string) (string, error) {
	if path, err := exec.LookPath(program); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/usr/local/bin"} {
		if p := filepath.Join(dir, program); IsExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", program)
}

func IsExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Version is the version the test binary is built with.
const Version = "v0.0.0-e2e"

// Binary builds the tether binary once per test process and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tether-e2e-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "tether")
		cmd := exec.Command("go", "build", "-o", buildPath, "-ldflags", "-X main.version="+Version, ".")
		cmd.Dir = ModuleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("building tether: %v", buildErr)
	}
	return buildPath
}

// Cleanup removes what the harness made for the whole test process; call it from
// TestMain after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// Proc is a process started by Start.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to timeout for the process to exit and returns its exit error; ok is
// false if it is still running.
func (p *Proc) Wait(timeout time.Duration) (err error, ok bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Start starts cmd in its own process group and registers a cleanup that stops that
// group by its PID (TERM, then KILL after a grace period) and waits for it.
func Start(tb testing.TB, cmd *exec.Cmd) *Proc {
	tb.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A new session (StartOnTerminal) is a new process group already, and setpgid
	// would fail on its leader.
	cmd.SysProcAttr.Setpgid = !cmd.SysProcAttr.Setsid
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() { StopGroup(cmd.Process.Pid, p.done) })
	return p
}

// StopGroup sends TERM to the process group pgid, then KILL after a grace period, and
// waits until done is closed.
func StopGroup(pgid int, done <-chan struct{}) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

// Buffer is a goroutine-safe bytes.Buffer for a child's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitFor polls cond every 20ms until it returns true or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ProcessesWith returns "pid: cmdline" for every process whose argv contains secret.
func ProcessesWith(secret string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(secret)) {
			found = append(found, fmt.Sprintf("%d: %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
		}
	}
	return found
}

// Children returns the PIDs of pid's direct children.
func Children(pid int) []int {
	var kids []int
	for _, p := range Processes() {
		if p.PPID == pid {
			kids = append(kids, p.PID)
		}
	}
	return kids
}

// Descendants returns the PIDs of every process below pid whose command name is comm
// (any name when comm is empty).
func Descendants(pid int, comm string) []int {
	all := Processes()
	var found []int
	parents := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for _, p := range all {
			if parents[p.PPID] && !parents[p.PID] {
				parents[p.PID] = true
				changed = true
				if comm == "" || p.Comm == comm {
					found = append(found, p.PID)
				}
			}
		}
	}
	return found
}

// ProcInfo is one process as /proc/PID/stat shows it.
type ProcInfo struct {
	PID, PPID int
	Comm      string
}

// Processes lists every process on the machine.
func Processes() []ProcInfo {
	var ps []ProcInfo
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name in parentheses may hold spaces; fields resume after the last ')'.
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		ps = append(ps, ProcInfo{PID: pid, PPID: ppid, Comm: s[open+1 : close]})
	}
	return ps
}

// Alive reports whether a process with this PID exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// Context returns a context cancelled when tb ends or after timeout.
func Context(tb testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	tb.Cleanup(cancel)
	return ctx
}
