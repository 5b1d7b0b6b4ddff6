package launcher

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/wire"
)

func TestLocalStateDir(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		goos string
		env  func(string) string
		want string
	}{
		{"linux", env("HOME", "/home/u"), "/home/u/.local/state/tether"},
		{"linux", env("HOME", "/home/u", "XDG_STATE_HOME", "/st"), "/st/tether"},
		{"linux", env("HOME", "/home/u", "XDG_STATE_HOME", "relative"), "/home/u/.local/state/tether"},
		{"darwin", env("HOME", "/Users/u"), "/Users/u/Library/Application Support/tether"},
		{"darwin", env("HOME", "/Users/u", "XDG_STATE_HOME", "/st"), "/st/tether"},
		{"windows", env("LocalAppData", `C:\Users\u\AppData\Local`), filepath.Join(`C:\Users\u\AppData\Local`, "tether")},
		{"linux", env(), ""},
	}
	for _, tt := range tests {
		got, err := localStateDir(tt.goos, tt.env)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("for %s, got %q, %v; want %q", tt.goos, got, err, tt.want)
		}
	}
}

// stateHome points XDG_STATE_HOME at a fresh directory.
func stateHome(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Setenv("XDG_STATE_HOME", d)
	return d
}

func TestPortBookRemembersPrivately(t *testing.T) {
	home := stateHome(t)
	b, err := openPortBook()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range maxRememberedPorts + 10 {
		if err := b.remember("gpu-box", testID(i), 20000+i, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	b.remember("other", testID(300), 9999, now.Add(time.Hour))
	b.remember("gpu-box", testID(300), 30300, now.Add(2*time.Hour)) // again: updated, not added
	if p, ok := b.lookup("gpu-box", testID(300)); !ok || p != 30300 {
		t.Errorf("lookup: %d, %v; want 30300", p, ok)
	}
	if p, ok := b.lookup("other", testID(300)); !ok || p != 9999 {
		t.Errorf("the same id on another host: %d, %v; want 9999", p, ok)
	}
	if _, ok := b.lookup("gpu-box", testID(0)); ok {
		t.Errorf("the least recently used entry is still there (cap %d)", maxRememberedPorts)
	}
	if n := len(b.entries()); n != maxRememberedPorts {
		t.Errorf("%d entries; want %d", n, maxRememberedPorts)
	}
	if m := b.forHost("other"); len(m) != 1 || m[testID(300)] != 9999 {
		t.Errorf("forHost(other): %v", m)
	}
	if runtime.GOOS != "windows" {
		dir := filepath.Join(home, "tether")
		fi, _ := os.Stat(dir)
		ff, _ := os.Stat(filepath.Join(dir, portsFile))
		if fi == nil || ff == nil || fi.Mode().Perm() != 0o700 || ff.Mode().Perm() != 0o600 {
			t.Errorf("modes: dir %v, file %v; want 0700 and 0600", fi.Mode(), ff.Mode())
		}
		des, _ := os.ReadDir(dir)
		if len(des) != 1 {
			t.Errorf("the directory holds %v; want the file alone", des)
		}
		// A directory of ours that others may read is made private again.
		os.Chmod(dir, 0o755)
		if _, err := openPortBook(); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Errorf("mode %v after open; want 0700", fi.Mode())
		}
	}
	// A damaged file is an empty book, and is replaced by the next write.
	os.WriteFile(filepath.Join(home, "tether", portsFile), []byte("{nonsense"), 0o600)
	if _, ok := b.lookup("gpu-box", testID(300)); ok {
		t.Error("a damaged file gave a port")
	}
	if err := b.remember("gpu-box", "abcdefgh", 8888, now); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.lookup("gpu-box", "abcdefgh"); p != 8888 {
		t.Errorf("after a damaged file: %d; want 8888", p)
	}
}

func freeListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := listenLocal(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// The port a session was served on comes back when it is free; when taken, one line
// says so and the free port is used, the remembered one kept; --port wins.
func TestStablePort(t *testing.T) {
	stateHome(t)
	var errb syncBuf
	s := &session{host: "gpu-box", status: newStatus(&errb)}
	rec := wire.Record{ID: "abcdefgh"}

	first := freeListener(t)
	p1 := portOf(first)
	if ln := s.stablePort(first, rec, ForwardOptions{}); ln != first {
		t.Fatal("the first time, the listener was replaced")
	}
	first.Close()

	again := freeListener(t)
	ln := s.stablePort(again, rec, ForwardOptions{})
	t.Cleanup(func() { ln.Close() })
	if portOf(ln) != p1 {
		t.Errorf("the second time: port %d; want %d, the first time's", portOf(ln), p1)
	}
	if _, err := net.Dial("tcp", again.Addr().String()); err == nil {
		t.Error("the listener given was not closed when replaced")
	}

	// Taken (by ln, still open): the free port, with one line.
	third := freeListener(t)
	if got := s.stablePort(third, rec, ForwardOptions{}); got != third {
		t.Errorf("with port %d taken, the listener was replaced", p1)
	}
	want := fmt.Sprintf("tether: local port %d, session abcdefgh's last time, is in use here; using %d this time\n", p1, portOf(third))
	if errb.String() != want {
		t.Errorf("stderr %q; want %q", errb.String(), want)
	}
	ln.Close()
	book, _ := openPortBook()
	if p, _ := book.lookup("gpu-box", "abcdefgh"); p != p1 {
		t.Errorf("after a taken port, %d is remembered; want %d still", p, p1)
	}

	// --port N wins and is remembered.
	given := freeListener(t)
	if got := s.stablePort(given, rec, ForwardOptions{Port: portOf(given)}); got != given {
		t.Error("--port was replaced")
	}
	if p, _ := book.lookup("gpu-box", "abcdefgh"); p != portOf(given) {
		t.Errorf("after --port %d, %d is remembered", portOf(given), p)
	}
	if strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("stderr: %q; want one line", errb.String())
	}
}

// testID is the i-th of distinct session ids (8 characters of [a-z2-7], wire.ValidID).
func testID(i int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := []byte("aaaaaaaa")
	for k := 7; k >= 0 && i > 0; k-- {
		b[k] = alphabet[i%32]
		i /= 32
	}
	return string(b)
}
