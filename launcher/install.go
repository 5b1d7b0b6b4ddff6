package launcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
)

// The remote install, in one round trip when the binary is already there.
//
// Every remote tether command goes through probeScript, run by /bin/sh over one exec.
// It looks at the install directory ${XDG_CACHE_HOME:-$HOME/.cache}/tether/bin, and
// prints one probe line: state, uname -s, uname -m and the install directory, as a
// physical path (symlinks resolved, so what was checked is what runs). Then:
//
//   - ok: the directories are safe, tether-<version>-<sha12> there is a regular file of
//     ours that no one else may write, its full SHA-256 is one of those the launcher
//     passed (its own, or a cross build's), and it answers `version`: the script execs
//     it with the command's arguments.
//   - unsafe: a directory on the way is not safe to run programs from; a second line
//     says which and why (tether-unsafe), and nothing is installed or run.
//   - nohash: no tool on the remote computes a SHA-256 (openssl, sha256sum, shasum,
//     sha256); nothing is run. Refused rather than run unchecked: every system tether
//     builds for has one (coreutils' or busybox's sha256sum, macOS's shasum and
//     openssl, the BSDs' sha256), and the upload needs sha256sum or shasum anyway.
//   - missing, damaged (there but not ours, writable by others, or another SHA-256),
//     broken (the right file, but it does not run): a second line (tether-space) gives
//     the free space and whether the nearest existing directory is writable; the
//     launcher sends the right build (renamed over a damaged one, which never runs) and
//     the script, checked again from the top, runs it (see "In place" below). A damaged
//     file in directories that passed the checks
//     got there through the user, root, the disk, or a directory that was open before:
//     refusing would protect from none of them and leave the user to clean up by hand.
//
// Safe directories, after OpenSSH's safe_path (misc.c), walking the physical path up:
// the install directory and the one holding it (tether/bin and tether) must be owned by
// the user and writable by no one else; every directory above must be owned by the user
// or root and writable by no one else unless it has the sticky bit (a shared 1777
// XDG_CACHE_HOME: others may add names there but not rename or remove ours). The walk
// stops at the home directory, as safe_path does: whoever can rename entries above a
// user's home can replace the home itself, and with it ~/.ssh and ~/.profile, so no
// check of ours would help. A path outside the home is checked up to /.
//
// The hash and the exec name the file twice, so in between someone could swap it: the
// directory checks are what close that window. Only the user (or root) may rename or
// create entries on the way to the file, and only they may write the file, so what was
// hashed is what runs. The hash catches what the checks cannot see: a file damaged on
// disk or planted while a directory was still open.
//
// In place: the first launch on a remote is one exec, not three (probe, upload, probe
// again). The launcher passes U, the length of what it sends first on stdin for tether
// (the setup frame; 0 for none), or - for no install in place. After tether-space the
// script then skips those U bytes, prints tether-upload v1 gz|plain|no (no: there is
// no working head -c, so the launcher uploads over an exec of its own as before) and
// reads one line from stdin:
// "tether-put gz|plain SIZE SHA256 NONCE", then exactly SIZE bytes (head -c; the
// launcher sends nothing more until the script has answered, so no head can read past
// them: it sends the setup frame again after ok). As tunnel.Upload does, it makes the directories 0700, checks that they are the
// user's and writable by no one else (else a tether-unsafe line, as the probe's, and
// fail 6: another user made one while the launcher got the build ready), writes a temporary file beside the target (gzip
// -dc for gz), checks its SHA-256 (hs), makes it 0700 and renames it over the target;
// on any failure or signal a trap removes the temporary file and the (empty, the
// user's) directories it made. Its commands' complaints go to stdout, then tether-upload v1 ok, or fail STATUS
// and exit. After ok the whole check runs again (a second probe line), with the sent
// SHA-256 among those accepted (a build the launcher made after the exec started), so
// what runs passed the same checks as on any later launch. Anything else on stdin (EOF: the
// launcher gave up, found no build, or the disk is full) ends the script with nothing
// created.
//
// The script holds no backslashes, no newlines and no ! but before a blank or = (csh
// and tcsh expand history even inside single quotes: [!0-9] is "0: Event not
// found"), so the login shell that sshd hands it to may be sh, bash, zsh, csh/tcsh or
// fish: each passes a single-quoted word through unchanged. Its arguments (tether's,
// with the app's command line and names the user typed) are not all so tame: they are
// written with shquote.Portable, and the script first turns them back
// (shquote.DecodeArgs), so a ! or a newline reaches the app as typed under tcsh, and
// two backslashes under fish.
var probeScript = strings.Join([]string{
	`v="$1"; s="$2"; S="$3"; U="$4"; shift 4; set -f; ` + shquote.DecodeArgs + ` u=$(id -u);`,
	// ck DIR: is DIR safe? x=1 for tether's own directories. Sets why and o (owner).
	`ck() { set -- $(ls -ldn "$1" 2>/dev/null); m="$1"; o="$3";`,
	`case "$m" in d*) ;; "") why=unreadable; return 1;; *) why=notdir; return 1;; esac;`,
	`if [ "$o" != "$u" ]; then if [ "$x" = 1 ] || [ "$o" != 0 ]; then why=owner; return 1; fi; fi;`,
	`case "$m" in ?????????[tT]*) [ "$x" = 1 ] || return 0;; esac;`,
	`case "$m" in ?????w*|????????w*) why=open; [ "$x" = 1 ] && why=writable; return 1;; esac; };`,
	// W: the tether-unsafe line for the directory c that ck refused.
	`W() { y=no; [ "$o" = "$u" ] && y=yes; set -- $(ls -ld "$c" 2>/dev/null); echo "tether-unsafe v1 $why $y ${1:--} ${3:--} $c"; };`,
	// fk FILE: a regular file of ours that no one else may write.
	`fk() { set -- $(ls -ln "$1" 2>/dev/null); case "$1" in -*) ;; *) return 1;; esac;`,
	`[ "$3" = "$u" ] || return 1; case "$1" in ?????w*|????????w*) return 1;; esac; };`,
	// hs FILE: its SHA-256 in h, by the first tool that works (openssl first: it uses
	// the CPU's SHA instructions, where coreutils' sha256sum may not).
	`hs() { h=$(openssl dgst -sha256 < "$1" 2>/dev/null) && h="${h##* }" && [ ${#h} = 64 ] && return 0;`,
	`h=$(sha256sum < "$1" 2>/dev/null) && h="${h%% *}" && [ ${#h} = 64 ] && return 0;`,
	`h=$(shasum -a 256 < "$1" 2>/dev/null) && h="${h%% *}" && [ ${#h} = 64 ] && return 0;`,
	`h=$(sha256 -q < "$1" 2>/dev/null) && [ ${#h} = 64 ]; };`,
	`while :; do d="${XDG_CACHE_HOME:-$HOME/.cache}/tether/bin"; D="$d"; P=; b=; st=missing; why=; c=;`,
	// e: the nearest existing directory at or above d; k: how many of bin and tether exist.
	`case "$d" in /*) e="$d"; k=2; while [ ! -d "$e" ]; do e="${e%/*}"; k=$((k-1)); [ -n "$e" ] || e=/; done;`,
	`P=$(cd -P "$e" 2>/dev/null && pwd -P); H=$(cd -P "$HOME" 2>/dev/null && pwd -P);`,
	`if [ -z "$P" ]; then st=unsafe; why=unreadable; c="$e"; else D="$P${d#"$e"}"; case "$D" in //*) D="${D#/}";; esac;`,
	`c="$P"; i=0; while :; do i=$((i+1)); x=0; [ $i -le $k ] && x=1; ck "$c" || { st=unsafe; break; };`,
	`[ "$c" = / ] || [ "$c" = "$H" ] && break; c="${c%/*}"; [ -n "$c" ] || c=/; done; fi;`,
	`if [ $st = missing ] && [ $k = 2 ]; then b="$D/tether-$v-$s"; if [ -e "$b" ] || [ -h "$b" ]; then st=damaged;`,
	`if [ ! -h "$b" ] && fk "$b"; then if ! hs "$b"; then st=nohash; elif case " $S " in *" $h "*) true;; *) false;; esac; then st=broken;`,
	`if o=$("$b" version 2>/dev/null) && [ "${o#tether }" != "$o" ]; then st=ok; fi; fi; fi; fi; fi;; esac;`,
	`echo "tether-probe v1 $st $(uname -s) $(uname -m) $D";`,
	`if [ $st = ok ]; then if [ $# -gt 0 ]; then exec "$b" "$@"; fi; exit 0; fi;`,
	`if [ $st = unsafe ]; then W; exit 0; fi;`,
	`[ $st = nohash ] && exit 0;`,
	`f=$(df -Pk "$P" 2>/dev/null | awk 'NR==2 {print $4}'); w=no; [ -w "$P" ] && w=yes;`,
	`echo "tether-space v1 ${f:--1} $w $P"; [ "$U" = - ] && exit 0; K=$U; U=-;`,
	// The install in place (U=1): say whether the build can come on stdin (head -c
	// reads exactly its length; gz when gzip is there), then take it.
	`z=plain; command -v gzip >/dev/null 2>&1 && z=gz; [ "$(printf ab | head -c 1 2>/dev/null)" = a ] || z=no;`,
	`[ $z = no ] || [ "$K" = 0 ] || head -c $K > /dev/null; echo "tether-upload v1 $z"; [ $z = no ] && exit 0; read -r a g n X T || exit 0;`,
	`case "$a $g" in "tether-put gz"|"tether-put plain") ;; *) exit 0;; esac; [ -z "$(printf %s "$n$X$T" | tr -d 0-9a-f)" ] || exit 0;`,
	`exec 3>&2 2>&1; M=$(umask); umask 077; b="$D/tether-$v-$s"; t="$D/.tether-$v-$s.tether-upload-$T";`,
	`F() { echo "tether-upload v1 fail $1"; exit $1; };`,
	`trap 'rm -f -- "$t"; c="$D"; while [ "$c" != "$P" ] && [ -n "$c" ] && [ -O "$c" ]; do rmdir -- "$c" 2>/dev/null || break; c="${c%/*}"; done' EXIT HUP INT TERM PIPE;`,
	`[ -d "$b" ] && { echo "$b is a directory"; F 5; }; mkdir -p -- "$D" || F 1;`,
	`x=1; for c in "$D" "${D%/*}"; do ck "$c" || { W; F 6; }; done;`,
	`if [ $g = gz ]; then head -c $n | gzip -dc > "$t"; else head -c $n > "$t"; fi || F 1;`,
	`hs "$t" || { echo "no SHA-256 tool works"; F 4; }; [ "$h" = "$X" ] || { echo "checksum mismatch: the file arrived damaged or incomplete"; F 3; };`,
	`chmod 700 "$t" && mv -f -- "$t" "$b" || F 1; trap - EXIT HUP INT TERM PIPE; exec 2>&3 3>&-; umask $M; S="$S $X"; echo "tether-upload v1 ok"; done`,
}, " ")

