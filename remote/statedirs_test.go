//go:build unix

package remote

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/wire"
)

// xdgHome points HOME and the XDG variables at fresh directories (no TETHER_STATE_DIR)
// and returns HOME and the runtime directory.
func xdgHome(t *testing.T) (home, runtime string) {
	t.Helper()
	home, runtime = t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	return home, runtime
}

func TestSlurmRootFollowsXDGState(t *testing.T) {
	home, _ := xdgHome(t)
	if got, err := slurmRootPath(); err != nil || got != filepath.Join(home, ".local", "state", "tether", "batch") {
		t.Errorf("batch root: %q, %v; want ~/.local/state/tether/batch", got, err)
	}
	t.Setenv("XDG_STATE_HOME", "/srv/st")
	if got, err := slurmRootPath(); err != nil || got != "/srv/st/tether/batch" {
		t.Errorf("slurm root with XDG_STATE_HOME=/srv/st: %q, %v", got, err)
	}
	t.Setenv("TETHER_STATE_DIR", "/srv/all")
	if got := legacyRoots(true); got != nil {
		t.Errorf("legacy roots with TETHER_STATE_DIR: %q; want none", got)
	}
}

// A session started by an earlier version, in $XDG_RUNTIME_DIR/tether or
// ~/.cache/tether/run, is still listed, resolved and stopped; new ones go to
// ~/.local/state/tether/sessions.
func TestLegacyRootsStillFound(t *testing.T) {
	home, runtime := xdgHome(t)
	// The servers: processes of their own, since stop signals them.
	var old []*session
	for _, dir := range []string{filepath.Join(runtime, "tether"), filepath.Join(home, ".cache", "tether", "run")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		server := startProc(t, "sleep", "60")
		id, _ := processIdentity(server.Process.Pid)
		s, _ := fakeSession(t, dir, func(sf *sessionFile) { sf.PID, sf.ServerStart = server.Process.Pid, id })
		old = append(old, s)
	}
	root, err := stateRoot(true)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".local", "state", "tether", "sessions"); root != want {
		t.Errorf("state root %s; want %s", root, want)
	}
	current, _ := fakeSession(t, root, nil)

	out, _ := runLs(t, LsOptions{JSON: true})
	var list []wire.Record
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("ls --json: %q: %v", out, err)
	}
	got := map[string]string{}
	for _, r := range list {
		got[r.ID] = r.State
	}
	for _, s := range append(old, current) {
		if got[s.ID] != wire.StateRunning {
			t.Errorf("ls --json: session %s (in %s): %q; want running (listed: %v)", s.ID, s.Root, got[s.ID], got)
		}
	}
	// A name taken by a session in an old place is taken.
	_, named := fakeSession(t, old[1].Root, func(sf *sessionFile) { sf.Name = "lab" })
	if err := nameTaken(root, "lab"); err == nil || !strings.Contains(err.Error(), named.ID) {
		t.Errorf("nameTaken for a name of a session in ~/.cache/tether/run: %v", err)
	}
	// stop finds and removes it where it is.
	if err := Stop(context.Background(), StopOptions{Target: old[0].ID, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}); err != nil {
		t.Fatalf("stop %s: %v", old[0].ID, err)
	}
	if _, err := os.Stat(old[0].Dir); !os.IsNotExist(err) {
		t.Errorf("stop left %s: %v", old[0].Dir, err)
	}
}

// A legacy root that another user could tamper with is not read.
func TestLegacyRootRefusedWhenUnsafe(t *testing.T) {
	_, runtime := xdgHome(t)
	dir := filepath.Join(runtime, "tether")
	os.MkdirAll(dir, 0o700)
	s, _ := fakeSession(t, dir, nil)
	os.Chmod(dir, 0o777)
	root, err := stateRoot(true)
	if err != nil {
		t.Fatal(err)
	}
	all, err := scanRoots(root, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.s.ID == s.ID {
			t.Errorf("a session in a world-writable %s was listed", dir)
		}
	}
}

func TestFindSlurmSessionInLegacyRoot(t *testing.T) {
	home, _ := xdgHome(t)
	old := filepath.Join(home, ".cache", "tether", "slurm")
	os.MkdirAll(old, 0o700)
	s, _ := fakeSession(t, old, nil)
	root, err := slurmRoot(true)
	if err != nil {
		t.Fatal(err)
	}
	if got := findSlurmSession(root, s.ID); got.Dir != s.Dir {
		t.Errorf("findSlurmSession: %s; want %s", got.Dir, s.Dir)
	}
	if got := findSlurmSession(root, "aaaaaaaa"); got.Dir != filepath.Join(root, "aaaaaaaa") {
		t.Errorf("findSlurmSession of a missing id: %s; want it under %s", got.Dir, root)
	}
}

// Where the session directory's file system takes no Unix sockets (AFS homes), the
// sockets go to a short private directory instead.
func TestNewSessionWithoutSocketsInItsDir(t *testing.T) {
	root := tempRoot(t)
	defer func(f func(string) bool) { socketsWork = f }(socketsWork)
	if !socketsWork(root) {
		t.Fatalf("a socket cannot be made in %s", root)
	}
	if des, _ := os.ReadDir(root); len(des) != 0 {
		t.Errorf("the probe left %v", des)
	}
	socketsWork = func(string) bool { return false }
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.remove()
	if s.SockDir == s.Dir || !isShortSocketDir(s.SockDir, s.ID) {
		t.Errorf("sockets in %s; want a short directory of their own", s.SockDir)
	}
}
