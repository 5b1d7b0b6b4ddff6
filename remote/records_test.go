//go:build unix

package remote

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/tokenserver"
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

func validRecord() Record {
	var r Record
	json.Unmarshal([]byte(`{"id":"abcd2345","name":"lab","pid":1234,"host":"gpu-box.example.org",
		"socket":"/run/user/1000/tether/abcd2345/server.sock","url":"http://127.0.0.1:8888/",
		"token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","base_url":"/","tls":false,"cert_sha256":"",
		"command":["jupyter","lab","--port={port}"],"started":"2026-01-02T03:04:05Z","version":"v1.0.0"}`), &r)
	return r
}

func TestRecordValidate(t *testing.T) {
	if err := (&Record{}).Validate(); err == nil {
		t.Fatal("empty record validated")
	}
	good := validRecord()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(r *Record)
		ok   bool
	}{
		{"socket only", func(r *Record) { r.URL = "" }, true},
		{"tls with fingerprint", func(r *Record) {
			r.TLS, r.URL, r.CertSHA256 = true, "https://[::1]:443/", strings.Repeat("ab", 32)
		}, true},
		{"localhost url", func(r *Record) { r.URL = "http://localhost:1/" }, true},
		{"state dead", func(r *Record) { r.State = StateDead }, true},
		{"id too long", func(r *Record) { r.ID = "abcd23456" }, false},
		{"id with slash", func(r *Record) { r.ID = "../../..a" }, false},
		{"id uppercase", func(r *Record) { r.ID = "ABCD2345" }, false},
		{"name with space", func(r *Record) { r.Name = "a b" }, false},
		{"name with newline", func(r *Record) { r.Name = "a\nb" }, false},
		{"name too long", func(r *Record) { r.Name = strings.Repeat("n", 65) }, false},
		{"pid zero", func(r *Record) { r.PID = 0 }, false},
		{"pid negative", func(r *Record) { r.PID = -1 }, false},
		{"host with semicolon", func(r *Record) { r.Host = "a;id" }, false},
		{"host empty", func(r *Record) { r.Host = "" }, false},
		{"relative socket", func(r *Record) { r.Socket = "tether/server.sock" }, false},
		{"socket with dotdot", func(r *Record) { r.Socket = "/run/../etc/server.sock" }, false},
		{"socket too long", func(r *Record) { r.Socket = "/" + strings.Repeat("s", 120) }, false},
		{"socket with newline", func(r *Record) { r.Socket = "/tmp/a\nb" }, false},
		{"token short", func(r *Record) { r.Token = "short" }, false},
		{"token empty", func(r *Record) { r.Token = "" }, false},
		{"token with space", func(r *Record) { r.Token = strings.Repeat("a", 20) + " x" }, false},
		{"token with quote", func(r *Record) { r.Token = strings.Repeat("a", 20) + `"` }, false},
		{"url remote host", func(r *Record) { r.URL = "http://evil.example:80/" }, false},
		{"url public ip", func(r *Record) { r.URL = "http://8.8.8.8:80/" }, false},
		{"url no port", func(r *Record) { r.URL = "http://127.0.0.1/" }, false},
		{"url javascript", func(r *Record) { r.URL = "javascript:alert(1)" }, false},
		{"url userinfo", func(r *Record) { r.URL = "http://x@127.0.0.1:1/" }, false},
		{"url https without tls", func(r *Record) { r.URL = "https://127.0.0.1:1/" }, false},
		{"url with query", func(r *Record) { r.URL = "http://127.0.0.1:1/?a=b" }, false},
		{"base url relative", func(r *Record) { r.BaseURL = "lab/" }, false},
		{"base url double slash", func(r *Record) { r.BaseURL = "//evil.example/" }, false},
		{"tls without fingerprint", func(r *Record) { r.TLS, r.URL = true, "" }, false},
		{"fingerprint without tls", func(r *Record) { r.CertSHA256 = strings.Repeat("ab", 32) }, false},
		{"started missing", func(r *Record) { r.Started = time.Time{} }, false},
		{"command NUL", func(r *Record) { r.Command = []string{"a\x00b"} }, false},
		{"version control", func(r *Record) { r.Version = "v1\x1b[2J" }, false},
		{"state unknown", func(r *Record) { r.State = "zombie" }, false},
	}
	for _, tt := range tests {
		r := validRecord()
		tt.edit(&r)
		err := r.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("for %s, got %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestDecodeRecord(t *testing.T) {
	r := validRecord()
	b, _ := json.Marshal(r)
	got, err := DecodeRecord(b)
	if err != nil || got.ID != r.ID || !tokenserver.TokensEqual(got.Token, r.Token) {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{`, `[]`, string(b) + `{}`, `{"id":"x"}`} {
		if _, err := DecodeRecord([]byte(bad)); err == nil {
			t.Errorf("for %q, got no error", bad)
		}
	}
	// The JSON keys are exactly the contract's.
	var m map[string]any
	json.Unmarshal(b, &m)
	want := []string{"id", "name", "pid", "host", "socket", "url", "token", "base_url", "tls", "cert_sha256", "command", "started", "version"}
	if len(m) != len(want) {
		t.Errorf("record has %d keys; want %d: %v", len(m), len(want), m)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("record lacks key %q", k)
		}
	}
}
