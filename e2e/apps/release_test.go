//go:build unix

package apps

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-dev/tether/e2e"
)

// The release as users get it: the archives `just release` writes, for the launcher
// platforms these tests can run (linux/amd64 here, windows/amd64 under wine), built
// once per test process by the release program itself.
var (
	releaseOnce sync.Once
	releaseDir  string
	releaseLog  string
	releaseErr  error
)

// releaseArchive returns the path of the release archive for goos/goarch.
func releaseArchive(t *testing.T, goos, goarch string) string {
	t.Helper()
	releaseOnce.Do(func() {
		releaseDir, releaseErr = os.MkdirTemp("", "tether-e2e-release-")
		if releaseErr != nil {
			return
		}
		cmd := exec.Command("go", "run", "./internal/release", "-out", releaseDir, "-only", "linux/amd64,windows/amd64", e2e.Version)
		cmd.Dir = e2e.ModuleRoot()
		out, err := cmd.CombinedOutput()
		releaseLog = string(out)
		if err != nil {
			releaseErr = fmt.Errorf("go run ./internal/release: %v\n%s", err, out)
		}
	})
	if releaseErr != nil {
		t.Fatal(releaseErr)
	}
	name := fmt.Sprintf("tether_%s_%s_%s.tar.gz", e2e.Version, goos, goarch)
	if goos == "windows" {
		name = strings.TrimSuffix(name, ".tar.gz") + ".zip"
	}
	p := filepath.Join(releaseDir, name)
	sums, err := os.ReadFile(filepath.Join(releaseDir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	if !strings.Contains(string(sums), hex.EncodeToString(h[:])+"  "+name+"\n") {
		t.Fatalf("checksums.txt does not list %s with its SHA-256:\n%s", name, sums)
	}
	t.Logf("%s: %d bytes", name, len(data))
	return p
}

// unpack extracts the archive at p (tar.gz or zip) into an empty directory and returns
// that directory.
func unpack(t *testing.T, p string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, mode os.FileMode, r io.Reader) {
		if name != filepath.Base(name) {
			t.Fatalf("%s: entry %q is not a plain file name", p, name)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	if strings.HasSuffix(p, ".zip") {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			write(f.Name, f.Mode().Perm(), rc)
			rc.Close()
		}
		return dir
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		write(h.Name, os.FileMode(h.Mode).Perm(), tr)
	}
	return dir
}

// skipOrFail skips t with msg, or fails it under TETHER_E2E=require.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if e2e.Required() {
		t.Fatalf("TETHER_E2E=require: %s", msg)
	}
	t.Skip(msg)
}

// needArm64 makes this machine run linux/arm64 programs through qemu-user (Debian's
// qemu-user-static and binfmt-support): binfmt_misc mounted and qemu-aarch64 enabled,
// as the packages do at boot where systemd runs. Skipped, whatever TETHER_E2E says,
// only where the kernel will not mount binfmt_misc (a container without the privilege).
func needArm64(t *testing.T) {
	t.Helper()
	e2e.Need(t, "qemu-aarch64-static", "qemu-user-static")
	const fsdir = "/proc/sys/fs/binfmt_misc"
	if _, err := os.Stat(filepath.Join(fsdir, "status")); err != nil {
		if out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", fsdir).CombinedOutput(); err != nil {
			t.Skipf("no arm64 remote: this kernel will not mount binfmt_misc here (mount: %v: %s)", err, strings.TrimSpace(string(out)))
		}
	}
	entry := filepath.Join(fsdir, "qemu-aarch64")
	if b, err := os.ReadFile(entry); err != nil || !strings.HasPrefix(string(b), "enabled") {
		upd := e2e.Need(t, "update-binfmts", "binfmt-support")
		if out, err := exec.Command(upd, "--enable", "qemu-aarch64").CombinedOutput(); err != nil {
			skipOrFail(t, fmt.Sprintf("update-binfmts --enable qemu-aarch64: %v: %s", err, out))
		}
	}
	if b, err := os.ReadFile(entry); err != nil || !strings.HasPrefix(string(b), "enabled") {
		skipOrFail(t, fmt.Sprintf("binfmt_misc has no enabled qemu-aarch64 after update-binfmts (%v)", err))
	}
}

// arm64SSHD is an sshd whose sessions see an aarch64 machine: `uname -m` says so (a
// shim first on PATH), and arm64 programs run, through qemu.
func arm64SSHD(t *testing.T) *e2e.SSHD {
	t.Helper()
	needArm64(t)
	shim := t.TempDir()
	realUname, err := exec.LookPath("uname")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(shim, "uname"), []byte("#!/bin/sh\ncase \"$1\" in -m) echo aarch64;; -s) echo Linux;; *) exec "+realUname+" \"$@\";; esac\n"), 0o755)
	return e2e.StartSSHD(t, e2e.SSHDOptions{Env: map[string]string{"PATH": shim + ":/usr/local/bin:/usr/bin:/bin"}})
}