const (
	probeTag      = "tether-probe v1 "
	spaceTag      = "tether-space v1 "
	unsafeTag     = "tether-unsafe v1 "
	uploadTag     = "tether-upload v1 "
	maxProbeLines = 200     // lines a chatty login shell may print before the probe line
	maxLine       = 8 << 10 // one probe line
)

// probe is what probeScript reported.
type probe struct {
	State    string // ok, missing, damaged, broken, unsafe or nohash
	OS, Arch string // uname -s and uname -m as printed
	GOOS     string // the Go names for them; empty when unknown
	GOARCH   string
	Dir      string // the install directory (absolute, physical)

	// Only when State is missing, damaged or broken:
	FreeKB   int64 // free space where Dir is (or would be), -1 when unknown
	Writable bool
	Existing string // the nearest existing directory at or above Dir

	// Only when State is unsafe:
	Unsafe *unsafeDir
}

// unsafeDir is the directory that made the probe refuse, from the tether-unsafe line.
type unsafeDir struct {
	Why   string // writable (tether's own directory), open (one above it, not sticky), owner, notdir, unreadable
	Mine  bool   // owned by the remote user
	Mode  string // as ls -ld prints it (drwxrwxrwx), "-" when unknown
	Owner string // the owner's name (or uid) as ls -ld prints it
	Path  string
}

