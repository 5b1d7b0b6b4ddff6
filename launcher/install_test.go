package launcher

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// runProbe runs the probe script the way sshd would: the login shell (sh here) gets the
// quoted command line, with HOME and env set.
func runProbe(t *testing.T, env []string, version, sum string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", scriptCommand(version, sum, args))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("probe script: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
	}
	return out.String(), errb.String()
}

func parseProbe(t *testing.T, out string) (*probe, *bufio.Reader) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(out))
	p, err := readProbe(br)
	if err != nil {
		t.Fatalf("readProbe(%q): %v", out, err)
	}
	return p, br
}

func TestProbeScriptIsOneLineWithoutBackslashes(t *testing.T) {
	if strings.ContainsAny(probeScript, "\n\\") {
		t.Fatalf("the probe script must hold no newline or backslash (csh, fish): %q", probeScript)
	}
	if n := len(scriptCommand("v1.2.3", "0123456789ab", []string{"serve", "--detach", "--json"})); n > 2000 {
		t.Errorf("the exec command is %d bytes; keep it small", n)
	}
}

func TestProbeScriptMissing(t *testing.T) {
	home := t.TempDir()
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", "serve", "--json")
	p, _ := parseProbe(t, out)
	if p.State != "missing" {
		t.Fatalf("state %q, want missing", p.State)
	}
	if want := filepath.Join(home, ".cache/tether/bin"); p.Dir != want {
		t.Errorf("dir %q, want %q", p.Dir, want)
	}
	if p.Existing != home {
		t.Errorf("existing %q, want %q (nothing may be created by the probe)", p.Existing, home)
	}
	if !p.Writable || p.FreeKB <= 0 {
		t.Errorf("writable %v free %d KB: want a writable home with space", p.Writable, p.FreeKB)
	}
	if p.GOOS != runtime.GOOS || p.GOARCH != runtime.GOARCH {
		t.Errorf("platform %s/%s (uname %s %s), want %s/%s", p.GOOS, p.GOARCH, p.OS, p.Arch, runtime.GOOS, runtime.GOARCH)
	}
	if _, err := os.Stat(filepath.Join(home, ".cache")); !os.IsNotExist(err) {
		t.Errorf("the probe created %s/.cache", home)
	}
}

func TestProbeScriptXDGCacheHome(t *testing.T) {
	home, cache := t.TempDir(), t.TempDir()
	out, _ := runProbe(t, []string{"HOME=" + home, "XDG_CACHE_HOME=" + cache}, "v1", "abcdef012345")
	p, _ := parseProbe(t, out)
	if want := filepath.Join(cache, "tether/bin"); p.Dir != want || p.Existing != cache {
		t.Errorf("dir %q existing %q, want %q and %q", p.Dir, p.Existing, want, cache)
	}
}

// installFake puts a fake tether at the install path: `version` answers, anything else
// prints its arguments one per line, as the real binary would receive them.
func installFake(t *testing.T, dir, name, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

const echoFake = `if [ "$1" = version ]; then echo "tether fake"; exit 0; fi
for a in "$@"; do printf '[%s]\n' "$a"; done
`

func TestProbeScriptRunsInstalledBinaryWithExactArgs(t *testing.T) {
	home := t.TempDir()
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", echoFake)
	args := []string{"serve", "--json", "--", "jupyter", "lab", "--port={port}", "it's", `"quoted"`, "$HOME", "`id`", "a b", "", "x;y|z&", "*"}
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", args...)
	p, br := parseProbe(t, out)
	if p.State != "ok" {
		t.Fatalf("state %q, want ok", p.State)
	}
	var got []string
	for {
		l, err := readLine(br, maxLine)
		if err != nil {
			break
		}
		got = append(got, strings.TrimSuffix(strings.TrimPrefix(l, "["), "]"))
	}
	if strings.Join(got, "\x00") != strings.Join(args, "\x00") {
		t.Errorf("the binary got %q, want %q", got, args)
	}
}

func TestProbeScriptOtherVersionsCoexist(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".cache/tether/bin")
	installFake(t, dir, "tether-v0-000000000000", echoFake)
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", "ls")
	if p, _ := parseProbe(t, out); p.State != "missing" || p.Existing != dir {
		t.Errorf("state %q existing %q: another version must not count, and its directory exists", p.State, p.Existing)
	}
}

func TestProbeScriptBrokenBinary(t *testing.T) {
	home := t.TempDir()
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", "exit 1\n")
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", "serve")
	if p, _ := parseProbe(t, out); p.State != "broken" {
		t.Errorf("state %q, want broken", p.State)
	}
	// Something that is not tether at all.
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", "echo hello\n")
	out, _ = runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", "serve")
	if p, _ := parseProbe(t, out); p.State != "broken" {
		t.Errorf("state %q for a binary that does not say it is tether, want broken", p.State)
	}
}

func TestReadProbeSkipsLoginShellChatter(t *testing.T) {
	out := "Welcome to the cluster!\n" + strings.Repeat("x", 100<<10) + "\nmodule loaded\ntether-probe v1 ok Linux x86_64 /home/u/.cache/tether/bin\n{\"id\":1}\n"
	p, br := parseProbe(t, out)
	if p.State != "ok" || p.Dir != "/home/u/.cache/tether/bin" || p.GOOS != "linux" || p.GOARCH != "amd64" {
		t.Errorf("got %+v", p)
	}
	if l, _ := readLine(br, maxLine); l != `{"id":1}` {
		t.Errorf("the line after the probe is %q", l)
	}
}