// stopAllWith stops every session on s when the test ends, with the tether at bin (the
// harness's own binary would have to install itself on an arm64 remote first).
func stopAllWith(t *testing.T, bin string, s *e2e.SSHD, env []string) {
	t.Cleanup(func() {
		cmd := exec.Command(bin, "stop", "-F", s.Config, s.Alias, "--all")
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err == nil {
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
	})
}

// offline keeps a launcher's Go toolchain, if it ever ran, off the network.
var offline = []string{"GOPROXY=off", "GOTOOLCHAIN=local", "GOSUMDB=off"}

// installedOn returns the tether the launcher installed in s's remote home (exactly one).
func installedOn(t *testing.T, s *e2e.SSHD) string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(s.Home, ".cache", "tether", "bin", "tether-*"))
	if len(found) != 1 {
		t.Fatalf("installed on the remote: %v; want one tether", found)
	}
	return found[0]
}

// assertArm64Server checks that the session's server process runs the arm64 build
// installed at installed, through qemu.
func assertArm64Server(t *testing.T, pid int, installed string) {
	t.Helper()
	f, err := elf.Open(installed)
	if err != nil {
		t.Fatalf("%s: %v", installed, err)
	}
	machine := f.Machine
	f.Close()
	if machine != elf.EM_AARCH64 {
		t.Errorf("%s is an ELF for %v; want EM_AARCH64", installed, machine)
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if !strings.Contains(filepath.Base(exe), "qemu-aarch64") || !strings.Contains(string(maps), installed) {
		t.Errorf("server pid %d: exe %q, %s mapped: %v; want qemu-aarch64 running it", pid, exe, installed, strings.Contains(string(maps), installed))
	}
}

// TestReleaseLauncherOntoArm64 is the release's promise on a real arm64 remote: the
// launcher from the linux/amd64 archive, alone in an empty directory, installs the
// arm64 build it carries (sent compressed, checked on the remote) on an sshd whose
// machine is aarch64 (qemu-user through binfmt_misc), starts the built-in app there,
// and Chromium reaches it; the server process is that arm64 build.
func TestReleaseLauncherOntoArm64(t *testing.T) {
	s := arm64SSHD(t)
	dir := unpack(t, releaseArchive(t, "linux", "amd64"))
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "README.md tether" {
		t.Fatalf("the archive holds %v; want tether and README.md only", names)
	}
	bin := filepath.Join(dir, "tether")
	env, _ := e2e.LauncherEnv(t)
	stopAllWith(t, bin, s, append(env, offline...))

	start := time.Now()
	l := e2e.StartLauncherBin(t, bin, []string{"launch", "-F", s.Config, s.Alias, "--json"}, true, offline...)
	first := time.Since(start)
	t.Logf("first launch onto the arm64 remote (install included): %s\n%s", e2e.FmtDur(first), l.Stderr.String())
	errOut := l.Stderr.String()
	e2e.MustContain(t, "stderr", errOut, "installing tether on "+s.Alias+" (linux/arm64, ", " compressed, ")
	if strings.Contains(errOut, "building tether") {
		t.Errorf("the release launcher built instead of installing what it carries:\n%s", errOut)
	}
	installed := installedOn(t, s)
	assertArm64Server(t, l.Line.Session.PID, installed)

	ctx := e2e.Browser(t)
	if err := chromedp.Do(e2e.WithTimeout(ctx, 30*time.Second), chromedp.Navigate(l.Line.URL)); err != nil {
		t.Fatal(err)
	}
	want := "tether session " + l.Line.Session.ID
	var title string
	e2e.WaitFor(15*time.Second, func() bool {
		title, _ = chromedp.Run(e2e.WithTimeout(ctx, 5*time.Second), chromedp.Title())
		return title == want
	})
	if title != want {
		t.Errorf("Chromium: title %q; want %q", title, want)
	}
	if err := l.Interrupt(t); err != nil {
		t.Fatalf("launcher after SIGINT: %v", err)
	}

	// The second time, nothing is installed: the probe finds the arm64 build, checks
	// its SHA-256 and runs it.
	start = time.Now()
	a := e2e.StartLauncherBin(t, bin, []string{"attach", "-F", s.Config, s.Alias, l.Line.Session.ID, "--json", "--no-browser"}, true, offline...)
	t.Logf("attach to it (installed already): %s", e2e.FmtDur(time.Since(start)))
	if strings.Contains(a.Stderr.String(), "installing") || a.Line.Session.ID != l.Line.Session.ID {
		t.Errorf("attach: %+v\n%s", a.Line.Session, a.Stderr.String())
	}
}

// moduleProxy serves this checkout as tether's module at version from a file-based
// GOPROXY, with the Go module cache's own downloads behind it for the dependencies,
// and returns the Go environment a launcher needs to fetch and build it offline: a
// throwaway module cache, this process's build cache (so only tether's own packages
// compile), no checksum database.
func moduleProxy(t *testing.T, version string) []string {
	t.Helper()
	goenv := func(k string) string {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		return strings.TrimSpace(string(out))
	}
	root := e2e.ModuleRoot()
	files, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		skipOrFail(t, fmt.Sprintf("git ls-files in %s (the module's files): %v", root, err))
	}
	proxy := t.TempDir()
	at := filepath.Join(proxy, "github.com", "tether-dev", "tether", "@v")
	os.MkdirAll(at, 0o755)
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for _, name := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			continue // deleted in the work tree
		}
		w, err := zw.Create("github.com/tether-dev/tether@" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	zw.Close()
	gomod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	os.WriteFile(filepath.Join(at, version+".zip"), zb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644)
	os.WriteFile(filepath.Join(at, version+".info"), []byte(`{"Version":"`+version+`","Time":"2026-01-01T00:00:00Z"}`), 0o644)
	os.WriteFile(filepath.Join(at, "list"), []byte(version+"\n"), 0o644)
	modcache := t.TempDir()
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", modcache).Run() })
	return []string{
		"GOPROXY=file://" + proxy + ",file://" + filepath.Join(goenv("GOMODCACHE"), "cache", "download"),
		"GOMODCACHE=" + modcache, "GOCACHE=" + goenv("GOCACHE"), "GOFLAGS=-modcacherw",
		"GOSUMDB=off", "GOTOOLCHAIN=local", "PATH=" + filepath.Join(goenv("GOROOT"), "bin") + ":" + os.Getenv("PATH"),
	}
}

