//go:build unix

package remote

import (
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestListenPrivateUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.sock")
	old := syscall.Umask(0)
	ln, fi, err := listenPrivateUnix(path)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(path); st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v; want a 0600 socket", st.Mode())
	}
	// Closing the listener does not unlink; removeSocket does, for our socket only.
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing unlinked the socket: %v", err)
	}
	// A second server never takes over the path, stale or not.
	if _, _, err := listenPrivateUnix(path); err == nil || !strings.Contains(err.Error(), "never reuses") {
		t.Fatalf("listening on an existing path: %v", err)
	}
	removeSocket(path, fi)
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("removeSocket left our socket: %v", err)
	}
}

func TestRemoveSocketLeavesAReplacementAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.sock")
	ln, fi, err := listenPrivateUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	os.Remove(path)
	time.Sleep(20 * time.Millisecond)      // a later change time, even on coarse clocks
	other, err := net.Listen("unix", path) // someone else's socket now
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	removeSocket(path, fi)
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("removeSocket removed a socket it did not create: %v", err)
	}
}

// helperBinary copies the test binary where another uid can run it.
func helperBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	dst := filepath.Join(dir, "helper")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return dst
}

func connectAs(t *testing.T, helper string, uid int, socket string) string {
	t.Helper()
	cmd := exec.Command(helper, "-test.run=^$")
	cmd.Env = []string{"TETHER_REMOTE_TEST_HELPER=connect", "TETHER_REMOTE_TEST_SOCKET=" + socket}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestOtherUserCannotConnect: the socket in a 0700 session directory gives another uid
// EACCES; and where the directory would let them through, SO_PEERCRED closes the
// connection.
func TestOtherUserCannotConnect(t *testing.T) {
	if !isRoot() || runtime.GOOS != "linux" {
		t.Skip("needs root (to run a helper as uid 65534) on Linux")
	}
	helper := helperBinary(t)
	root := tempRoot(t)
	os.Chmod(filepath.Dir(root), 0o755)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, _, err := listenPrivateUnix(s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	pl := &peerCheckListener{UnixListener: ln, logger: logger}
	defer pl.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := pl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	if got := connectAs(t, helper, 65534, s.socketPath()); !strings.Contains(got, "permission denied") {
		t.Errorf("uid 65534 connecting through the 0700 dir: %q; want permission denied", got)
	}

	// Open everything up, as a careless --socket path might: the peer check still
	// closes the other user's connection.
	os.Chmod(root, 0o755)
	os.Chmod(s.Dir, 0o755)
	os.Chmod(s.socketPath(), 0o777)
	if got := connectAs(t, helper, 65534, s.socketPath()); !strings.Contains(got, "read 0: EOF") {
		t.Errorf("uid 65534 through open permissions: %q; want the connection closed (EOF)", got)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Error("the other user's connection was handed to the server")
	case <-time.After(100 * time.Millisecond):
	}
	// Our own uid is let through.
	c, err := net.Dial("unix", s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-accepted:
		sc.Close()
	case <-time.After(2 * time.Second):
		t.Error("our own connection was not accepted")
	}
}
