//go:build unix

package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tether-dev/tether/wire"
)

func TestStateRootResolution(t *testing.T) {
	home := t.TempDir()
	runtime := t.TempDir()
	t.Setenv("HOME", home)
	def := filepath.Join(home, ".local", "state", "tether", "sessions")
	tests := []struct {
		state, xdgState, runtime, want string
	}{
		{state: "/srv/x/state", xdgState: "/srv/st", runtime: runtime, want: "/srv/x/state"},
		{xdgState: "/srv/st", runtime: runtime, want: "/srv/st/tether/sessions"},
		{runtime: runtime, want: def}, // never the runtime dir: logind removes it at logout
		{xdgState: "relative/dir", want: def},
		{},
	}
	for _, tt := range tests {
		if tt.want == "" {
			tt.want = def
		}
		t.Setenv("TETHER_STATE_DIR", tt.state)
		t.Setenv("XDG_STATE_HOME", tt.xdgState)
		t.Setenv("XDG_RUNTIME_DIR", tt.runtime)
		got, err := stateRootPath()
		if err != nil || got != tt.want {
			t.Errorf("for TETHER_STATE_DIR=%q XDG_STATE_HOME=%q XDG_RUNTIME_DIR=%q, got %q, %v; want %q", tt.state, tt.xdgState, tt.runtime, got, err, tt.want)
		}
	}
}

func TestStateRootCreatedPrivate(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_STATE_HOME", "")
	root, err := stateRoot(true)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("root %s: %v, mode %v; want 0700", root, err, fi.Mode())
	}
}

func TestStateRootRefusesHostileDirs(t *testing.T) {
	base := t.TempDir()
	private := filepath.Join(base, "private")
	os.Mkdir(private, 0o700)
	tests := []struct {
		name  string
		setup func(path string) error
		want  string
		root  bool
	}{
		{"symlink", func(p string) error { return os.Symlink(private, p) }, "symlink", false},
		{"world-writable", func(p string) error { os.Mkdir(p, 0o700); return os.Chmod(p, 0o777) }, "writable by group or others", false},
		{"group-writable", func(p string) error { os.Mkdir(p, 0o700); return os.Chmod(p, 0o770) }, "writable by group or others", false},
		{"sticky world-writable", func(p string) error { os.Mkdir(p, 0o700); return os.Chmod(p, os.ModeSticky|0o777) }, "writable by group or others", false},
		{"a file", func(p string) error { return os.WriteFile(p, nil, 0o600) }, "not a directory", false},
		{"foreign owner", func(p string) error { os.Mkdir(p, 0o700); return os.Chown(p, 65534, 65534) }, "owned by uid 65534", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !isRoot() {
				t.Skip("needs root to chown")
			}
			p := filepath.Join(base, strings.ReplaceAll(tt.name, " ", "-"))
			if err := tt.setup(p); err != nil {
				t.Fatal(err)
			}
			t.Setenv("TETHER_STATE_DIR", p)
			for _, create := range []bool{true, false} {
				_, err := stateRoot(create)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("for %s (create=%v), got %v; want an error saying %q", tt.name, create, err, tt.want)
				}
				if err != nil && strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
			}
			// Nothing was created inside the refused root.
			if des, _ := os.ReadDir(p); len(des) != 0 {
				t.Errorf("refused root %s got entries: %v", p, des)
			}
		})
	}
}

