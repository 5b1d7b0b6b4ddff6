package launcher

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// otherArch is a Linux architecture that is not this machine's.
func otherArch() string {
	if runtime.GOARCH == "riscv64" {
		return "s390x"
	}
	return "riscv64"
}

// shaOf is the SHA-256 of s, hex.
func shaOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// noGo empties PATH for the test, so no Go toolchain is found.
func noGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
}

func payloadFor(t *testing.T, b *build, goos, goarch string) (*payload, error) {
	t.Helper()
	return b.payload(context.Background(), &probe{OS: goos, Arch: goarch, GOOS: goos, GOARCH: goarch}, "gpu-box", newStatus(io.Discard))
}

// The order: --remote-binary, this executable for its own platform, a cross build
// beside it (or in dist/), then what the release carries; a development build without
// any says how to make one.
func TestPayloadOrder(t *testing.T) {
	noGo(t)
	dir := t.TempDir()
	self := filepath.Join(dir, "tether")
	os.WriteFile(self, []byte("self"), 0o700)
	b := &build{Version: "dev", Sum: "abcdef012345", Self: self}
	if pl, err := payloadFor(t, b, runtime.GOOS, runtime.GOARCH); err != nil || pl.path != self || pl.Sum != shaOf("self") || pl.Size != 4 {
		t.Errorf("same platform: %+v, %v; want this executable", pl, err)
	}
	other := otherArch()
	_, err := payloadFor(t, b, "linux", other)
	if err == nil || !strings.Contains(err.Error(), "tether-linux-"+other) || !strings.Contains(err.Error(), "just cross") {
		t.Errorf("missing cross build: %v; want an error naming tether-linux-%s and how to build it", err, other)
	}
	os.MkdirAll(filepath.Join(dir, "dist"), 0o755)
	cross := filepath.Join(dir, "dist", "tether-linux-"+other)
	os.WriteFile(cross, []byte("cross"), 0o700)
	if pl, err := payloadFor(t, b, "linux", other); err != nil || pl.path != cross {
		t.Errorf("cross build in dist/: %+v, %v", pl, err)
	}
	beside := filepath.Join(dir, "tether-linux-"+other)
	os.WriteFile(beside, []byte("cross"), 0o700)
	if pl, _ := payloadFor(t, b, "linux", other); pl == nil || pl.path != beside {
		t.Errorf("a build beside the executable wins: got %+v", pl)
	}
	if _, err := b.payload(context.Background(), &probe{OS: "Plan9", Arch: "mips"}, "h", newStatus(io.Discard)); err == nil || !strings.Contains(err.Error(), "no build") {
		t.Errorf("unknown platform: %v", err)
	}
	forced := &build{Self: beside, forced: true}
	if pl, _ := payloadFor(t, forced, "linux", other); pl == nil || pl.path != beside {
		t.Errorf("--remote-binary: %+v", pl)
	}
}

// releaseFS is what internal/release writes into builds/: compressed builds and the
// SHA-256 of each decompressed one.
func releaseFS(t *testing.T, builds map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	var sums strings.Builder
	for name, body := range builds {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(body))
		zw.Close()
		fsys["builds/"+name+".gz"] = &fstest.MapFile{Data: gz.Bytes()}
		h := sha256.Sum256([]byte(body))
		sums.WriteString(hex.EncodeToString(h[:]) + "  " + name + "\n")
	}
	sums.WriteString("garbage line\n")
	fsys["builds/SHA256SUMS"] = &fstest.MapFile{Data: []byte(sums.String())}
	return fsys
}

func withEmbedded(t *testing.T, fsys fstest.MapFS) {
	t.Helper()
	old := embedded
	embedded = func() map[string]*payload { return readEmbedded(fsys) }
	t.Cleanup(func() { embedded = old })
}

