package launcher

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
)

// runProbe runs the probe script the way sshd would: the login shell (sh here) gets the
// quoted command line, with HOME and env set. sums are the accepted SHA-256 sums.
func runProbe(t *testing.T, env []string, version, sum, sums string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", scriptCommand(version, sum, sums, -1, args))
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	}
	cmd.Env = env
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

// sumOf is the SHA-256 of a fake installFake writes with body.
func sumOf(body string) string {
	h := sha256.Sum256([]byte("#!/bin/sh\n" + body))
	return hex.EncodeToString(h[:])
}

var zeroSum = strings.Repeat("0", 64)

// physical is dir with symlinks resolved, as the probe reports it.
func physical(t *testing.T, dir string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestProbeScriptIsOneLineWithoutBackslashes(t *testing.T) {
	if strings.ContainsAny(probeScript, "\n\\") {
		t.Fatalf("the probe script must hold no newline or backslash (csh, fish): %q", probeScript)
	}
	// csh and tcsh expand history (!0, !x) even inside single quotes.
	for i, c := range probeScript {
		if c == '!' && (i+1 == len(probeScript) || !strings.ContainsRune(" =", rune(probeScript[i+1]))) {
			t.Errorf("the probe script has a ! csh would expand: %q", probeScript[max(0, i-20):min(len(probeScript), i+20)])
		}
	}
	// The whole script is one word for the login shell: keep it well inside what any
	// shell takes as a word (tcsh and fish have no fixed limit; 4 KiB is a margin).
	sums := zeroSum + " " + zeroSum + " " + zeroSum
	if n := len(scriptCommand("v1.2.3", "0123456789ab", sums, 1<<20, []string{"serve", "--detach", "--json"})); n > 4096 {
		t.Errorf("the exec command is %d bytes; keep it small", n)
	}
}

func TestProbeScriptMissing(t *testing.T) {
	home := physical(t, t.TempDir())
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", zeroSum, "serve", "--json")
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
	home, cache := physical(t, t.TempDir()), physical(t, t.TempDir())
	out, _ := runProbe(t, []string{"HOME=" + home, "XDG_CACHE_HOME=" + cache}, "v1", "abcdef012345", zeroSum)
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
	os.Remove(p)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

const echoFake = `if [ "$1" = version ]; then echo "tether fake"; exit 0; fi
for a in "$@"; do printf '[%s]\n' "$a"; done
`

// markerFake is what an attacker plants: it leaves a file behind whenever it runs.
func markerFake(marker string) string {
	return "echo ran >> " + shquote.Quote(marker) + "\n" + echoFake
}

func TestProbeScriptRunsInstalledBinaryWithExactArgs(t *testing.T) {
	home := t.TempDir()
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", echoFake)
	args := []string{"serve", "--json", "--", "jupyter", "lab", "--port={port}", "it's", `"quoted"`, "$HOME", "`id`", "a b", "", "x;y|z&", "*"}
	// The sum may be any of those given (cross builds).
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", zeroSum+" "+sumOf(echoFake), args...)
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
	home := physical(t, t.TempDir())
	dir := filepath.Join(home, ".cache/tether/bin")
	installFake(t, dir, "tether-v0-000000000000", echoFake)
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", sumOf(echoFake), "ls")
	if p, _ := parseProbe(t, out); p.State != "missing" || p.Existing != dir {
		t.Errorf("state %q existing %q: another version must not count, and its directory exists", p.State, p.Existing)
	}
}

func TestProbeScriptBrokenBinary(t *testing.T) {
	home := t.TempDir()
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", "exit 1\n")
	out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", sumOf("exit 1\n"), "serve")
	if p, _ := parseProbe(t, out); p.State != "broken" {
		t.Errorf("state %q, want broken", p.State)
	}
	// Something that is not tether at all.
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", "echo hello\n")
	out, _ = runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", sumOf("echo hello\n"), "serve")
	if p, _ := parseProbe(t, out); p.State != "broken" {
		t.Errorf("state %q for a binary that does not say it is tether, want broken", p.State)
	}
}

// A file at the install name that is not one of the launcher's builds never runs: not
// even `version`. The launcher replaces it.
func TestProbeScriptNeverRunsADamagedBinary(t *testing.T) {
	home := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	dir := filepath.Join(home, ".cache/tether/bin")
	bin := installFake(t, dir, "tether-v1-abcdef012345", markerFake(marker))
	good := sumOf(echoFake)
	tests := []struct {
		name  string
		setup func()
	}{
		{"another SHA-256", func() {}},
		{"a symlink to it", func() {
			real := filepath.Join(t.TempDir(), "real")
			os.Rename(bin, real)
			os.Symlink(real, bin)
		}},
		{"writable by others", func() { installFake(t, dir, "tether-v1-abcdef012345", echoFake); os.Chmod(bin, 0o777) }},
		{"writable by the group", func() { installFake(t, dir, "tether-v1-abcdef012345", echoFake); os.Chmod(bin, 0o770) }},
		{"a directory", func() { os.Remove(bin); os.Mkdir(bin, 0o700) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(bin)
			installFake(t, dir, "tether-v1-abcdef012345", markerFake(marker))
			tt.setup()
			out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", good, "serve")
			p, _ := parseProbe(t, out)
			if p.State != "damaged" || p.Existing != physical(t, dir) {
				t.Errorf("state %q existing %q; want damaged, and the space line for the reinstall", p.State, p.Existing)
			}
			if strings.Contains(out, "[serve]") {
				t.Errorf("it ran: %q", out)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the planted program ran")
			}
		})
	}
	// The file of another owner (as root: uid 65534, like remote's tests).
	if os.Geteuid() == 0 {
		os.RemoveAll(bin)
		installFake(t, dir, "tether-v1-abcdef012345", echoFake)
		os.Chown(bin, 65534, 65534)
		out, _ := runProbe(t, []string{"HOME=" + home}, "v1", "abcdef012345", good, "serve")
		if p, _ := parseProbe(t, out); p.State != "damaged" {
			t.Errorf("a file of uid 65534: state %q, want damaged", p.State)
		}
	}
}

// runUnsafeCase sets up a home (mode 0700, in a fresh 0700 directory) with
// .cache/tether/bin holding the genuine fake, then lets change tamper with it.
func runUnsafeCase(t *testing.T, change func(home string), env ...string) (*probe, string, string) {
	t.Helper()
	base := physical(t, t.TempDir())
	home := filepath.Join(base, "home")
	os.Mkdir(home, 0o700)
	marker := filepath.Join(base, "ran")
	installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", markerFake(marker))
	change(home)
	out, _ := runProbe(t, append([]string{"HOME=" + home}, env...), "v1", "abcdef012345", sumOf(markerFake(marker)), "serve")
	p, _ := parseProbe(t, out)
	if _, err := os.Stat(marker); err == nil && p.State != "ok" {
		t.Errorf("the program ran although the probe said %s", p.State)
	}
	return p, home, marker
}

func TestProbeScriptRefusesUnsafeDirectories(t *testing.T) {
	tests := []struct {
		name    string
		change  func(home string)
		env     func(home string) []string
		why     string // "" when it must run
		mine    bool
		badPath string // relative to home
		mode    string
	}{
		{name: "private", change: func(string) {}},
		{name: "bin world-writable", change: func(h string) { os.Chmod(filepath.Join(h, ".cache/tether/bin"), 0o777) },
			why: "writable", mine: true, badPath: ".cache/tether/bin", mode: "0777"},
		{name: "bin group-writable", change: func(h string) { os.Chmod(filepath.Join(h, ".cache/tether/bin"), 0o770) },
			why: "writable", mine: true, badPath: ".cache/tether/bin", mode: "0770"},
		{name: "bin sticky and world-writable", change: func(h string) { os.Chmod(filepath.Join(h, ".cache/tether/bin"), os.ModeSticky|0o777) },
			why: "writable", mine: true, badPath: ".cache/tether/bin", mode: "1777"},
		{name: "tether world-writable", change: func(h string) { os.Chmod(filepath.Join(h, ".cache/tether"), 0o777) },
			why: "writable", mine: true, badPath: ".cache/tether", mode: "0777"},
		{name: ".cache world-writable", change: func(h string) { os.Chmod(filepath.Join(h, ".cache"), 0o777) },
			why: "open", mine: true, badPath: ".cache", mode: "0777"},
		{name: ".cache group-writable", change: func(h string) { os.Chmod(filepath.Join(h, ".cache"), 0o775) },
			why: "open", mine: true, badPath: ".cache", mode: "0775"},
		{name: ".cache sticky (a shared 1777 cache)", change: func(h string) { os.Chmod(filepath.Join(h, ".cache"), os.ModeSticky|0o777) }},
		{name: "home world-writable", change: func(h string) { os.Chmod(h, 0o777) },
			why: "open", mine: true, badPath: ".", mode: "0777"},
		{name: "above home is not checked (as OpenSSH)", change: func(h string) { os.Chmod(filepath.Dir(h), 0o777) }},
		{name: "tether/bin is a symlink into an open directory", change: func(h string) {
			open := filepath.Join(filepath.Dir(h), "open")
			os.Mkdir(open, 0o700)
			os.Rename(filepath.Join(h, ".cache/tether/bin"), filepath.Join(open, "bin"))
			os.Chmod(open, 0o777)
			os.Symlink(filepath.Join(open, "bin"), filepath.Join(h, ".cache/tether/bin"))
		}, why: "writable", mine: true, badPath: "../open", mode: "0777"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, home, marker := runUnsafeCase(t, tt.change)
			if tt.why == "" {
				if p.State != "ok" {
					t.Fatalf("state %q (%+v), want ok", p.State, p.Unsafe)
				}
				if _, err := os.Stat(marker); err != nil {
					t.Errorf("ok, but the program did not run: %v", err)
				}
				return
			}
			if p.State != "unsafe" || p.Unsafe == nil {
				t.Fatalf("state %q, want unsafe", p.State)
			}
			u := p.Unsafe
			if want := filepath.Clean(filepath.Join(home, tt.badPath)); u.Why != tt.why || u.Mine != tt.mine || u.Path != want || octalMode(u.Mode) != tt.mode {
				t.Errorf("got %+v (mode %s); want %s mine=%v %s mode %s", u, octalMode(u.Mode), tt.why, tt.mine, want, tt.mode)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the program ran from an unsafe directory")
			}
		})
	}
}

// Directories of another user: as root, with uid 65534 (remote's tests do the same).
func TestProbeScriptRefusesDirectoriesOfOthers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another uid")
	}
	for _, rel := range []string{".cache/tether/bin", ".cache/tether", ".cache"} {
		t.Run(rel, func(t *testing.T) {
			p, home, _ := runUnsafeCase(t, func(h string) { os.Chown(filepath.Join(h, rel), 65534, 65534) })
			if p.State != "unsafe" || p.Unsafe.Why != "owner" || p.Unsafe.Mine || p.Unsafe.Path != filepath.Join(home, rel) {
				t.Errorf("state %q %+v; want unsafe: owner of %s", p.State, p.Unsafe, rel)
			}
		})
	}
	// A shared cache outside home: a 1777 directory of root's is fine, one of another
	// user is not (they could make it non-sticky at any time).
	shared := physical(t, t.TempDir())
	os.Chmod(shared, os.ModeSticky|0o777)
	p, _, _ := runUnsafeCase(t, func(string) {}, "XDG_CACHE_HOME="+shared)
	if p.State != "missing" {
		t.Errorf("a root-owned 1777 XDG_CACHE_HOME: state %q %+v, want missing", p.State, p.Unsafe)
	}
	os.Chown(shared, 65534, 65534)
	p, _, _ = runUnsafeCase(t, func(string) {}, "XDG_CACHE_HOME="+shared)
	if p.State != "unsafe" || p.Unsafe.Why != "owner" || p.Unsafe.Path != shared {
		t.Errorf("a 1777 XDG_CACHE_HOME of uid 65534: state %q %+v, want unsafe: owner", p.State, p.Unsafe)
	}
}

