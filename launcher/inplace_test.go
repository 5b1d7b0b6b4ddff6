package launcher

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// countingConn counts the remote commands a launcher runs and the uploads it makes
// over execs of their own.
type countingConn struct {
	Conn
	runs, uploads atomic.Int32
	longest       atomic.Int64 // the longest command line run
}

func (c *countingConn) Run(ctx context.Context, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c.runs.Add(1)
	if n := int64(len(command)); n > c.longest.Load() {
		c.longest.Store(n)
	}
	return c.Conn.Run(ctx, command, stdin, stdout, stderr)
}

func (c *countingConn) Upload(ctx context.Context, r io.Reader, size int64, remotePath string, progress func(int64)) error {
	c.uploads.Add(1)
	return c.Conn.Upload(ctx, r, size, remotePath, progress)
}

// countExecs wraps the connection of every session opened during the test.
func countExecs(t *testing.T) *countingConn {
	t.Helper()
	c := &countingConn{}
	testHookOpened = func(s *session, _ func(tunnel.Event)) {
		c.Conn = s.conn
		s.conn = c
	}
	t.Cleanup(func() { testHookOpened = nil })
	return c
}

// launchOnce runs one launch against f (the fake serve answers with a record) and
// returns the connection's counts and the launcher's stderr.
func launchOnce(t *testing.T, f *fakeRemote) (*countingConn, string) {
	t.Helper()
	return launchWith(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
}

// launchWith is launchOnce with options.
func launchWith(t *testing.T, f *fakeRemote, o LaunchOptions) (*countingConn, string) {
	t.Helper()
	c := countExecs(t)
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	r := startLaunch(t, f, o)
	waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	r.cancel()
	r.wait(t)
	return c, r.stderr.String()
}

// leftovers lists what is under dir but the installed file: temporary uploads.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "tether-upload") {
			got = append(got, p)
		}
		return nil
	})
	return got
}

// The first launch on a remote installs tether and starts serve in the exec that
// probed: as many remote commands as a launch with tether in place, no upload of its
// own, and the fresh copy passed the probe's checks before it ran.
func TestFirstLaunchInstallsInTheSameExec(t *testing.T) {
	f := newFakeRemote(t)
	first, stderr := launchOnce(t, f)
	if !strings.Contains(stderr, "installing tether on fakehost") {
		t.Fatalf("nothing was installed:\n%s", stderr)
	}
	b, err := newBuild("test", f.bin)
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(f.home, ".cache/tether/bin", b.remoteName())
	if got, _ := os.ReadFile(installed); string(got) != fakeTether {
		t.Fatalf("installed %q", got)
	}
	if fi, err := os.Stat(installed); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("installed file: %v, %v; want mode 0700", fi.Mode(), err)
	}
	for _, d := range []string{filepath.Dir(installed), filepath.Dir(filepath.Dir(installed))} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want mode 0700", d, fi.Mode(), err)
		}
	}
	if calls := f.calls(); !strings.HasPrefix(calls, "version\n") || !strings.Contains(calls, "serve --detach --json") {
		t.Errorf("the fresh copy was not checked (version) before serve ran: %q", calls)
	}
	if l := leftovers(t, f.home); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
	again, _ := launchOnce(t, f)
	if first.uploads.Load() != 0 || first.runs.Load() != again.runs.Load() {
		t.Errorf("first launch: %d remote commands and %d uploads; with tether in place: %d commands (want the same, and no upload)",
			first.runs.Load(), first.uploads.Load(), again.runs.Load())
	}
}