// A release launcher carries the Linux builds compressed, with the SHA-256 of each
// decompressed build; they come after a cross build beside it, and their sums are
// accepted by the probe from the start.
func TestPayloadEmbedded(t *testing.T) {
	noGo(t)
	arm := strings.Repeat("arm64 build ", 1000)
	withEmbedded(t, releaseFS(t, map[string]string{"tether-linux-arm64": arm, "tether-linux-" + otherArch(): "other"}))
	if got := readEmbedded(nil); len(got) != 0 {
		t.Errorf("no release: %v", got)
	}
	dir := t.TempDir()
	self := filepath.Join(dir, "tether")
	os.WriteFile(self, []byte("self"), 0o700)
	b, err := newBuild("v1.2.3", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{shaOf(arm), shaOf("other")} {
		if !strings.Contains(b.sumList(), want) {
			t.Errorf("the probe's sums %q lack %s", b.sumList(), want)
		}
	}
	b.Self = self
	goarch := "arm64"
	if runtime.GOOS == "linux" && runtime.GOARCH == "arm64" {
		goarch = otherArch()
	}
	pl, err := payloadFor(t, b, "linux", goarch)
	if err != nil || pl.fsys == nil || pl.path != "" {
		t.Fatalf("linux/%s: %+v, %v; want the embedded build", goarch, pl, err)
	}
	r, err := pl.plain()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	gz, err := pl.compressed()
	if h := sha256.Sum256(got); err != nil || hex.EncodeToString(h[:]) != pl.Sum || int64(len(got)) != pl.Size || int64(len(gz)) != pl.GzSize || len(gz) >= len(got) {
		t.Errorf("plain content: %d bytes, sum %x; payload says %d bytes, %s (%d compressed, %d read: %v)", len(got), h, pl.Size, pl.Sum, pl.GzSize, len(gz), err)
	}
	// A cross build beside the launcher still wins.
	beside := filepath.Join(dir, "tether-linux-"+goarch)
	os.WriteFile(beside, []byte("mine"), 0o700)
	if pl, _ := payloadFor(t, b, "linux", goarch); pl == nil || pl.path != beside {
		t.Errorf("a build beside the executable wins over the embedded one: got %+v", pl)
	}
}

// Without a build and without Go, a release or go-installed tether names the one next
// step: the release archive for this laptop (for the Linux platforms it carries), or
// installing Go.
func TestPayloadNoBuildNoGo(t *testing.T) {
	noGo(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	self := filepath.Join(t.TempDir(), "tether")
	os.WriteFile(self, []byte("self"), 0o700)
	b := &build{Version: "v1.2.3", Self: self}
	goarch := "arm64"
	if runtime.GOARCH == "arm64" {
		goarch = "amd64"
	}
	_, err := payloadFor(t, b, "linux", goarch)
	archive := releaseArchive("v1.2.3", runtime.GOOS, runtime.GOARCH)
	if err == nil || !strings.Contains(err.Error(), "gpu-box is linux/"+goarch) || !strings.Contains(err.Error(), "download "+archive+" from https://") ||
		!strings.Contains(err.Error(), "Go is not installed here") || strings.Contains(err.Error(), "\n") {
		t.Errorf("linux/%s: %v; want one line naming %s", goarch, err, archive)
	}
	_, err = payloadFor(t, b, "linux", "ppc64le")
	if err == nil || !strings.Contains(err.Error(), "install Go") || !strings.Contains(err.Error(), "GOOS=linux GOARCH=ppc64le go build") || strings.Contains(err.Error(), "download") {
		t.Errorf("linux/ppc64le (no release carries it): %v", err)
	}
}

// A build the toolchain made earlier for this version is used without Go, and the
// probe accepts it from the start.
func TestPayloadCachedBuild(t *testing.T) {
	noGo(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CACHE_HOME sets the cache directory on Linux and the BSDs only")
	}
	dir, err := buildCacheDir("v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o700)
	cached := filepath.Join(dir, "tether-linux-ppc64le")
	os.WriteFile(cached, []byte("built before"), 0o700)
	os.WriteFile(cached+".tmp-0123", []byte("half"), 0o700)
	b, err := newBuild("v1.2.3", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.sumList(), shaOf("built before")) || strings.Contains(b.sumList(), shaOf("half")) {
		t.Errorf("the probe's sums %q: want the cached build's, not the unfinished one's", b.sumList())
	}
	if pl, err := payloadFor(t, b, "linux", "ppc64le"); err != nil || pl.path != cached {
		t.Errorf("linux/ppc64le: %+v, %v; want the cached build", pl, err)
	}
	// Another version has its own directory.
	b.Version = "v1.2.4"
	if _, err := payloadFor(t, b, "linux", "ppc64le"); err == nil {
		t.Errorf("v1.2.4 used v1.2.3's build")
	}
}

func TestSourceVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3": true, "v1.3.0-rc.1": true, "v0.0.0-20261206104015-6125dd8abcde": true, "v0.0.0-e2e": true,
		"dev": false, "": false, "v1.2.3-4-g6125dd8": false, "v1.2.3-4-g6125dd8-dirty": false,
		"v0.0.0-20261206104015-6125dd8abcde+dirty": false, "1.2.3": false, "v1.2": false, "v01.2.3": false,
	} {
		if got := sourceVersion(v); got != want {
			t.Errorf("for %q, got %v; want %v", v, got, want)
		}
	}
}

// The archive to download is named as internal/release writes it, per laptop platform.
func TestReleaseArchive(t *testing.T) {
	for _, tt := range []struct{ v, goos, goarch, want string }{
		{"v1.2.3", "darwin", "arm64", "tether_v1.2.3_darwin_arm64.tar.gz"},
		{"v1.2.3", "darwin", "amd64", "tether_v1.2.3_darwin_amd64.tar.gz"},
		{"v1.2.3", "windows", "amd64", "tether_v1.2.3_windows_amd64.zip"},
		{"v1.2.3", "linux", "arm64", "tether_v1.2.3_linux_arm64.tar.gz"},
		{"dev", "darwin", "arm64", "tether_VERSION_darwin_arm64.tar.gz"},
	} {
		if got := releaseArchive(tt.v, tt.goos, tt.goarch); got != tt.want {
			t.Errorf("for %s %s/%s, got %q; want %q", tt.v, tt.goos, tt.goarch, got, tt.want)
		}
	}
}

// remoteTools makes a PATH directory for the fake remote with uname reporting
// Linux on arch, and every other tool the probe and the upload use, gzip only when
// withGzip.
func remoteTools(t *testing.T, arch string, withGzip bool) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "uname"), []byte("#!/bin/sh\ncase \"$1\" in -m) echo "+arch+";; *) echo Linux;; esac\n"), 0o755)
	tools := []string{"sh", "id", "ls", "cat", "awk", "df", "mkdir", "chmod", "mv", "rm", "rmdir", "sha256sum", "openssl", "shasum", "sed", "tr", "head", "env", "dirname", "basename"}
	if withGzip {
		tools = append(tools, "gzip")
	}
	for _, tool := range tools {
		if p, err := exec.LookPath(tool); err == nil {
			os.Symlink(p, filepath.Join(dir, tool))
		}
	}
	return dir
}