func TestReadProbeHostile(t *testing.T) {
	tests := []string{
		"",
		"nothing here\n",
		strings.Repeat("chatter\n", maxProbeLines+1) + "tether-probe v1 ok Linux x86_64 /d\n",
		"tether-probe v1 ok Linux\n",
		"tether-probe v1 pwned Linux x86_64 /d\n",
		"tether-probe v1 ok Linux x86_64 relative/dir\n",
		"tether-probe v1 ok Linux x86_64 /d/../etc\n",
		"tether-probe v1 ok Linux x86_64 /d\x1b[2J\n",
		"tether-probe v1 missing Linux x86_64 /d\n",
		"tether-probe v1 missing Linux x86_64 /d\ntether-space v1 12 yes\n",
		"tether-probe v1 missing Linux x86_64 /d\ntether-space v1 12 yes rel\n",
		"tether-probe v1 ok Linux x86_64 " + strings.Repeat("/a", maxLine) + "\n",
	}
	for _, in := range tests {
		if p, err := readProbe(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("for %q, got %+v; want an error", clip(in, 80), p)
		}
	}
	// Unknown free space is not an error.
	p, err := readProbe(bufio.NewReader(strings.NewReader("tether-probe v1 missing SunOS i86pc /h/.cache/tether/bin\ntether-space v1 -1 no /h\n")))
	if err != nil || p.FreeKB != -1 || p.Writable || p.GOOS != "solaris" || p.GOARCH != "amd64" {
		t.Errorf("got %+v, %v", p, err)
	}
}

func FuzzReadProbe(f *testing.F) {
	f.Add("tether-probe v1 ok Linux x86_64 /d\n")
	f.Add("tether-probe v1 missing Darwin arm64 /Users/u/Library/Caches/tether/bin\ntether-space v1 100 yes /Users/u\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := readProbe(bufio.NewReader(strings.NewReader(in)))
		if err == nil && (!cleanAbs(p.Dir) || p.State != "ok" && !cleanAbs(p.Existing)) {
			t.Errorf("accepted unclean paths: %+v", p)
		}
	})
}

func TestGoPlatform(t *testing.T) {
	tests := []struct{ s, m, os, arch string }{
		{"Linux", "x86_64", "linux", "amd64"},
		{"Linux", "aarch64", "linux", "arm64"},
		{"Darwin", "arm64", "darwin", "arm64"},
		{"Darwin", "x86_64", "darwin", "amd64"},
		{"FreeBSD", "amd64", "freebsd", "amd64"},
		{"Linux", "armv7l", "linux", "arm"},
		{"Linux", "ppc64le", "linux", "ppc64le"},
		{"Linux", "mips", "linux", ""},
		{"CYGWIN_NT-10.0", "x86_64", "", "amd64"},
	}
	for _, tt := range tests {
		if os, arch := goPlatform(tt.s, tt.m); os != tt.os || arch != tt.arch {
			t.Errorf("for %s %s, got %s/%s; want %s/%s", tt.s, tt.m, os, arch, tt.os, tt.arch)
		}
	}
}

func TestLocalFile(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "tether")
	os.WriteFile(self, []byte("self"), 0o700)
	b := &build{Version: "v1", Sum: "abcdef012345", Self: self}
	if f, err := b.localFile(&probe{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}, "h"); err != nil || f != self {
		t.Errorf("same platform: %q, %v; want this executable", f, err)
	}
	other := "riscv64"
	if runtime.GOARCH == other {
		other = "s390x"
	}
	_, err := b.localFile(&probe{GOOS: "linux", GOARCH: other}, "gpu-box")
	if err == nil || !strings.Contains(err.Error(), "tether-linux-"+other) || !strings.Contains(err.Error(), "just cross") {
		t.Errorf("missing cross build: %v; want an error naming tether-linux-%s and how to build it", err, other)
	}
	os.MkdirAll(filepath.Join(dir, "dist"), 0o755)
	cross := filepath.Join(dir, "dist", "tether-linux-"+other)
	os.WriteFile(cross, []byte("cross"), 0o700)
	if f, err := b.localFile(&probe{GOOS: "linux", GOARCH: other}, "h"); err != nil || f != cross {
		t.Errorf("cross build in dist/: %q, %v", f, err)
	}
	beside := filepath.Join(dir, "tether-linux-"+other)
	os.WriteFile(beside, []byte("cross"), 0o700)
	if f, _ := b.localFile(&probe{GOOS: "linux", GOARCH: other}, "h"); f != beside {
		t.Errorf("a build beside the executable wins: got %q", f)
	}
	if _, err := b.localFile(&probe{OS: "Plan9", Arch: "mips", GOOS: "", GOARCH: ""}, "h"); err == nil || !strings.Contains(err.Error(), "no build") {
		t.Errorf("unknown platform: %v", err)
	}
	forced := &build{Self: "/x/my-tether", forced: true}
	if f, _ := forced.localFile(&probe{GOOS: "linux", GOARCH: other}, "h"); f != "/x/my-tether" {
		t.Errorf("--remote-binary: %q", f)
	}
}

func TestSafeVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "v1.2.3", "": "dev", "v1/../x y": "v1_.._x_y", "v1-3-gabc-dirty": "v1-3-gabc-dirty"} {
		if got := safeVersion(in); got != want {
			t.Errorf("for %q, got %q; want %q", in, got, want)
		}
	}
}
