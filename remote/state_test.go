//go:build unix

package remote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateRootResolution(t *testing.T) {
	home := t.TempDir()
	xdg := t.TempDir()
	t.Setenv("HOME", home)
	tests := []struct {
		state, xdg, want string
	}{
		{state: "/srv/x/state", xdg: xdg, want: "/srv/x/state"},
		{xdg: xdg, want: filepath.Join(xdg, "tether")},
		{xdg: "", want: filepath.Join(home, ".cache", "tether", "run")},
		{xdg: "/nonexistent-xdg", want: filepath.Join(home, ".cache", "tether", "run")},
		{xdg: "relative/dir", want: filepath.Join(home, ".cache", "tether", "run")},
	}
	for _, tt := range tests {
		t.Setenv("TETHER_STATE_DIR", tt.state)
		t.Setenv("XDG_RUNTIME_DIR", tt.xdg)
		got, err := stateRootPath()
		if err != nil || got != tt.want {
			t.Errorf("for TETHER_STATE_DIR=%q XDG_RUNTIME_DIR=%q, got %q, %v; want %q", tt.state, tt.xdg, got, err, tt.want)
		}
	}
}

func TestStateRootCreatedPrivate(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("TETHER_STATE_DIR", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
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
		{"sticky world-writable", func(p string) error { os.Mkdir(p, 0o700); return os.Chmod(p, 0o1777) }, "writable by group or others", false},
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
		if !idPattern.MatchString(s.ID) || seen[s.ID] {
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
	if n := len(s.socketPath()); n > maxSocketPath {
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