// The root's own checks are not enough when a directory above it lets another user
// rename it away and put theirs in its place: such parents are refused too (OpenSSH's
// safe_path rules: owned by us or root, writable by no one else unless sticky), up to
// the home directory.
func TestStateRootRefusesUnsafeParents(t *testing.T) {
	tests := []struct {
		name  string
		setup func(parent string) error
		want  string // "" when it must be accepted
		root  bool
	}{
		{"private parent", func(p string) error { return nil }, "", false},
		{"world-writable parent", func(p string) error { return os.Chmod(p, 0o777) }, "without the sticky bit (mode 0777)", false},
		{"group-writable parent", func(p string) error { return os.Chmod(p, 0o770) }, "without the sticky bit (mode 0770)", false},
		{"sticky world-writable parent (like /tmp)", func(p string) error { return os.Chmod(p, os.ModeSticky|0o777) }, "", false},
		{"parent of another user", func(p string) error { return os.Chown(p, 65534, 65534) }, "owned by uid 65534", true},
		{"sticky parent of another user", func(p string) error {
			os.Chmod(p, os.ModeSticky|0o777)
			return os.Chown(p, 65534, 65534)
		}, "owned by uid 65534", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !isRoot() {
				t.Skip("needs root to chown")
			}
			t.Setenv("HOME", t.TempDir())
			base, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			parent := filepath.Join(base, "shared")
			os.Mkdir(parent, 0o700)
			if err := tt.setup(parent); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(parent, "state")
			t.Setenv("TETHER_STATE_DIR", p)
			for _, create := range []bool{true, false} {
				got, err := stateRoot(create)
				if tt.want == "" {
					if err != nil || got != p {
						t.Errorf("create=%v: got %q, %v; want %s accepted", create, got, err, p)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), parent+" above it") || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "TETHER_STATE_DIR") {
					t.Errorf("create=%v: got %v; want %s refused: %q", create, err, parent, tt.want)
				}
			}
			if tt.want != "" {
				// A session cannot be made there either.
				if _, err := newSessionIn(t); err == nil {
					t.Errorf("a session was made under an unsafe parent")
				}
			}
		})
	}
	// The walk stops at home: a home's parent is not ours to judge (as OpenSSH).
	top := t.TempDir()
	home := filepath.Join(top, "home")
	os.Mkdir(home, 0o700)
	os.Chmod(top, 0o777)
	t.Setenv("HOME", home)
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_STATE_HOME", "")
	if _, err := stateRoot(true); err != nil {
		t.Errorf("~/.local/state/tether/sessions with an open directory above home: %v; want accepted", err)
	}
	// But home itself is checked.
	os.Chmod(home, 0o777)
	if _, err := stateRoot(false); err == nil || !strings.Contains(err.Error(), home+" above it") {
		t.Errorf("a world-writable home: %v; want refused", err)
	}
}

// newSessionIn makes a session under the state root from the environment.
func newSessionIn(t *testing.T) (*session, error) {
	root, err := stateRoot(true)
	if err != nil {
		return nil, err
	}
	return newSession(root)
}

// A symlink on the way to the root is resolved: the root returned (and used) is the
// physical path that was checked, not a name another user could re-point.
func TestStateRootIsPhysical(t *testing.T) {
	base, _ := filepath.EvalSymlinks(t.TempDir())
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(base, "link")
	os.Symlink(real, link)
	t.Setenv("TETHER_STATE_DIR", filepath.Join(link, "state"))
	got, err := stateRoot(true)
	if err != nil || got != filepath.Join(real, "state") {
		t.Fatalf("got %q, %v; want %s", got, err, filepath.Join(real, "state"))
	}
	// Through a symlink into an open directory: refused.
	os.Chmod(real, 0o777)
	if _, err := stateRoot(false); err == nil || !strings.Contains(err.Error(), real+" above it") {
		t.Errorf("got %v; want the open directory behind the symlink refused", err)
	}
}

func TestStateRootTightensReadableDir(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	os.Mkdir(p, 0o755)
	os.Chmod(p, 0o755)
	t.Setenv("TETHER_STATE_DIR", p)
	if _, err := stateRoot(true); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %04o; want 0700", fi.Mode().Perm())
	}
}

func TestNewSessionIDsAndDirs(t *testing.T) {
	root := tempRoot(t)
	seen := map[string]bool{}
	for range 100 {
		s, err := newSession(root)
		if err != nil {
			t.Fatal(err)
		}
		if !wire.ValidID(s.ID) || seen[s.ID] {
			t.Fatalf("id %q: malformed or repeated", s.ID)
		}
		seen[s.ID] = true
		fi, err := os.Lstat(s.Dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("session dir %s: %v %v", s.Dir, err, fi.Mode())
		}
		if s.SockDir != s.Dir {
			t.Fatalf("short root got a separate socket dir %s", s.SockDir)
		}
	}
}

func TestNewSessionLongRootFallsBackToShortSocketDir(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := newSession(long)
	if err != nil {
		t.Fatal(err)
	}
	if s.SockDir == s.Dir {
		t.Fatal("long root: socket dir not moved")
	}
	if n := len(s.socketPath()); n > wire.MaxSocketPath {
		t.Fatalf("socket path %d bytes: %s", n, s.socketPath())
	}
	if err := checkPrivateDir(s.SockDir); err != nil {
		t.Fatal(err)
	}
	if !isShortSocketDir(s.SockDir, s.ID) {
		t.Fatalf("%s not recognised as the session's socket dir", s.SockDir)
	}
	if err := s.remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.Dir, s.SockDir} {
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
}

func TestRemoveLeavesForeignSocketDirAlone(t *testing.T) {
	root := tempRoot(t)
	s, err := newSession(root)
	if err != nil {
		t.Fatal(err)
	}
	victim := t.TempDir()
	s.SockDir = victim // as a tampered record could say
	if err := s.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("remove deleted a directory it does not own: %v", err)
	}
}
