package launcher

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tether-dev/tether/tunnel"
)

// The remote install, in one round trip when the binary is already there.
//
// Every remote tether command goes through probeScript, run by /bin/sh over one exec:
// it prints one probe line (state, uname -s, uname -m, the install directory) and, when
// ${XDG_CACHE_HOME:-$HOME/.cache}/tether/bin/tether-<version>-<sha12> exists and runs,
// goes straight on to exec it with the command's arguments. Otherwise it prints a second
// line (free space and whether the nearest existing directory is writable) and exits;
// the launcher uploads the right build and runs the script again.
//
// The script holds no backslashes and no newlines, so the login shell that sshd hands it
// to may be sh, bash, zsh, csh/tcsh or fish: each passes a single-quoted word through
// unchanged. Its arguments are quoted with tunnel.Quote.
var probeScript = strings.Join([]string{
	`v="$1"; s="$2"; shift 2;`,
	`d="${XDG_CACHE_HOME:-$HOME/.cache}/tether/bin"; b="$d/tether-$v-$s"; st=missing;`,
	`if [ -f "$b" ]; then st=broken; if o=$("$b" version 2>/dev/null) && [ "${o#tether }" != "$o" ]; then st=ok; fi; fi;`,
	`echo "tether-probe v1 $st $(uname -s) $(uname -m) $d";`,
	`if [ "$st" = ok ]; then if [ $# -gt 0 ]; then exec "$b" "$@"; fi; exit 0; fi;`,
	`e="$d"; while [ ! -d "$e" ]; do e=$(dirname "$e"); done;`,
	`f=$(df -Pk "$e" 2>/dev/null | awk 'NR==2 {print $4}'); w=no; [ -w "$e" ] && w=yes;`,
	`echo "tether-space v1 ${f:--1} $w $e"; exit 0`,
}, " ")

const (
	probeTag      = "tether-probe v1 "
	spaceTag      = "tether-space v1 "
	maxProbeLines = 200     // lines a chatty login shell may print before the probe line
	maxLine       = 8 << 10 // one probe line
)

// probe is what probeScript reported.
type probe struct {
	State    string // ok, missing or broken
	OS, Arch string // uname -s and uname -m as printed
	GOOS     string // the Go names for them; empty when unknown
	GOARCH   string
	Dir      string // the install directory (absolute)

	// Only when State is not ok:
	FreeKB   int64 // free space where Dir is (or would be), -1 when unknown
	Writable bool
	Existing string // the nearest existing directory at or above Dir
}

// scriptCommand is the exec command line: the probe script with its arguments.
func scriptCommand(version, sum string, args []string) string {
	argv := append([]string{"/bin/sh", "-c", probeScript, "tether", version, sum}, args...)
	return tunnel.QuoteCommand(argv)
}

var errNoProbe = errors.New("no probe line")

// readProbe reads the probe line, skipping what a chatty login shell may print first,
// and the space line when the binary is not ready. A remote that does not answer in
// shape gets an error, never a panic or an unbounded read.
func readProbe(br *bufio.Reader) (*probe, error) {
	var line string
	for i := 0; ; i++ {
		if i >= maxProbeLines {
			return nil, errNoProbe
		}
		l, err := readLine(br, maxLine)
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			return nil, errNoProbe
		}
		if strings.HasPrefix(l, probeTag) {
			line = l
			break
		}
	}
	f := strings.SplitN(strings.TrimPrefix(line, probeTag), " ", 4)
	if len(f) != 4 {
		return nil, fmt.Errorf("malformed probe line")
	}
	p := &probe{State: f[0], OS: f[1], Arch: f[2], Dir: f[3], FreeKB: -1}
	switch p.State {
	case "ok", "missing", "broken":
	default:
		return nil, fmt.Errorf("malformed probe line (state %q)", clip(oneLine(p.State), 20))
	}
	if !cleanAbs(p.Dir) {
		return nil, fmt.Errorf("the remote install directory %q is not an absolute path (is HOME set there?)", clip(oneLine(p.Dir), 100))
	}
	p.GOOS, p.GOARCH = goPlatform(p.OS, p.Arch)
	if p.State == "ok" {
		return p, nil
	}
	l, err := readLine(br, maxLine)
	if err != nil || !strings.HasPrefix(l, spaceTag) {
		return nil, fmt.Errorf("malformed probe output")
	}
	g := strings.SplitN(strings.TrimPrefix(l, spaceTag), " ", 3)
	if len(g) != 3 {
		return nil, fmt.Errorf("malformed space line")
	}
	if n, err := strconv.ParseInt(g[0], 10, 64); err == nil && n >= 0 {
		p.FreeKB = n
	}
	p.Writable = g[1] == "yes"
	p.Existing = g[2]
	if !cleanAbs(p.Existing) {
		return nil, fmt.Errorf("malformed space line")
	}
	return p, nil
}