// scriptCommand is the exec command line: the probe script with its arguments.
// inPlace >= 0 says the launcher will send the build on stdin if the probe finds none,
// after inPlace bytes for tether (the setup frame); -1: it will not.
func scriptCommand(version, sum, fullSum string, inPlace int, args []string) string {
	u := "-"
	if inPlace >= 0 {
		u = strconv.Itoa(inPlace)
	}
	line := shquote.Join([]string{"/bin/sh", "-c", probeScript, "tether", version, sum, fullSum, u})
	for _, a := range args {
		line += " " + shquote.Portable(a)
	}
	return line
}

var errNoProbe = errors.New("no probe line")

// readProbe reads the probe line, skipping what a chatty login shell may print first,
// and the line after it when the binary is not ready (tether-space, or tether-unsafe). A
// remote that does not answer in shape gets an error, never a panic or an unbounded read.
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
	case "ok", "missing", "damaged", "broken", "unsafe", "nohash":
	default:
		return nil, fmt.Errorf("malformed probe line (state %q)", termsafe.Clip(termsafe.OneLine(p.State), 20))
	}
	if !cleanAbs(p.Dir) {
		return nil, fmt.Errorf("the remote install directory %q is not an absolute path (is HOME set there?)", termsafe.Clip(termsafe.OneLine(p.Dir), 100))
	}
	p.GOOS, p.GOARCH = goPlatform(p.OS, p.Arch)
	switch p.State {
	case "ok", "nohash":
		return p, nil
	case "unsafe":
		u, err := readUnsafe(br)
		if err != nil {
			return nil, err
		}
		p.Unsafe = u
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

// readUnsafe reads the tether-unsafe line: why, mine (yes/no), mode, owner, path.
func readUnsafe(br *bufio.Reader) (*unsafeDir, error) {
	l, err := readLine(br, maxLine)
	if err != nil || !strings.HasPrefix(l, unsafeTag) {
		return nil, fmt.Errorf("malformed probe output (no unsafe line)")
	}
	g := strings.SplitN(strings.TrimPrefix(l, unsafeTag), " ", 5)
	if len(g) != 5 {
		return nil, fmt.Errorf("malformed unsafe line")
	}
	u := &unsafeDir{Why: g[0], Mine: g[1] == "yes", Mode: g[2], Owner: g[3], Path: g[4]}
	switch u.Why {
	case "writable", "open", "owner", "notdir", "unreadable":
	default:
		return nil, fmt.Errorf("malformed unsafe line (reason %q)", termsafe.Clip(termsafe.OneLine(u.Why), 20))
	}
	if g[1] != "yes" && g[1] != "no" || !cleanAbs(u.Path) {
		return nil, fmt.Errorf("malformed unsafe line")
	}
	u.Mode = termsafe.Clip(termsafe.OneLine(u.Mode), 12)
	u.Owner = termsafe.Clip(termsafe.OneLine(u.Owner), 32)
	return u, nil
}

// octalMode turns ls's mode string (drwxrwsrwt, maybe with a trailing + . or @) into
// octal as chmod takes it (2775, 1777, 0700), or "" when it is not one.
func octalMode(s string) string {
	if len(s) < 10 {
		return ""
	}
	special := [9]int{2: 0o4000, 5: 0o2000, 8: 0o1000}
	var m int
	for i, c := range s[1:10] {
		bit := 1 << (8 - i)
		switch {
		case c == '-':
		case c == rune("rwx"[i%3]):
			m |= bit
		case i%3 == 2 && special[i] != 0 && (c == 's' && i != 8 || c == 't' && i == 8):
			m |= bit | special[i]
		case i%3 == 2 && special[i] != 0 && (c == 'S' && i != 8 || c == 'T' && i == 8):
			m |= special[i]
		default:
			return ""
		}
	}
	return fmt.Sprintf("%04o", m)
}

// unsafeError words a refused directory for the user: what is wrong, why tether will
// not run from it, and how to fix it, in one line.
func unsafeError(host string, u *unsafeDir) error {
	mode := octalMode(u.Mode)
	about := fmt.Sprintf("owner %s", u.Owner)
	if mode != "" {
		about = fmt.Sprintf("mode %s, owner %s", mode, u.Owner)
	}
	elsewhere := fmt.Sprintf("set XDG_CACHE_HOME on %s to a private directory", host)
	refuse := "tether will not run programs from it"
	switch u.Why {
	case "writable":
		return errorf(fmt.Sprintf("`chmod 700 %s`, or %s", shquote.Quote(u.Path), elsewhere),
			"on %s, %s is writable by other users (%s); %s", host, u.Path, about, refuse)
	case "open":
		fix := fmt.Sprintf("`chmod go-w %s`, or %s", shquote.Quote(u.Path), elsewhere)
		if !u.Mine {
			fix = fmt.Sprintf("ask its owner to `chmod +t %s` (or go-w), or %s", shquote.Quote(u.Path), elsewhere)
		}
		return errorf(fix, "on %s, %s is writable by other users without the sticky bit (%s), so they could swap what tether installs below it; %s", host, u.Path, about, refuse)
	case "owner":
		return errorf(fmt.Sprintf("%s (a directory of your own)", elsewhere),
			"on %s, %s belongs to %s, not to you; %s", host, u.Path, u.Owner, refuse)
	case "notdir":
		return errorf(fmt.Sprintf("remove it, or %s", elsewhere), "on %s, %s is not a directory (%s)", host, u.Path, about)
	}
	return errorf(fmt.Sprintf("check its permissions, or %s", elsewhere),
		"on %s, tether cannot check who may write %s; %s", host, u.Path, refuse)
}

// cleanAbs reports whether p is an absolute, clean path without control characters.
func cleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && termsafe.OneLine(p) == p && len(p) < 4096
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

// build is what this launcher installs on remotes, and the name it gets there.
type build struct {
	Version string
	Sum     string // first 12 hex digits of Self's SHA-256: the remote name's suffix
	// Sums are the full SHA-256 of every file this launcher may install under that
	// name: Self, the cross builds beside it, the builds inside it and those the local
	// toolchain made for this version (another platform gets one of those). The probe
	// runs the installed file only when its SHA-256 is one of them.
	Sums   []string
	Self   string // this executable (or --remote-binary) whose sum names the install
	forced bool   // --remote-binary: upload Self whatever the remote platform
	mu     sync.Mutex
}

// remoteName is the installed file's name: several versions coexist in the directory.
func (b *build) remoteName() string { return "tether-" + b.Version + "-" + b.Sum }

// sumList is the probe script's argument: the accepted SHA-256 sums, space-separated.
func (b *build) sumList() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.Sums, " ")
}

