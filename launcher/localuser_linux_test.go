//go:build linux

package launcher

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// connectAs runs the helper as uid (root only) against addr.
func connectAs(t *testing.T, uid int, addr string) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	helper := filepath.Join(dir, "helper")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(helper, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helper, "-test.run=^$")
	cmd.Env = []string{"TETHER_LAUNCHER_TEST_HELPER=connect", "TETHER_LAUNCHER_TEST_ADDR=" + addr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Another user's connection is closed before anything is read or written, the user is
// told once (naming the uid), and the owner's connections keep working.
func TestOwnerOnlyRefusesAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (to run a helper as uid 65534)")
	}
	addr, accepted, msgs := serveOwnerOnly(t)
	for i := range 3 {
		got := connectAs(t, 65534, addr)
		if !refusedAnswer(got) {
			t.Errorf("attempt %d as uid 65534: %q; want nothing read", i, got)
		}
		noneAccepted(t, accepted, "uid 65534's connection")
		expectOwn(t, addr, accepted)
	}
	l := msgs.all()
	if len(l) != 1 || !strings.Contains(l[0], "refused a connection to local port") || !strings.Contains(l[0], "(uid 65534)") {
		t.Errorf("told %q; want one line naming uid 65534", l)
	}
}