// cleanAbs reports whether p is an absolute, clean path without control characters.
func cleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && oneLine(p) == p && len(p) < 4096
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes (without its newline). A longer line is
// consumed and reported as errLineTooLong.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(b)+len(chunk) > max+1 {
			// Skip the rest of this line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return "", err
			}
			return "", errLineTooLong
		}
		b = append(b, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if len(b) > 0 && err == io.EOF {
				return strings.TrimRight(string(b), "\r"), nil
			}
			return "", err
		}
		return strings.TrimRight(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
}

// goPlatform maps uname -s and uname -m to GOOS and GOARCH ("" when unknown).
func goPlatform(sysname, machine string) (goos, goarch string) {
	switch strings.ToLower(sysname) {
	case "linux":
		goos = "linux"
	case "darwin":
		goos = "darwin"
	case "freebsd":
		goos = "freebsd"
	case "openbsd":
		goos = "openbsd"
	case "netbsd":
		goos = "netbsd"
	case "dragonfly":
		goos = "dragonfly"
	case "sunos":
		goos = "solaris"
	}
	switch machine {
	case "x86_64", "amd64":
		goarch = "amd64"
	case "aarch64", "arm64", "aarch64_be":
		goarch = "arm64"
		if machine == "aarch64_be" {
			goarch = ""
		}
	case "i386", "i486", "i586", "i686", "i86pc":
		goarch = "386"
	case "armv6l", "armv7l", "armv7", "armv6":
		goarch = "arm"
	case "ppc64le":
		goarch = "ppc64le"
	case "s390x":
		goarch = "s390x"
	case "riscv64":
		goarch = "riscv64"
	case "loongarch64":
		goarch = "loong64"
	}
	if goos == "solaris" && goarch == "386" {
		goarch = "amd64" // i86pc is reported for 64-bit Solaris too
	}
	return goos, goarch
}

// build is the local file to install on the remote and the name it gets there.
type build struct {
	Version string
	Sum     string // first 12 hex digits of SHA-256: the remote name's suffix
	Self    string // this executable (or --remote-binary) whose sum names the install
	forced  bool   // --remote-binary: upload Self whatever the remote platform
}

// remoteName is the installed file's name: several versions coexist in the directory.
func (b *build) remoteName() string { return "tether-" + b.Version + "-" + b.Sum }

// newBuild hashes this executable, or the --remote-binary file, to name the install.
func newBuild(version, remoteBinary string) (*build, error) {
	self := remoteBinary
	forced := self != ""
	if !forced {
		exe, err := os.Executable()
		if err != nil {
			return nil, errorf("reinstall tether", "cannot find this tether executable: %v", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		self = exe
	}
	sum, err := fileSHA256(self)
	if err != nil {
		if forced {
			return nil, errorf("check the --remote-binary path", "cannot read --remote-binary %s: %v", self, err)
		}
		return nil, errorf("reinstall tether", "cannot read this tether executable %s: %v", self, err)
	}
	return &build{Version: safeVersion(version), Sum: sum[:12], Self: self, forced: forced}, nil
}

// safeVersion keeps the version usable in a file name.
func safeVersion(v string) string {
	v = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '+' || r == '-' {
			return r
		}
		return '_'
	}, v)
	if v == "" {
		v = "dev"
	}
	return clip(v, 64)
}

var (
	sumMu    sync.Mutex
	sumCache = map[string]string{}
)

