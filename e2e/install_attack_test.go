//go:build unix

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11, item 4: planted remote binaries. XDG_CACHE_HOME on storage other users can
// write (HPC sites put it on shared scratch), another user gets a program of theirs run
// as the victim by the probe script. Each attack is made by a real second Unix user;
// the victim is the user sshd logs in (root here and in CI).

// binarySum is the full SHA-256 of the tether under test.
func binarySum(t *testing.T) string {
	t.Helper()
	f, err := os.Open(Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// remoteName is the name tether installs itself under on the remote: the attacker knows
// it (the version and the release's checksum are public).
func remoteName(t *testing.T) string {
	return "tether-" + Version + "-" + binarySum(t)[:12]
}

// sharedCache makes a world-writable, sticky directory under /tmp that the victim and
// the attacker both reach: a site's shared scratch for XDG_CACHE_HOME.
func sharedCache(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tether-shared-cache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// evilProgram is what the attacker plants: it leaves a marker (as whoever runs it)
// and answers like tether, so an unchecked probe goes on to exec it.
func evilProgram(marker string) string {
	return fmt.Sprintf("#!/bin/sh\necho \"ran as $(id -u): $*\" >> '%s'\nif [ \"$1\" = version ]; then echo 'tether v0.0.0-e2e'; exit 0; fi\nexit 1\n", marker)
}

// asUser runs a shell script as u and fails the test if it fails.
func asUser(t *testing.T, u User, script string) {
	t.Helper()
	if out, err := u.Command("/bin/sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v\n%s", u.Name, script, err, out)
	}
}

func noMarker(t *testing.T, marker string) {
	t.Helper()
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("the planted program ran: %s", b)
	}
}

// markerFile is where a planted program leaves its marker when the victim runs it (in a
// 0700 directory of the victim's: the attacker cannot fake one).
func markerFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "planted-program-ran")
}

// The attacker creates tether/bin in the shared cache before the victim's first launch,
// world-writable, with a program at the name tether would install. The launch refuses
// the directory with the fix, and nothing of the attacker's runs.
func TestPlantedBinaryInSharedCacheDirectory(t *testing.T) {
	attacker := OtherUser(t)
	shared := sharedCache(t)
	marker := markerFile(t)
	bin := filepath.Join(shared, "tether", "bin")
	asUser(t, attacker, fmt.Sprintf("mkdir -p -m 777 '%s' && chmod 777 '%s' && cat > '%s/%s' <<'EOF'\n%sEOF\nchmod 755 '%s/%s'",
		bin, filepath.Dir(bin), bin, remoteName(t), evilProgram(marker), bin, remoteName(t)))

	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_CACHE_HOME": shared}})
	StopAllOnCleanup(t, s)
	launchFails(t, "planted bin directory", 15*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser"},
		"on "+s.Alias+", "+bin+" belongs to "+attacker.Name+", not to you", "will not run programs from it", "set XDG_CACHE_HOME on "+s.Alias)
	noMarker(t, marker)
	// Every command goes through the same check.
	_, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias)
	if code != 1 || !strings.Contains(errOut, "belongs to "+attacker.Name) {
		t.Errorf("tether ls: exit %d, %q; want the same refusal", code, errOut)
	}
	noMarker(t, marker)
}

// The victim's own tether/bin is open to everyone (made under umask 000, or by a site
// script): the attacker waits for tether to install there and swaps in a program of
// theirs. Tether refuses the directory from the first launch on, so there is nothing
// to swap, and what the attacker plants there anyway never runs.
func TestSwappedBinaryInWorldWritableDirectory(t *testing.T) {
	attacker := OtherUser(t)
	shared := sharedCache(t)
	marker := markerFile(t)
	bin := filepath.Join(shared, "tether", "bin")
	if err := os.MkdirAll(bin, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(bin), 0o777)
	os.Chmod(bin, 0o777)

	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_CACHE_HOME": shared}})
	StopAllOnCleanup(t, s)
	want := []string{"on " + s.Alias + ", " + bin + " is writable by other users (mode 0777, owner root)", "`chmod 700 " + bin + "`", "set XDG_CACHE_HOME on " + s.Alias + " to a private directory"}
	// The first command would install tether there.
	_, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias)
	if code != 1 || !strings.Contains(errOut, want[0]) {
		t.Errorf("tether ls: exit %d, %q; want the refusal", code, errOut)
	}
	if ents, _ := os.ReadDir(bin); len(ents) != 0 {
		t.Errorf("tether installed into the open directory: %v", ents)
	}
	// The attacker swaps in (or plants) a program of theirs at tether's name; the
	// launch refuses again, and it never runs.
	asUser(t, attacker, fmt.Sprintf("cat > '%s/.x' <<'EOF'\n%sEOF\nchmod 755 '%s/.x' && mv -f '%s/.x' '%s/%s'",
		bin, evilProgram(marker), bin, bin, bin, remoteName(t)))
	launchFails(t, "world-writable bin, program swapped in", 15*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser"}, want...)
	noMarker(t, marker)

	// Following the fix works: chmod 700, and tether replaces the planted file (not
	// ours) with its own copy.
	os.Chmod(bin, 0o700)
	os.Chmod(filepath.Dir(bin), 0o700)
	_, errOut, code = RunTether(t, "ls", "-F", s.Config, s.Alias)
	if code != 0 || !strings.Contains(errOut, "is not the tether this launcher installed") {
		t.Errorf("after chmod 700: exit %d, %q; want the planted file replaced", code, errOut)
	}
	noMarker(t, marker)
	if got := FileSum(t, filepath.Join(bin, remoteName(t))); got != binarySum(t) {
		t.Errorf("installed sum %s, want %s", got, binarySum(t))
	}
}