// A release launcher installs the build it carries for the remote's platform, sent
// compressed; the remote checks the SHA-256 of what it decompressed before running it.
// A remote without gzip gets the same build plain.
func TestLaunchInstallsTheCarriedBuild(t *testing.T) {
	for _, withGzip := range []bool{true, false} {
		t.Run(map[bool]string{true: "compressed", false: "no gzip there"}[withGzip], func(t *testing.T) {
			// The fake tether, padded so that it compresses well.
			body := fakeTether + "#" + strings.Repeat(" padding", 4000) + "\n"
			withEmbedded(t, releaseFS(t, map[string]string{"tether-linux-" + otherArch(): body}))
			f := newFakeRemote(t)
			f.srv.Env = append(f.srv.Env, "PATH="+remoteTools(t, otherArch(), withGzip))
			fs := startFakeServer(t, false)
			f.write("serve.out", recordLine(t, fs.rec)+"\n")
			r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, Options: Options{RemoteBinary: noRemoteBinary}})
			waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
			e := r.stderr.String()
			installing := "installing tether on fakehost (linux/" + otherArch() + ", "
			if withGzip {
				installing += byteSize(int64(len(releaseFS(t, map[string]string{"x": body})["builds/x.gz"].Data))) + " compressed, " + byteSize(int64(len(body))) + " installed)"
			} else {
				installing += byteSize(int64(len(body))) + ", uncompressed: no gzip there)"
			}
			t.Logf("stderr:\n%s", e)
			if !strings.Contains(e, installing) {
				t.Errorf("stderr lacks %q:\n%s", installing, e)
			}
			b, err := newBuild("test", "")
			if err != nil {
				t.Fatal(err)
			}
			installed := filepath.Join(f.home, ".cache/tether/bin", b.remoteName())
			if got, err := os.ReadFile(installed); err != nil || string(got) != body {
				t.Errorf("installed %s: %d bytes (%v); want the carried build", installed, len(got), err)
			}
			if !strings.Contains(f.calls(), "serve --detach --json") {
				t.Errorf("the installed build did not run: %q", f.calls())
			}
		})
	}
}