// Each SHA-256 tool the script knows, alone on PATH; and none at all.
func TestProbeScriptHashTools(t *testing.T) {
	need := []string{"id", "ls", "uname", "df", "awk"}
	tools := map[string][]string{"openssl": {"openssl"}, "sha256sum": {"sha256sum"}, "shasum": {"shasum"}, "none": nil}
	for name, extra := range tools {
		t.Run(name, func(t *testing.T) {
			bin := t.TempDir()
			for _, c := range append(append([]string{}, need...), extra...) {
				p, err := exec.LookPath(c)
				if err != nil {
					t.Skipf("%s is not installed", c)
				}
				os.Symlink(p, filepath.Join(bin, c))
			}
			home := t.TempDir()
			installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", echoFake)
			out, _ := runProbe(t, []string{"HOME=" + home, "PATH=" + bin}, "v1", "abcdef012345", sumOf(echoFake), "serve")
			p, _ := parseProbe(t, out)
			want := "ok"
			if extra == nil {
				want = "nohash"
			}
			if p.State != want {
				t.Errorf("state %q, want %s (%q)", p.State, want, out)
			}
			if want == "nohash" && strings.Contains(out, "[serve]") {
				t.Errorf("ran without a check: %q", out)
			}
		})
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
			t.Errorf("for %q, got %+v; want an error", termsafe.Clip(in, 80), p)
		}
	}
	// Unknown free space is not an error.
	p, err := readProbe(bufio.NewReader(strings.NewReader("tether-probe v1 missing SunOS i86pc /h/.cache/tether/bin\ntether-space v1 -1 no /h\n")))
	if err != nil || p.FreeKB != -1 || p.Writable || p.GOOS != "solaris" || p.GOARCH != "amd64" {
		t.Errorf("got %+v, %v", p, err)
	}
}