// addSum accepts sum too (a cross build that changed since newBuild hashed it).
func (b *build) addSum(sum string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Contains(b.Sums, sum) {
		b.Sums = append(b.Sums, sum)
	}
}

// newBuild hashes this executable, or the --remote-binary file, to name the install,
// and the cross builds beside it, which the remote may hold under that name.
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
	b := &build{Version: safeVersion(version), Sum: sum[:12], Sums: []string{sum}, Self: self, forced: forced}
	if !forced {
		for _, c := range append(crossBuilds(self), cachedBuilds(version)...) {
			if s, err := fileSHA256(c); err == nil {
				b.addSum(s)
			}
		}
		for _, e := range embedded() {
			b.addSum(e.Sum)
		}
	}
	return b, nil
}

// The platforms goPlatform knows, for which a cross build may lie beside tether.
var (
	crossOS   = []string{"linux", "darwin", "freebsd", "openbsd", "netbsd", "dragonfly", "solaris"}
	crossArch = []string{"amd64", "arm64", "386", "arm", "ppc64le", "s390x", "riscv64", "loong64"}
)

// crossCandidates are where localFile looks for the build for goos/goarch, in order.
func crossCandidates(self, goos, goarch string) []string {
	name := "tether-" + goos + "-" + goarch
	dir := filepath.Dir(self)
	return []string{filepath.Join(dir, name), filepath.Join(dir, "dist", name)}
}