// TestLaunchBuildsWithLocalToolchain: a tether without the remote's build (as `go
// install` makes it: no Linux builds inside) builds one with the local Go toolchain from
// its own version's module source, says so, keeps it in the user's cache directory and
// installs it; the arm64 server runs it. A second install of the same version (the
// remote's copy removed) uses the kept build without building again.
func TestLaunchBuildsWithLocalToolchain(t *testing.T) {
	e2e.Need(t, "go", "golang")
	s := arm64SSHD(t)
	goEnv := moduleProxy(t, e2e.Version)
	cache := t.TempDir()
	env := append(goEnv, "XDG_CACHE_HOME="+cache)
	launcherSide, _ := e2e.LauncherEnv(t)
	stopAllWith(t, e2e.Binary(t), s, append(launcherSide, env...))

	start := time.Now()
	l := e2e.StartLauncherBin(t, e2e.Binary(t), []string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	t.Logf("first launch onto the arm64 remote, building with the local toolchain: %s\n%s", e2e.FmtDur(time.Since(start)), l.Stderr.String())
	kept := filepath.Join(cache, "tether", "build", e2e.Version, "tether-linux-arm64")
	e2e.MustContain(t, "stderr", l.Stderr.String(),
		"building tether "+e2e.Version+" for linux/arm64 with the local Go toolchain (once: it is kept in "+filepath.Dir(kept)+")",
		"installing tether on "+s.Alias+" (linux/arm64, ")
	installed := installedOn(t, s)
	if a, b := e2e.FileSum(t, kept), e2e.FileSum(t, installed); a != b {
		t.Errorf("installed %s (%s) is not the kept build %s (%s)", installed, b, kept, a)
	}
	assertArm64Server(t, l.Line.Session.PID, installed)
	if status, body, _ := e2e.Fetch(t, strings.TrimSuffix(l.Line.URL, "?token="+l.Line.Session.Token), "Authorization", "token "+l.Line.Session.Token); status != 200 || !strings.Contains(body, "tether session") {
		t.Errorf("the app through the tunnel: %d %.200q", status, body)
	}
	if err := l.Interrupt(t); err != nil {
		t.Fatalf("launcher after SIGINT: %v", err)
	}
	stop := exec.Command(e2e.Binary(t), "stop", "-F", s.Config, s.Alias, "--all")
	stop.Env = append(launcherSide, env...)
	if out, err := stop.CombinedOutput(); err != nil {
		t.Fatalf("tether stop %s --all: %v %s", s.Alias, err, out)
	}
	os.Remove(installed)

	l2 := e2e.StartLauncherBin(t, e2e.Binary(t), []string{"launch", "-F", s.Config, s.Alias, "--json", "--no-browser"}, true, env...)
	if e := l2.Stderr.String(); strings.Contains(e, "building") || !strings.Contains(e, "installing tether on "+s.Alias+" (linux/arm64, ") {
		t.Errorf("the second install of %s: want the kept build installed without building:\n%s", e2e.Version, e)
	}
	if err := l2.Interrupt(t); err != nil {
		t.Fatalf("launcher after SIGINT: %v", err)
	}
}