// With --setup the setup frame comes first on stdin: the script skips it, takes the
// build, and the launcher sends the frame again for serve, all on the one exec.
func TestFirstLaunchWithSetupInstallsInTheSameExec(t *testing.T) {
	f := newFakeRemote(t)
	o := LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, Setup: "echo setup-ok\n"}
	first, stderr := launchWith(t, f, o)
	if !strings.Contains(stderr, "installing tether on fakehost") || !strings.Contains(f.calls(), "serve --detach --json") {
		t.Fatalf("not installed and started:\n%s\ncalls: %q", stderr, f.calls())
	}
	got, _ := os.ReadFile(filepath.Join(f.dir, "stdin"))
	if want := string(wire.SetupFrame("echo setup-ok\n")); string(got) != want {
		t.Errorf("serve read %q from stdin, want the setup frame %q", got, want)
	}
	os.Remove(filepath.Join(f.dir, "stdin"))
	again, _ := launchWith(t, f, o)
	if got, _ := os.ReadFile(filepath.Join(f.dir, "stdin")); !strings.Contains(string(got), "echo setup-ok") {
		t.Errorf("with tether in place serve read %q", got)
	}
	if first.uploads.Load() != 0 || first.runs.Load() != again.runs.Load() {
		t.Errorf("first launch: %d remote commands and %d uploads; with tether in place: %d commands (want the same, and no upload)",
			first.runs.Load(), first.uploads.Load(), again.runs.Load())
	}
}

// Where head -c cannot be trusted to read exactly the build, the script says so and
// the launcher uploads over an exec of its own, as before.
func TestFirstLaunchWithoutHeadUploadsApart(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "head"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, damaged := range []bool{false, true} {
		f := newFakeRemote(t)
		f.srv.Env = append(f.srv.Env, "PATH="+bin+":"+os.Getenv("PATH"))
		if damaged {
			f.install()
			b, _ := newBuild("test", f.bin)
			installFake(t, filepath.Join(f.home, ".cache/tether/bin"), b.remoteName(), "exit 1\n")
		}
		c, stderr := launchOnce(t, f)
		if !strings.Contains(stderr, "installing tether on fakehost") || !strings.Contains(f.calls(), "serve --detach --json") {
			t.Fatalf("not installed and started:\n%s\ncalls: %q", stderr, f.calls())
		}
		if damaged && !strings.Contains(stderr, "is not the tether this launcher installed") {
			t.Errorf("the damaged copy was replaced without a word:\n%s", stderr)
		}
		if c.uploads.Load() != 1 {
			t.Errorf("%d uploads over an exec of their own, want 1", c.uploads.Load())
		}
	}
}

// runInPlace runs the probe script with U=1 (and args) the way sshd would, with stdin.
func runInPlace(t *testing.T, home string, sums string, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	return runInPlaceWith(t, "/bin/sh", home, sums, stdin, args...)
}