// crossBuilds lists the cross builds beside self (regular files only).
func crossBuilds(self string) []string {
	var found []string
	for _, goos := range crossOS {
		for _, goarch := range crossArch {
			for _, c := range crossCandidates(self, goos, goarch) {
				if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
					found = append(found, c)
				}
			}
		}
	}
	return found
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
	return termsafe.Clip(v, 64)
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

// gzipUploader is a connection that can send a file compressed (tunnel.Client): the
// remote decompresses it and checks the SHA-256 of the result.
type gzipUploader interface {
	UploadGzip(ctx context.Context, gz io.Reader, size int64, sum, remotePath string, progress func(int64)) error
}

// install uploads the build for p's platform to p.Dir over an exec of its own, showing
// progress: compressed when the build is carried so and the connection can (about 40%
// of the bytes), plain otherwise. On failure the directories the upload created are
// removed again (empty ones only). The way when the script cannot take the build in
// place (see probeScript), or the command's stdin carries a setup frame.
func (l *session) install(ctx context.Context, p *probe) error {
	pl, err := l.prepareInstall(ctx, p)
	if err != nil {
		return err
	}
	target := path.Join(p.Dir, l.build.remoteName())
	err = tunnel.ErrNoGzip
	gu, compressed := l.conn.(gzipUploader)
	if compressed = compressed && pl.fsys != nil; compressed {
		gz, gerr := pl.compressed()
		if gerr != nil {
			return errorf("reinstall tether", "cannot read %v", gerr)
		}
		err = l.sendBuild(p, pl, int64(len(gz)), " compressed, "+byteSize(pl.Size)+" installed", func(progress func(int64)) error {
			return gu.UploadGzip(ctx, bytes.NewReader(gz), int64(len(gz)), pl.Sum, target, progress)
		})
	}
	if errors.Is(err, tunnel.ErrNoGzip) {
		// Plain: the build is not carried compressed, this connection cannot send it
		// so, or the remote has no gzip.
		what := ""
		if compressed {
			what = ", uncompressed: no gzip there"
		}
		var f io.ReadSeekCloser
		if f, err = pl.plain(); err != nil {
			return errorf("check the file", "cannot read %s: %v", pl.Name, err)
		}
		defer f.Close()
		err = l.sendBuild(p, pl, pl.Size, what, func(progress func(int64)) error {
			return l.conn.Upload(ctx, f, pl.Size, target, progress)
		})
	}
	if err != nil {
		l.removeCreatedDirs(p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return uploadError(l.host, p, err)
	}
	return nil
}

// prepareInstall is what comes before an upload to p.Dir: a writable place, the build
// for p's platform (whose SHA-256 the probe then accepts) and room for it.
func (l *session) prepareInstall(ctx context.Context, p *probe) (*payload, error) {
	if !p.Writable {
		return nil, errorf(fmt.Sprintf("make it writable, or point XDG_CACHE_HOME on %s to a writable directory", l.host),
			"cannot install tether on %s: %s is not writable", l.host, p.Existing)
	}
	pl, err := l.build.payload(ctx, p, l.host, l.status)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var e *Error
		if !errors.As(err, &e) {
			err = errorf("check the file", "cannot read the tether build for %s: %v", l.host, err)
		}
		return nil, err
	}
	// The probe runs what it finds only when its SHA-256 is one this launcher knows.
	l.build.addSum(pl.Sum)
	size := pl.Size
	if p.FreeKB >= 0 && p.FreeKB*1024 < size+size/4 {
		return nil, errorf(fmt.Sprintf("free some space there, or point XDG_CACHE_HOME on %s to a disk with room", l.host),
			"cannot install tether on %s: the disk holding %s is full (%s free, %s needed)", l.host, p.Existing, byteSize(p.FreeKB*1024), byteSize(size))
	}
	return pl, nil
}