// A build with the local toolchain that cannot be made says so in one line, with what
// Go said and the next step, and leaves nothing in the cache.
func TestToolchainBuildFailsInOneLine(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH")
	}
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CACHE_HOME sets the cache directory on Linux and the BSDs only")
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("GOPROXY", "off") // and no network: the source is not in the module cache
	t.Setenv("GOFLAGS", "")
	var out strings.Builder
	self := filepath.Join(t.TempDir(), "tether")
	os.WriteFile(self, []byte("self"), 0o700)
	b := &build{Version: "v0.0.0-no-such-version", Self: self}
	_, err := b.payload(context.Background(), &probe{GOOS: "linux", GOARCH: "ppc64le"}, "gpu-box", newStatus(&out))
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "building tether v0.0.0-no-such-version for linux/ppc64le with the local Go toolchain failed: fetching its source: ") ||
		!strings.Contains(err.Error(), "GOPROXY=off") || !strings.Contains(err.Error(), "go mod download "+modulePath+"@v0.0.0-no-such-version") || strings.Contains(err.Error(), "\n") {
		t.Errorf("got %v", err)
	}
	if !strings.Contains(out.String(), "tether: building tether v0.0.0-no-such-version for linux/ppc64le with the local Go toolchain (once: it is kept in "+filepath.Join(cache, "tether", "build", "v0.0.0-no-such-version")+")\n") {
		t.Errorf("the status line: %q", out.String())
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "tether", "build", "*", "tether-*")); len(left) != 0 {
		t.Errorf("left in the cache: %v", left)
	}
}

// Where the toolchain keeps its builds, per laptop platform (macOS and Windows
// answered on any machine), and the same as os.UserCacheDir on this one.
func TestUserCacheDir(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tt := range []struct {
		goos string
		env  func(string) string
		want string // "" for an error
	}{
		{"darwin", env("HOME", "/Users/ada", "XDG_CACHE_HOME", "/x"), "/Users/ada/Library/Caches"},
		{"darwin", env(), ""},
		{"windows", env("LocalAppData", `C:\Users\ada\AppData\Local`, "HOME", "/h"), `C:\Users\ada\AppData\Local`},
		{"windows", env("HOME", "/h"), ""},
		{"linux", env("HOME", "/home/ada"), "/home/ada/.cache"},
		{"linux", env("HOME", "/home/ada", "XDG_CACHE_HOME", "/scratch/ada/cache"), "/scratch/ada/cache"},
		{"freebsd", env("HOME", "/home/ada", "XDG_CACHE_HOME", "relative"), ""},
	} {
		got, err := userCacheDir(tt.goos, tt.env)
		if tt.want == "" && err == nil || tt.want != "" && got != tt.want {
			t.Errorf("for %s, got %q, %v; want %q", tt.goos, got, err, tt.want)
		}
	}
	want, werr := os.UserCacheDir()
	got, err := userCacheDir(runtime.GOOS, os.Getenv)
	if got != want || (err == nil) != (werr == nil) {
		t.Errorf("on %s: %q, %v; os.UserCacheDir says %q, %v", runtime.GOOS, got, err, want, werr)
	}
}
