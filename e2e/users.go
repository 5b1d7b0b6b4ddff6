//go:build unix

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// User is a Unix account made for one test: the other user of a shared machine.
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// OtherUser creates a fresh Unix user (useradd, with a home directory) for the attacks
// that need another user of the same host, and deletes it (and its processes and
// home) when tb ends. It needs root and useradd: without them it skips, or fails under
// TETHER_E2E=require (CI runs as root).
func OtherUser(tb testing.TB) User {
	tb.Helper()
	return OtherUserWithShell(tb, "/bin/sh")
}

// OtherUserWithShell is OtherUser with shell as its login shell: a program name (the
// Debian package of the same name provides it: "tcsh", "zsh", "bash") or a path. A
// tcsh or zsh user is for the login-shell environment (launch --setup); the home
// starts from /etc/skel, as useradd makes it. A shell that is not installed skips (or
// fails under TETHER_E2E=require).
func OtherUserWithShell(tb testing.TB, shell string) User {
	tb.Helper()
	shell = Need(tb, shell, filepath.Base(shell))
	if os.Getuid() != 0 {
		msg := "another Unix user is needed for this attack and only root can make one; run the tests as root"
		if Required() {
			tb.Fatalf("TETHER_E2E=require: %s", msg)
		}
		tb.Skip(msg)
	}
	useradd := Need(tb, "useradd", "passwd")
	userdel := Need(tb, "userdel", "passwd")
	var b [4]byte
	rand.Read(b[:])
	name := "tether-x" + hex.EncodeToString(b[:])
	if out, err := exec.Command(useradd, "--create-home", "--shell", shell, "--user-group", name).CombinedOutput(); err != nil {
		tb.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	u, err := user.Lookup(name)
	if err != nil {
		exec.Command(userdel, "--remove", name).Run()
		tb.Fatalf("looking up the new user %s: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	tb.Cleanup(func() {
		// Whatever the test left running as that user goes first, by its uid.
		exec.Command("pkill", "-KILL", "-u", name).Run()
		if out, err := exec.Command(userdel, "--remove", "--force", name).CombinedOutput(); err != nil {
			tb.Logf("userdel %s: %v\n%s", name, err, out)
		}
	})
	return User{Name: name, UID: uid, GID: gid, Home: u.HomeDir}
}

// Command is exec.Command run as u (its uid, gid and home), in its own process group
// so that Start's cleanup stops it by its PID.
func (u User) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = u.Home
	cmd.Env = []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
	return cmd
}