// A shared cache directory that is world-writable without the sticky bit lets others
// rename tether's directory away and put theirs in its place: refused, even though
// tether/ and tether/bin themselves are private.
func TestOpenParentOfInstallDirectory(t *testing.T) {
	OtherUser(t) // the threat; needs root like the rest
	open, err := os.MkdirTemp("", "tether-open-cache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	os.Chmod(open, 0o777)
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"XDG_CACHE_HOME": open}})
	launchFails(t, "open parent", 15*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser"},
		"on "+s.Alias+", "+open+" is writable by other users without the sticky bit (mode 0777, owner root)", "`chmod go-w "+open+"`")
	if ents, _ := os.ReadDir(open); len(ents) != 0 {
		t.Errorf("tether wrote into the open directory: %v", ents)
	}
}

// The installed file changed in a private directory (damage, or planted while the
// directory was open): its SHA-256 no longer matches, so it is never run; the launcher
// says so in one line and installs a fresh copy.
func TestTamperedBinaryInPrivateDirectoryIsReplaced(t *testing.T) {
	s := StartSSHD(t, SSHDOptions{})
	marker := markerFile(t)
	if _, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias); code != 0 {
		t.Fatalf("first ls: exit %d: %s", code, errOut)
	}
	installed := filepath.Join(s.Home, ".cache", "tether", "bin", remoteName(t))
	if got := FileSum(t, installed); got != binarySum(t) {
		t.Fatalf("installed sum %s, want %s", got, binarySum(t))
	}
	// Same owner, same mode, other content.
	if err := os.WriteFile(installed, []byte(evilProgram(marker)), 0o700); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias)
	noMarker(t, marker)
	if code != 0 {
		t.Fatalf("ls after tampering: exit %d: %s", code, errOut)
	}
	MustContain(t, "stderr", errOut, "tether: on "+s.Alias+", "+installed+" is not the tether this launcher installed", "replacing it", "installing tether on "+s.Alias)
	if got := FileSum(t, installed); got != binarySum(t) {
		t.Errorf("after the reinstall the sum is %s, want %s", got, binarySum(t))
	}
	// Truncated (a copy cut short by a full disk): the same.
	b, _ := os.ReadFile(installed)
	os.WriteFile(installed, b[:len(b)/2], 0o700)
	if _, errOut, code := RunTether(t, "ls", "-F", s.Config, s.Alias); code != 0 || !strings.Contains(errOut, "replacing it") {
		t.Errorf("truncated: exit %d, %q", code, errOut)
	}
}

// The session directories get the same rule: TETHER_STATE_DIR in a directory others
// may write without the sticky bit would let them rename it away and put their own,
// with a socket of theirs, in its place. Refused with the fix, and nothing is started.
func TestOpenParentOfSessionDirectory(t *testing.T) {
	OtherUser(t) // the threat; needs root like the rest
	open, err := os.MkdirTemp("", "tether-open-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	os.Chmod(open, 0o777)
	state := filepath.Join(open, "state")
	s := StartSSHD(t, SSHDOptions{Env: map[string]string{"TETHER_STATE_DIR": state}})
	launchFails(t, "open parent of TETHER_STATE_DIR", 30*time.Second, []string{"launch", "-F", s.Config, s.Alias, "--no-browser"},
		open+" above it is writable by others without the sticky bit (mode 0777)", "chmod go-w "+open, "TETHER_STATE_DIR to a private directory")
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("a session was made there: %v", ents)
	}
}
