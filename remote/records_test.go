//go:build unix

package remote

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestRecordIs0600UnderUmask000(t *testing.T) {
	root := tempRoot(t)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	s, _ := fakeSession(t, root, nil)
	fi, err := os.Lstat(s.recordPath())
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record mode %v; want regular 0600", fi.Mode())
	}
	if fi, _ := os.Lstat(s.Dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("session dir mode %04o under umask 000; want 0700", fi.Mode().Perm())
	}
	// The app log too.
	l, err := openCappedLog(s.logPath(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if fi, _ := os.Lstat(s.logPath()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %04o; want 0600", fi.Mode().Perm())
	}
	// No temp file left behind.
	des, _ := os.ReadDir(s.Dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".tmp") {
			t.Errorf("temp file left: %s", de.Name())
		}
	}
}

func TestRecordWritesAreAtomic(t *testing.T) {
	root := tempRoot(t)
	s, sf := fakeSession(t, root, func(sf *sessionFile) { sf.Command = []string{"v-initial"} })
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := readRecord(s.recordPath())
				if err != nil {
					errs <- err
					return
				}
				if len(got.Command) != 1 || !strings.HasPrefix(got.Command[0], "v") {
					errs <- fmt.Errorf("read a mixed record: %v", got.Command)
					return
				}
			}
		}()
	}
	for i := range 50 {
		sf.Command = []string{fmt.Sprintf("v%d%s", i, strings.Repeat("x", i*97))}
		if err := writeRecord(s, sf); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func TestRecordWriteReplacesSymlinkInsteadOfFollowing(t *testing.T) {
	root := tempRoot(t)
	s, sf := fakeSession(t, root, nil)
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("precious"), 0o644)
	os.Remove(s.recordPath())
	if err := os.Symlink(target, s.recordPath()); err != nil {
		t.Fatal(err)
	}
	if _, err := readRecord(s.recordPath()); err == nil {
		t.Fatal("readRecord followed a symlink")
	}
	if err := writeRecord(s, sf); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Fatalf("the symlink's target was written: %q", b)
	}
	if fi, _ := os.Lstat(s.recordPath()); !fi.Mode().IsRegular() {
		t.Fatalf("record is %v after the write; want a regular file", fi.Mode())
	}
}

func TestReadRecordRefusesUnsafeFiles(t *testing.T) {
	root := tempRoot(t)
	tests := []struct {
		name  string
		setup func(path string) error
		want  string
		root  bool
	}{
		{"mode 0644", func(p string) error { return os.Chmod(p, 0o644) }, "not 0600", false},
		{"mode 0640", func(p string) error { return os.Chmod(p, 0o640) }, "not 0600", false},
		{"foreign owner", func(p string) error { return os.Chown(p, 65534, 65534) }, "not owned by you", true},
		{"a directory", func(p string) error { os.Remove(p); return os.Mkdir(p, 0o700) }, "not a regular file", false},
		{"a fifo", func(p string) error { os.Remove(p); return syscall.Mkfifo(p, 0o600) }, "not a regular file", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !isRoot() {
				t.Skip("needs root to chown")
			}
			s, _ := fakeSession(t, root, nil)
			if err := tt.setup(s.recordPath()); err != nil {
				t.Fatal(err)
			}
			_, err := readRecord(s.recordPath())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want an error saying %q", err, tt.want)
			}
			// ls leaves such a session out of the running ones: it has no record.
			es, _ := scan(root)
			for _, e := range es {
				if e.s.ID == s.ID && e.rec != nil {
					t.Fatalf("scan accepted the unsafe record")
				}
			}
		})
	}
}

func TestScanSkipsHostileEntries(t *testing.T) {
	root := tempRoot(t)
	good, _ := fakeSession(t, root, nil)
	other := t.TempDir()
	os.Symlink(other, filepath.Join(root, "abcdefgh"))     // symlinked session dir
	os.Mkdir(filepath.Join(root, "zzzzzzzz"), 0o777)       // world-writable session dir
	os.Chmod(filepath.Join(root, "zzzzzzzz"), 0o777)       //
	os.Mkdir(filepath.Join(root, "not-an-id"), 0o700)      // not ours
	os.WriteFile(filepath.Join(root, "stray"), nil, 0o600) // a file
	es, err := scan(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].s.ID != good.ID {
		var ids []string
		for _, e := range es {
			ids = append(ids, e.s.ID)
		}
		t.Fatalf("scan found %v; want only %s", ids, good.ID)
	}
}
