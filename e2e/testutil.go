//go:build unix

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

// FileSum is the SHA-256 of the file at p, in hex.
func FileSum(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// The app the launch tests run on the "remote": Python's static file server, whose page
// title is known.
var HTTPServerApp = []string{"/usr/bin/python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"}

const HTTPServerTitle = "Directory listing for /"

// NeedPython skips (or fails under TETHER_E2E=require) without the python3 of HTTPServerApp.
func NeedPython(t *testing.T) {
	if _, err := os.Stat(HTTPServerApp[0]); err != nil {
		Need(t, "python3-for-launch-tests", "python3")
	}
}

// JSONUnmarshal is json.Unmarshal of a string.
func JSONUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// KillSessionOnCleanup makes sure a detached session's server and app end with the
// test: their PIDs, found now, are killed when it ends if they still run this
// binary's server or its app (checked by start time, so a reused PID is left alone).
func KillSessionOnCleanup(t *testing.T, serverPID int) {
	t.Helper()
	type proc struct {
		pid   int
		start string
	}
	var procs []proc
	for _, pid := range append([]int{serverPID}, Descendants(serverPID, "")...) {
		procs = append(procs, proc{pid, startTime(pid)})
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.start != "" && startTime(p.pid) == p.start && Alive(p.pid) {
				syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	})
}

// startTime is field 22 of /proc/PID/stat, "" if the process is gone.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// WithTimeout bounds one chromedp step, so a page that never loads fails the test instead
// of hanging it.
func WithTimeout(ctx context.Context, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(ctx, d)
	_ = cancel // released when the deadline passes
	return ctx
}

// LastLines is the last n lines of s.
func LastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// WaitStderr waits until the launcher's stderr holds s.
func WaitStderr(t *testing.T, l *Launched, s string, timeout time.Duration) bool {
	t.Helper()
	return WaitFor(timeout, func() bool { return strings.Contains(l.Stderr.String(), s) })
}

// LastLine is the last line of s.
func LastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// LineWith is the first line of s holding sub ("" if none).
func LineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// SSHRun runs `ssh HOST ARGS...` through the harness's sshd and returns stdout and
// stderr apart (the ready record is on stdout, progress on stderr).
func SSHRun(t *testing.T, s *SSHD, timeout time.Duration, args ...string) (stdout, stderr string, err error, took time.Duration) {
	t.Helper()
	cmd := exec.Command("ssh", append([]string{"-F", s.Config, s.Alias}, args...)...)
	var out, errb Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	p := Start(t, cmd)
	err, ok := p.Wait(timeout)
	if !ok {
		t.Fatalf("ssh %s did not return within %s (a detached server holding the channel?)\nstderr:\n%s", strings.Join(args, " "), timeout, errb.String())
	}
	return out.String(), errb.String(), err, time.Since(start)
}

// DetachOverSSH starts a detached session through sshd and returns its record; the
// session's processes are killed by PID when the test ends if still there.
func DetachOverSSH(t *testing.T, s *SSHD, args ...string) wire.Record {
	t.Helper()
	full := append([]string{Binary(t), "serve", "--detach", "--json"}, args...)
	out, errOut, err, took := SSHRun(t, s, 30*time.Second, full...)
	if err != nil {
		t.Fatalf("detach: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("--json printed %d lines on stdout; want exactly one:\n%s", strings.Count(out, "\n"), out)
	}
	rec, err := wire.DecodeRecord([]byte(strings.TrimSpace(out)))
	if err != nil {
		t.Fatalf("ready record %q: %v", out, err)
	}
	KillSessionOnCleanup(t, rec.PID)
	t.Logf("detached session %s in %s", rec.ID, took.Round(time.Millisecond))
	return rec
}
