//go:build unix

package tunnel

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// tether's own ControlMaster sockets, and the Unix sockets its forwards listen on, live
// in a private directory of the user's (0700, theirs, not a symlink), so that no other
// user can reach them. It must outlive each tether command (the master serves the next
// one) and keep socket paths short: a Unix socket path holds at most 104 bytes on macOS
// (108 on Linux), and ssh binds its master to the ControlPath plus 17 bytes of a
// temporary suffix first. So: $XDG_RUNTIME_DIR/tether (per-user, 0700, cleared at
// logout: systemd) when that is set and short; otherwise /tmp/tether-UID, the way tmux
// keeps /tmp/tmux-UID, refused unless it is ours alone. Never $TMPDIR: it is private on
// macOS but too long there (/var/folders/…).

// maxSocketPath is the room a socket path may take: macOS's sun_path less ssh's
// temporary suffix and a margin.
const maxSocketPath = 104 - 17 - 4

// socketNameLen is the longest name controlDir's callers put in it ("c-" or "f-" and
// 16 hex digits).
const socketNameLen = 18

// tmpBase is where the directory goes without XDG_RUNTIME_DIR (a variable for tests).
var tmpBase = "/tmp"

// controlDir returns tether's private directory for sockets, creating it when needed.
func controlDir() (string, error) {
	uid := os.Geteuid()
	if rt := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) && usablePath(rt) {
		dir := filepath.Join(rt, "tether")
		if len(dir)+1+socketNameLen <= maxSocketPath {
			if err := privateDir(dir, uid); err == nil {
				return dir, nil
			}
		}
	}
	dir := filepath.Join(tmpBase, "tether-"+strconv.Itoa(uid))
	if err := privateDir(dir, uid); err != nil {
		return "", err
	}
	return dir, nil
}

// usablePath: no characters that ssh_config's quoting or % expansion would change.
func usablePath(p string) bool {
	return !strings.ContainsAny(p, " \t\"'\\%#\n")
}

// privateDir makes dir (0700) if it is missing and checks that it is a directory, not
// a symlink, owned by uid, with no access for group or others.
func privateDir(dir string, uid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("tunnel: creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	owner, _ := fileOwner(fi)
	switch {
	case fi.Mode()&os.ModeSymlink != 0 || !fi.IsDir():
		return fmt.Errorf("tunnel: %s is not a directory; remove it so that tether can make its private one there", dir)
	case owner != uid:
		return fmt.Errorf("tunnel: %s belongs to uid %d, not to you; tether keeps its ssh sockets there only when it is yours alone (remove it, or set XDG_RUNTIME_DIR)", dir, owner)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("tunnel: %s is open to other users (mode %04o); tether keeps its ssh sockets there only when it is yours alone: `chmod 700 %s`", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// fileOwner is the user ID that owns a file.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}
