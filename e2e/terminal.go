//go:build linux

package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// OpenPTY opens a pseudo-terminal in raw mode (no \n → \r\n, so what the program
// wrote arrives as it is) and returns its master and the terminal end; both are closed
// when tb ends. It skips tb where the system has no pseudo-terminals.
func OpenPTY(tb testing.TB) (master, tty *os.File) {
	tb.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		tb.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		tb.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		tb.Fatalf("opening /dev/pts/%d: %v", n, err)
	}
	if _, err := term.MakeRaw(int(s.Fd())); err != nil {
		tb.Fatalf("raw mode: %v", err)
	}
	tb.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// Terminal is a program run the way a user at a terminal runs it: in a session of its
// own whose controlling terminal (/dev/tty, where ssh and tether ask for passphrases
// and one-time codes) is a pseudo-terminal the test reads and types into.
type Terminal struct {
	Proc   *Proc
	master *os.File
	screen Buffer
	copied chan struct{}
}

// StartOnTerminal starts cmd (via Start: stopped by its PID when tb ends) with a new
// pseudo-terminal as its controlling terminal and its stdin; its stdout and stderr go
// there too unless cmd sets them.
func StartOnTerminal(tb testing.TB, cmd *exec.Cmd) *Terminal {
	tb.Helper()
	master, tty := OpenPTY(tb)
	if cmd.Stdin != nil {
		tb.Fatal("StartOnTerminal: stdin is the terminal")
	}
	cmd.Stdin = tty
	if cmd.Stdout == nil {
		cmd.Stdout = tty
	}
	if cmd.Stderr == nil {
		cmd.Stderr = tty
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
	t := &Terminal{master: master, copied: make(chan struct{})}
	go func() {
		defer close(t.copied)
		io.Copy(&t.screen, master) // ends with EIO once the last holder of the terminal closes it
	}()
	t.Proc = Start(tb, cmd)
	tty.Close() // the child holds its own copy
	return t
}

// Screen is everything the program wrote to the terminal so far.
func (t *Terminal) Screen() string { return t.screen.String() }

// WaitFor waits up to timeout until the screen holds at least n occurrences of s; false
// if it does not by then, or the program ended first without writing them.
func (t *Terminal) WaitFor(s string, n int, timeout time.Duration) bool {
	has := func() bool { return strings.Count(t.Screen(), s) >= n }
	WaitFor(timeout, func() bool {
		select {
		case <-t.copied:
			return true
		default:
			return has()
		}
	})
	return has()
}

// Type sends s to the program as if typed (end a line with "\n").
func (t *Terminal) Type(tb testing.TB, s string) {
	tb.Helper()
	if _, err := io.WriteString(t.master, s); err != nil {
		tb.Fatalf("typing on the terminal: %v", err)
	}
}

// Wait waits up to timeout for the program to exit and for the terminal to drain, and
// returns the exit code (-1 when it did not exit in time).
func (t *Terminal) Wait(timeout time.Duration) int {
	err, ok := t.Proc.Wait(timeout)
	if !ok {
		return -1
	}
	select {
	case <-t.copied:
	case <-time.After(5 * time.Second):
	}
	if ee, isExit := err.(*exec.ExitError); isExit {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