// runInPlaceWith is runInPlace with another login shell (sshd runs SHELL -c COMMAND).
func runInPlaceWith(t *testing.T, shell, home string, sums string, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(shell, "-c", scriptCommand("v1", "abcdef012345", sums, 0, args))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// The script's side of the install in place: what it takes, what it refuses, and that
// a refused or cut-short upload leaves no file and no directory behind.
func TestProbeScriptInstallsInPlace(t *testing.T) {
	body := "#!/bin/sh\n" + echoFake
	sum := sumOf(echoFake)
	put := func(mode string, size int, sum string) string {
		return "tether-put " + mode + " " + strconv.Itoa(size) + " " + sum + " 0a1b2c3d4e5f\n"
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(body))
	zw.Close()

	for _, tc := range []struct {
		name, stdin string
		ok          bool
		says        string
	}{
		{"plain", put("plain", len(body), sum) + body, true, "tether-upload v1 ok"},
		{"gzip", put("gz", gz.Len(), sum) + gz.String(), true, "tether-upload v1 ok"},
		{"damaged on the way", put("plain", len(body), sum) + strings.Replace(body, "echo", "ECHO", 1), false, "checksum mismatch"},
		{"cut short", put("plain", len(body), sum) + body[:20], false, "tether-upload v1 fail 3"},
		{"gzip cut short", put("gz", gz.Len(), sum) + gz.String()[:gz.Len()/2], false, "tether-upload v1 fail"},
		{"nothing sent", "", false, "tether-upload v1 "},
		{"not a put line", "hello\n" + body, false, "tether-upload v1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := physical(t, t.TempDir())
			out, err := runInPlace(t, home, sum, strings.NewReader(tc.stdin), "serve", "a b")
			if !strings.Contains(out, tc.says) {
				t.Errorf("output does not say %q:\n%s", tc.says, out)
			}
			installed := filepath.Join(home, ".cache/tether/bin/tether-v1-abcdef012345")
			if tc.ok {
				if err != nil || !strings.HasSuffix(out, "[serve]\n[a b]\n") || strings.Count(out, "tether-probe v1 ") != 2 {
					t.Fatalf("the installed copy did not run after a second probe (%v):\n%s", err, out)
				}
				if !strings.Contains(out, "tether-probe v1 ok ") {
					t.Errorf("the second probe did not find it ok:\n%s", out)
				}
				if strings.Contains(out, "umask") {
					t.Errorf("the umask was not restored for what runs:\n%s", out)
				}
				return
			}
			if strings.Contains(out, "[serve]") {
				t.Errorf("something ran:\n%s", out)
			}
			if _, err := os.Stat(installed); err == nil {
				t.Errorf("%s was installed", installed)
			}
			if _, err := os.Lstat(filepath.Join(home, ".cache")); !os.IsNotExist(err) {
				ents, _ := os.ReadDir(filepath.Join(home, ".cache/tether/bin"))
				t.Errorf("left %s/.cache behind (%v)", home, ents)
			}
		})
	}
	// A build the launcher made (or found) after the exec started: its SHA-256 was not
	// among the script's arguments, and the put line's is accepted once it checked out.
	t.Run("a sum not passed at the start", func(t *testing.T) {
		home := physical(t, t.TempDir())
		out, err := runInPlace(t, home, zeroSum, strings.NewReader(put("plain", len(body), sum)+body), "serve")
		if err != nil || !strings.HasSuffix(out, "[serve]\n") {
			t.Fatalf("the installed copy did not run (%v):\n%s", err, out)
		}
	})
	// The login shell passes the script through whatever it is (tcsh expands ! even
	// in single quotes).
	for _, sh := range []string{"bash", "zsh", "tcsh", "fish"} {
		t.Run("login shell "+sh, func(t *testing.T) {
			p, err := exec.LookPath(sh)
			if err != nil {
				t.Skipf("no %s here", sh)
			}
			home := physical(t, t.TempDir())
			out, err := runInPlaceWith(t, p, home, sum, strings.NewReader(put("plain", len(body), sum)+body), "serve", "a b")
			if err != nil || !strings.HasSuffix(out, "[serve]\n[a b]\n") {
				t.Fatalf("under %s the installed copy did not run (%v):\n%s", sh, err, out)
			}
		})
	}
	// What tether reads first (the setup frame) comes before the build: the script
	// skips it, and tether reads it when the launcher sends it again.
	t.Run("a setup frame first", func(t *testing.T) {
		cat := "if [ \"$1\" = version ]; then echo \"tether fake\"; exit 0; fi\necho \"[read: $(cat)]\"\n"
		frame := "tether-setup v1 6\nsetup\n"
		home := physical(t, t.TempDir())
		cmd := exec.Command("/bin/sh", "-c", scriptCommand("v1", "abcdef012345", sumOf(cat), len(frame), []string{"serve"}))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		cmd.Stdin = strings.NewReader(frame + put("plain", len("#!/bin/sh\n"+cat), sumOf(cat)) + "#!/bin/sh\n" + cat + frame)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.HasSuffix(string(out), "[read: "+strings.TrimSuffix(frame, "\n")+"]\n") {
			t.Fatalf("tether did not read the frame alone (%v):\n%s", err, out)
		}
	})
	t.Run("the directories were there", func(t *testing.T) {
		home := physical(t, t.TempDir())
		dir := filepath.Join(home, ".cache/tether/bin")
		os.MkdirAll(dir, 0o700)
		out, _ := runInPlace(t, home, sum, strings.NewReader(put("plain", len(body), sum)+body[:5]), "serve")
		if !strings.Contains(out, "tether-upload v1 fail 3") {
			t.Fatalf("output:\n%s", out)
		}
		if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
			t.Errorf("%s: %v, %v; want it there and empty", dir, ents, err)
		}
	})
}