// sendBuild runs up, which sends sent bytes of pl (what: how, for the status line), with
// its progress on the status line and the rate once it is done.
func (l *session) sendBuild(p *probe, pl *payload, sent int64, what string, up func(progress func(int64)) error) error {
	platform := p.GOOS + "/" + p.GOARCH
	if pl.Platform != "" {
		platform = pl.Platform
	}
	seq := l.status.step("installing tether on %s (%s, %s%s)", l.host, platform, byteSize(sent), what)
	start := time.Now()
	err := up(func(n int64) {
		el := time.Since(start).Seconds()
		rate := ""
		if el > 0.05 {
			rate = ", " + byteSize(int64(float64(n)/el)) + "/s"
		}
		l.status.updateStep(seq, "installing tether on %s: %s of %s%s", l.host, byteSize(n), byteSize(sent), rate)
	})
	if err == nil {
		el := time.Since(start)
		// Not rate-limited: the last progress shown may be far behind (the first
		// 32 kB of a fast upload, then nothing within 100 ms).
		l.status.finish(seq, "installed tether on %s: %s in %.1fs (%s/s)", l.host, byteSize(sent), el.Seconds(), byteSize(int64(float64(sent)/max(el.Seconds(), 0.001))))
		l.status.done()
	}
	return err
}