func TestReadProbeStates(t *testing.T) {
	p, _ := parseProbe(t, "tether-probe v1 unsafe Linux x86_64 /s/tether/bin\ntether-unsafe v1 open no drwxrwxrwx alice /s\n")
	if p.State != "unsafe" || p.Unsafe == nil || *p.Unsafe != (unsafeDir{Why: "open", Mine: false, Mode: "drwxrwxrwx", Owner: "alice", Path: "/s"}) {
		t.Errorf("unsafe: got %+v %+v", p, p.Unsafe)
	}
	// A path with spaces is the rest of the line.
	p, _ = parseProbe(t, "tether-probe v1 unsafe Linux x86_64 /my cache/tether/bin\ntether-unsafe v1 writable yes drwxrwx---+ 1001 /my cache/tether/bin\n")
	if p.Unsafe.Path != "/my cache/tether/bin" || p.Unsafe.Owner != "1001" || octalMode(p.Unsafe.Mode) != "0770" {
		t.Errorf("got %+v", p.Unsafe)
	}
	p, br := parseProbe(t, "tether-probe v1 nohash Linux x86_64 /h/.cache/tether/bin\nrest\n")
	if p.State != "nohash" {
		t.Errorf("nohash: got %+v", p)
	}
	if l, _ := readLine(br, maxLine); l != "rest" {
		t.Errorf("nohash read past its line: next is %q", l)
	}
	p, _ = parseProbe(t, "tether-probe v1 damaged Linux x86_64 /h/.cache/tether/bin\ntether-space v1 100 yes /h/.cache/tether/bin\n")
	if p.State != "damaged" || p.Existing != "/h/.cache/tether/bin" || !p.Writable {
		t.Errorf("damaged: got %+v", p)
	}
}