func fileSHA256(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s|%d|%d", p, fi.Size(), fi.ModTime().UnixNano())
	sumMu.Lock()
	s, ok := sumCache[key]
	sumMu.Unlock()
	if ok {
		return s, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	s = hex.EncodeToString(h.Sum(nil))
	sumMu.Lock()
	sumCache[key] = s
	sumMu.Unlock()
	return s, nil
}

// localFile picks what to upload for the remote platform: --remote-binary as given;
// this executable when the platforms match; else tether-<os>-<arch> beside this
// executable or in dist/ beside it (what `just cross` builds).
func (b *build) localFile(p *probe, host string) (string, error) {
	if b.forced {
		return b.Self, nil
	}
	if p.GOOS == "" || p.GOARCH == "" {
		return "", errorf("tether runs on Linux, macOS and the BSDs (amd64, arm64, 386, arm, ppc64le, s390x, riscv64); give a build with --remote-binary FILE if you have one",
			"%s runs %s on %s, for which tether has no build", host, clip(oneLine(p.OS), 40), clip(oneLine(p.Arch), 40))
	}
	if p.GOOS == runtime.GOOS && p.GOARCH == runtime.GOARCH {
		return b.Self, nil
	}
	name := "tether-" + p.GOOS + "-" + p.GOARCH
	dir := filepath.Dir(b.Self)
	tried := []string{filepath.Join(dir, name), filepath.Join(dir, "dist", name)}
	for _, c := range tried {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", errorf(fmt.Sprintf("build it with `just cross` (or GOOS=%s GOARCH=%s go build -o %s .) and put it beside tether, or pass --remote-binary FILE", p.GOOS, p.GOARCH, name),
		"%s is %s/%s but there is no %s beside this tether (looked for %s)", host, p.GOOS, p.GOARCH, name, strings.Join(tried, " and "))
}

// install uploads the build for p's platform to p.Dir, showing progress. On failure
// the directories the upload created are removed again (empty ones only).
func (l *session) install(ctx context.Context, p *probe) error {
	local, err := l.build.localFile(p, l.host)
	if err != nil {
		return err
	}
	f, err := os.Open(local)
	if err != nil {
		return errorf("check the file", "cannot read %s: %v", local, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if !p.Writable {
		return errorf(fmt.Sprintf("make it writable, or point XDG_CACHE_HOME on %s to a writable directory", l.host),
			"cannot install tether on %s: %s is not writable", l.host, p.Existing)
	}
	if p.FreeKB >= 0 && p.FreeKB*1024 < size+size/4 {
		return errorf(fmt.Sprintf("free some space there, or point XDG_CACHE_HOME on %s to a disk with room", l.host),
			"cannot install tether on %s: the disk holding %s is full (%s free, %s needed)", l.host, p.Existing, byteSize(p.FreeKB*1024), byteSize(size))
	}
	target := path.Join(p.Dir, l.build.remoteName())
	l.status.step("installing tether on %s (%s, %s)", l.host, p.GOOS+"/"+p.GOARCH, byteSize(size))
	start := time.Now()
	progress := func(n int64) {
		el := time.Since(start).Seconds()
		rate := ""
		if el > 0.05 {
			rate = ", " + byteSize(int64(float64(n)/el)) + "/s"
		}
		l.status.update("installing tether on %s: %s of %s%s", l.host, byteSize(n), byteSize(size), rate)
	}
	err = l.conn.Upload(ctx, f, size, target, progress)
	if err != nil {
		l.removeCreatedDirs(p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return uploadError(l.host, p, err)
	}
	el := time.Since(start)
	l.status.update("installing tether on %s: %s in %.1fs (%s/s)", l.host, byteSize(size), el.Seconds(), byteSize(int64(float64(size)/max(el.Seconds(), 0.001))))
	l.status.done()
	return nil
}

// uploadError explains a failed upload: full disk, no permission, or other.
func uploadError(host string, p *probe, err error) error {
	var ue *tunnel.UploadError
	text := err.Error()
	if errors.As(err, &ue) {
		text = ue.Stderr
	}
	low := strings.ToLower(text)
	switch {
	case strings.Contains(low, "no space left"), strings.Contains(low, "quota exceeded"), strings.Contains(low, "file too large"):
		return &Error{Msg: fmt.Sprintf("cannot install tether on %s: the disk holding %s is full (%s)", host, p.Dir, clip(oneLine(text), 160)),
			Hint: fmt.Sprintf("free some space there, or point XDG_CACHE_HOME on %s to a disk with room; nothing was left behind", host), Err: err}
	case strings.Contains(low, "permission denied"), strings.Contains(low, "read-only file system"):
		return &Error{Msg: fmt.Sprintf("cannot install tether on %s: %s is not writable (%s)", host, p.Dir, clip(oneLine(text), 160)),
			Hint: fmt.Sprintf("make it writable, or point XDG_CACHE_HOME on %s to a writable directory", host), Err: err}
	}
	return &Error{Msg: fmt.Sprintf("cannot install tether on %s: %s", host, clip(oneLine(strings.TrimPrefix(err.Error(), "tunnel: ")), 200)),
		Hint: "try again; if it keeps failing, check the remote disk and home directory", Err: err}
}

// removeCreatedDirs removes, deepest first, the directories between p.Existing and
// p.Dir that the failed upload may have created; rmdir leaves non-empty ones alone.
func (l *session) removeCreatedDirs(p *probe) {
	var dirs []string
	for d := p.Dir; d != p.Existing && strings.HasPrefix(d, p.Existing) && d != "/" && d != "."; d = path.Dir(d) {
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.conn.Run(ctx, tunnel.QuoteCommand(append([]string{"rmdir", "--"}, dirs...))+" 2>/dev/null", nil, io.Discard, io.Discard)
}