// installInPlace answers the probe script that found no runnable tether (p) on the same
// exec, when it offered to take the build (see probeScript): it reads the script's
// tether-upload line, then sends the build on stdin and reads the script's answer,
// then sends input (the setup frame, which the script skipped) again for tether.
// declined: the script cannot take it there (the caller uploads over an exec of its
// own). uploading is set while the script is receiving: stopping the run then means
// closing its stdin (the script cleans up), never killing it.
func (l *session) installInPlace(ctx context.Context, p *probe, br *bufio.Reader, stdin *io.PipeWriter, uploading *atomic.Bool, input []byte) (declined bool, err error) {
	line, err := readLine(br, maxLine)
	how, ok := strings.CutPrefix(line, uploadTag)
	if err != nil || !ok || how != "gz" && how != "plain" && how != "no" {
		return false, errNoProbe
	}
	if how == "no" {
		return true, nil
	}
	l.noteReplacing(p)
	pl, err := l.prepareInstall(ctx, p)
	if err != nil {
		return false, err
	}
	target := path.Join(p.Dir, l.build.remoteName())
	var body io.Reader
	size, mode, what := pl.Size, "plain", ""
	if pl.fsys != nil && how == "gz" {
		gz, gerr := pl.compressed()
		if gerr != nil {
			return false, errorf("reinstall tether", "cannot read %v", gerr)
		}
		body, size, mode, what = bytes.NewReader(gz), int64(len(gz)), "gz", " compressed, "+byteSize(pl.Size)+" installed"
	} else {
		if pl.fsys != nil {
			what = ", uncompressed: no gzip there"
		}
		f, ferr := pl.plain()
		if ferr != nil {
			return false, errorf("check the file", "cannot read %s: %v", pl.Name, ferr)
		}
		defer f.Close()
		body = f
	}
	err = l.sendBuild(p, pl, size, what, func(progress func(int64)) error {
		return putInPlace(br, stdin, body, size, mode, pl.Sum, target, progress, uploading)
	})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if u := raceRefusal(err); u != nil {
			return false, unsafeError(l.host, u)
		}
		return false, uploadError(l.host, p, err)
	}
	// A failed write means the run ended: the next probe line will not come either.
	stdin.Write(input)
	return false, nil
}

// raceRefusal is the directory the script refused after it made the install
// directories (fail 6 and its tether-unsafe line): another user's, made while the
// launcher got the build ready. Trying again would not help; the probe's own refusal
// says what would.
func raceRefusal(err error) *unsafeDir {
	var ue *tunnel.UploadError
	if !errors.As(err, &ue) || ue.Status != 6 {
		return nil
	}
	for _, line := range strings.Split(ue.Stderr, "\n") {
		if strings.HasPrefix(line, unsafeTag) {
			if u, err := readUnsafe(bufio.NewReader(strings.NewReader(line + "\n"))); err == nil {
				return u
			}
		}
	}
	return nil
}