func TestReadProbeHostileUnsafeLines(t *testing.T) {
	head := "tether-probe v1 unsafe Linux x86_64 /d\n"
	for _, in := range []string{
		head,
		head + "tether-space v1 1 yes /d\n",
		head + "tether-unsafe v1 open no drwx /d\n",
		head + "tether-unsafe v1 pwned no drwxrwxrwx root /d\n",
		head + "tether-unsafe v1 open maybe drwxrwxrwx root /d\n",
		head + "tether-unsafe v1 open no drwxrwxrwx root rel\n",
		head + "tether-unsafe v1 open no drwxrwxrwx root /d/../etc\n",
		head + "tether-unsafe v1 open no drwxrwxrwx root /d\x1b]52;c;x\x07\n",
		head + "tether-unsafe v1 open no drwxrwxrwx root " + strings.Repeat("/a", maxLine) + "\n",
	} {
		if p, err := readProbe(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("for %q, got %+v %+v; want an error", termsafe.Clip(in, 120), p, p.Unsafe)
		}
	}
	// Control characters in the mode or owner never reach the message.
	p, err := readProbe(bufio.NewReader(strings.NewReader(head + "tether-unsafe v1 owner no d\x1b[2J mal\x1b[1mlory /d\n")))
	if err != nil {
		t.Fatal(err)
	}
	if msg := unsafeError("h", p.Unsafe).Error(); strings.ContainsRune(msg, 0x1b) {
		t.Errorf("escape in %q", msg)
	}
}

func TestOctalMode(t *testing.T) {
	for in, want := range map[string]string{
		"drwxrwxrwx": "0777", "drwxrwxrwt": "1777", "drwxrwxrwT": "1776", "drwx------": "0700",
		"drwxrws---": "2770", "drwxr-S---": "2740", "-rwsr-xr-x": "4755", "drwxr-xr-x+": "0755",
		"drwxr-xr-x.": "0755", "drwxr-xr-x@": "0755", "-": "", "drwx": "", "dr?xr-xr-x": "", "drwxrwxrws": "",
	} {
		if got := octalMode(in); got != want {
			t.Errorf("for %q, got %q; want %q", in, got, want)
		}
	}
}