// Another user cannot slip a directory of theirs in between the probe (which found
// none) and the write: in a shared sticky XDG_CACHE_HOME they may create tether/bin
// while the launcher is getting the build ready. The script checks the directories
// again after mkdir -p, refuses theirs, writes nothing there, and leaves them alone.
func TestProbeScriptInPlaceRefusesADirectoryOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (to make a directory owned by uid 65534)")
	}
	shared := physical(t, t.TempDir())
	if err := os.Chmod(shared, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	home := physical(t, t.TempDir())
	body := "#!/bin/sh\n" + echoFake
	sum := sumOf(echoFake)
	cmd := exec.Command("/bin/sh", "-c", scriptCommand("v1", "abcdef012345", sum, 0, []string{"serve"}))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CACHE_HOME=" + shared}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	br := bufio.NewReader(stdout)
	var out strings.Builder
	for !strings.HasPrefix(lastOf(out.String()), uploadTag) {
		l, err := br.ReadString('\n')
		out.WriteString(l)
		if err != nil {
			t.Fatalf("no tether-upload line:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "tether-probe v1 missing ") {
		t.Fatalf("the probe did not find it missing:\n%s", out.String())
	}
	// The other user's directories, open to everyone.
	bin := filepath.Join(shared, "tether", "bin")
	for _, d := range []string{filepath.Dir(bin), bin} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o777)
		if err := os.Chown(d, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	io.WriteString(stdin, "tether-put plain "+strconv.Itoa(len(body))+" "+sum+" 0a1b2c3d4e5f\n"+body)
	rest, _ := io.ReadAll(br)
	out.Write(rest)
	if !strings.Contains(out.String(), "tether-upload v1 fail 6") || !strings.Contains(out.String(), "tether-unsafe v1 owner no ") {
		t.Errorf("not refused:\n%s", out.String())
	}
	if strings.Contains(out.String(), "[serve]") {
		t.Errorf("something ran:\n%s", out.String())
	}
	if ents, err := os.ReadDir(bin); err != nil || len(ents) != 0 {
		t.Errorf("the other user's %s: %v, %v; want it there, empty", bin, ents, err)
	}
}

// lastOf is the last complete line of s.
func lastOf(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// The build the launcher sends may end before the length it announced (a cross build
// rewritten while a launch read it) or fail to read: the script, waiting for the rest,
// must get an end of its stdin, not wait for bytes that never come while the launcher
// waits for its answer. The upload fails at once, and the script's trap leaves nothing.
func TestPutInPlaceBuildEndingEarly(t *testing.T) {
	body := "#!/bin/sh\n" + echoFake
	sum := sumOf(echoFake)
	for name, src := range map[string]io.Reader{
		"shorter than announced": strings.NewReader(body[:len(body)-5]),
		"a read error":           io.MultiReader(strings.NewReader(body[:10]), iotest.ErrReader(errors.New("disk read error"))),
	} {
		t.Run(name, func(t *testing.T) {
			home := physical(t, t.TempDir())
			cmd := exec.Command("/bin/sh", "-c", scriptCommand("v1", "abcdef012345", sum, 0, []string{"serve"}))
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
			pr, pw := io.Pipe()
			cmd.Stdin = pr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pw.Close(); cmd.Process.Kill(); cmd.Wait() })
			br := bufio.NewReader(stdout)
			p, err := readProbe(br)
			if err != nil || p.State != "missing" {
				t.Fatalf("probe: %v %+v", err, p)
			}
			if l, err := readLine(br, maxLine); err != nil || !strings.HasPrefix(l, uploadTag) {
				t.Fatalf("no tether-upload line: %q %v", l, err)
			}
			var uploading atomic.Bool
			done := make(chan error, 1)
			go func() {
				done <- putInPlace(br, pw, src, int64(len(body)), "plain", sum, "target", nil, &uploading)
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a build that ended early was put in place")
				}
				t.Logf("putInPlace: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("putInPlace still waiting 10 s after the build ended early: the script waits for the rest, the launcher for its answer")
			}
			if err := cmd.Wait(); err == nil {
				t.Errorf("the script exited 0")
			}
			if _, err := os.Lstat(filepath.Join(home, ".cache")); !os.IsNotExist(err) {
				t.Errorf("left %s/.cache behind: %v", home, leftovers(t, home))
			}
		})
	}
}

// Another user who makes tether/bin in a shared sticky XDG_CACHE_HOME while a first
// launch is on its way (they see the probe in ps) gets the install refused; the
// launcher says what is wrong and the fix, as it does when the probe finds such a
// directory, not "try again".
func TestLaunchInPlaceRaceWithAnotherUserExplained(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (to make a directory owned by uid 65534)")
	}
	shared := physical(t, t.TempDir())
	if err := os.Chmod(shared, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	// The other user's move, made just before the script's mkdir -p: their
	// directories, open to everyone.
	bin := t.TempDir()
	race := "#!/bin/sh\nfor d in " + shquote.Quote(shared+"/tether") + " " + shquote.Quote(shared+"/tether/bin") +
		"; do /bin/mkdir -m 777 \"$d\" && chown 65534:65534 \"$d\"; done\nexec /bin/mkdir \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "mkdir"), []byte(race), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFakeRemote(t)
	f.srv.Env = append(f.srv.Env, "PATH="+bin+":"+os.Getenv("PATH"), "XDG_CACHE_HOME="+shared)
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
	err := r.wait(t)
	if err == nil {
		t.Fatal("the launch installed into another user's directory")
	}
	msg := err.Error()
	t.Logf("launch: %v", msg)
	if strings.Contains(f.calls(), "serve") {
		t.Errorf("something ran: %q", f.calls())
	}
	for _, want := range []string{shared + "/tether", "XDG_CACHE_HOME"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not name %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "try again") {
		t.Errorf("the error says to try again, which cannot help: %s", msg)
	}
}

// BusyBox's head -c (and the BSDs') reads through stdio: from a pipe it takes what is
// there, past the count. The install in place holds because the launcher sends nothing
// after the setup frame until the script says tether-upload, and nothing after the
// build until it says ok; this runs a --setup first launch with BusyBox's head, gzip
// and sha256sum to keep it so.
func TestFirstLaunchInPlaceWithBusyBoxHead(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox here")
	}
	bin := t.TempDir()
	for _, a := range []string{"head", "gzip", "sha256sum"} {
		if err := os.Symlink(bb, filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
	// Make sure this head does read past its count from a pipe, or the test proves nothing.
	c := exec.Command("/bin/sh", "-c", "head -c 1 >/dev/null; cat")
	c.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH")}
	c.Stdin = io.MultiReader(strings.NewReader("abc"), &slowReader{"def"})
	if out, _ := c.Output(); string(out) == "bcdef" {
		t.Skip("this busybox head reads exactly its count")
	}
	f := newFakeRemote(t)
	f.srv.Env = append(f.srv.Env, "PATH="+bin+":"+os.Getenv("PATH"))
	o := LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, Setup: "echo setup-ok\n"}
	first, stderr := launchWith(t, f, o)
	if !strings.Contains(stderr, "installing tether on fakehost") || !strings.Contains(f.calls(), "serve --detach --json") {
		t.Fatalf("not installed and started:\n%s\ncalls: %q", stderr, f.calls())
	}
	if got, _ := os.ReadFile(filepath.Join(f.dir, "stdin")); string(got) != string(wire.SetupFrame("echo setup-ok\n")) {
		t.Errorf("serve read %q from stdin, want the setup frame alone", got)
	}
	if first.uploads.Load() != 0 {
		t.Errorf("%d uploads over an exec of their own; want the install in place", first.uploads.Load())
	}
}

// slowReader gives its text after a pause: what comes later on a pipe.
type slowReader struct{ s string }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	time.Sleep(200 * time.Millisecond)
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}