// putInPlace sends the put line and size bytes of body on stdin, and reads the
// script's answer from br: its commands' complaints, then ok or fail STATUS.
func putInPlace(br *bufio.Reader, stdin *io.PipeWriter, body io.Reader, size int64, mode, sum, target string, progress func(int64), uploading *atomic.Bool) error {
	var nonce [6]byte
	rand.Read(nonce[:])
	var written atomic.Int64
	uploading.Store(true)
	defer uploading.Store(false)
	wrote := make(chan error, 1)
	go func() {
		_, err := fmt.Fprintf(stdin, "tether-put %s %d %s %s\n", mode, size, sum, hex.EncodeToString(nonce[:]))
		if err == nil {
			var n int64
			n, err = io.Copy(stdin, io.TeeReader(io.LimitReader(body, size), writeFunc(func(b []byte) {
				written.Add(int64(len(b)))
				if progress != nil {
					progress(written.Load())
				}
			})))
			if err == nil && n != size {
				err = fmt.Errorf("the build ended after %d of %d bytes (did it change while it was read?)", n, size)
			}
			if err != nil {
				// The script waits for the rest: end its stdin, and it fails and cleans up.
				stdin.CloseWithError(err)
			}
		}
		wrote <- err
	}()
	var said []string
	for {
		line, err := readLine(br, maxLine)
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			// The run ended: the connection, or ctx (its stdin closed).
			stdin.CloseWithError(errors.New("upload abandoned"))
			<-wrote
			return fmt.Errorf("tunnel: upload to %s: the remote command ended before it answered", target)
		}
		if line == uploadTag+"ok" {
			break
		}
		if st, ok := strings.CutPrefix(line, uploadTag+"fail "); ok {
			stdin.CloseWithError(errors.New("upload failed"))
			if werr := <-wrote; werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
				return fmt.Errorf("tunnel: upload to %s: %w", target, werr) // ours: the script only saw its stdin end
			}
			n, err := strconv.Atoi(st)
			if err != nil {
				n = -1
			}
			return &tunnel.UploadError{Path: target, Status: n, Stderr: strings.Join(said, "\n")}
		}
		if len(said) < 20 {
			if !strings.HasPrefix(line, unsafeTag) { // kept whole: installInPlace reads it
				line = termsafe.Clip(termsafe.OneLine(line), 300)
			}
			said = append(said, line)
		}
	}
	if err := <-wrote; err != nil {
		return fmt.Errorf("tunnel: upload to %s: %w", target, err)
	}
	if n := written.Load(); n != size {
		return fmt.Errorf("tunnel: upload to %s: sent %d of %d bytes", target, n, size)
	}
	return nil
}

// writeFunc is an io.Writer that hands each write to a function.
type writeFunc func([]byte)

func (f writeFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }

// noteReplacing says so when the probe found, at the install name, a file that is not
// what this launcher installed, in directories only this user (or root) can write:
// damaged on disk, or left by someone while a directory was open. It never runs; a
// fresh copy replaces it (the upload renames over it).
func (l *session) noteReplacing(p *probe) {
	if p.State == "damaged" {
		l.status.line("tether: on %s, %s is not the tether this launcher installed (its SHA-256 or owner differs); replacing it",
			l.host, path.Join(p.Dir, l.build.remoteName()))
	}
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
		return &Error{Msg: fmt.Sprintf("cannot install tether on %s: the disk holding %s is full (%s)", host, p.Dir, termsafe.Clip(termsafe.OneLine(text), 160)),
			Hint: fmt.Sprintf("free some space there, or point XDG_CACHE_HOME on %s to a disk with room; nothing was left behind", host), Err: err}
	case strings.Contains(low, "permission denied"), strings.Contains(low, "read-only file system"):
		return &Error{Msg: fmt.Sprintf("cannot install tether on %s: %s is not writable (%s)", host, p.Dir, termsafe.Clip(termsafe.OneLine(text), 160)),
			Hint: fmt.Sprintf("make it writable, or point XDG_CACHE_HOME on %s to a writable directory", host), Err: err}
	}
	return &Error{Msg: fmt.Sprintf("cannot install tether on %s: %s", host, termsafe.Clip(termsafe.OneLine(tunnel.Message(err)), 200)),
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
	l.conn.Run(ctx, shquote.LoginCommand(append([]string{"rmdir", "--"}, dirs...), "2>/dev/null"), nil, io.Discard, io.Discard)
}