func TestUnsafeErrorWording(t *testing.T) {
	tests := []struct {
		u    unsafeDir
		want []string
	}{
		{unsafeDir{Why: "writable", Mine: true, Mode: "drwxrwxrwx", Owner: "bob", Path: "/shared/cache/tether/bin"},
			[]string{"on gpu-box, /shared/cache/tether/bin is writable by other users (mode 0777, owner bob); tether will not run programs from it", "`chmod 700 /shared/cache/tether/bin`", "set XDG_CACHE_HOME on gpu-box to a private directory"}},
		{unsafeDir{Why: "open", Mine: false, Mode: "drwxrwxrwx", Owner: "root", Path: "/shared/cache"},
			[]string{"/shared/cache is writable by other users without the sticky bit (mode 0777, owner root)", "ask its owner to `chmod +t /shared/cache`", "XDG_CACHE_HOME on gpu-box"}},
		{unsafeDir{Why: "open", Mine: true, Mode: "drwxrwxr-x", Owner: "me", Path: "/home/me"},
			[]string{"`chmod go-w /home/me`"}},
		{unsafeDir{Why: "owner", Mode: "drwxrwxrwx", Owner: "mallory", Path: "/shared/cache/tether"},
			[]string{"on gpu-box, /shared/cache/tether belongs to mallory, not to you; tether will not run programs from it", "a directory of your own"}},
		{unsafeDir{Why: "unreadable", Mode: "-", Owner: "-", Path: "/x"}, []string{"cannot check who may write /x"}},
	}
	for _, tt := range tests {
		msg := unsafeError("gpu-box", &tt.u).Error()
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("for %+v, got %q; want it to contain %q", tt.u, msg, w)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("more than one line: %q", msg)
		}
	}
}

func FuzzReadProbe(f *testing.F) {
	f.Add("tether-probe v1 ok Linux x86_64 /d\n")
	f.Add("tether-probe v1 missing Darwin arm64 /Users/u/Library/Caches/tether/bin\ntether-space v1 100 yes /Users/u\n")
	f.Add("tether-probe v1 unsafe Linux x86_64 /d\ntether-unsafe v1 open no drwxrwxrwx root /d\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := readProbe(bufio.NewReader(strings.NewReader(in)))
		if err == nil && (!cleanAbs(p.Dir) || (p.State == "missing" || p.State == "damaged" || p.State == "broken") && !cleanAbs(p.Existing) ||
			p.State == "unsafe" && (p.Unsafe == nil || !cleanAbs(p.Unsafe.Path) || termsafe.OneLine(p.Unsafe.Owner) != p.Unsafe.Owner)) {
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

func TestSafeVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "v1.2.3", "": "dev", "v1/../x y": "v1_.._x_y", "v1-3-gabc-dirty": "v1-3-gabc-dirty"} {
		if got := safeVersion(in); got != want {
			t.Errorf("for %q, got %q; want %q", in, got, want)
		}
	}
}

// The whole flow through SSH: a file at the install name that is not what this
// launcher installed is never run; the launcher says so and replaces it.
func TestLaunchReplacesADamagedInstall(t *testing.T) {
	f := newFakeRemote(t)
	f.install()
	b, err := newBuild("test", f.bin)
	if err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(f.home, ".cache/tether/bin", b.remoteName())
	marker := filepath.Join(t.TempDir(), "ran")
	installFake(t, filepath.Dir(installed), b.remoteName(), markerFake(marker))
	fs := startFakeServer(t, false)
	f.write("serve.out", recordLine(t, fs.rec)+"\n")
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
	waitFor(t, "the JSON line", func() bool { return strings.HasSuffix(r.stdout.String(), "\n") })
	e := r.stderr.String()
	if !strings.Contains(e, "tether: on fakehost, "+physical(t, installed)+" is not the tether this launcher installed") || !strings.Contains(e, "installing tether on fakehost") {
		t.Errorf("stderr does not say the copy was replaced:\n%s", e)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the damaged program ran")
	}
	if got, _ := os.ReadFile(installed); string(got) != fakeTether {
		t.Errorf("the install was not replaced: %q", got)
	}
	if !strings.Contains(f.calls(), "serve --detach --json") {
		t.Errorf("the fresh copy did not run: %q", f.calls())
	}
}

// An install directory others may write is refused before anything runs or uploads.
func TestLaunchRefusesAnUnsafeInstallDirectory(t *testing.T) {
	t.Run("installed", func(t *testing.T) {
		f := newFakeRemote(t)
		f.install()
		bin := filepath.Join(f.home, ".cache/tether/bin")
		os.Chmod(bin, 0o777)
		r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
		err := r.wait(t)
		want := "on fakehost, " + physical(t, bin) + " is writable by other users (mode 0777, owner "
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "`chmod 700 ") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("got %v; want one line with %q and the fix", err, want)
		}
		if c := f.calls(); c != "" {
			t.Errorf("something ran from it: %q", c)
		}
	})
	t.Run("not yet installed", func(t *testing.T) {
		f := newFakeRemote(t)
		cache := filepath.Join(f.home, ".cache")
		os.Mkdir(cache, 0o777)
		os.Chmod(cache, 0o777)
		r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}})
		err := r.wait(t)
		if err == nil || !strings.Contains(err.Error(), physical(t, cache)+" is writable by other users without the sticky bit") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(r.stderr.String(), "installing") {
			t.Errorf("it uploaded anyway:\n%s", r.stderr.String())
		}
		if ents, _ := os.ReadDir(cache); len(ents) != 0 {
			t.Errorf("the refused directory got %v", ents)
		}
	})
}

// TestProbeScriptArgsUnderEveryLoginShell: sshd hands the exec's line to the user's
// login shell (SHELL -c LINE). Whatever it is, the installed binary gets every word as
// the user typed it: ! (tcsh history), two backslashes (fish), a newline (tcsh),
// quotes, expansions, globs, unicode, the empty word.
func TestProbeScriptArgsUnderEveryLoginShell(t *testing.T) {
	const nulFake = "if [ \"$1\" = version ]; then echo \"tether fake\"; exit 0; fi\nprintf '%s\\000' \"$@\"\n"
	args := []string{"serve", "--json", "--", "python", "-c", "print(\"hi!\")", "!!", "a!b c", `\`, `a\\b`, `\'`, "'", `"`,
		"$HOME", "`id`", "*", "?", "[!0-9]", "{a,b}", "~", "#c", "l1\nl2", "t\tab", "", "-n", "é 漢字", `\0134`, "0", "%b"}
	ran := 0
	for _, sh := range []string{"bash", "dash", "zsh", "tcsh", "fish"} {
		p, err := exec.LookPath(sh)
		if err != nil {
			t.Logf("SKIP login shell %s: not installed", sh)
			continue
		}
		ran++
		t.Run(sh, func(t *testing.T) {
			home := physical(t, t.TempDir())
			installFake(t, filepath.Join(home, ".cache/tether/bin"), "tether-v1-abcdef012345", nulFake)
			cmd := exec.Command(p, "-c", scriptCommand("v1", "abcdef012345", sumOf(nulFake), -1, args))
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "SHELL=" + p}
			var errb strings.Builder
			cmd.Stderr = &errb
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("under %s: %v\nstdout: %q\nstderr: %s", sh, err, out, errb.String())
			}
			pr, br := parseProbe(t, string(out))
			if pr.State != "ok" {
				t.Fatalf("state %q, want ok", pr.State)
			}
			rest, _ := io.ReadAll(br)
			got := strings.Split(strings.TrimSuffix(string(rest), "\x00"), "\x00")
			if !slices.Equal(got, args) {
				t.Errorf("under %s the binary got\n%q\nwant\n%q", sh, got, args)
			}
		})
	}
	if ran == 0 {
		t.Skip("no login shell to try here")
	}
}

// A command whose words, quoted for any login shell (shquote.Portable: up to five bytes
// a byte), would make a line no remote takes is refused before it is sent, with a
// tether: error naming the host; nothing that long runs.
func TestLaunchRefusesCommandTooLongForTheRemote(t *testing.T) {
	f := newFakeRemote(t)
	c := countExecs(t)
	word := strings.Repeat("é", 20<<10) // 40 KiB, 200 KiB once escaped
	r := startLaunch(t, f, LaunchOptions{ForwardOptions: ForwardOptions{JSON: true}, Command: []string{"python3", "-c", word}})
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "the command is too long to send to fakehost") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Launch: %v; want one line saying the command is too long", err)
	}
	if n := c.longest.Load(); n > maxExecLine {
		t.Errorf("a %d-byte command line was run", n)
	}
	t.Logf("%v (%d execs before)", err, c.runs.Load())
}
